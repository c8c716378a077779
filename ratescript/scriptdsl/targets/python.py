"""The Python target: one plain function per script, ``compile()``d once.

The function is pure: it takes the clock, the current value of each declared key
(decoded: a float, a tuple of record fields, a log's ``(entries, total)``, or ``None``
when missing) and the numeric parameters, and returns
``(allowed, wait_ms, remaining, reset_ms, metadata, writes)`` where ``writes``
holds, per key, the value to store (or ``KEEP`` / ``DELETE``) and its TTL in ms,
and ``metadata`` is a dict (a shared empty mapping for scripts without metadata).
Being pure is what lets the same code serve the in-process store (values in a
dict) and the Memcached plan (values decoded from ``gets``, written with ``cas``).
"""

from __future__ import annotations

from ratescript.scriptdsl import nodes as n
from ratescript.scriptdsl.targets.base import Generator

__all__ = ["PythonGenerator", "generate_python"]


def _key(index: int) -> str:
    return f"_k{index}"


def _total(log: str) -> str:
    """The local holding a log's running total (``__`` names are the compiler's own)."""
    return f"{log}__total"


def _plain(node: n.Expr) -> bool:
    """Whether ``node`` may be evaluated twice at no cost: a name or a constant."""
    return isinstance(node, n.Var | n.Const | n.Now)


class PythonGenerator(Generator):
    indent_unit = "    "

    def generate(self) -> str:
        ir = self.ir
        out = self.out
        out.origin = ir.first_line
        # The module, not the file path: the source (and its SHA) must not depend on the checkout.
        out.line(f"# ratescript script `{ir.name}` from {ir.module}, line {ir.first_line}")
        out.line("# generated code: do not edit")
        arguments = ["_now", *(_key(i) for i in range(len(ir.keys))), *ir.params]
        out.line(f"def {ir.name}({', '.join(arguments)}):")
        out.indent()
        for index in range(len(ir.keys)):
            out.line(f"_w{index} = _KEEP")
            out.line(f"_t{index} = None")
        self.block(ir.body)
        out.dedent()
        return out.source

    # --- expressions -----------------------------------------------------------------

    def expr_Const(self, node: n.Const) -> str:
        text = repr(node.value)  # -0.0 too: the sign, not the value, says "negative"
        return f"({text})" if text[0] == "-" else text

    def expr_BoolConst(self, node: n.BoolConst) -> str:
        return "True" if node.value else "False"

    def expr_Var(self, node: n.Var) -> str:
        return node.name

    def expr_Now(self, node: n.Now) -> str:
        return "_now"

    def expr_Binary(self, node: n.Binary) -> str:
        left, right = self.expr(node.left), self.expr(node.right)
        if node.op == "//":
            return self.floor(f"({left} / {right})", plain=False)
        if node.op == "%":
            return f"_rs_mod({left}, {right})"
        return f"({left} {node.op} {right})"

    def expr_Unary(self, node: n.Unary) -> str:
        operand = self.expr(node.operand)
        return f"(-{operand})" if node.op == "-" else f"(not {operand})"

    def expr_Logical(self, node: n.Logical) -> str:
        return f"({self.expr(node.left)} {node.op} {self.expr(node.right)})"

    def expr_Compare(self, node: n.Compare) -> str:
        return f"({self.expr(node.left)} {node.op} {self.expr(node.right)})"

    def expr_Cond(self, node: n.Cond) -> str:
        return f"({self.expr(node.then)} if {self.expr(node.test)} else {self.expr(node.orelse)})"

    def expr_Builtin(self, node: n.Builtin) -> str:
        if node.func in ("min", "max"):
            return self.min_max(node)
        if node.func == "floor":
            return self.floor(self.expr(node.args[0]), plain=_plain(node.args[0]))
        if node.func == "window_index":
            time, period = node.args
            return self.window_index(
                (self.expr(time), _plain(time)), (self.expr(period), _plain(period))
            )
        args = ", ".join(self.expr(a) for a in node.args)
        if node.func == "ceil":
            return f"_rs_{node.func}({args})"
        return f"{node.func}({args})"

    def min_max(self, node: n.Builtin) -> str:
        """``min``/``max`` as conditional expressions, folded left like Lua's.

        Lua's ``math.min`` keeps its running value unless an argument is strictly
        smaller (``max``: larger), exactly what ``(b if a > b else a)`` does, NaN and
        ``-0.0`` included. Inline, that is a comparison where the builtin is a generic
        call, the dearest part of a decision's arithmetic. An operand that is not a
        name or a constant is evaluated once, in argument order, into a temporary.
        """
        replaced = ">" if node.func == "min" else "<"
        best, plain = self.expr(node.args[0]), _plain(node.args[0])
        for arg in node.args[1:]:
            best_first, best_again = self.once(best, plain)
            arg_first, arg_again = self.once(self.expr(arg), _plain(arg))
            best = f"({arg_again} if {best_first} {replaced} {arg_first} else {best_again})"
            plain = False
        return best

    def floor(self, value: str, *, plain: bool) -> str:
        """Lua 5.1's ``math.floor`` inline: ``runtime.lua_floor`` without its call.

        A rate limiter floors on most decisions (window starts, whole tokens), and the
        call cost more than the test. See ``lua_floor`` for why ``x // 1.0``.
        """
        first, again = self.once(value, plain)
        return f"({again} // 1.0 if {first} - {again} == 0.0 else {again})"

    def window_index(self, time: tuple[str, bool], period: tuple[str, bool]) -> str:
        """``runtime.lua_window_index`` inline: two calls fewer on every windowed decision.

        The same doubles in the same order: the quotient's floor, corrected by one
        either way. ``time`` and ``period`` are evaluated once, in that order.
        """
        time_first, time_again = self.once(*time)
        period_first, period_again = self.once(*period)
        index = self.out.temporary("m")
        floored = self.floor(f"{time_first} / {period_first}", plain=False)
        return (
            f"({index} - 1.0 if ({index} := {floored}) * {period_again} > {time_again} "
            f"else ({index} + 1.0 if ({index} + 1.0) * {period_again} <= {time_again} "
            f"else {index}))"
        )

    def once(self, value: str, plain: bool) -> tuple[str, str]:
        """``value`` where it is first evaluated, and where it is used again."""
        if plain:
            return value, value
        name = self.out.temporary("m")
        return f"({name} := {value})", name

    def expr_LogSum(self, node: n.LogSum) -> str:
        return _total(node.log)

    def expr_LogCount(self, node: n.LogCount) -> str:
        return f"float(len({node.log}))"

    def expr_LogEdge(self, node: n.LogEdge) -> str:
        position = -1 if node.newest else 0
        part = 1 if node.part == "amount" else 0
        default = self.expr(node.default)
        return f"({node.log}[{position}][{part}] if {node.log} else {default})"

    # --- statements ------------------------------------------------------------------

    def stmt_Assign(self, node: n.Assign) -> None:
        values = ", ".join(self.expr(v) for v in node.values)
        self.out.line(f"{', '.join(node.names)} = {values}")

    def body(self, stmts: tuple[n.Stmt, ...]) -> None:
        self.out.indent()
        if stmts:
            self.block(stmts)
        else:
            self.out.line("pass")
        self.out.dedent()

    def stmt_If(self, node: n.If) -> None:
        self.out.line(f"if {self.expr(node.test)}:")
        self.body(node.body)
        orelse = node.orelse
        while len(orelse) == 1 and isinstance(orelse[0], n.If):
            inner = orelse[0]
            self.out.origin = inner.line
            self.out.line(f"elif {self.expr(inner.test)}:")
            self.body(inner.body)
            orelse = inner.orelse
        if orelse:
            self.out.line("else:")
            self.body(orelse)

    def stmt_ForLog(self, node: n.ForLog) -> None:
        self.out.line(f"for {node.time_var}, {node.amount_var} in {node.log}:")
        self.body(node.body)

    def stmt_Break(self, node: n.Break) -> None:
        self.out.line("break")

    def stmt_Return(self, node: n.Return) -> None:
        writes = "".join(f"_w{i}, _t{i}, " for i in range(len(self.ir.keys)))
        self.out.line(f"return ({self.decision_fields(node)}, ({writes}))")

    def decision_fields(self, node: n.Return) -> str:
        """The five fields of a ``Decision`` that ``node`` returns, comma-separated."""
        # Metadata as a dict literal: the Decision takes it as is, nothing to zip per hit.
        names = self.ir.metadata_names
        metadata = (
            "{"
            + ", ".join(f"{n!r}: {self.expr(m)}" for n, m in zip(names, node.metadata, strict=True))
            + "}"
            if names
            else "_NO_METADATA"
        )
        return (
            f"{node.allowed}, {self.expr(node.wait_ms)}, {self.expr(node.remaining)}, "
            f"{self.expr(node.reset_ms)}, {metadata}"
        )

    def stmt_LoadKey(self, node: n.LoadKey) -> None:
        key = _key(node.key)
        spec = self.ir.keys[node.key]
        targets = ", ".join(node.targets)
        if spec.kind is n.KeyKind.LOG:
            self.out.line(f"{targets}, {_total(targets)} = _rs_log_copy({key})")
        elif spec.kind is n.KeyKind.NUMBER:
            self.out.line(
                f"{targets} = {key} if {key} is not None else {self.expr(node.defaults[0])}"
            )
        else:
            self.out.line(f"if {key} is None:")
            self.out.indent()
            self.out.line(f"{targets} = {', '.join(self.expr(d) for d in node.defaults)}")
            self.out.dedent()
            self.out.line("else:")
            self.out.indent()
            self.out.line(f"{targets} = {key}")
            self.out.dedent()

    def stmt_StoreKey(self, node: n.StoreKey) -> None:
        key = _key(node.key)
        spec = self.ir.keys[node.key]
        if spec.kind is n.KeyKind.LOG:
            # No copy: a stored log never changes again (the frontend forbids it).
            value = f"({node.log}, {_total(node.log)})"
        elif spec.kind is n.KeyKind.NUMBER:
            value = self.finite_values(node)[0]
        else:
            fields = self.finite_values(node)
            value = f"({fields[0]},)" if len(fields) == 1 else f"({', '.join(fields)})"
        self.out.line(f"{key} = _w{node.key} = {value}")
        self.out.line(f"_t{node.key} = {self.ttl(node)}")

    def ttl(self, node: n.StoreKey) -> str:
        """What ``_t<key>`` holds after ``node``: the TTL in whole ms, or None."""
        return "None" if node.ttl_ms is None else f"_rs_ttl({self.expr(node.ttl_ms)})"

    def finite_values(self, node: n.StoreKey) -> list[str]:
        """Names or constants holding the values ``node`` stores, checked finite first.

        Lua prints NaN as ``-nan``, Python as ``nan``: neither may be stored. Checked
        inline, as a helper call per write costs more than the check itself: ``x - x``
        is 0.0 for every finite ``x``, NaN for infinities and NaN (constants are finite).
        """
        values, checked = [], []
        for value in node.values:
            if isinstance(value, n.Const):
                values.append(self.expr(value))
                continue
            name = self.expr(value)
            if not _plain(value):
                name, computed = self.out.temporary("m"), name
                self.out.line(f"{name} = {computed}")
            values.append(name)
            checked.append(f"({name} - {name})")
        if checked:
            self.out.line(f"if {' + '.join(checked)} != 0.0:")
            self.out.indent()
            self.out.line(f"raise _rs_nonfinite({node.line})")
            self.out.dedent()
        return values

    def stmt_DeleteKey(self, node: n.DeleteKey) -> None:
        self.out.line(f"{_key(node.key)} = None")
        self.out.line(f"_w{node.key} = _DELETE")
        self.out.line(f"_t{node.key} = None")

    def stmt_LogTrim(self, node: n.LogTrim) -> None:
        total = _total(node.log)
        self.out.line(f"{total} = _rs_log_trim({node.log}, {total}, {self.expr(node.cutoff)})")

    def stmt_LogAppend(self, node: n.LogAppend) -> None:
        total = _total(node.log)
        self.out.line(
            f"{total} = _rs_log_append({node.log}, {total}, {self.expr(node.time)}, "
            f"{self.expr(node.amount)}, {node.line})"
        )

    def stmt_LogDropOldest(self, node: n.LogDropOldest) -> None:
        total = _total(node.log)
        self.out.line(f"{total} = _rs_log_drop_oldest({node.log}, {total})")


def generate_python(ir: n.ScriptIR) -> tuple[str, tuple[int, ...]]:
    """Python source of the script's function and its line map."""
    generator = PythonGenerator(ir)
    source = generator.generate()
    return source, generator.out.line_map
