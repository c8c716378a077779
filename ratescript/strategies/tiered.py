"""Tiered rates: a fixed window whose limit is the rate's scaled by the caller's tier.

A tier ("free", "premium", ...) comes from the hit's context — ``context["tier"]``
or a resolver function given the context — never from the throttle key's text.
Each tier counts in a key of its own (``{key}:tier:{tier}``), so a client moved to
another tier starts a fresh count, and one tier's hits never use another's limit.
The window's start is stored with its count, exactly as in ``FixedWindowStrategy``,
so ``wait_ms`` (the time to the next window) is exact and expiry never changes a
decision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypedDict

from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.scriptdsl import Key, allow, deny, now_ms, script, window_index
from ratescript.stores.base import Store
from ratescript.strategies.base import Strategy, StrategyStat
from ratescript.strategies.checks import check_horizon, check_number
from ratescript.strategies.fixed_window import Window

__all__ = [
    "TierMultipliers",
    "TierResolver",
    "TieredRateStatMetadata",
    "TieredRateStrategy",
    "scaled_limit",
    "tiered_window",
]

#: Given a hit's context (or ``None``), the name of its tier.
TierResolver = Callable[[Mapping[str, Any] | None], str]


class TieredRateStatMetadata(TypedDict):
    #: The tier the figures are for (resolved on the client; not a script value).
    tier: str
    tier_multiplier: float
    effective_limit: float
    current_count: float
    window_start_ms: float
    window_end_ms: float
    exceeds_capacity: float


@lru_cache(maxsize=4096)
def scaled_limit(limit: float, multiplier: float) -> float:
    """``limit × multiplier`` as the decimal numbers they are written as, then rounded once.

    ``100 * 0.29`` is ``28.999999999999996`` in doubles, which would deny the 29th
    hit; the decimal product is exactly 29.
    """
    return float(Decimal(repr(float(limit))) * Decimal(repr(float(multiplier))))


class TierMultipliers(Mapping[str, float]):
    """An immutable, hashable ``tier name -> multiplier`` mapping (keeps the strategy hashable)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, float]) -> None:
        self._items = dict(items)

    def __getitem__(self, tier: str) -> float:
        return self._items[tier]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._items == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"TierMultipliers({self._items!r})"


@script
def tiered_window(  # type: ignore[no-untyped-def]
    window: Key[Window], limit: float, multiplier: float, period_ms: float, cost: float
):
    now = now_ms()
    index = window_index(now, period_ms)
    start = index * period_ms
    end = (index + 1) * period_ms
    w = window.get(default=Window(start, 0))
    used = w.count if w.start == start else 0
    if cost > limit:
        return deny(
            wait_ms=period_ms, remaining=max(0, limit - used), reset_ms=end - now,
            tier_multiplier=multiplier, effective_limit=limit, current_count=used,
            window_start_ms=start, window_end_ms=end, exceeds_capacity=1,
        )  # fmt: skip
    if used + cost <= limit:
        window.set(Window(start, used + cost), ttl_ms=end - now + 1)
        return allow(
            remaining=max(0, limit - (used + cost)), reset_ms=end - now,
            tier_multiplier=multiplier,
            effective_limit=limit, current_count=used + cost, window_start_ms=start,
            window_end_ms=end, exceeds_capacity=0,
        )  # fmt: skip
    return deny(
        wait_ms=end - now, remaining=max(0, limit - used), reset_ms=end - now,
        tier_multiplier=multiplier, effective_limit=limit, current_count=used,
        window_start_ms=start, window_end_ms=end, exceeds_capacity=0,
    )  # fmt: skip


def _check_tier_name(tier: object) -> str:
    if not isinstance(tier, str) or not tier:
        raise ConfigurationError(f"a tier name must be a non-empty string, got {tier!r}")
    if any(c.isspace() or c in "{}" for c in tier):
        # The name becomes part of a store key: whitespace breaks Memcached keys and
        # braces would change a Redis Cluster hash tag.
        raise ConfigurationError(f"a tier name cannot contain whitespace or braces: {tier!r}")
    return tier


@dataclass(frozen=True)
class TieredRateStrategy(Strategy[TieredRateStatMetadata]):
    """A fixed window of ``rate.limit × multiplier`` hits per ``rate.expire`` ms, per tier.

    Args:
        tier_multipliers: each tier's multiplier of the rate's limit (finite, > 0);
            ``{"free": 1, "premium": 5, "enterprise": 10}`` with ``"100/hour"`` gives
            100, 500 and 1000 an hour. Stored as an immutable ``TierMultipliers``.
        default_tier: the tier of a hit whose tier is not given, or is not one of
            ``tier_multipliers`` (so a client cannot mint fresh counters by naming
            tiers that do not exist).
        tier_resolver: ``tier_resolver(context) -> tier name``; without one the tier is
            ``context["tier"]``. ``await strategy(key, rate, store)`` passes no context,
            so it resolves ``tier_resolver(None)`` or the default tier.

    The effective limit is the decimal product of the limit and the multiplier (see
    ``scaled_limit``), not rounded to whole hits. Each tier counts under its own key,
    ``{key}:tier:{tier}``.

    Accuracy: exact per window, as ``FixedWindowStrategy``; a burst of twice the
    tier's limit can straddle a window boundary. Memory: one record per key and tier
    in use. Typical use: SaaS plans sharing one throttle definition.
    """

    tier_multipliers: Mapping[str, float]
    default_tier: str
    tier_resolver: TierResolver | None = None
    script = tiered_window

    def __post_init__(self) -> None:
        multipliers = dict(self.tier_multipliers)
        if not multipliers:
            raise ConfigurationError("tier_multipliers needs at least one tier")
        for tier, multiplier in multipliers.items():
            _check_tier_name(tier)
            check_number("TieredRateStrategy", f"the multiplier of tier {tier!r}", multiplier)
        if self.default_tier not in multipliers:
            raise ConfigurationError(
                f"default_tier {self.default_tier!r} is not one of the tiers {sorted(multipliers)}"
            )
        object.__setattr__(self, "tier_multipliers", TierMultipliers(multipliers))

    def tier_of(self, context: Mapping[str, Any] | None) -> str:
        """The tier a hit with ``context`` counts under (the default for unknown names)."""
        if self.tier_resolver is not None:
            tier: object = self.tier_resolver(context)
        elif context is not None:
            tier = context.get("tier", self.default_tier)
        else:
            tier = self.default_tier
        return (
            tier if isinstance(tier, str) and tier in self.tier_multipliers else self.default_tier
        )

    def keys(self, key: str, context: Mapping[str, Any] | None) -> tuple[str]:
        return (f"{key}:tier:{self.tier_of(context)}",)

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        check_horizon("TieredRateStrategy", rate, rate.expire, "the period")
        multiplier = float(self.tier_multipliers[self.tier_of(context)])
        return (scaled_limit(rate.limit, multiplier), multiplier, float(rate.expire), cost)

    async def stat(
        self,
        key: str,
        rate: Rate | str,
        store: Store,
        context: Mapping[str, Any] | None = None,
    ) -> StrategyStat[TieredRateStatMetadata]:
        """Where ``key`` stands in its tier for a hit of cost 1; never changes state."""
        seen = await super().stat(key, rate, store, context)
        tier = self.tier_of(context)
        numbers: Mapping[str, Any] = seen.metadata
        metadata = TieredRateStatMetadata(
            tier=tier,
            tier_multiplier=float(self.tier_multipliers[tier]),
            effective_limit=float(numbers.get("effective_limit", math.inf)),
            current_count=float(numbers.get("current_count", 0.0)),
            window_start_ms=float(numbers.get("window_start_ms", 0.0)),
            window_end_ms=float(numbers.get("window_end_ms", 0.0)),
            exceeds_capacity=float(numbers.get("exceeds_capacity", 0.0)),
        )
        return replace(seen, metadata=metadata)
