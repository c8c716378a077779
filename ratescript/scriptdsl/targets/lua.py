"""The Lua 5.1 target: one Redis script per DSL script, run by ``EVALSHA``.

``KEYS[i]`` are the declared keys in order; ``ARGV[1]`` is the caller's clock in
ms (empty: use Redis ``TIME``) and ``ARGV[2..]`` the numeric parameters, sent as
``%.17g`` strings. The reply is one string, because Redis truncates a Lua number
reply to an integer and redis-py parses an array slowly: allowed (1 or 0),
wait_ms, remaining, reset_ms and the metadata as little-endian doubles
(``struct.pack``), exact with no printing (Lua's ``tostring`` prints only 14 digits,
and a ``%.17g`` costs Redis more than a ``GET``). Helpers are emitted only
when used, as locals bound before any author variable, so an author's ``string``
or ``end`` can never shadow them (the latter is renamed: Lua keywords are not Lua
names).

Redis runs the whole chunk on every call, so the code favours what is cheap there:
checks inline rather than in functions (each ``local function`` is a new closure per
call), one ``string.match`` to split and check a record, constants printed at compile
time. Every check fails with the message, and on the line, that a helper would have.

Redis keeps what a script wrote before it failed; the other targets write nothing
then. So a script that writes runs its body as a function under ``pcall``, saving
each key before its first write and putting it back on a failure (``_rs_undo``). The
group form (``generate_lua_batch``) runs the same function once per hit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ratescript.scriptdsl import nodes as n
from ratescript.scriptdsl.codec import LOG_MAGIC
from ratescript.scriptdsl.passes import checked_on_entry, children, may_fail, nonzero, statements
from ratescript.scriptdsl.targets.base import Generator, too_complex

__all__ = ["LuaGenerator", "generate_lua", "generate_lua_batch"]

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
        "struct",
    }
)

# Every byte %.17g prints in a number, as a Lua pattern class: a value is read only if
# all its bytes are these or separators, so Lua's tonumber and Python's float accept
# exactly the same strings (Lua alone reads hex, spaces and NUL-cut strings, Python
# alone underscores). The same bytes as ``codec._PRINTABLE``, less ``:`` and ``,``
# (a "-" that ends a Lua set is itself, not a range).
_DIGITS = "[0-9.e+-]"
# Lua 5.1 refuses patterns of more captures (LUA_MAXCAPTURES).
_MAX_CAPTURES = 32
_NOT_FINITE = "cannot store a number that is not finite"
# The stored log's magic (codec.py), as Lua source.
_LOG_MAGIC = LOG_MAGIC.decode("ascii")
# Puts back the keys a failed run wrote (see `_rs_undo`), under pcall's failure branch.
_RESTORE = [
    "for i, saved in pairs(_rs_undo) do",
    "  if not saved[1] then",
    "    redis.call('DEL', KEYS[i])",
    "  elseif saved[2] >= 0 then",
    "    redis.call('SET', KEYS[i], saved[1], 'PX', saved[2] > 0 and saved[2] or 1)",
    "  else",
    "    redis.call('SET', KEYS[i], saved[1])",
    "  end",
    "end",
]
_CORRUPT_LOG = "error('ratescript: corrupt value at key ' .. key .. ': expected a log', 0)"


# Each helper: its Lua definition and the helpers it needs. Redis runs the whole chunk
# on every EVALSHA, so each `local function` is a new closure per call: the hot path
# (arguments, reads and writes of numbers and records, checks) is emitted inline and
# only the log's loops live in functions. Messages start with "ratescript:" so clients
# can tell a script's own failure from any other error.
_HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "_rs_fmt": ("local _rs_fmt = string.format", ()),
    "_rs_match": ("local _rs_match = string.match", ()),
    "_rs_floor": ("local _rs_floor = math.floor", ()),
    "_rs_ceil": ("local _rs_ceil = math.ceil", ()),
    "_rs_min": ("local _rs_min = math.min", ()),
    "_rs_max": ("local _rs_max = math.max", ()),
    "_rs_abs": ("local _rs_abs = math.abs", ()),
    # Only for a divisor that is not a plain name or constant (those are checked inline).
    "_rs_div": (
        "local function _rs_div(a, b)\n"
        "  if b == 0 then error('ratescript: division by zero', 2) end\n"
        "  return a / b\n"
        "end",
        (),
    ),
    "_rs_window_index": (
        "local function _rs_window_index(t, p)\n"
        "  if p == 0 then error('ratescript: division by zero', 2) end\n"
        "  local k = _rs_floor(t / p)\n"
        "  if k * p > t then k = k - 1 elseif (k + 1) * p <= t then k = k + 1 end\n"
        "  return k\n"
        "end",
        ("_rs_floor",),
    ),
    "_rs_mod": (
        "local function _rs_mod(a, b)\n"
        "  if b == 0 then error('ratescript: division by zero', 2) end\n"
        "  return a - _rs_floor(a / b) * b\n"
        "end",
        ("_rs_floor",),
    ),
    # Records of more fields than one pattern can capture; nil when `raw` is not n numbers.
    "_rs_fields": (
        "local function _rs_fields(raw, n)\n"
        "  local fields, pos = {}, 1\n"
        "  for j = 1, n do\n"
        f"    local pattern = j < n and '^({_DIGITS}*):' or '^({_DIGITS}*)$'\n"
        "    local _, e, field = string.find(raw, pattern, pos)\n"
        "    fields[j] = tonumber(field)\n"
        "    if not fields[j] or fields[j] - fields[j] ~= 0 then return nil end\n"
        "    pos = e + 1\n"
        "  end\n"
        "  return fields\n"
        "end",
        (),
    ),
    # A log is a table read lazily from its stored bytes (see codec): a 20-byte header
    # (magic, total, dropped count), then entry j's two doubles at byte 16j+4. A log of
    # less than `_rs_whole_log` bytes (14 entries) comes whole in the first GETRANGE and
    # goes back whole, compact, in one SET. Not a longer one: a Lua string is garbage
    # Redis's Lua collects by walking its whole heap, so 16 kB read and written whole
    # cost ~120 µs of server time, seven small calls ~50 (`INFO commandstats`, 1,000
    # entries; a call is ~2.5 µs). Of a longer log a script reads only the entries it
    # needs (8 at a time, GETRANGE) and writes only what changed: SETRANGE of the header
    # and of a merged entry, APPEND of new ones, so a log of any length costs a handful
    # of small commands. Dropped entries stay in front, counted, until they outnumber
    # the live ones (and 32); then the log is written compact with SET and renumbered
    # (`shift`). Before any other write to a key, the logs read from it take their live
    # entries (`_rs_log_own`), and `_rs_dirty` keeps a second write from working in
    # place on moved bytes.
    # A failing `redis.call` or `error` aborts a script without undoing its writes, so
    # a script that writes runs as `_rs_hit` under pcall: before its first write to a
    # key, the key's bytes (as read, when it was) and TTL are saved in `_rs_undo`; if it
    # fails, they are put back (`_RESTORE`) and the error raised again. A failed
    # script writes nothing, as on every other target.
    "_rs_undo": ("local _rs_undo, _rs_seen = {}, {}", ()),
    "_rs_unpack": ("local _rs_unpack = struct.unpack", ()),
    "_rs_pack": ("local _rs_pack = struct.pack", ()),
    # -0.0 made at run time: Lua 5.1 files a literal `-0` under the chunk's constant 0
    # when it has one (a table key, and -0 == 0), so the sign would be lost.
    "_rs_negzero": ("local _rs_negzero = -tonumber('0')", ()),
    "_rs_dirty": ("local _rs_dirty = {}", ()),
    "_rs_whole_log": ("local _rs_whole_log = 256", ()),  # 14 entries
    "_rs_get_log": (
        "local function _rs_get_log(i)\n"
        "  local key = KEYS[i]\n"
        "  local first = redis.call('GETRANGE', key, 0, _rs_whole_log - 1)\n"
        "  local size, raw = #first, first\n"
        "  if size >= _rs_whole_log then size, raw = redis.call('STRLEN', key), nil end\n"
        "  local count, total, dropped = 0, 0, 0\n"
        "  if size > 0 or redis.call('EXISTS', key) == 1 then\n"
        "    count, total, dropped = (size - 20) / 16, nil, nil\n"
        "    if size >= 20 and count == _rs_floor(count)\n"
        f"        and string.sub(first, 1, 4) == '{_LOG_MAGIC}' then\n"
        "      total, dropped = _rs_unpack('<dd', first, 5)\n"
        "    end\n"
        "    if not (dropped and dropped >= 0 and dropped <= count\n"
        "            and dropped == _rs_floor(dropped)) then\n"
        f"      {_CORRUPT_LOG}\n"
        "    end\n"
        "  end\n"
        "  return {slot = i, shift = 0, stored = count, clean = count, h = dropped + 1,\n"
        "          n = count, s = total, t = {}, a = {}, raw = raw}\n"
        "end",
        ("_rs_unpack", "_rs_floor", "_rs_whole_log"),
    ),
    # Entries j..last (all stored, unchanged) into the log's tables: from the bytes in
    # hand, or in one GETRANGE.
    "_rs_log_fetch": (
        "local function _rs_log_fetch(log, j, last)\n"
        "  local at = 16 * (j - log.shift)\n"
        "  local raw, from = log.raw, at + 5\n"
        "  if not raw then\n"
        "    raw = redis.call('GETRANGE', KEYS[log.slot], at + 4, at + 16 * (last - j) + 19)\n"
        "    from = 1\n"
        "  end\n"
        "  local t, a = log.t, log.a\n"
        "  for k = j, last do t[k], a[k] = _rs_unpack('<dd', raw, from + 16 * (k - j)) end\n"
        "end",
        ("_rs_unpack",),
    ),
    "_rs_log_at": (
        "local function _rs_log_at(log, j)\n"
        "  if log.t[j] == nil then\n"
        "    _rs_log_fetch(log, j, j + 7 < log.clean and j + 7 or log.clean)\n"
        "  end\n"
        "  return log.t[j], log.a[j]\n"
        "end",
        ("_rs_log_fetch",),
    ),
    "_rs_log_amount": (
        "local function _rs_log_amount(log, j)\n  local _, a = _rs_log_at(log, j)\n  return a\nend",
        ("_rs_log_at",),
    ),
    # Before another write to the key a log was read from: its live entries, in hand.
    "_rs_log_own": (
        "local function _rs_log_own(log)\n"
        "  if log.h <= log.clean then _rs_log_fetch(log, log.h, log.clean) end\n"
        "  log.clean = log.h - 1\n"
        "end",
        ("_rs_log_fetch",),
    ),
    # `_rs_log_at` written out in the loop: a call per entry is a measurable share of a
    # decision in Redis's Lua.
    "_rs_log_trim": (
        "local function _rs_log_trim(log, cutoff)\n"
        "  local h, n, s, t, a = log.h, log.n, log.s, log.t, log.a\n"
        "  while h <= n do\n"
        "    local th = t[h]\n"
        "    if th == nil then\n"
        "      _rs_log_fetch(log, h, h + 7 < log.clean and h + 7 or log.clean)\n"
        "      th = t[h]\n"
        "    end\n"
        "    if not (th <= cutoff) then break end\n"
        "    s = s - a[h]\n"
        "    h = h + 1\n"
        "  end\n"
        "  if h > n then s = 0 end\n"
        "  log.h, log.s = h, s\n"
        "end",
        ("_rs_log_fetch",),
    ),
    "_rs_log_append": (
        "local function _rs_log_append(log, t, a, line)\n"
        "  if t - t ~= 0 or a - a ~= 0 then\n"
        f"    error('ratescript: line ' .. line .. ': {_NOT_FINITE}', 0)\n"
        "  end\n"
        "  local n = log.n\n"
        "  if n >= log.h then\n"
        "    local last_t, last_a = _rs_log_at(log, n)\n"
        "    if t <= last_t then\n"
        "      if n <= log.clean then log.clean = n - 1 end\n"
        "      log.a[n], log.s = last_a + a, log.s + a\n"
        "      return\n"
        "    end\n"
        "  end\n"
        "  n = n + 1\n"
        "  log.t[n], log.a[n] = t, a\n"
        "  log.n, log.s = n, log.s + a\n"
        "end",
        ("_rs_log_at",),
    ),
    "_rs_log_drop_oldest": (
        "local function _rs_log_drop_oldest(log)\n"
        "  if log.h > log.n then return end\n"
        "  local a = _rs_log_amount(log, log.h)\n"
        "  log.h = log.h + 1\n"
        "  log.s = log.h > log.n and 0 or log.s - a\n"
        "end",
        ("_rs_log_amount",),
    ),
    # In place when the key still holds what the log was read from: the changed entry,
    # the new ones, the header. Otherwise one SET of the compact log; written back to
    # its own key, the log's stored entries are then renumbered (`shift`).
    "_rs_set_log": (
        "local function _rs_set_log(log, i, ttl)\n"
        "  local key = KEYS[i]\n"
        "  local dropped, live = log.h - 1, log.n - log.h + 1\n"
        "  if log.slot == i and log.stored > 0 and log.shift == 0 and not _rs_dirty[i]\n"
        "      and not log.raw and (dropped <= 32 or dropped <= live) then\n"
        "    local n, stored = log.n, log.stored\n"
        "    if log.clean == stored and n == stored + 1 then  -- one entry appended\n"
        "      redis.call('APPEND', key, _rs_pack('<dd', log.t[n], log.a[n]))\n"
        "    else\n"
        "      local parts, k = {}, 0\n"
        "      for j = log.clean + 1, n do\n"
        "        local entry = _rs_pack('<dd', log.t[j], log.a[j])\n"
        "        if j <= stored then\n"
        "          redis.call('SETRANGE', key, 16 * j + 4, entry)\n"
        "        else\n"
        "          k = k + 1\n"
        "          parts[k] = entry\n"
        "        end\n"
        "      end\n"
        "      if k > 0 then redis.call('APPEND', key, table.concat(parts)) end\n"
        "    end\n"
        "    redis.call('SETRANGE', key, 4, _rs_pack('<dd', log.s, dropped))\n"
        "    if ttl then redis.call('PEXPIRE', key, ttl) else redis.call('PERSIST', key) end\n"
        "  else\n"
        "    local kept, added, first = '', {}, log.h\n"
        "    if log.h <= log.clean then\n"
        "      local at = 16 * (log.h - log.shift)\n"
        "      local last = at + 16 * (log.clean - log.h) + 19\n"
        "      kept = log.raw and string.sub(log.raw, at + 5, last + 1)\n"
        "        or redis.call('GETRANGE', KEYS[log.slot], at + 4, last)\n"
        "      first = log.clean + 1\n"
        "    end\n"
        "    for j = first, log.n do added[#added + 1] = _rs_pack('<dd', log.t[j], log.a[j]) end\n"
        "    -- One `..` of three copies the kept entries once; table.concat, twice.\n"
        f"    local value = '{_LOG_MAGIC}' .. _rs_pack('<dd', log.s, 0) .. kept\n"
        "      .. table.concat(added)\n"
        "    if ttl then\n"
        "      redis.call('SET', key, value, 'PX', ttl)\n"
        "    else\n"
        "      redis.call('SET', key, value)\n"
        "    end\n"
        "    if log.slot == i then log.shift, log.raw = log.shift + log.h - 1, nil end\n"
        "  end\n"
        "  _rs_dirty[i] = true\n"
        "end",
        ("_rs_pack", "_rs_dirty"),
    ),
}


def _plain(node: n.Expr) -> bool:
    """Whether ``node`` is a name or a constant: cheap, and safe to evaluate twice."""
    return isinstance(node, n.Var | n.Now | n.Const)


# Lua 5.1 refuses, when Redis loads the script, a function of more than 200 active
# locals (LUAI_MAXVARS), a chunk nesting more than 200 parser calls ("too many syntax
# levels", LUAI_MAXCCALLS: each block, each parenthesis and right operand; also the
# names of one assignment) and an expression needing more than 250 registers
# (MAXSTACK, "function or expression too complex"). The generator counts the locals it
# declares and bounds the rest per statement (`_levels`, `_registers`, `_cost`), as the
# code it writes needs them at most, so that a script over a limit fails when it is
# compiled; a test loads scripts near each limit in Lua 5.1. The parser levels keep a
# margin for what the loader's own calls hold (lupa's `loadstring` two, Redis's one).
_MAX_LOCALS = 200
_MAX_LEVELS = 195
_MAX_REGISTERS = 245


def _levels(node: n.Expr) -> int:
    """Parser levels ``node`` opens at most, as written here, within the level it is in."""
    if isinstance(node, n.Binary):
        left, right = _levels(node.left), _levels(node.right)
        if node.op in ("/", "//") and not nonzero(node.right):
            # "(b ~= 0 and a / b or error(...))" or "_rs_div(a, b)"; "//" inside "_rs_floor(".
            quotient = 1 + max(1 + left, 2 + right, 2)
        elif node.op == "%" and _plain(node.left) and _plain(node.right):
            quotient = 9  # "(b ~= 0 and (a - _rs_floor(a / b) * b) or error(...))"
        elif node.op == "%":
            quotient = 1 + max(left, right)  # "_rs_mod(a, b)"
        else:
            quotient = 1 + max(left, 1 + right)  # "(a op b)"
        return quotient + 1 if node.op == "//" else quotient
    if isinstance(node, n.Unary):
        return (3 if node.op == "-" else 2) + _levels(node.operand)  # "(-(x))", "(not x)"
    if isinstance(node, n.LogEdge):
        return 1 + max(3, 1 + _levels(node.default))
    inside = children(node)
    if not inside:
        return 2  # a name, or a negative constant: "(-5)"
    # "(a and b)", "(a < b)", "(t and a or b)", "_rs_min(a, b, ...)"
    return 2 + max(map(_levels, inside))


def _registers(node: n.Expr) -> int:
    """Registers evaluating ``node`` takes at most, as written here, its result's included."""
    if isinstance(node, n.Binary):
        left, right = _registers(node.left), _registers(node.right)
        if node.op == "%":
            both_plain = _plain(node.left) and _plain(node.right)
            return 4 if both_plain else max(1 + left, 2 + right)
        if node.op in ("/", "//") and not nonzero(node.right):
            quotient = 1 + max(left, 2) if _plain(node.right) else max(1 + left, 2 + right)
        else:
            quotient = max(left, 1 + right)
        return quotient + 1 if node.op == "//" else quotient
    if isinstance(node, n.LogEdge):  # "(log.n >= log.h and _rs_log_at(log, j) or default)"
        return 1 + max(3, _registers(node.default))
    if isinstance(node, n.LogCount):  # "(log.n - log.h + 1)"
        return 2
    if isinstance(node, n.Compare):  # the left operand held while the right is evaluated
        return max(_registers(node.left), 1 + _registers(node.right))
    if isinstance(node, n.Unary | n.Logical | n.Cond):  # each operand in one register
        return max(map(_registers, children(node)))
    # A function and its arguments, each held while the next is evaluated; a leaf: one.
    return _in_turn(children(node), 1)


def _in_turn(values: Sequence[n.Expr], first: int = 0) -> int:
    """Registers of values evaluated into consecutive registers, after ``first`` held
    (at least one: a leaf's)."""
    return max((first + i + _registers(v) for i, v in enumerate(values)), default=first or 1)


def _cost(node: n.Stmt) -> tuple[int, int]:
    """Parser levels (within the statement's block) and registers (beyond the locals)
    ``node`` takes at most, as ``LuaBody`` writes it."""
    ttl = node.ttl_ms if isinstance(node, n.StoreKey) else None
    ttl_levels, ttl_registers = (0, 0) if ttl is None else (_levels(ttl), _registers(ttl))
    if isinstance(node, n.Assign):  # an assignment's names are parser levels too
        levels = max(len(node.names), 1 + max(map(_levels, node.values)))
        return levels, max(len(node.names), _in_turn(node.values))
    if isinstance(node, n.If):  # with its `elseif`s, on the same level
        tests = [node.test]
        while len(node.orelse) == 1 and isinstance(node.orelse[0], n.If):
            node = node.orelse[0]
            tests.append(node.test)
        return 1 + max(map(_levels, tests)), max(map(_registers, tests))
    if isinstance(node, n.Return):  # "return _rs_pack(layout, allowed, wait_ms, ...)"
        values = [node.wait_ms, node.remaining, node.reset_ms, *node.metadata]
        return 2 + max(map(_levels, values)), _in_turn(values, 3)
    if isinstance(node, n.LoadKey):  # the targets' names in "if _r then", defaults in "else"
        count = len(node.targets)
        defaults = max(map(_levels, node.defaults), default=0)
        return max(6, 2 + defaults, count + 1), max(count + 2, 6, _in_turn(node.defaults))
    if isinstance(node, n.StoreKey) and node.values:
        # "do local _v0, ... = values", then "redis.call('SET', KEYS[i], _rs_fmt(pattern,
        # _v0, ...), 'PX', _rs_fmt('%d', _rs_max(1, _rs_min(C, _rs_ceil(ttl_ms)))))"
        count = len(node.values)  # the `_v` locals, then the call on them
        levels = max(6, 2 + max(map(_levels, node.values)), 6 + ttl_levels)
        registers = count + max(5 + count, 12 + ttl_registers if ttl else 0)
        return levels, max(_in_turn(node.values), registers)
    if isinstance(node, n.StoreKey):  # a log: "_rs_set_log(log, i, _rs_fmt('%d', ...))"
        return max(6, 6 + ttl_levels), max(6, 10 + ttl_registers)
    if isinstance(node, n.LogTrim):
        return 1 + _levels(node.cutoff), max(3, 2 + _registers(node.cutoff))
    if isinstance(node, n.LogAppend):
        levels = 1 + max(_levels(node.time), _levels(node.amount))
        return levels, max(5, 2 + _registers(node.time), 3 + _registers(node.amount))
    if isinstance(node, n.ForLog):  # its four locals, and "t, a = _rs_log_at(log, i)"
        return 6, 8
    return 6, 6  # a deletion, a break, a dropped entry


def _checked(divisor: str, value: str) -> str:
    return f"({divisor} ~= 0 and {value} or error('ratescript: division by zero'))"


def _failing_after(ir: n.ScriptIR) -> set[int]:
    """``id``s of the writes after which the script may still fail (see ``_rs_undo``).

    Walked backwards: what may fail after a statement is what follows it up to a
    return. Reads may find a corrupt value, stores and appends a number that is not
    finite; a loop counts as failing if anything in it may.
    """
    found: set[int] = set()
    safe = checked_on_entry(ir)

    def walk(body: Sequence[n.Stmt], after: bool) -> bool:
        for stmt in reversed(body):
            if id(stmt) not in safe:
                continue  # not reached
            if isinstance(stmt, n.StoreKey | n.DeleteKey) and after:
                found.add(id(stmt))
            if isinstance(stmt, n.If):
                branches = walk(stmt.body, after) | walk(stmt.orelse, after)
                after = branches or may_fail(stmt.test, safe[id(stmt)])
            elif isinstance(stmt, n.ForLog):
                after = walk(stmt.body, True) or after
            elif isinstance(stmt, n.Return):
                after = may_fail(stmt, safe[id(stmt)])
            elif isinstance(stmt, n.LoadKey | n.LogAppend):
                after = True
            elif isinstance(stmt, n.StoreKey) and ir.keys[stmt.key].kind is not n.KeyKind.LOG:
                after = True  # its own check that the numbers are finite
            else:
                after = after or may_fail(stmt, safe[id(stmt)])
        return after

    walk(ir.body, False)
    return found


class LuaGenerator(Generator):
    indent_unit = "  "

    def __init__(self, ir: n.ScriptIR) -> None:
        super().__init__(ir)
        self.helpers: dict[str, None] = {}
        self.body_start = 0
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

    def log(self, log: str) -> str:
        """The local holding a log: a table (see ``_rs_get_log``)."""
        return self.name(log)

    def generate(self) -> str:
        ir = self.ir
        body = LuaBody(self)
        body.block(ir.body)
        out = self.out
        out.origin = ir.first_line
        # The module, not the file path: the source (and its SHA) must not depend on the checkout.
        out.line(f"-- ratescript script `{ir.name}` from {ir.module}, line {ir.first_line}")
        out.line("-- generated code: do not edit")
        for helper in _HELPERS:  # a fixed order keeps the source (and its SHA) stable
            if helper in self.helpers:
                for text in _HELPERS[helper][0].split("\n"):
                    out.line(text)
        self.body_start = len(out.line_map)  # the first line run per hit (see batched)
        if ir.uses_now:
            out.line("local _now = tonumber(ARGV[1])")
            out.line("if not _now then")
            out.line("  local t = redis.call('TIME')")
            out.line("  _now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000")
            out.line("end")
        for position, param in enumerate(ir.params):
            # error() at level 1 names this line, as any inline check names its own.
            out.line(
                f"local {self.name(param)} = tonumber(ARGV[{position + 2}])"
                f" or error('ratescript: argument {param} is not a number')"
            )
        declared = [self.name(v) for v in ir.variables]
        declared.extend(self.log(log) for log in ir.logs)
        for start in range(0, len(declared), 8):
            out.line(f"local {', '.join(declared[start : start + 8])}")
        if body.needs_read_slot:
            out.line("local _r")
        for text, origin in body.lines:
            out.origin = origin
            out.line(text)
        self.check_limits(body, len(ir.params) + len(declared))
        return out.source

    def check_limits(self, body: LuaBody, names: int) -> None:
        """Refuse a script Lua 5.1 would not load (see ``_MAX_LOCALS``)."""
        helpers = sum(
            1 if line.startswith("local function") else line.split("=")[0].count(",") + 1
            for helper in self.helpers
            for line in _HELPERS[helper][0].split("\n")
            if line.startswith("local ")
        )
        # The function running the body holds the helpers, or `_rs_hit`'s KEYS and ARGV
        # when wrapped (`batched`, and `single` where it saves keys: not in the read-only
        # twin, which has no more helpers); then `_now`, parameters and variables, `_r`.
        held = max(helpers, 2) + self.ir.uses_now + names + body.needs_read_slot
        count = held + body.temporaries
        if count > _MAX_LOCALS:
            reason = (
                f"Lua 5.1's {_MAX_LOCALS} locals (it needs about {count}: one per "
                "parameter, variable and record field)"
            )
            raise too_complex(self.ir, 0, reason)
        levels, line = body.deepest
        if levels > _MAX_LEVELS:
            reason = (
                f"Lua 5.1's parser (it nests about {levels} levels deep, at most {_MAX_LEVELS})"
            )
            raise too_complex(self.ir, line, reason)
        registers, line = body.widest
        if held + registers > _MAX_REGISTERS:
            reason = f"Lua 5.1's registers (it needs about {held + registers} of {_MAX_REGISTERS})"
            raise too_complex(self.ir, line, reason)

    def wrapped(self, source: str, trailer: list[str]) -> str:
        """``source`` with its body run as ``_rs_hit(KEYS, ARGV)``, then ``trailer``."""
        lines = source.split("\n")
        # On the first line of the body, so every line keeps its number (and line map).
        lines[self.body_start] = "local function _rs_hit(KEYS, ARGV) " + lines[self.body_start]
        lines[-1:] = ["end", *trailer, ""]
        return "\n".join(lines)

    def single(self, source: str) -> str:
        """The script for one hit: as generated, or under pcall if it writes (``_rs_undo``)."""
        if "_rs_undo" not in self.helpers:
            return source
        return self.wrapped(
            source,
            [
                "local _rs_ok, _rs_reply = pcall(_rs_hit, KEYS, ARGV)",
                "if not _rs_ok then",
                *[f"  {line}" for line in _RESTORE],
                "  error(_rs_reply, 0)",
                "end",
                "return _rs_reply",
            ],
        )

    def batched(self, source: str) -> str:
        """The script as a group of hits (see ``generate_lua_batch``), from its source."""
        width = 1 + len(self.ir.params)
        # The per-run tables (keys written, keys saved): each hit is a run of its own.
        undo = "_rs_undo" in self.helpers
        tables = ["_rs_dirty"] if "_rs_dirty" in self.helpers else []
        if undo:
            tables += ["_rs_undo", "_rs_seen"]
        forget = " ".join(f"{t}[_rs_k] = nil" for t in tables)
        return self.wrapped(
            source,
            [
                "local _rs_out = {}",
                f"for _rs_i = 1, #ARGV, {width} do",
                *([f"  for _rs_k = 1, #KEYS do {forget} end"] if tables else []),
                "  local _rs_ok, _rs_reply =",
                f"    pcall(_rs_hit, KEYS, {{unpack(ARGV, _rs_i, _rs_i + {width - 1})}})",
                "  if not _rs_ok then",
                *([f"    {line}" for line in _RESTORE] if undo else []),
                "    if type(_rs_reply) == 'table' then _rs_reply = _rs_reply.err end",
                "    _rs_reply = 'E' .. tostring(_rs_reply)",
                "  end",
                "  _rs_out[#_rs_out + 1] = _rs_reply",
                "end",
                "return _rs_out",
            ],
        )


class LuaBody(Generator):
    """Generates the statements; the prologue is written after, once helpers are known."""

    indent_unit = "  "

    def __init__(self, parent: LuaGenerator) -> None:
        super().__init__(parent.ir)
        self.parent = parent
        self.loops = 0
        self.needs_read_slot = False
        # The writes a failure may follow, and their keys: saved before being written.
        self.undone = _failing_after(parent.ir)
        self.saved = {
            stmt.key
            for stmt in statements(parent.ir.body)
            if isinstance(stmt, n.StoreKey | n.DeleteKey) and id(stmt) in self.undone
        }
        # slot -> the logs read from it: they take their entries before it is written
        self.logs_of: dict[int, list[str]] = {}
        for stmt in statements(parent.ir.body):
            if isinstance(stmt, n.LoadKey) and parent.ir.keys[stmt.key].kind is n.KeyKind.LOG:
                self.logs_of.setdefault(stmt.key, []).append(stmt.targets[0])
        # The logs whose read is generated so far, and per open block those read in it:
        # a write takes the entries of a log read on every path to it; of one read on
        # some paths only (in a branch or a loop before it) if it is not nil; and leaves
        # a log read after it alone (writes are never in loops: "after" is in the text).
        self.read_logs: set[str] = set()
        self.read_in_block: list[set[str]] = []
        # What Lua 5.1's limits need (see `_MAX_LOCALS`): the most locals of nested blocks
        # open at once (a loop's four, a stored record's values), and the statement
        # nesting deepest in the parser and needing most registers (its loops' locals
        # included), with its DSL line.
        self.temporaries = 1
        self.loop_depth = 0
        self.deepest = (0, 0)
        self.widest = (0, 0)

    @property
    def lines(self) -> list[tuple[str, int]]:
        source = self.out.source.split("\n")[:-1]
        return list(zip(source, self.out.line_map, strict=True))

    def use(self, helper: str) -> str:
        return self.parent.use(helper)

    # --- expressions -----------------------------------------------------------------

    def expr_Const(self, node: n.Const) -> str:
        if node.value == 0 and math.copysign(1.0, node.value) < 0:
            return self.use("_rs_negzero")
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
            return self.quotient(node.right, left, right)
        if node.op == "//":
            return f"{self.use('_rs_floor')}({self.quotient(node.right, left, right)})"
        if node.op == "%":
            return self.remainder(node, left, right)
        return f"({left} {node.op} {right})"

    # A plain divisor is checked inline, with no call: "b ~= 0 and q or error(...)" is
    # safe because a number is never false in Lua, and error() at level 1 names the
    # generated line, as the helpers' level 2 does. Other divisors go through a helper,
    # so that they are evaluated once.

    def quotient(self, divisor: n.Expr, left: str, right: str) -> str:
        if nonzero(divisor):
            return f"({left} / {right})"
        if _plain(divisor):
            return _checked(right, f"{left} / {right}")
        return f"{self.use('_rs_div')}({left}, {right})"

    def remainder(self, node: n.Binary, left: str, right: str) -> str:
        # Lua 5.1's a % b (FACTS: it differs from Python's %), with a and b used twice.
        if not (_plain(node.left) and _plain(node.right)):
            return f"{self.use('_rs_mod')}({left}, {right})"
        value = f"{left} - {self.use('_rs_floor')}({left} / {right}) * {right}"
        return f"({value})" if nonzero(node.right) else _checked(right, value)

    def expr_Unary(self, node: n.Unary) -> str:
        if node.op == "-" and isinstance(node.operand, n.Const):  # folded here, not by Lua
            return self.expr_Const(n.Const(-node.operand.value, line=node.line))
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
        return f"{self.parent.log(node.log)}.s"

    def expr_LogCount(self, node: n.LogCount) -> str:
        log = self.parent.log(node.log)
        return f"({log}.n - {log}.h + 1)"

    def expr_LogEdge(self, node: n.LogEdge) -> str:
        log = self.parent.log(node.log)
        index = f"{log}.n" if node.newest else f"{log}.h"
        if node.part == "amount":
            value = f"{self.use('_rs_log_amount')}({log}, {index})"
        else:
            value = f"({self.use('_rs_log_at')}({log}, {index}))"
        # Safe as "and/or": an entry is a number, never false.
        return f"({log}.n >= {log}.h and {value} or {self.expr(node.default)})"

    # --- statements ------------------------------------------------------------------

    def stmt_Assign(self, node: n.Assign) -> None:
        names = ", ".join(self.parent.name(x) for x in node.names)
        self.out.line(f"{names} = {', '.join(self.expr(v) for v in node.values)}")

    def block(self, body: Sequence[n.Stmt]) -> None:
        self.read_in_block.append(set())
        super().block(body)
        self.read_in_block.pop()

    def stmt(self, node: n.Stmt) -> None:
        levels, registers = _cost(node)
        # A block per one open, the body's own included (in `_rs_hit`, under the chunk's).
        self.deepest = max(self.deepest, (1 + len(self.read_in_block) + levels, node.line))
        self.widest = max(self.widest, (4 * self.loop_depth + registers, node.line))
        if isinstance(node, n.StoreKey):
            self.temporaries = max(self.temporaries, len(node.values))
        super().stmt(node)

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
        log = self.parent.log(node.log)
        self.loops += 1
        index = f"_i{self.loops}"
        self.out.line(f"for {index} = {log}.h, {log}.n do")
        self.out.indent()
        time_var, amount_var = self.parent.name(node.time_var), self.parent.name(node.amount_var)
        self.out.line(f"{time_var}, {amount_var} = {self.use('_rs_log_at')}({log}, {index})")
        self.loop_depth += 1  # a numeric `for` holds four locals: three hidden, and `index`
        self.temporaries = max(self.temporaries, 4 * self.loop_depth)
        self.block(node.body)
        self.loop_depth -= 1
        self.out.dedent()
        self.out.line("end")

    def stmt_Break(self, node: n.Break) -> None:
        self.out.line("break")

    def stmt_Return(self, node: n.Return) -> None:
        # One string, not an array: redis-py's parser reads an array element by element,
        # which costs more than all the rest of a decision on the client. Packed
        # doubles, not printed ones: exact by construction, and a `%.17g` costs Redis
        # ~1.7 µs, a quarter of a token bucket's time on the server.
        values = [node.wait_ms, node.remaining, node.reset_ms, *node.metadata]
        packed = ["1" if node.allowed else "0", *map(self.expr, values)]
        layout = "<" + "d" * len(packed)
        self.out.line(f"return {self.use('_rs_pack')}('{layout}', {', '.join(packed)})")

    def corrupt(self, slot: int, expected: str) -> str:
        """The error of a value that is not what the key holds (parsed by ``lua_error``)."""
        message = f"'ratescript: corrupt value at key ' .. KEYS[{slot}] .. ': expected {expected}'"
        return f"error({message}, 0)"

    def stmt_LoadKey(self, node: n.LoadKey) -> None:
        spec = self.ir.keys[node.key]
        slot = node.key + 1
        if spec.kind is n.KeyKind.LOG:
            log = self.parent.log(node.targets[0])
            self.out.line(f"{log} = {self.use('_rs_get_log')}({slot})")
            self.read_logs.add(node.targets[0])
            self.read_in_block[-1].add(node.targets[0])
            return
        # The defaults are evaluated only in the "else" branch, before any target is set,
        # so a default may refer to the old value of its own target.
        self.needs_read_slot = True
        names = [self.parent.name(t) for t in node.targets]
        targets = ", ".join(names)
        self.out.line(f"_r = redis.call('GET', KEYS[{slot}])")
        if node.key in self.saved:  # what a failed run puts back (see `_rs_undo`)
            self.use("_rs_undo")
            self.out.line(f"_rs_seen[{slot}] = _r or false")
        self.out.line("if _r then")
        self.out.indent()
        count = len(names)
        if spec.kind is n.KeyKind.NUMBER:
            expected = "a number"
            self.out.line(f"{targets} = tonumber({self.use('_rs_match')}(_r, '^{_DIGITS}*$'))")
        elif count <= _MAX_CAPTURES:
            # One match splits and checks the bytes at once; tonumber(nil) is nil.
            expected = f"{count} numbers"
            pattern = ":".join([f"({_DIGITS}*)"] * count)
            self.out.line(f"{targets} = {self.use('_rs_match')}(_r, '^{pattern}$')")
            self.out.line(f"{targets} = {', '.join(f'tonumber({t})' for t in names)}")
        else:
            expected = f"{count} numbers"
            self.out.line(f"_r = {self.use('_rs_fields')}(_r, {count}) or {{}}")
            self.out.line(f"{targets} = {', '.join(f'_r[{i + 1}]' for i in range(count))}")
        # x - x ~= 0: digits past a double's range read as infinity (see codec._finite).
        finite = "".join(f" or {name} - {name} ~= 0" for name in names)
        self.out.line(f"if not ({' and '.join(names)}){finite} then")
        self.out.line(f"  {self.corrupt(slot, expected)}")
        self.out.line("end")
        self.out.dedent()
        self.out.line("else")
        self.out.line(f"  {targets} = {', '.join(self.expr(d) for d in node.defaults)}")
        self.out.line("end")

    def before_write(self, node: n.StoreKey | n.DeleteKey, keep: str | None = None) -> None:
        """Key ``node.key`` is about to change: its bytes are saved if the script may fail
        after (see ``_rs_undo``), and logs read from it (but ``keep``) take their entries."""
        slot = node.key
        if id(node) in self.undone:
            undo, index = self.use("_rs_undo"), slot + 1
            self.out.line(f"if {undo}[{index}] == nil then")
            self.out.line(f"  local v = _rs_seen[{index}]")
            self.out.line(f"  if v == nil then v = redis.call('GET', KEYS[{index}]) or false end")
            self.out.line(f"  {undo}[{index}] = {{v, redis.call('PTTL', KEYS[{index}])}}")
            self.out.line("end")
        for log in self.logs_of.get(slot, ()):
            if log == keep or log not in self.read_logs:
                continue  # read after this write, if at all: it will read what is written
            own = f"{self.use('_rs_log_own')}({self.parent.log(log)})"
            if any(log in read for read in self.read_in_block):
                self.out.line(own)
            else:
                self.out.line(f"if {self.parent.log(log)} then {own} end")
        if self.logs_of and keep is None:
            self.out.line(f"{self.use('_rs_dirty')}[{slot + 1}] = true")

    def stmt_StoreKey(self, node: n.StoreKey) -> None:
        spec = self.ir.keys[node.key]
        key = f"KEYS[{node.key + 1}]"
        self.before_write(node, node.log if spec.kind is n.KeyKind.LOG else None)
        if node.ttl_ms is None:
            ttl = ""
        else:
            # Clamped like every store's TTL, and printed as an integer: Redis would print
            # a number argument with %.17g, and PX takes only integers.
            floor, ceiling = self.use("_rs_max"), self.use("_rs_min")
            ceil = self.use("_rs_ceil")
            clamped = f"{floor}(1, {ceiling}(315360000000, {ceil}({self.expr(node.ttl_ms)})))"
            ttl = f", 'PX', {self.use('_rs_fmt')}('%d', {clamped})"
        if spec.kind is n.KeyKind.LOG:
            log = self.parent.log(node.log)
            expiry = ttl.removeprefix(", 'PX', ") or "nil"
            self.out.line(f"{self.use('_rs_set_log')}({log}, {node.key + 1}, {expiry})")
            return
        # A block of its own, so the temporaries never pile up as top-level locals.
        values = [self.expr(v) for v in node.values]
        names = [f"_v{i}" for i in range(len(values))]
        self.out.line("do")
        self.out.indent()
        self.out.line(f"local {', '.join(names)} = {', '.join(values)}")
        # v - v is 0 for every finite v, and NaN for NaN and the infinities.
        infinite = " or ".join(f"{name} - {name} ~= 0" for name in names)
        self.out.line(f"if {infinite} then")
        self.out.line(f"  error('ratescript: line {node.line}: {_NOT_FINITE}', 0)")
        self.out.line("end")
        pattern = ":".join(["%.17g"] * len(values))
        value = f"{self.use('_rs_fmt')}('{pattern}', {', '.join(names)})"
        self.out.line(f"redis.call('SET', {key}, {value}{ttl})")
        self.out.dedent()
        self.out.line("end")

    def stmt_DeleteKey(self, node: n.DeleteKey) -> None:
        self.before_write(node)
        self.out.line(f"redis.call('DEL', KEYS[{node.key + 1}])")

    def stmt_LogTrim(self, node: n.LogTrim) -> None:
        log = self.parent.log(node.log)
        self.out.line(f"{self.use('_rs_log_trim')}({log}, {self.expr(node.cutoff)})")

    def stmt_LogAppend(self, node: n.LogAppend) -> None:
        log = self.parent.log(node.log)
        self.out.line(
            f"{self.use('_rs_log_append')}({log}, {self.expr(node.time)}, "
            f"{self.expr(node.amount)}, {node.line})"
        )

    def stmt_LogDropOldest(self, node: n.LogDropOldest) -> None:
        self.out.line(f"{self.use('_rs_log_drop_oldest')}({self.parent.log(node.log)})")


def generate_lua(ir: n.ScriptIR) -> tuple[str, tuple[int, ...]]:
    """Lua source of the script and its line map (generated line → DSL line)."""
    generator = LuaGenerator(ir)
    source = generator.single(generator.generate())
    return source, generator.out.line_map


def generate_lua_batch(ir: n.ScriptIR) -> str:
    """The script run for a group of hits on the same keys, in one ``EVALSHA``.

    ``ARGV`` holds each hit's clock and parameters in turn; the reply is an array of
    each hit's reply, or of ``"E"`` and the error of a hit that failed (``pcall``:
    the hits after it still run, as they would have one call each). The body is the
    script's own, on the same lines (its line map holds), inside ``_rs_hit``.
    """
    generator = LuaGenerator(ir)
    return generator.batched(generator.generate())
