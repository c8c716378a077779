"""GCRA, the generic cell rate algorithm: one number of state per key.

The state is the theoretical arrival time (TAT): when the key would be idle again
if every admitted hit had been spaced one emission interval (``period / limit``)
apart. A hit of cost ``c`` is admitted once ``now >= TAT + c·T - T - tolerance``;
that moment is computed from the stored TAT alone, so ``wait_ms`` is exact. A
missing key reads as "idle now", which is exactly what an expired TAT means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from ratescript.rates import Rate
from ratescript.scriptdsl import Key, allow, deny, floor, now_ms, script
from ratescript.strategies.base import Strategy
from ratescript.strategies.checks import check_horizon, check_number

__all__ = ["GCRAStatMetadata", "GCRAStrategy", "gcra"]


class GCRAStatMetadata(TypedDict):
    tat_ms: float
    emission_interval_ms: float
    conformant: float
    exceeds_capacity: float


@script
def gcra(tat: Key[float], interval: float, tolerance: float, cost: float):  # type: ignore[no-untyped-def]
    now = now_ms()
    stored = tat.get(default=now)
    # A TAT in the past is a drained bucket, the same as a key that expired (or was
    # evicted): report and decide from ``start`` so expiry never shows.
    start = max(stored, now)
    if cost * interval > tolerance + interval:
        return deny(
            wait_ms=tolerance + interval,
            remaining=max(0, floor((tolerance + interval - (start - now)) / interval)),
            reset_ms=start - now, tat_ms=start, emission_interval_ms=interval, conformant=0,
            exceeds_capacity=1,
        )  # fmt: skip
    allow_at = stored + cost * interval - interval - tolerance
    if now >= allow_at:
        new_tat = start + cost * interval
        # Before the write: a script that may fail after writing pays, on Redis, to save
        # the key first (see the Lua target's ``_rs_undo``).
        room = max(0, floor((tolerance + interval - (new_tat - now)) / interval))
        tat.set(new_tat, ttl_ms=new_tat - now + 1)
        return allow(
            remaining=room,
            reset_ms=new_tat - now, tat_ms=new_tat, emission_interval_ms=interval, conformant=1,
            exceeds_capacity=0,
        )  # fmt: skip
    return deny(
        wait_ms=allow_at - now,
        remaining=max(0, floor((tolerance + interval - (start - now)) / interval)),
        reset_ms=start - now, tat_ms=start, emission_interval_ms=interval, conformant=0,
        exceeds_capacity=0,
    )  # fmt: skip


@dataclass(frozen=True)
class GCRAStrategy(Strategy[GCRAStatMetadata]):
    """Hits spaced ``rate.expire / rate.limit`` ms apart, with ``burst_tolerance_ms`` of slack.

    With no tolerance, hits are evenly spaced: the smoothest limiter. Tolerance lets
    ``1 + tolerance / interval`` hits through at once. Memory: one number per key.
    """

    burst_tolerance_ms: float = 0.0
    script = gcra
    reuses_arguments = True
    hit_metadata = frozenset({"conformant", "exceeds_capacity"})

    def __post_init__(self) -> None:
        check_number("GCRAStrategy", "burst_tolerance_ms", self.burst_tolerance_ms, low_open=False)

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        interval = rate.expire / rate.limit
        tolerance = float(self.burst_tolerance_ms)
        check_horizon("GCRAStrategy", rate, interval + tolerance + 1, "burst_tolerance_ms")
        return (interval, tolerance, cost)
