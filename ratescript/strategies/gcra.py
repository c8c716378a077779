"""GCRA, the generic cell rate algorithm: one number of state per key.

The state is the theoretical arrival time (TAT): when the key would be idle again
if every admitted hit had been spaced one emission interval ``T`` (``period /
limit``) apart. A hit of cost ``c`` is admitted once ``now >= TAT + c·T - T -
tolerance - slack``; that moment is computed from the stored TAT alone, so
``wait_ms`` is exact. A missing key reads as "idle now", which is exactly what an
expired TAT means.

The TAT is a time since the epoch, where doubles are 2**-12 ms apart: ``TAT + T``
rounds unless ``T`` is a multiple of that, and a burst adding ``T`` hit after hit
would pile the roundings up until a burst of ``1 + tolerance / T`` hits came out
one short. Two things keep it exact:

* the written TAT is ``now`` plus the backlog ahead of it, and a backlog within
  ``slack`` of a whole number of intervals is taken as exactly that many, so a
  burst's TAT is always ``now + k·T`` rounded once, never k times;
* the admission test allows ``slack`` (``GCRA_SLACK_MS``, 2**-9 ms: under 2 µs) for
  that one rounding — so a burst admits exactly ``1 + tolerance / T`` hits when the
  tolerance is a whole number of intervals, and a hit may be admitted up to
  ``slack`` before its exact moment. (So ``T`` must be at least ``MIN_INTERVAL_MS``.)

``remaining`` is what the same test admits: ``floor((T + tolerance + slack -
backlog) / T)`` hits of cost 1, now, one after the other — computed on the backlog,
where the test itself compares times near the epoch, so the two can differ by one
where ``tolerance + slack`` is within a few doubles of the clock (a few 2**-12 ms) of a
whole number of intervals, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypedDict

from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.scriptdsl import Key, allow, deny, floor, now_ms, script
from ratescript.strategies.base import Strategy
from ratescript.strategies.checks import check_horizon, check_number

__all__ = [
    "GCRA_SLACK_MS",
    "MIN_INTERVAL_MS",
    "GCRAStatMetadata",
    "GCRAStrategy",
    "gcra",
]


class GCRAStatMetadata(TypedDict):
    tat_ms: float
    emission_interval_ms: float
    conformant: float
    exceeds_capacity: float


@script
def gcra(tat: Key[float], interval: float, room: float, cost: float):  # type: ignore[no-untyped-def]
    # room: interval + tolerance, the backlog a hit may leave.
    now = now_ms()
    slack = 0.001953125  # GCRA_SLACK_MS: see the module doc
    stored = tat.get(default=now)
    # A TAT in the past is a drained bucket, the same as a key that expired (or was
    # evicted): report and decide from ``start`` so expiry never shows.
    start = max(stored, now)
    ahead = start - now
    if cost * interval > room + slack:
        return deny(
            wait_ms=room, remaining=max(0, floor((room + slack - ahead) / interval)),
            reset_ms=ahead, tat_ms=start, emission_interval_ms=interval, conformant=0,
            exceeds_capacity=1,
        )  # fmt: skip
    allow_at = stored + cost * interval - room - slack
    if now >= allow_at:
        # A backlog of whole intervals but for rounding is exactly that: the TAT written
        # is `now` plus a whole number of intervals, rounded once however long the burst.
        whole = floor(ahead / interval + 0.5)
        if abs(ahead - whole * interval) <= slack:
            ahead = whole * interval
        after = ahead + cost * interval
        new_tat = now + after
        tat.set(new_tat, ttl_ms=after + 1)
        # (`interval` is divided by above, so this cannot fail after the write: no undo on
        # Redis, and the in-process runner that returns the wait alone skips it.)
        return allow(
            remaining=max(0, floor((room + slack - after) / interval)), reset_ms=after,
            tat_ms=new_tat, emission_interval_ms=interval, conformant=1, exceeds_capacity=0,
        )  # fmt: skip
    return deny(
        wait_ms=allow_at - now, remaining=max(0, floor((room + slack - ahead) / interval)),
        reset_ms=ahead, tat_ms=start, emission_interval_ms=interval, conformant=0,
        exceeds_capacity=0,
    )  # fmt: skip


#: The rounding a GCRA allows for (ms): a power of two, eight doubles apart at today's
#: epoch times (four from 2039), so well above the one rounding of a canonical TAT.
GCRA_SLACK_MS: Final = 2.0**-9
#: The shortest emission interval (ms), twice the slack: at 2**-13 ms a TAT near the
#: epoch would not move at all, and near the slack a burst would gain a hit.
MIN_INTERVAL_MS: Final = 2.0**-8


@dataclass(frozen=True)
class GCRAStrategy(Strategy[GCRAStatMetadata]):
    """Hits spaced ``rate.expire / rate.limit`` ms apart, with ``burst_tolerance_ms`` of slack.

    With no tolerance, hits are evenly spaced: the smoothest limiter. Tolerance lets
    ``1 + tolerance / interval`` hits through at once (a tolerance of exactly ``k``
    intervals lets ``k + 1`` through, for any interval: see the module doc). Memory:
    one number per key.
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
        if not interval >= MIN_INTERVAL_MS:
            raise ConfigurationError(
                f"GCRAStrategy at {rate}: an emission interval of {interval!r} ms is below "
                f"{MIN_INTERVAL_MS!r} ms, more than GCRA can pace at epoch times"
            )
        room = interval + float(self.burst_tolerance_ms)
        check_horizon(
            "GCRAStrategy", rate, room + GCRA_SLACK_MS + 1, "interval + burst_tolerance_ms"
        )
        return (interval, room, cost)
