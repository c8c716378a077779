"""The Memcached target: a read → compute → write plan.

Memcached has no server-side scripts, so a script becomes a plan the store
carries out: ``gets`` every declared key (value and CAS token), run the Python
target on the decoded values, then write each changed key back with ``cas`` (or
``add`` when it was missing), retrying from the top on a conflict. A plan that
touches several keys and writes any of them is not atomic under CAS alone, so it
is marked ``locked``: the store holds a short ``add``-based lock around it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ratescript.scriptdsl import nodes as n
from ratescript.scriptdsl.codec import KeyCodec
from ratescript.scriptdsl.passes import written_keys

__all__ = ["MemcachedPlan", "plan_memcached"]


@dataclass(frozen=True)
class MemcachedPlan:
    """What a Memcached store does to run one script."""

    name: str
    reads: tuple[n.KeySpec, ...]
    writes: tuple[int, ...]
    locked: bool
    codecs: tuple[KeyCodec, ...]
    compute: Callable[..., Any]
    compute_source: str

    def describe(self) -> str:
        """A readable listing, for ``python -m ratescript compile --target memcached``."""
        lines = [f"# Memcached plan for `{self.name}`", "read:"]
        for spec in self.reads:
            shape = {
                n.KeyKind.NUMBER: "a number",
                n.KeyKind.RECORD: f"record {spec.record_name}({', '.join(spec.fields)})",
                n.KeyKind.LOG: "a log of (time, amount) entries and their total",
            }[spec.kind]
            lines.append(f"  gets {spec.name}  -- {shape}")
        lines.append("compute: the Python target below, on the decoded values")
        if self.writes:
            lines.append("write (when changed): cas with the token from gets, add when missing;")
            lines.append("  a lost race (cas EXISTS / add NOT_STORED) retries the whole plan")
            for index in self.writes:
                lines.append(
                    f"  {self.reads[index].name}: set or delete, TTL rounded up to whole seconds"
                )
        else:
            lines.append("write: nothing (read-only)")
        lock = "yes: several keys, updated together" if self.locked else "no"
        lines.append(f"lock: {lock}")
        lines.append("")
        lines.append(self.compute_source)
        return "\n".join(lines)


def plan_memcached(
    ir: n.ScriptIR,
    codecs: tuple[KeyCodec, ...],
    compute: Callable[..., Any],
    compute_source: str,
) -> MemcachedPlan:
    writes = tuple(sorted(written_keys(ir.body)))
    return MemcachedPlan(
        name=ir.name,
        reads=ir.keys,
        writes=writes,
        locked=len(ir.keys) > 1 and bool(writes),
        codecs=codecs,
        compute=compute,
        compute_source=compute_source,
    )
