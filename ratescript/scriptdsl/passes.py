"""Tree-to-tree passes over the IR."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar, cast

from ratescript.scriptdsl import nodes as n
from ratescript.scriptdsl.runtime import lua_floor, lua_mod

__all__ = [
    "checked_on_entry",
    "children",
    "divisor",
    "fold_constants",
    "may_fail",
    "nonzero",
    "readonly_twin",
    "statements",
    "written_keys",
]


def statements(body: Iterable[n.Stmt]) -> Iterator[n.Stmt]:
    """Every statement of ``body``, nested ones included, in source order."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, n.If):
            yield from statements(stmt.body)
            yield from statements(stmt.orelse)
        elif isinstance(stmt, n.ForLog):
            yield from statements(stmt.body)


Node = TypeVar("Node")
_NODES = (*n.EXPR_NODES, *n.STMT_NODES)


def _fold(value: float, op: str, other: float) -> float | None:
    """``value op other`` as every target computes it, or None where it fails."""
    if op in ("/", "//", "%") and other == 0:
        return None  # a division by zero stays an error at run time
    if op == "+":
        return value + other
    if op == "-":
        return value - other
    if op == "*":
        return value * other
    if op == "/":
        return value / other
    return lua_floor(value / other) if op == "//" else lua_mod(value, other)


def _folded(node: Node) -> Node:
    """``node`` with its constant arithmetic folded, children first."""
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(node):  # type: ignore[arg-type]
        value = getattr(node, field.name)
        if isinstance(value, n.EXPR_NODES):
            new: Any = _folded(value)
            changed = new is not value
        elif isinstance(value, tuple) and value and isinstance(value[0], _NODES):
            new = tuple(_folded(item) for item in value)
            changed = any(a is not b for a, b in zip(new, value, strict=True))
        else:
            continue
        if changed:
            changes[field.name] = new
    if changes:
        node = dataclasses.replace(node, **changes)  # type: ignore[type-var]
    result: float | None = None
    if isinstance(node, n.Binary) and isinstance(node.left, n.Const):
        if isinstance(node.right, n.Const):
            result, line = _fold(node.left.value, node.op, node.right.value), node.line
    elif isinstance(node, n.Unary) and node.op == "-" and isinstance(node.operand, n.Const):
        result, line = -node.operand.value, node.line
    if result is not None and math.isfinite(result):  # a constant is finite (nodes.Const)
        return cast(Node, n.Const(result, line=line))
    return node


def fold_constants(ir: n.ScriptIR) -> n.ScriptIR:
    """The script with every operation on constants replaced by its value.

    Lua 5.1's parser folds such operations itself and files the result in the
    function's constant table, where ``-0`` and ``0`` are one key (``-0 == 0``): a
    ``0 * -1`` made every ``0`` of the chunk ``-0``, or the other way round. Folded
    here, in doubles, as each target computes them (Lua's ``//`` and ``%``), a
    negative zero reaches the targets as a constant, which each makes at run time
    (Lua: ``_rs_negzero``). A division by zero is left to fail when run, and a
    result that is not finite (an overflow) is left to be computed: Lua folds it
    too, but to a constant no zero can collide with.
    """
    return dataclasses.replace(ir, body=tuple(_folded(stmt) for stmt in ir.body))


def _without_writes(body: Iterable[n.Stmt]) -> tuple[n.Stmt, ...]:
    out: list[n.Stmt] = []
    for stmt in body:
        if isinstance(stmt, n.StoreKey | n.DeleteKey):
            continue  # their expressions are pure: dropping them changes nothing else
        if isinstance(stmt, n.If):
            stmt = dataclasses.replace(
                stmt, body=_without_writes(stmt.body), orelse=_without_writes(stmt.orelse)
            )
        elif isinstance(stmt, n.ForLog):
            stmt = dataclasses.replace(stmt, body=_without_writes(stmt.body))
        out.append(stmt)
    return tuple(out)


def readonly_twin(ir: n.ScriptIR) -> n.ScriptIR:
    """The same script with every write elided: what ``stat()`` runs, never changing state."""
    if ir.readonly:
        return ir
    return dataclasses.replace(
        ir, name=f"{ir.name}_readonly", body=_without_writes(ir.body), readonly=True
    )


def written_keys(body: Iterable[n.Stmt]) -> set[int]:
    """Indices of the keys a script may write or delete."""
    return {stmt.key for stmt in statements(body) if isinstance(stmt, n.StoreKey | n.DeleteKey)}


def nonzero(node: n.Expr) -> bool:
    """Whether ``node`` is a constant other than zero: a divisor that cannot fail."""
    return isinstance(node, n.Const) and node.value != 0


def children(node: object) -> list[n.Expr]:
    """The expressions directly inside a node (an expression or a statement)."""
    found: list[n.Expr] = []
    for field in dataclasses.fields(node):  # type: ignore[arg-type]
        value = getattr(node, field.name)
        for child in value if isinstance(value, tuple) else (value,):
            if isinstance(child, n.EXPR_NODES):
                found.append(cast(n.Expr, child))
    return found


def divisor(node: object) -> n.Expr | None:
    """What ``node`` divides by, if it divides: ``/``, ``//``, ``%`` and ``window_index``."""
    if isinstance(node, n.Binary) and node.op in ("/", "//", "%"):
        return node.right
    if isinstance(node, n.Builtin) and node.func == "window_index":
        return node.args[1]
    return None


def may_fail(node: object, safe: frozenset[str] = frozenset()) -> bool:
    """Whether evaluating the expressions of ``node`` can raise: a division by anything
    but a nonzero constant or a name in ``safe`` (names the caller knows to be nonzero,
    see ``checked_on_entry``).

    A division by zero is an error on every target; nothing else in an expression is.
    """
    by = divisor(node)
    if by is not None and not nonzero(by) and not (isinstance(by, n.Var) and by.name in safe):
        return True
    return any(may_fail(child, safe) for child in children(node))


def _divisors(node: object) -> frozenset[str]:
    """Names that evaluating ``node`` always divides by: a zero among them would have raised.

    Not those in a branch of a conditional, nor right of ``and``/``or``, nor a key's default.
    """
    if isinstance(node, n.Cond | n.Logical):
        inside: list[n.Expr] = [node.test if isinstance(node, n.Cond) else node.left]
    elif isinstance(node, n.LoadKey):
        inside = []
    else:
        inside = children(node)
    found = frozenset().union(*(_divisors(child) for child in inside))
    by = divisor(node)
    if isinstance(by, n.Var):
        found |= {by.name}
    return found


def _assigned(body: Sequence[n.Stmt]) -> set[str]:
    names: set[str] = set()
    for stmt in statements(body):
        if isinstance(stmt, n.Assign):
            names.update(stmt.names)
        elif isinstance(stmt, n.LoadKey):
            names.update(stmt.targets)
        elif isinstance(stmt, n.ForLog):
            names.update((stmt.time_var, stmt.amount_var))
    return names


def checked_on_entry(ir: n.ScriptIR) -> dict[int, frozenset[str]]:
    """Per statement (by ``id``): the names already divided by on every path to it, and
    not assigned since — a division by one of them cannot raise there."""
    entry: dict[int, frozenset[str]] = {}

    def run(body: Sequence[n.Stmt], checked: frozenset[str] | None) -> frozenset[str] | None:
        for stmt in body:
            if checked is None:  # after a return or a break: not reached
                return None
            entry[id(stmt)] = checked
            if isinstance(stmt, n.If):
                checked |= _divisors(stmt.test)
                ends = [
                    e for e in (run(stmt.body, checked), run(stmt.orelse, checked)) if e is not None
                ]
                checked = frozenset.intersection(*ends) if ends else None
            elif isinstance(stmt, n.ForLog):  # zero or more times: what it assigns is unknown
                checked -= _assigned((stmt,))
                run(stmt.body, checked)
            elif isinstance(stmt, n.Return | n.Break):
                checked = None
            else:
                checked = (checked | _divisors(stmt)) - _assigned((stmt,))
        return checked

    run(ir.body, frozenset())
    return entry
