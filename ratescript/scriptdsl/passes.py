"""Tree-to-tree passes over the IR."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from ratescript.scriptdsl import nodes as n

__all__ = ["readonly_twin", "statements", "written_keys"]


def statements(body: Iterable[n.Stmt]) -> Iterator[n.Stmt]:
    """Every statement of ``body``, nested ones included, in source order."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, n.If):
            yield from statements(stmt.body)
            yield from statements(stmt.orelse)
        elif isinstance(stmt, n.ForLog):
            yield from statements(stmt.body)


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
