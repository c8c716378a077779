"""Fixed window: count hits in windows aligned to multiples of the period since the epoch.

The window's start is stored with its count, so a key that outlives its window is
recognised as stale by value, not by TTL. Exact for sub-second windows with no
lock: the whole read-check-write is one script. A rejected hit does not count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from ratescript.rates import Rate
from ratescript.scriptdsl import Key, Record, allow, deny, now_ms, script, window_index
from ratescript.strategies.base import Strategy
from ratescript.strategies.checks import check_horizon

__all__ = ["FixedWindowStatMetadata", "FixedWindowStrategy", "Window", "fixed_window"]


class Window(Record):
    start: float
    count: float


class FixedWindowStatMetadata(TypedDict):
    window_start_ms: float
    window_end_ms: float
    current_count: float
    exceeds_capacity: float


@script
def fixed_window(window: Key[Window], limit: float, period_ms: float, cost: float):  # type: ignore[no-untyped-def]
    now = now_ms()
    index = window_index(now, period_ms)
    start = index * period_ms
    end = (index + 1) * period_ms
    w = window.get(default=Window(start, 0))
    used = w.count if w.start == start else 0
    if cost > limit:
        return deny(
            wait_ms=period_ms, remaining=max(0, limit - used), reset_ms=end - now,
            window_start_ms=start, window_end_ms=end, current_count=used, exceeds_capacity=1,
        )  # fmt: skip
    count = used + cost
    if count <= limit:
        window.set(Window(start, count), ttl_ms=end - now + 1)
        # Not `limit - used - cost`: it can round below 0 where `used + cost <= limit` holds.
        return allow(
            remaining=max(0, limit - count), reset_ms=end - now, window_start_ms=start,
            window_end_ms=end, current_count=count, exceeds_capacity=0,
        )  # fmt: skip
    return deny(
        wait_ms=end - now, remaining=max(0, limit - used), reset_ms=end - now,
        window_start_ms=start, window_end_ms=end, current_count=used, exceeds_capacity=0,
    )  # fmt: skip


@dataclass(frozen=True)
class FixedWindowStrategy(Strategy[FixedWindowStatMetadata]):
    """At most ``rate.limit`` per window of ``rate.expire`` ms, windows aligned to the epoch.

    Accuracy: exact per window; a burst of twice the limit can straddle a boundary.
    Memory: one record per key.
    """

    script = fixed_window
    reuses_arguments = True

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        check_horizon("FixedWindowStrategy", rate, rate.expire, "the period")
        return (float(rate.limit), float(rate.expire), cost)
