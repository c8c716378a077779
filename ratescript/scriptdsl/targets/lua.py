"""The Lua 5.1 target: one Redis script per DSL script, run by ``EVALSHA``.

``KEYS[i]`` are the declared keys in order; ``ARGV[1]`` is the caller's clock in
ms (empty: use Redis ``TIME``) and ``ARGV[2..]`` the numeric parameters, sent as
``%.17g`` strings. The reply is a flat array of strings, because Redis truncates
a Lua number reply to an integer: ``{allowed, wait_ms, remaining, reset_ms,
metadata...}``, every number printed with ``%.17g`` (Lua's ``tostring`` prints
only 14 digits). Helpers are emitted only when used, as locals bound before any
author variable, so an author's ``string`` or ``end`` can never shadow them (the
latter is renamed: Lua keywords are not Lua names).
"""

from __future__ import annotations

from ratescript.scriptdsl import nodes as n
from ratescript.scriptdsl.targets.base import Generator

__all__ = ["LuaGenerator", "generate_lua"]

_LUA_KEYWORDS = frozenset(
    [
        "and",
        "break",
        "do",
        "else",
        "elseif",
        "end",
        "false",
        "for",
        "function",
        "if",
        "in",
        "local",
        "nil",
        "not",
        "or",
        "repeat",
        "return",
        "then",
        "true",
        "until",
        "while",
    ]
)
_LUA_GLOBALS = frozenset(
    {
        "redis",
        "KEYS",
        "ARGV",
        "string",
        "math",
        "table",
        "tonumber",
        "tostring",
        "error",
        "type",
        "unpack",
        "pairs",
        "ipairs",
        "select",
    }
)

# Each helper: its Lua definition and the helpers it needs. Messages start with
# "ratescript:" so clients can tell a script's own failure from any other error.
_HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "_rs_fmt": ("local _rs_fmt = string.format", ()),
    "_rs_floor": ("local _rs_floor = math.floor", ()),
    "_rs_ceil": ("local _rs_ceil = math.ceil", ()),
    "_rs_min": ("local _rs_min = math.min", ()),
    "_rs_max": ("local _rs_max = math.max", ()),
    "_rs_abs": ("local _rs_abs = math.abs", ()),
    "_rs_num": ("local function _rs_num(x) return _rs_fmt('%.17g', x) end", ("_rs_fmt",)),
    "_rs_div": (
        "local function _rs_div(a, b)\n"
        "  if b == 0 then error('ratescript: division by zero', 2) end\n"
        "  return a / b\n"
        "end",
        (),
    ),
    "_rs_mod": (
        "local function _rs_mod(a, b)\n"
        "  if b == 0 then error('ratescript: division by zero', 2) end\n"
        "  return a - _rs_floor(a / b) * b\n"
        "end",
        ("_rs_floor",),
    ),
    "_rs_arg": (
        "local function _rs_arg(i, name)\n"
        "  local v = tonumber(ARGV[i])\n"
        "  if not v then error('ratescript: argument ' .. name .. ' is not a number', 2) end\n"
        "  return v\n"
        "end",
        (),
    ),
    "_rs_finite": (
        "local function _rs_finite(line, ...)\n"
        "  for i = 1, select('#', ...) do\n"
        "    local v = select(i, ...)\n"
        "    if v - v ~= 0 then\n"
        "      error('ratescript: line ' .. line ..\n"
        "        ': cannot store a number that is not finite', 0)\n"
        "    end\n"
        "  end\n"
        "end",
        (),
    ),
    "_rs_corrupt": (
        "local function _rs_corrupt(i, raw, expected)\n"
        "  error('ratescript: corrupt value at key ' .. KEYS[i] .. ': expected ' .. expected, 0)\n"
        "end",
        (),
    ),
    "_rs_split": (
        # Splits exactly like Python's bytes.split(sep), so both reject the same values.
        "local function _rs_split(raw, sep)\n"
        "  local parts, count, pos = {}, 0, 1\n"
        "  while true do\n"
        "    local at = string.find(raw, sep, pos, true)\n"
        "    count = count + 1\n"
        "    if not at then parts[count] = string.sub(raw, pos); return parts, count end\n"
        "    parts[count] = string.sub(raw, pos, at - 1)\n"
        "    pos = at + 1\n"
        "  end\n"
        "end",
        (),
    ),
    "_rs_read": (
        # Only the bytes %.17g can print get through, so Lua's tonumber and Python's float
        # accept exactly the same values (Lua alone reads hex, Python alone underscores).
        "local function _rs_read(i, expected)\n"
        "  local raw = redis.call('GET', KEYS[i])\n"
        "  if raw and string.find(raw, '[^%d%.e%+%-:,]') then _rs_corrupt(i, raw, expected) end\n"
        "  return raw\n"
        "end",
        ("_rs_corrupt",),
    ),
    "_rs_get_number": (
        "local function _rs_get_number(i)\n"
        "  local raw = _rs_read(i, 'a number')\n"
        "  if not raw then return nil end\n"
        "  local v = tonumber(raw)\n"
        "  if not v then _rs_corrupt(i, raw, 'a number') end\n"
        "  return v\n"
        "end",
        ("_rs_read", "_rs_corrupt"),
    ),
    "_rs_get_record": (
        "local function _rs_get_record(i, n)\n"
        "  local raw = _rs_read(i, n .. ' numbers')\n"
        "  if not raw then return false end\n"
        "  local parts, count = _rs_split(raw, ':')\n"
        "  if count ~= n then _rs_corrupt(i, raw, n .. ' numbers') end\n"
        "  for j = 1, n do\n"
        "    local v = tonumber(parts[j])\n"
        "    if not v then _rs_corrupt(i, raw, n .. ' numbers') end\n"
        "    parts[j] = v\n"
        "  end\n"
        "  return parts\n"
        "end",
        ("_rs_read", "_rs_split", "_rs_corrupt"),
    ),
    "_rs_get_log": (
        "local function _rs_get_log(i)\n"
        "  local raw = _rs_read(i, 'a log')\n"
        "  local times, amounts = {}, {}\n"
        "  if not raw or raw == '' then return times, amounts, 1, 0 end\n"
        "  local entries, count = _rs_split(raw, ',')\n"
        "  for j = 1, count do\n"
        "    local entry = entries[j]\n"
        "    local at = string.find(entry, ':', 1, true)\n"
        "    local t = at and tonumber(string.sub(entry, 1, at - 1))\n"
        "    local a = at and tonumber(string.sub(entry, at + 1))\n"
        "    if not (t and a) then _rs_corrupt(i, raw, 'a log') end\n"
        "    times[j], amounts[j] = t, a\n"
        "  end\n"
        "  return times, amounts, 1, count\n"
        "end",
        ("_rs_read", "_rs_split", "_rs_corrupt"),
    ),
    "_rs_ttl": (
        "local function _rs_ttl(ms)\n"
        "  return _rs_fmt('%d', _rs_max(1, _rs_min(315360000000, _rs_ceil(ms))))\n"
        "end",
        ("_rs_fmt", "_rs_max", "_rs_min", "_rs_ceil"),
    ),
    "_rs_put": (
        "local function _rs_put(i, value, ttl)\n"
        "  if ttl then redis.call('SET', KEYS[i], value, 'PX', ttl)\n"
        "  else redis.call('SET', KEYS[i], value) end\n"
        "end",
        (),
    ),
    "_rs_encode_log": (
        "local function _rs_encode_log(times, amounts, head, last)\n"
        "  local parts = {}\n"
        "  for j = head, last do\n"
        "    parts[j - head + 1] = _rs_fmt('%.17g:%.17g', times[j], amounts[j])\n"
        "  end\n"
        "  return table.concat(parts, ',')\n"
        "end",
        ("_rs_fmt",),
    ),
    "_rs_log_trim": (
        "local function _rs_log_trim(times, head, last, cutoff)\n"
        "  while head <= last and times[head] <= cutoff do head = head + 1 end\n"
        "  return head\n"
        "end",
        (),
    ),
    "_rs_log_append": (
        "local function _rs_log_append(times, amounts, head, last, t, a, line)\n"
        "  _rs_finite(line, t, a)\n"
        "  if last >= head and t <= times[last] then\n"
        "    amounts[last] = amounts[last] + a\n"
        "    return last\n"
        "  end\n"
        "  last = last + 1\n"
        "  times[last], amounts[last] = t, a\n"
        "  return last\n"
        "end",
        ("_rs_finite",),
    ),
    "_rs_log_sum": (
        "local function _rs_log_sum(amounts, head, last)\n"
        "  local total = 0\n"
        "  for j = head, last do total = total + amounts[j] end\n"
        "  return total\n"
        "end",
        (),
    ),
}


class LuaGenerator(Generator):
    indent_unit = "  "

    def __init__(self, ir: n.ScriptIR) -> None:
        super().__init__(ir)
        self.helpers: dict[str, None] = {}
        taken = set(ir.variables) | set(ir.params) | set(ir.logs)
        self.names = {
            name: (f"_u_{name}" if name in _LUA_KEYWORDS or name in _LUA_GLOBALS else name)
            for name in taken
        }

    def use(self, helper: str) -> str:
        for dependency in _HELPERS[helper][1]:
            self.use(dependency)
        self.helpers[helper] = None
        return helper

    def name(self, name: str) -> str:
        return self.names.get(name, name)

    def log(self, log: str) -> tuple[str, str, str, str]:
        """A log lives in four locals: times, amounts, head index, last index."""
        base = self.name(log)
        return f"{base}__t", f"{base}__a", f"{base}__h", f"{base}__n"

    def generate(self) -> str:
        ir = self.ir
        body = LuaBody(self)
        body.block(ir.body)
        if ir.params:
            self.use("_rs_arg")
        out = self.out
        out.origin = ir.first_line
        # The module, not the file path: the source (and its SHA) must not depend on the checkout.
        out.line(f"-- ratescript script `{ir.name}` from {ir.module}, line {ir.first_line}")
        out.line("-- generated code: do not edit")
        for helper in _HELPERS:  # a fixed order keeps the source (and its SHA) stable
            if helper in self.helpers:
                for text in _HELPERS[helper][0].split("\n"):
                    out.line(text)
        if ir.uses_now:
            out.line("local _now = tonumber(ARGV[1])")
            out.line("if not _now then")
            out.line("  local t = redis.call('TIME')")
            out.line("  _now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000")
            out.line("end")
        for position, param in enumerate(ir.params):
            out.line(f"local {self.name(param)} = _rs_arg({position + 2}, '{param}')")
        declared = [self.name(v) for v in ir.variables]
        for log in ir.logs:
            declared.extend(self.log(log))
        for start in range(0, len(declared), 8):
            out.line(f"local {', '.join(declared[start : start + 8])}")
        if body.needs_read_slot:
            out.line("local _r")
        for text, origin in body.lines:
            out.origin = origin
            out.line(text)
        return out.source


class LuaBody(Generator):
    """Generates the statements; the prologue is written after, once helpers are known."""

    indent_unit = "  "

    def __init__(self, parent: LuaGenerator) -> None:
        super().__init__(parent.ir)
        self.parent = parent
        self.loops = 0
        self.needs_read_slot = False

    @property
    def lines(self) -> list[tuple[str, int]]:
        source = self.out.source.split("\n")[:-1]
        return list(zip(source, self.out.line_map, strict=True))

    def use(self, helper: str) -> str:
        return self.parent.use(helper)

    # --- expressions -----------------------------------------------------------------

    def expr_Const(self, node: n.Const) -> str:
        text = "%.17g" % node.value  # noqa: UP031 -- the exact C printf format, as in Lua
        return text if node.value >= 0 and text[0] != "-" else f"({text})"

    def expr_BoolConst(self, node: n.BoolConst) -> str:
        return "true" if node.value else "false"

    def expr_Var(self, node: n.Var) -> str:
        return self.parent.name(node.name)

    def expr_Now(self, node: n.Now) -> str:
        return "_now"

    def expr_Binary(self, node: n.Binary) -> str:
        left, right = self.expr(node.left), self.expr(node.right)
        if node.op == "/":
            return f"{self.use('_rs_div')}({left}, {right})"
        if node.op == "//":
            return f"{self.use('_rs_floor')}({self.use('_rs_div')}({left}, {right}))"
        if node.op == "%":
            return f"{self.use('_rs_mod')}({left}, {right})"
        return f"({left} {node.op} {right})"

    def expr_Unary(self, node: n.Unary) -> str:
        operand = self.expr(node.operand)
        # "- -x" would open a Lua comment: always parenthesise the operand.
        return f"(-({operand}))" if node.op == "-" else f"(not {operand})"

    def expr_Logical(self, node: n.Logical) -> str:
        return f"({self.expr(node.left)} {node.op} {self.expr(node.right)})"

    def expr_Compare(self, node: n.Compare) -> str:
        op = "~=" if node.op == "!=" else node.op
        return f"({self.expr(node.left)} {op} {self.expr(node.right)})"

    def expr_Cond(self, node: n.Cond) -> str:
        # Safe as "and/or": the "then" value is a number, and numbers are never false in Lua.
        return f"({self.expr(node.test)} and {self.expr(node.then)} or {self.expr(node.orelse)})"

    def expr_Builtin(self, node: n.Builtin) -> str:
        args = ", ".join(self.expr(a) for a in node.args)
        return f"{self.use('_rs_' + node.func)}({args})"

    def expr_LogSum(self, node: n.LogSum) -> str:
        _times, amounts, head, last = self.parent.log(node.log)
        return f"{self.use('_rs_log_sum')}({amounts}, {head}, {last})"

    def expr_LogCount(self, node: n.LogCount) -> str:
        _times, _amounts, head, last = self.parent.log(node.log)
        return f"({last} - {head} + 1)"

    def expr_LogEdge(self, node: n.LogEdge) -> str:
        times, amounts, head, last = self.parent.log(node.log)
        array = amounts if node.part == "amount" else times
        index = last if node.newest else head
        # Safe as "and/or": an entry is a number, never false.
        return f"({last} >= {head} and {array}[{index}] or {self.expr(node.default)})"

    # --- statements ------------------------------------------------------------------

    def stmt_Assign(self, node: n.Assign) -> None:
        names = ", ".join(self.parent.name(x) for x in node.names)
        self.out.line(f"{names} = {', '.join(self.expr(v) for v in node.values)}")

    def nested(self, stmts: tuple[n.Stmt, ...]) -> None:
        self.out.indent()
        self.block(stmts)
        self.out.dedent()

    def stmt_If(self, node: n.If) -> None:
        self.out.line(f"if {self.expr(node.test)} then")
        self.nested(node.body)
        orelse = node.orelse
        while len(orelse) == 1 and isinstance(orelse[0], n.If):
            inner = orelse[0]
            self.out.origin = inner.line
            self.out.line(f"elseif {self.expr(inner.test)} then")
            self.nested(inner.body)
            orelse = inner.orelse
        if orelse:
            self.out.line("else")
            self.nested(orelse)
        self.out.line("end")

    def stmt_ForLog(self, node: n.ForLog) -> None:
        times, amounts, head, last = self.parent.log(node.log)
        self.loops += 1
        index = f"_i{self.loops}"
        self.out.line(f"for {index} = {head}, {last} do")
        self.out.indent()
        time_var, amount_var = self.parent.name(node.time_var), self.parent.name(node.amount_var)
        self.out.line(f"{time_var}, {amount_var} = {times}[{index}], {amounts}[{index}]")
        self.block(node.body)
        self.out.dedent()
        self.out.line("end")

    def stmt_Break(self, node: n.Break) -> None:
        self.out.line("break")

    def stmt_Return(self, node: n.Return) -> None:
        num = self.use("_rs_num")
        values = [node.wait_ms, node.remaining, node.reset_ms, *node.metadata]
        parts = ", ".join(f"{num}({self.expr(v)})" for v in values)
        self.out.line(f"return {{'{1 if node.allowed else 0}', {parts}}}")

    def stmt_LoadKey(self, node: n.LoadKey) -> None:
        spec = self.ir.keys[node.key]
        slot = node.key + 1
        if spec.kind is n.KeyKind.LOG:
            names = ", ".join(self.parent.log(node.targets[0]))
            self.out.line(f"{names} = {self.use('_rs_get_log')}({slot})")
            return
        # Read into _r first: a default may refer to the old value of its own target.
        self.needs_read_slot = True
        targets = ", ".join(self.parent.name(t) for t in node.targets)
        defaults = ", ".join(self.expr(d) for d in node.defaults)
        if spec.kind is n.KeyKind.NUMBER:
            self.out.line(f"_r = {self.use('_rs_get_number')}({slot})")
            self.out.line(f"if _r then {targets} = _r else {targets} = {defaults} end")
            return
        fields = ", ".join(f"_r[{i + 1}]" for i in range(len(node.targets)))
        self.out.line(f"_r = {self.use('_rs_get_record')}({slot}, {len(node.targets)})")
        self.out.line(f"if _r then {targets} = {fields} else {targets} = {defaults} end")

    def stmt_StoreKey(self, node: n.StoreKey) -> None:
        spec = self.ir.keys[node.key]
        slot = node.key + 1
        if spec.kind is n.KeyKind.LOG:
            value = f"{self.use('_rs_encode_log')}({', '.join(self.parent.log(node.log))})"
        else:
            # A block of its own, so the temporaries never pile up as top-level locals.
            values = [self.expr(v) for v in node.values]
            names = [f"_v{i}" for i in range(len(values))]
            self.out.line("do")
            self.out.indent()
            self.out.line(f"local {', '.join(names)} = {', '.join(values)}")
            self.out.line(f"{self.use('_rs_finite')}({node.line}, {', '.join(names)})")
            pattern = ":".join(["%.17g"] * len(values))
            value = f"{self.use('_rs_fmt')}('{pattern}', {', '.join(names)})"
        ttl = "nil" if node.ttl_ms is None else f"{self.use('_rs_ttl')}({self.expr(node.ttl_ms)})"
        self.out.line(f"{self.use('_rs_put')}({slot}, {value}, {ttl})")
        if spec.kind is not n.KeyKind.LOG:
            self.out.dedent()
            self.out.line("end")

    def stmt_DeleteKey(self, node: n.DeleteKey) -> None:
        self.out.line(f"redis.call('DEL', KEYS[{node.key + 1}])")

    def stmt_LogTrim(self, node: n.LogTrim) -> None:
        times, _amounts, head, last = self.parent.log(node.log)
        self.out.line(
            f"{head} = {self.use('_rs_log_trim')}({times}, {head}, {last}, "
            f"{self.expr(node.cutoff)})"
        )

    def stmt_LogAppend(self, node: n.LogAppend) -> None:
        times, amounts, head, last = self.parent.log(node.log)
        self.out.line(
            f"{last} = {self.use('_rs_log_append')}({times}, {amounts}, {head}, "
            f"{last}, {self.expr(node.time)}, {self.expr(node.amount)}, {node.line})"
        )

    def stmt_LogDropOldest(self, node: n.LogDropOldest) -> None:
        _times, _amounts, head, last = self.parent.log(node.log)
        self.out.line(f"if {head} <= {last} then {head} = {head} + 1 end")


def generate_lua(ir: n.ScriptIR) -> tuple[str, tuple[int, ...]]:
    """Lua source of the script and its line map (generated line → DSL line)."""
    generator = LuaGenerator(ir)
    source = generator.generate()
    return source, generator.out.line_map
