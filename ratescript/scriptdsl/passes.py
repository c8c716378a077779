"""Tree-to-tree passes over the IR."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ratescript.scriptdsl import nodes as n

__all__ = ["readonly_twin", "written_keys"]


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
    found: set[int] = set()
    for stmt in body:
        if isinstance(stmt, n.StoreKey | n.DeleteKey):
            found.add(stmt.key)
        elif isinstance(stmt, n.If):
            found |= written_keys(stmt.body) | written_keys(stmt.orelse)
        elif isinstance(stmt, n.ForLog):
            found |= written_keys(stmt.body)
    return found
