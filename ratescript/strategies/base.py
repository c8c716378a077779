"""``Strategy``: a frozen dataclass of parameters plus the DSL script it runs.

A strategy has no store-specific code. It names its script, says which keys the
script takes for a throttle key, and turns a ``Rate``, a cost and its own
parameters into the script's numeric arguments; the store does the rest, in one
atomic step. ``stat()`` runs the script's read-only twin, so it never consumes quota.

The contract shared by every strategy:

* ``await strategy(key, rate, store, cost=1)`` returns the wait in ms, ``0.0``
  when allowed; ``await strategy.hit(...)`` returns the whole ``Decision``;
* an unlimited rate always allows, without touching the store;
* a cost of 0 never rejects and never changes state;
* a cost the strategy can never admit is rejected at once with
  ``metadata["exceeds_capacity"] == 1`` and a finite wait (the time the strategy
  takes to refill or drain completely) — never an infinite one.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from ratescript.decision import NO_METADATA, Decision
from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.scriptdsl.script import Script
from ratescript.stores.base import Store

__all__ = ["Strategy", "StrategyStat"]

MetadataT = TypeVar("MetadataT", bound=Mapping[str, Any])

_UNLIMITED = Decision(True, 0.0, math.inf, 0.0)


@dataclass(frozen=True)
class StrategyStat(Generic[MetadataT]):
    """Where a key stands, without consuming anything.

    ``hits_remaining`` is what the strategy would still admit now; ``wait_ms`` how long
    until a hit of cost 1 would be admitted (0 if now); ``metadata`` the strategy's
    own typed figures (see each strategy's ``...StatMetadata``).
    """

    key: str
    rate: Rate
    hits_remaining: float
    wait_ms: float
    metadata: MetadataT


def _rate(rate: Rate | str) -> Rate:
    return rate if isinstance(rate, Rate) else Rate.from_value(rate)


@dataclass(frozen=True)
class Strategy(abc.ABC, Generic[MetadataT]):
    """Base of every strategy; subclasses are frozen dataclasses of their parameters."""

    #: The DSL script a hit runs (its read-only twin serves ``stat``).
    script: ClassVar[Script]

    def keys(self, key: str, context: Mapping[str, Any] | None) -> Sequence[str]:
        """The script's keys for a throttle key; several keys share its hash tag."""
        return (key,)

    @abc.abstractmethod
    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        """The script's numeric arguments for this rate, cost and context."""

    async def hit(
        self,
        key: str,
        rate: Rate | str,
        store: Store,
        cost: float = 1,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Charge ``cost`` against ``key`` if the strategy admits it."""
        rate = _rate(rate)
        if rate.unlimited:
            return _UNLIMITED
        if cost < 0 or cost != cost:
            raise ConfigurationError(f"a cost must be a number >= 0, got {cost!r}")
        keys = self.keys(key, context)
        if cost == 0:
            # Looks, never charges: the read-only twin, reported as admitted.
            seen = await store.run(self.script.readonly, keys, self.arguments(rate, 0, context))
            return Decision(True, 0.0, seen.remaining, seen.reset_ms, seen.metadata)
        return await store.run(self.script, keys, self.arguments(rate, float(cost), context))

    async def __call__(self, key: str, rate: Rate | str, store: Store, cost: float = 1) -> float:
        """The wait in milliseconds before ``key`` may be hit again; ``0.0`` when allowed."""
        decision = await self.hit(key, rate, store, cost)
        return 0.0 if decision.allowed else decision.wait_ms

    async def stat(
        self,
        key: str,
        rate: Rate | str,
        store: Store,
        context: Mapping[str, Any] | None = None,
    ) -> StrategyStat[MetadataT]:
        """Where ``key`` stands for a hit of cost 1; never changes state."""
        rate = _rate(rate)
        if rate.unlimited:
            return StrategyStat(key, rate, math.inf, 0.0, self.stat_metadata(_UNLIMITED))
        seen = await store.run(
            self.script.readonly, self.keys(key, context), self.arguments(rate, 1.0, context)
        )
        # An admitted look reports what would remain after the hit; give it back.
        remaining = seen.remaining + 1.0 if seen.allowed else seen.remaining
        wait = 0.0 if seen.allowed else seen.wait_ms
        return StrategyStat(key, rate, remaining, wait, self.stat_metadata(seen))

    def stat_metadata(self, decision: Decision) -> MetadataT:
        """The typed metadata of a decision (by default, the script's metadata as is)."""
        metadata: Any = dict(decision.metadata) if decision.metadata is not NO_METADATA else {}
        return metadata  # type: ignore[no-any-return]
