"""Composition: several scripts as one, admitting only when every part admits.

``compose_all(a, b, ...)`` builds one IR that runs each part *dry* — its writes
become pending variables, its ``return`` becomes "remember the verdict and stop
this part" — then, when every part allowed, applies every part's pending writes
and allows; otherwise it writes nothing and denies with the longest wait. One
script, so one round trip on Redis and one atomic step everywhere: when one limit
rejects, no other limit is charged.

Each part's variables, parameters and logs are renamed ``_p<i>_<name>`` and its
keys follow the previous parts' keys; metadata is reported per part as
``<i>_<name>``, led by the part's own verdict: ``<i>__allowed`` (1 or 0),
``<i>__wait``, ``<i>__remaining`` and ``<i>__reset``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable

from ratescript.scriptdsl import nodes as n
from ratescript.scriptdsl.script import Script

__all__ = ["compose_all"]


@dataclasses.dataclass
class _Part:
    """Renaming and bookkeeping for one part of a composition."""

    index: int
    ir: n.ScriptIR
    key_offset: int
    names: dict[str, str]
    pending: list[str] = dataclasses.field(default_factory=list)

    def name(self, name: str) -> str:
        return self.names.get(name, name)

    def var(self, stem: str) -> str:
        made = f"_p{self.index}_{stem}"
        self.pending.append(made)
        return made

    @property
    def done(self) -> str:
        return f"_p{self.index}__done"

    @property
    def verdict(self) -> list[str]:
        fields = ["allowed", "wait", "remaining", "reset"]
        fields += [f"m_{m}" for m in range(len(self.ir.metadata_names))]
        return [f"_p{self.index}__{f}" for f in fields]

    def store_flag(self, key: int) -> str:
        return f"_p{self.index}__store{key}"

    def delete_flag(self, key: int) -> str:
        return f"_p{self.index}__delete{key}"

    def pending_values(self, key: int) -> list[str]:
        spec = self.ir.keys[key]
        count = len(spec.fields) if spec.kind is n.KeyKind.RECORD else 1
        return [f"_p{self.index}__v{key}_{i}" for i in range(count)]

    def pending_ttl(self, key: int) -> str:
        return f"_p{self.index}__ttl{key}"


def _rename_expr(expr: n.Expr, part: _Part) -> n.Expr:
    """The expression with every variable and log renamed for ``part``."""
    if isinstance(expr, n.Var):
        return n.Var(part.name(expr.name), line=expr.line)
    if isinstance(expr, n.LogSum | n.LogCount):
        return dataclasses.replace(expr, log=part.name(expr.log))
    if isinstance(expr, n.LogEdge):
        return dataclasses.replace(
            expr, log=part.name(expr.log), default=_rename_expr(expr.default, part)
        )
    if isinstance(expr, n.Binary | n.Logical | n.Compare):
        return dataclasses.replace(
            expr, left=_rename_expr(expr.left, part), right=_rename_expr(expr.right, part)
        )
    if isinstance(expr, n.Unary):
        return dataclasses.replace(expr, operand=_rename_expr(expr.operand, part))
    if isinstance(expr, n.Cond):
        return dataclasses.replace(
            expr,
            test=_rename_expr(expr.test, part),
            then=_rename_expr(expr.then, part),
            orelse=_rename_expr(expr.orelse, part),
        )
    if isinstance(expr, n.Builtin):
        return dataclasses.replace(expr, args=tuple(_rename_expr(a, part) for a in expr.args))
    return expr  # Const, BoolConst, Now


def _may_return(stmt: n.Stmt) -> bool:
    if isinstance(stmt, n.Return):
        return True
    if isinstance(stmt, n.If):
        return any(map(_may_return, stmt.body)) or any(map(_may_return, stmt.orelse))
    if isinstance(stmt, n.ForLog):
        return any(map(_may_return, stmt.body))
    return False


def _dry_block(body: Iterable[n.Stmt], part: _Part, in_loop: bool) -> tuple[n.Stmt, ...]:
    """A part's statements with returns turned into verdicts and writes into pending ones.

    After any statement that may have returned, the rest of its block runs only if
    the part is not done; inside a loop, a finished part also leaves the loop.
    """
    out: list[n.Stmt] = []
    statements = list(body)
    for position, stmt in enumerate(statements):
        out.extend(_dry_statement(stmt, part, in_loop))
        if _may_return(stmt) and position + 1 < len(statements):
            rest = _dry_block(statements[position + 1 :], part, in_loop)
            if in_loop:
                out.append(n.If(n.Var(part.done), (n.Break(line=stmt.line),), rest, line=stmt.line))
            else:
                not_done = n.Unary("not", n.Var(part.done))
                out.append(n.If(not_done, rest, (), line=stmt.line))
            break
        if _may_return(stmt) and in_loop and isinstance(stmt, n.ForLog):
            out.append(n.If(n.Var(part.done), (n.Break(line=stmt.line),), (), line=stmt.line))
    return tuple(out)


def _dry_statement(stmt: n.Stmt, part: _Part, in_loop: bool) -> list[n.Stmt]:
    line = stmt.line
    if isinstance(stmt, n.Assign):
        names = tuple(part.name(x) for x in stmt.names)
        return [n.Assign(names, tuple(_rename_expr(v, part) for v in stmt.values), line=line)]
    if isinstance(stmt, n.If):
        return [
            n.If(
                _rename_expr(stmt.test, part),
                _dry_block(stmt.body, part, in_loop),
                _dry_block(stmt.orelse, part, in_loop),
                line=line,
            )
        ]
    if isinstance(stmt, n.ForLog):
        return [
            n.ForLog(
                part.name(stmt.log),
                part.name(stmt.time_var),
                part.name(stmt.amount_var),
                _dry_block(stmt.body, part, True),
                line=line,
            )
        ]
    if isinstance(stmt, n.Break):
        return [stmt]
    if isinstance(stmt, n.Return):
        values = [stmt.wait_ms, stmt.remaining, stmt.reset_ms, *stmt.metadata]
        assign = n.Assign(
            (part.done, *part.verdict),
            (
                n.BoolConst(True),
                n.BoolConst(stmt.allowed),
                *(_rename_expr(v, part) for v in values),
            ),
            line=line,
        )
        return [assign, n.Break(line=line)] if in_loop else [assign]
    if isinstance(stmt, n.LoadKey):
        return [
            n.LoadKey(
                stmt.key + part.key_offset,
                tuple(part.name(t) for t in stmt.targets),
                tuple(_rename_expr(d, part) for d in stmt.defaults),
                line=line,
            )
        ]
    if isinstance(stmt, n.StoreKey):
        # Remember what to write; the log itself cannot change after it is stored.
        targets: list[str] = [part.store_flag(stmt.key), part.delete_flag(stmt.key)]
        pending: list[n.Expr] = [n.BoolConst(True), n.BoolConst(False)]
        if not stmt.log:
            targets += part.pending_values(stmt.key)
            pending += [_rename_expr(v, part) for v in stmt.values]
        if stmt.ttl_ms is not None:
            targets.append(part.pending_ttl(stmt.key))
            pending.append(_rename_expr(stmt.ttl_ms, part))
        return [n.Assign(tuple(targets), tuple(pending), line=line)]
    if isinstance(stmt, n.DeleteKey):
        return [
            n.Assign(
                (part.store_flag(stmt.key), part.delete_flag(stmt.key)),
                (n.BoolConst(False), n.BoolConst(True)),
                line=line,
            )
        ]
    if isinstance(stmt, n.LogTrim):
        return [n.LogTrim(part.name(stmt.log), _rename_expr(stmt.cutoff, part), line=line)]
    if isinstance(stmt, n.LogAppend):
        return [
            n.LogAppend(
                part.name(stmt.log),
                _rename_expr(stmt.time, part),
                _rename_expr(stmt.amount, part),
                line=line,
            )
        ]
    if isinstance(stmt, n.LogDropOldest):
        return [n.LogDropOldest(part.name(stmt.log), line=line)]
    raise TypeError(f"cannot compose a {type(stmt).__name__}")  # pragma: no cover


def _stores(ir: n.ScriptIR) -> dict[int, tuple[str, bool]]:
    """Keys a part may write: index → (the log stored there, or "", whether a TTL is given)."""
    found: dict[int, tuple[str, bool]] = {}

    def walk(body: Iterable[n.Stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, n.StoreKey):
                log, ttl = found.get(stmt.key, ("", False))
                found[stmt.key] = (stmt.log or log, ttl or stmt.ttl_ms is not None)
            elif isinstance(stmt, n.DeleteKey):
                found.setdefault(stmt.key, ("", False))
            elif isinstance(stmt, n.If):
                walk(stmt.body)
                walk(stmt.orelse)
            elif isinstance(stmt, n.ForLog):
                walk(stmt.body)

    walk(ir.body)
    return found


def _min_or_max(func: str, exprs: list[n.Expr]) -> n.Expr:
    return exprs[0] if len(exprs) == 1 else n.Builtin(func, tuple(exprs))


@functools.cache
def compose_all(*scripts: Script) -> Script:
    """One script admitting only when every one of ``scripts`` admits, then charging all."""
    if not scripts:
        raise ValueError("compose at least one script")
    parts: list[_Part] = []
    offset = 0
    for index, script in enumerate(scripts):
        ir = script.ir
        own = {*ir.variables, *ir.params, *ir.logs}
        names = {name: f"_p{index}_{name}" for name in own}
        parts.append(_Part(index, ir, offset, names))
        offset += len(ir.keys)

    body: list[n.Stmt] = []
    variables: list[str] = []
    writes: list[tuple[_Part, int, str, bool]] = []
    for part in parts:
        flags: list[str] = [part.done]
        for key, (log, has_ttl) in sorted(_stores(part.ir).items()):
            writes.append((part, key, log, has_ttl))
            flags += [part.store_flag(key), part.delete_flag(key)]
            if not log:
                variables.extend(part.pending_values(key))
            if has_ttl:
                variables.append(part.pending_ttl(key))
        variables += flags + part.verdict
        variables += [part.name(v) for v in part.ir.variables]
        body.append(n.Assign(tuple(flags), tuple(n.BoolConst(False) for _ in flags)))
        body.extend(_dry_block(part.ir.body, part, False))

    apply: list[n.Stmt] = []
    for part, key, log, has_ttl in writes:
        pending: tuple[n.Expr, ...] = (
            () if log else tuple(n.Var(v) for v in part.pending_values(key))
        )
        ttl = n.Var(part.pending_ttl(key)) if has_ttl else None
        store = n.StoreKey(key + part.key_offset, pending, part.name(log) if log else "", ttl)
        apply.append(n.If(n.Var(part.store_flag(key)), (store,), ()))
        apply.append(n.If(n.Var(part.delete_flag(key)), (n.DeleteKey(key + part.key_offset),), ()))

    verdicts = [part.verdict for part in parts]
    # Each part's own verdict leads its metadata, so a caller can tell which limit
    # denied and report every limit's remaining quota (one ``RateLimit`` header each).
    metadata: list[n.Expr] = []
    for v in verdicts:
        metadata += [n.Cond(n.Var(v[0]), n.Const(1.0), n.Const(0.0)), *map(n.Var, v[1:4])]
        metadata += [n.Var(v[4 + m]) for m in range(len(v) - 4)]
    remaining = _min_or_max("min", [n.Var(v[2]) for v in verdicts])
    reset = _min_or_max("max", [n.Var(v[3]) for v in verdicts])
    # Deny with the longest wait among the parts that denied (0 for those that allowed).
    waits: list[n.Expr] = [n.Cond(n.Var(v[0]), n.Const(0.0), n.Var(v[1])) for v in verdicts]
    every: n.Expr = n.Var(verdicts[0][0])
    for verdict in verdicts[1:]:
        every = n.Logical("and", every, n.Var(verdict[0]))
    allowed = n.Return(True, n.Const(0.0), remaining, reset, tuple(metadata))
    denied = n.Return(False, _min_or_max("max", waits), remaining, reset, tuple(metadata))
    body.append(n.If(every, (*apply, allowed), (denied,)))

    ir = n.ScriptIR(
        name="all_of_" + "_".join(s.name for s in scripts),
        module="ratescript.scriptdsl.compose",
        filename=", ".join(s.ir.filename for s in scripts),
        first_line=0,
        keys=tuple(spec for part in parts for spec in part.ir.keys),
        params=tuple(part.name(p) for part in parts for p in part.ir.params),
        metadata_names=tuple(
            f"{part.index}_{m}"
            for part in parts
            for m in ("_allowed", "_wait", "_remaining", "_reset", *part.ir.metadata_names)
        ),
        body=tuple(body),
        variables=tuple(dict.fromkeys(variables)),
        logs=tuple(part.name(log) for part in parts for log in part.ir.logs),
        uses_now=any(part.ir.uses_now for part in parts),
        readonly=all(part.ir.readonly for part in parts),
    )
    return Script(ir)
