"""``all_of``: several limits checked and charged as one atomic script.

``all_of((TokenBucketStrategy(), "10/s"), (FixedWindowStrategy(), "1000/h"))``
gives an ``AllOf`` whose ``hit(keys, store)`` admits only when every limit admits,
and then charges every one of them; when one rejects, none is charged. Its script
is the composition of the parts' scripts (``scriptdsl.compose``), compiled once
per combination: one round trip on Redis for all of them.

Each part needs a key of its own: parts sharing a store key would each read the
key as it was and the last write would win, silently dropping a limit, so that is
a ``ConfigurationError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ratescript.decision import Decision
from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.scriptdsl.compose import compose_all
from ratescript.stores.base import Store
from ratescript.strategies.base import Strategy

__all__ = ["AllOf", "Charge", "all_of", "hit_all", "part_decision"]

_UNLIMITED = Decision(True, 0.0, math.inf, 0.0)


class Charge(NamedTuple):
    """One limit's part of an atomic hit: its strategy, rate, key, cost and context."""

    strategy: Strategy[Any]
    rate: Rate
    key: str
    cost: float
    context: Mapping[str, Any] | None = None


async def hit_all(store: Store, charges: Sequence[Charge]) -> Decision:
    """Charge every part if every part admits, else none — one script, one round trip.

    Parts must be limited (the caller leaves unlimited ones out) and their costs
    checked, and no two may share a store key (``ConfigurationError``). A part with
    cost 0 only looks. The decision's metadata carries each
    part's own verdict (``<i>__allowed``, ``<i>__wait``, ``<i>__remaining``,
    ``<i>__reset``), ``i`` counting the charges given.
    """
    scripts = []
    script_keys: list[str] = []
    arguments: list[float] = []
    for strategy, rate, key, cost, context in charges:
        scripts.append(strategy.script if cost else strategy.script.readonly)
        script_keys.extend(strategy.keys(key, context))
        arguments.extend(strategy.arguments(rate, cost, context))
    if len(set(script_keys)) != len(script_keys):
        raise ConfigurationError(
            f"all_of: every part needs a key of its own, got the store keys {script_keys}: "
            "parts sharing a key would each read it as it was and overwrite each other"
        )
    return await store.run(compose_all(*scripts), script_keys, arguments)


def part_decision(decision: Decision, index: int) -> Decision:
    """Part ``index``'s own verdict, from the metadata of a ``hit_all`` decision."""
    metadata = decision.metadata
    prefix = f"{index}__"
    return Decision(
        metadata[prefix + "allowed"] == 1.0,
        metadata[prefix + "wait"],
        metadata[prefix + "remaining"],
        metadata[prefix + "reset"],
    )


@dataclass(frozen=True)
class AllOf:
    """Limits that must all admit a hit; see ``all_of``."""

    parts: tuple[tuple[Strategy[Any], Rate], ...]

    async def hit(
        self,
        keys: Sequence[str],
        store: Store,
        cost: float | Sequence[float] = 1,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Charge every part (part ``i`` on ``keys[i]``) if every part admits; else none.

        ``cost`` is one cost for all parts or one per part. Unlimited parts are left
        out; a part with cost 0 only looks.
        """
        if len(keys) != len(self.parts):
            raise ConfigurationError(f"all_of has {len(self.parts)} parts, got {len(keys)} keys")
        costs = [float(cost)] * len(keys) if isinstance(cost, int | float) else list(cost)
        if len(costs) != len(self.parts):
            raise ConfigurationError(f"all_of has {len(self.parts)} parts, got {len(costs)} costs")
        charges = []
        for (strategy, rate), key, part_cost in zip(self.parts, keys, costs, strict=True):
            if rate.unlimited:
                continue
            if part_cost < 0 or part_cost != part_cost:
                raise ConfigurationError(f"a cost must be a number >= 0, got {part_cost!r}")
            charges.append(Charge(strategy, rate, key, part_cost, context))
        if not charges:
            return _UNLIMITED
        return await hit_all(store, charges)

    async def __call__(
        self, keys: Sequence[str], store: Store, cost: float | Sequence[float] = 1
    ) -> float:
        """The wait in ms before the hit would be admitted by every part; 0.0 when allowed."""
        decision = await self.hit(keys, store, cost)
        return 0.0 if decision.allowed else decision.wait_ms


def all_of(*parts: tuple[Strategy[Any], Rate | str]) -> AllOf:
    """Compose ``(strategy, rate)`` pairs into limits checked and charged atomically."""
    if not parts:
        raise ConfigurationError("all_of needs at least one (strategy, rate) pair")
    return AllOf(tuple((strategy, Rate.from_value(rate)) for strategy, rate in parts))
