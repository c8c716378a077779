"""``all_of``: several limits checked and charged as one atomic script.

``all_of((TokenBucketStrategy(), "10/s"), (FixedWindowStrategy(), "1000/h"))``
gives an ``AllOf`` whose ``hit(keys, store)`` admits only when every limit admits,
and then charges every one of them; when one rejects, none is charged. Its script
is the composition of the parts' scripts (``scriptdsl.compose``), compiled once
per combination: one round trip on Redis for all of them.

Each part needs a key of its own: parts sharing a store key would each read the
key as it was and the last write would win, silently dropping a limit, so that is
a ``ConfigurationError``.

The wait of a rejection is exact. A steady part (every strategy but
``TimeOfDayStrategy``) that would admit the hit after its wait keeps admitting it,
so the longest wait of the parts that rejected is when every one of them admits.
A time-of-day part's limit follows the hour, so it may fit only later than that,
or not any more by then, and its script only knows a lower bound: ``hit_all``
asks it (``Strategy.first_fit``) for the first moment it fits from that longest
wait on, and repeats until every part agrees. The parts that rejected then all
report that wait, so every caller — ``part_decision`` included — sees it. (Two
time-of-day parts whose hours never suit both at once never admit the hit: as for a
cost a part can never take, the script's own wait then stands.)
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
    cost 0 only looks. The decision's metadata carries each part's own verdict
    (``<i>__allowed``, ``<i>__wait``, ``<i>__remaining``, ``<i>__reset``), ``i``
    counting the charges given; when the composition rejects, its wait is exact (see
    the module doc) and the longest ``<i>__wait`` of the parts that rejected.
    """
    scripts = []
    script_keys: list[str] = []
    arguments: list[float] = []
    steady = True
    for strategy, rate, key, cost, context in charges:
        scripts.append(strategy.script if cost else strategy.script.readonly)
        script_keys.extend(strategy.keys(key, context))
        arguments.extend(strategy.arguments(rate, cost, context))
        steady = steady and strategy.steady
    if len(set(script_keys)) != len(script_keys):
        raise ConfigurationError(
            f"all_of: every part needs a key of its own, got the store keys {script_keys}: "
            "parts sharing a key would each read it as it was and overwrite each other"
        )
    decision = await store.run(compose_all(*scripts), script_keys, arguments)
    if steady or decision.allowed:
        return decision
    return _exact_wait(decision, charges)


#: How many times the parts that are not steady may push the wait later in turn.
_MAX_ROUNDS = 50


def _exact_wait(decision: Decision, charges: Sequence[Charge]) -> Decision:
    """A rejection with the composition's exact wait (see the module doc), reported by
    every part that rejected; as it was when a part can never fit or cannot tell."""
    metadata = decision.metadata
    denied = [i for i in range(len(charges)) if metadata[f"{i}__allowed"] != 1.0]
    if any(metadata.get(f"{i}_exceeds_capacity", 0.0) == 1.0 for i in denied):
        return decision  # the composition never admits: no wait is exact
    unsteady = [i for i, charge in enumerate(charges) if not charge.strategy.steady and charge.cost]
    wait = max((metadata[f"{i}__wait"] for i in denied if i not in unsteady), default=0.0)
    for _ in range(_MAX_ROUNDS):
        moved = False
        for i in unsteady:
            strategy, rate, _key, cost, _context = charges[i]
            own = {name: metadata[f"{i}_{name}"] for name in strategy.script.metadata_names}
            allowed = metadata[f"{i}__allowed"] == 1.0
            fit = strategy.first_fit(own, rate, cost, allowed, wait)
            if fit is None:
                return decision
            if fit > wait:
                wait, moved = fit, True
        if not moved:
            break
    else:
        return decision
    exact = dict(metadata)
    for i in denied:
        exact[f"{i}__wait"] = wait
    return decision._replace(wait_ms=wait, metadata=exact)


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
