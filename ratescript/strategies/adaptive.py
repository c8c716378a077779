"""Adaptive throttle: a fixed window whose limit shrinks while a key runs hot, then recovers.

Each window ``k`` (aligned to multiples of the period since the epoch) has a
*factor* ``f_k`` in ``[min_limit_ratio, 1]`` and admits ``rate.limit × f_k``. When a
window ends, its load — the hits it admitted over its effective limit — sets the
next window's factor:

* load above ``load_threshold``: ``f_{k+1} = max(min_limit_ratio, f_k × reduction_factor)``,
  so consecutive hot windows keep cutting the limit;
* otherwise: ``f_{k+1} = min(1, f_k + recovery_rate)``; a window with no hits at all
  counts as cool, so an idle key recovers by ``recovery_rate`` a window.

One record holds the state: the window index, its count and its factor. Every
factor a later window will have follows from that record alone — ``f`` for the
stored window, ``min(1, after + (j - 1)·recovery_rate)`` for the ``j``-th window
after it — so a rejected hit's wait, to the first window whose limit fits its
cost, is exact. The key expires once its factor is back to 1, which is exactly a
missing key: full limit, no hits.

Factors are decimals of twelve places, as they are written: the script counts them
in units of 1e-12 (``0.3`` is 300000000000), where adding ``recovery_rate`` and
rounding ``f × reduction_factor`` to the unit are exact, so the factor after
``0.3 + 0.1 + 0.1 + ...`` is 0.8 and not 0.7999999999999999. A window's limit is
the decimal product of the limit and its factor, rounded once (as
``tiered.scaled_limit``): ``10/h`` at 0.8 admits 8.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Any, Final, TypedDict

from ratescript.rates import Rate
from ratescript.scriptdsl import (
    Key,
    Record,
    allow,
    ceil,
    deny,
    floor,
    now_ms,
    script,
    window_index,
)
from ratescript.strategies.base import Strategy
from ratescript.strategies.checks import check_horizon, check_number

__all__ = [
    "FACTOR_UNITS",
    "AdaptiveThrottleStatMetadata",
    "AdaptiveThrottleStrategy",
    "LoadWindow",
    "adaptive_throttle",
]


class LoadWindow(Record):
    window: float  # the window's index: floor(time / period)
    count: float
    factor: float


class AdaptiveThrottleStatMetadata(TypedDict):
    effective_limit: float
    current_count: float
    #: The current window's admitted hits over its effective limit, in [0, 1].
    current_load: float
    window_start_ms: float
    exceeds_capacity: float


#: Factors are counted in units of 1e-12 (see the module doc).
FACTOR_UNITS: Final = 1_000_000_000_000


@script
def adaptive_throttle(  # type: ignore[no-untyped-def]
    state: Key[LoadWindow], limit: float, period_ms: float, threshold: float,
    reduction: float, recovery: float, floor_ratio: float, cost: float,
):  # fmt: skip
    # Factors in units of 1e-12 (`recovery` and `floor_ratio` too): whole numbers, so
    # adding is exact; `limit * f / 1e12` is a window's limit rounded once.
    now = now_ms()
    index = window_index(now, period_ms)
    s = state.get(default=LoadWindow(index, 0, 1))
    # A clock that steps back stays in the stored window.
    current = max(index, s.window)
    ahead = current - s.window
    stored = floor(s.factor * 1000000000000 + 0.5)
    # The factor of the window after the stored one, from how hot the stored one ran.
    after = min(1000000000000, stored + recovery)
    if s.count > threshold * (limit * stored / 1000000000000):
        after = max(floor_ratio, floor(stored * reduction + 0.5))
    factor = stored
    used = s.count
    if ahead >= 1:
        factor = min(1000000000000, after + (ahead - 1) * recovery)
        used = 0
    effective = limit * factor / 1000000000000
    start = current * period_ms
    end = (current + 1) * period_ms
    if cost > limit:
        return deny(
            wait_ms=period_ms, remaining=max(0, effective - used), reset_ms=end - now,
            effective_limit=effective, current_count=used, current_load=used / effective,
            window_start_ms=start, exceeds_capacity=1,
        )  # fmt: skip
    if used + cost <= effective:
        count = used + cost
        # Keep the key until its factor is back to 1, where it reads like a missing key.
        next_factor = min(1000000000000, factor + recovery)
        if count > threshold * effective:
            next_factor = max(floor_ratio, floor(factor * reduction + 0.5))
        recover_windows = max(0, ceil((1000000000000 - next_factor) / recovery)) + 1
        new_load = count / effective  # before the write (see the Lua target's `_rs_undo`)
        state.set(
            LoadWindow(current, count, factor / 1000000000000),
            ttl_ms=(current + 1 + recover_windows) * period_ms - now + 1,
        )
        return allow(
            remaining=max(0, effective - count), reset_ms=end - now, effective_limit=effective,
            current_count=count, current_load=new_load, window_start_ms=start,
            exceeds_capacity=0,
        )  # fmt: skip
    # The first window after the stored one whose limit fits the cost: the factor grows
    # by `recovery` a window, so solve for it, then correct the rounding of the division
    # by evaluating the very expression the admission test will.
    windows = 1.0
    if limit * after / 1000000000000 < cost:
        windows = 1 + max(1, ceil((cost / limit * 1000000000000 - after) / recovery))
        if (
            windows > 2
            and limit * min(1000000000000, after + (windows - 2) * recovery) / 1000000000000 >= cost
        ):
            windows = windows - 1
        if limit * min(1000000000000, after + (windows - 1) * recovery) / 1000000000000 < cost:
            windows = windows + 1
    return deny(
        wait_ms=(s.window + windows) * period_ms - now, remaining=max(0, effective - used),
        reset_ms=end - now, effective_limit=effective, current_count=used,
        current_load=used / effective, window_start_ms=start, exceeds_capacity=0,
    )  # fmt: skip


def _units(fraction: float, rounding: str) -> float:
    """A fraction as it is written, in units of 1e-12 (rounded as ``rounding`` says, >= 1)."""
    units = (Decimal(repr(float(fraction))) * FACTOR_UNITS).to_integral_value(rounding)
    return max(1.0, float(units))


@dataclass(frozen=True)
class AdaptiveThrottleStrategy(Strategy[AdaptiveThrottleStatMetadata]):
    """A fixed window of ``rate.limit × factor`` that tightens under sustained load.

    Args:
        load_threshold: a window whose admitted hits exceed this fraction of its
            effective limit is *hot* (in (0, 1]; at 1 no window is ever hot).
        reduction_factor: each hot window multiplies the next window's factor by this
            (in (0, 1]).
        recovery_rate: each window that is not hot — idle ones too — adds this to the
            next window's factor, up to 1 (in (0, 1]).
        min_limit_ratio: the factor never drops below this (in (0, 1]).

    With the defaults and ``"1000/minute"``: a minute with more than 800 hits is
    followed by a 500-hit minute; a second hot minute by a 300-hit one (the floor);
    then each quieter minute adds 100 back. A rejected hit counts for nothing, so a
    client that keeps hammering keeps its windows hot and its limit low.

    Accuracy: exact per window (as ``FixedWindowStrategy``, a burst can straddle a
    boundary). Memory: one record per key, kept until the limit has recovered.
    Bursts: up to the window's effective limit. Typical use: shielding a backend
    from clients whose load stays high, while letting occasional peaks through.
    """

    load_threshold: float = 0.8
    reduction_factor: float = 0.5
    recovery_rate: float = 0.1
    min_limit_ratio: float = 0.3
    script = adaptive_throttle
    reuses_arguments = True

    def __post_init__(self) -> None:
        for name in ("load_threshold", "reduction_factor", "recovery_rate", "min_limit_ratio"):
            check_number("AdaptiveThrottleStrategy", name, getattr(self, name), high=1.0)

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        recovery = _units(self.recovery_rate, ROUND_HALF_EVEN)
        floor_ratio = _units(self.min_limit_ratio, ROUND_CEILING)  # never below the ratio
        # The key is kept until the factor is back to 1: the window, the one after it,
        # and as many as recovering from the floor takes.
        windows = 2 + math.ceil((FACTOR_UNITS - floor_ratio) / recovery)
        check_horizon("AdaptiveThrottleStrategy", rate, windows * rate.expire + 1, "recovery")
        return (
            float(rate.limit),
            float(rate.expire),
            float(self.load_threshold),
            float(self.reduction_factor),
            recovery,
            floor_ratio,
            cost,
        )
