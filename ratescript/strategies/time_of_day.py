"""Time of day: a fixed window whose limit is scaled by the hour, read off the store's clock.

The limit of a hit is ``rate.limit × multiplier(hour)``, where ``hour`` is the hour
of the day at the script's clock (the store's: Redis's own ``TIME`` with
``clock="server"``) shifted by ``timezone_offset`` hours. Hits count in fixed
windows aligned to multiples of ``rate.expire``, as in ``FixedWindowStrategy``; the
count does not restart when the hour changes, only the limit it is held to.

The hour is only known inside the script, and the DSL has no lists, so the
strategy passes all 24 hourly limits as arguments (``limit_0`` … ``limit_23``,
each ``rate.limit × multiplier`` computed once on the client) and the script
picks the current hour's with a chain of comparisons. Admission is therefore
decided exactly by the store's clock.

The wait of a rejected hit is the first moment the hit fits: an hour boundary in
this window whose limit covers the count plus the cost, or else the first moment
from the next window on whose hour's limit covers the cost. Finding it means
scanning up to a day of hours, which the DSL cannot loop over; so the script
answers the moment its decision can first change (the next hour boundary or the
window's end — a lower bound) together with its clock and count, and the
strategy computes the exact wait from those, in Python, replaying the script's
own arithmetic. ``hit``, ``__call__`` and ``stat`` report that exact wait. The
limit follows the hour, so a hit that fits now may not fit later: the strategy is
not ``steady``, and a composition (``all_of``, ``hit_all``) asks it
(``first_fit``) for the first moment it fits from the other parts' waits on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, TypedDict

from ratescript.decision import Decision
from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.scriptdsl import Key, allow, deny, floor, now_ms, script, window_index
from ratescript.scriptdsl.runtime import lua_floor, lua_mod
from ratescript.stores.base import Store
from ratescript.strategies.base import Strategy, StrategyStat
from ratescript.strategies.checks import check_horizon, check_number
from ratescript.strategies.fixed_window import Window
from ratescript.strategies.tiered import scaled_limit

__all__ = [
    "DEFAULT_TIME_WINDOWS",
    "TimeOfDayStatMetadata",
    "TimeOfDayStrategy",
    "time_of_day",
]

_HOUR_MS = 3_600_000.0
_DAY_MS = 86_400_000.0

#: Traffik's default: nights double the limit, evenings raise it by half.
DEFAULT_TIME_WINDOWS: tuple[tuple[int, int, float], ...] = (
    (0, 8, 2.0),
    (8, 17, 1.0),
    (17, 24, 1.5),
)


class TimeOfDayStatMetadata(TypedDict):
    hour_of_day: float
    time_multiplier: float
    effective_limit: float
    current_count: float
    window_start_ms: float
    #: The script's clock when it decided (the store's clock).
    clock_ms: float
    exceeds_capacity: float


def _window_index(at: float, period_ms: float) -> float:
    """The index of the window holding ``at``, computed exactly as the script does."""
    index = lua_floor(at / period_ms)
    if index * period_ms > at:
        index -= 1
    elif (index + 1) * period_ms <= at:
        index += 1
    return index


@script
def time_of_day(  # type: ignore[no-untyped-def]
    window: Key[Window], period_ms: float, offset_ms: float, peak: float, cost: float,
    limit_0: float, limit_1: float, limit_2: float, limit_3: float, limit_4: float,
    limit_5: float, limit_6: float, limit_7: float, limit_8: float, limit_9: float,
    limit_10: float, limit_11: float, limit_12: float, limit_13: float, limit_14: float,
    limit_15: float, limit_16: float, limit_17: float, limit_18: float, limit_19: float,
    limit_20: float, limit_21: float, limit_22: float, limit_23: float,
):  # fmt: skip
    now = now_ms()
    index = window_index(now, period_ms)
    start = index * period_ms
    end = (index + 1) * period_ms
    w = window.get(default=Window(start, 0))
    used = w.count if w.start == start else 0
    local = now + offset_ms
    hour = floor((local % 86400000) / 3600000)
    limit = (
        limit_0 if hour < 1 else limit_1 if hour < 2 else limit_2 if hour < 3 else
        limit_3 if hour < 4 else limit_4 if hour < 5 else limit_5 if hour < 6 else
        limit_6 if hour < 7 else limit_7 if hour < 8 else limit_8 if hour < 9 else
        limit_9 if hour < 10 else limit_10 if hour < 11 else limit_11 if hour < 12 else
        limit_12 if hour < 13 else limit_13 if hour < 14 else limit_14 if hour < 15 else
        limit_15 if hour < 16 else limit_16 if hour < 17 else limit_17 if hour < 18 else
        limit_18 if hour < 19 else limit_19 if hour < 20 else limit_20 if hour < 21 else
        limit_21 if hour < 22 else limit_22 if hour < 23 else limit_23
    )  # fmt: skip
    if cost > peak:
        return deny(
            wait_ms=period_ms, remaining=max(0, limit - used), reset_ms=end - now,
            hour_of_day=hour, effective_limit=limit, current_count=used,
            window_start_ms=start, clock_ms=now, exceeds_capacity=1,
        )  # fmt: skip
    if used + cost <= limit:
        window.set(Window(start, used + cost), ttl_ms=end - now + 1)
        return allow(
            remaining=max(0, limit - (used + cost)), reset_ms=end - now, hour_of_day=hour,
            effective_limit=limit, current_count=used + cost, window_start_ms=start,
            clock_ms=now, exceeds_capacity=0,
        )  # fmt: skip
    # The next moment the decision may change; the strategy refines it to the exact wait.
    next_hour = (floor(local / 3600000) + 1) * 3600000 - offset_ms
    return deny(
        wait_ms=min(end, next_hour) - now, remaining=max(0, limit - used), reset_ms=end - now,
        hour_of_day=hour, effective_limit=limit, current_count=used, window_start_ms=start,
        clock_ms=now, exceeds_capacity=0,
    )  # fmt: skip


def _hourly_multipliers(windows: Sequence[tuple[int, int, float]]) -> tuple[float, ...]:
    """The multiplier of each hour 0..23: the first window holding it, else 1."""
    hourly: list[float | None] = [None] * 24
    for start, end, multiplier in windows:
        hours = range(start, end) if start < end else [*range(start, 24), *range(end)]
        for hour in hours:
            if hourly[hour] is None:
                hourly[hour] = float(multiplier)
    return tuple(1.0 if m is None else m for m in hourly)


def _check_window(window: object) -> tuple[int, int, float]:
    if not isinstance(window, Sequence) or isinstance(window, str) or len(window) != 3:
        raise ConfigurationError(
            f"a time window is (start_hour, end_hour, multiplier), got {window!r}"
        )
    start, end, multiplier = window
    for hour in (start, end):
        if isinstance(hour, bool) or not isinstance(hour, int):
            raise ConfigurationError(f"time window hours must be ints, got {window!r}")
    if not (0 <= start < 24 and 0 <= end <= 24 and start != end):
        raise ConfigurationError(
            f"a time window needs 0 <= start < 24, 0 <= end <= 24 and start != end: {window!r}"
        )
    multiplier = check_number("TimeOfDayStrategy", f"the multiplier of {window!r}", multiplier)
    return (start, end, multiplier)


@lru_cache(maxsize=1024)
def _hourly_limits(limit: float, multipliers: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(scaled_limit(limit, m) for m in multipliers)


@dataclass(frozen=True)
class TimeOfDayStrategy(Strategy[TimeOfDayStatMetadata]):
    """A fixed window of ``rate.limit × multiplier`` hits, the multiplier set by the hour.

    Args:
        time_windows: ``(start_hour, end_hour, multiplier)`` triples: hours
            ``start <= hour < end`` get ``multiplier`` (> 0). ``end`` may be 24; a
            window with ``start > end`` wraps past midnight (``(22, 6, 2.0)``). Where
            windows overlap the first one listed wins; hours in none get 1.0.
        timezone_offset: hours to add to UTC for the local hour (-12 to 14; fractions
            such as 5.5 are fine).

    The default windows are Traffik's: 2× from 00:00 to 08:00, 1× to 17:00, then 1.5×.
    Each hour's limit is ``rate.limit × multiplier`` as decimals (see ``scaled_limit``).
    A cost above the largest hourly limit is rejected with ``exceeds_capacity``.

    Accuracy: exact per window, by the store's clock; the wait is exact for
    whole-millisecond periods and offsets (see the module docstring for how it is
    found). Memory: one record per key. Bursts: as a fixed window, and the limit of
    a window changes at each hour boundary inside it. Typical use: more room off
    peak, less during business hours.
    """

    time_windows: Sequence[tuple[int, int, float]] = DEFAULT_TIME_WINDOWS
    timezone_offset: float = 0
    #: The multiplier of each hour 0..23, derived from ``time_windows``.
    hourly_multipliers: tuple[float, ...] = field(init=False, repr=False, compare=False)
    script = time_of_day
    reuses_arguments = True
    steady = False

    def __post_init__(self) -> None:
        windows = tuple(_check_window(window) for window in self.time_windows)
        check_number(
            "TimeOfDayStrategy", "timezone_offset", self.timezone_offset, low=-12.0,
            low_open=False, high=14.0,
        )  # fmt: skip
        object.__setattr__(self, "time_windows", windows)
        object.__setattr__(self, "hourly_multipliers", _hourly_multipliers(windows))

    @property
    def offset_ms(self) -> float:
        return float(self.timezone_offset) * _HOUR_MS

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        check_horizon("TimeOfDayStrategy", rate, rate.expire, "the period")
        limits = _hourly_limits(float(rate.limit), self.hourly_multipliers)
        return (float(rate.expire), self.offset_ms, max(limits), cost, *limits)

    # --- the exact wait ----------------------------------------------------------------

    def _hour(self, time_ms: float) -> int:
        """The hour the script computes at ``time_ms`` (the same double arithmetic)."""
        hour = lua_floor(lua_mod(time_ms + self.offset_ms, _DAY_MS) / _HOUR_MS)
        return min(23, int(hour))

    def exact_wait(self, metadata: Mapping[str, Any], rate: Rate, cost: float) -> float | None:
        """The exact wait of a rejected hit, from what the script saw; ``None`` if none fits."""
        return self.first_fit(metadata, rate, cost, allowed=False, not_before_ms=0.0)

    def first_fit(
        self,
        metadata: Mapping[str, Any],
        rate: Rate,
        cost: float,
        allowed: bool,
        not_before_ms: float,
    ) -> float | None:
        """The first wait of at least ``not_before_ms`` after which a hit of ``cost`` fits
        on an otherwise idle key, from what the script saw; ``None`` if none fits.

        ``allowed`` says whether the script admitted the hit (its ``current_count``
        then already holds the cost). The candidates are the only moments a decision
        can change: the hour boundaries and the window's end. The count stays while the
        window lasts and is 0 after it; a day of hours covers every limit there is.
        """
        now = float(metadata["clock_ms"])
        counted = float(metadata["current_count"])
        # The count plus the cost, as the script adds them, in the script's window.
        in_window = counted if allowed else counted + cost
        period = float(rate.expire)
        window = _window_index(now, period)  # the script's window: start = window·period
        end = (window + 1) * period
        limits = _hourly_limits(float(rate.limit), self.hourly_multipliers)
        offset = self.offset_ms

        def fits(at: float) -> bool:
            total = in_window if _window_index(at, period) == window else cost
            return total <= limits[self._hour(at)]

        def boundaries(after: float, until: float) -> list[float]:
            """Hour boundaries in ``(after, until]``, each also an ulp later (rounding)."""
            out: list[float] = []
            index = lua_floor((after + offset) / _HOUR_MS) + 1
            while (boundary := index * _HOUR_MS - offset) <= until:
                if boundary > after:
                    out.extend((boundary, math.nextafter(boundary, math.inf)))
                index += 1
            return out

        first = now + not_before_ms
        candidates = [first]
        if first < end:
            candidates += [t for t in boundaries(first, min(end, first + _DAY_MS)) if t < end]
            candidates.append(end)
            first = end
        candidates += boundaries(first, first + _DAY_MS + _HOUR_MS)
        for candidate in candidates:
            if fits(candidate):
                return candidate - now
        return None

    def _refined(self, decision: Decision, rate: Rate, cost: float) -> Decision:
        metadata = decision.metadata
        if decision.allowed or metadata.get("exceeds_capacity", 1) != 0:
            return decision
        wait = self.exact_wait(metadata, rate, cost)
        return decision if wait is None else decision._replace(wait_ms=wait)

    async def hit(
        self,
        key: str,
        rate: Rate | str,
        store: Store,
        cost: float = 1,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Charge ``cost`` against ``key`` if this hour's limit admits it; exact waits."""
        decision = await super().hit(key, rate, store, cost, context)
        return self._refined(decision, Rate.from_value(rate), float(cost))

    async def stat(
        self,
        key: str,
        rate: Rate | str,
        store: Store,
        context: Mapping[str, Any] | None = None,
    ) -> StrategyStat[TimeOfDayStatMetadata]:
        """Where ``key`` stands for a hit of cost 1; never changes state."""
        seen = await super().stat(key, rate, store, context)
        metadata: Mapping[str, Any] = seen.metadata
        if seen.wait_ms > 0 and metadata.get("exceeds_capacity", 1) == 0:
            wait = self.exact_wait(metadata, seen.rate, 1.0)
            if wait is not None:
                return replace(seen, wait_ms=wait)
        return seen

    def stat_metadata(self, decision: Decision) -> TimeOfDayStatMetadata:
        numbers = decision.metadata
        hour = numbers.get("hour_of_day")
        return TimeOfDayStatMetadata(
            hour_of_day=0.0 if hour is None else hour,
            time_multiplier=1.0 if hour is None else self.hourly_multipliers[min(23, int(hour))],
            effective_limit=numbers.get("effective_limit", math.inf),
            current_count=numbers.get("current_count", 0.0),
            window_start_ms=numbers.get("window_start_ms", 0.0),
            clock_ms=numbers.get("clock_ms", 0.0),
            exceeds_capacity=numbers.get("exceeds_capacity", 0.0),
        )
