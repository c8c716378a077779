"""Quota with rollover: part of a period's unused quota carries over to the next period.

Periods are fixed windows aligned to multiples of ``rate.expire`` since the epoch.
Period ``k`` admits ``rate.limit + rollover_k``. A period's hits are drawn from its
rollover first (it lapses when the period ends), then from its own quota; the
next period's rollover is

    rollover_{k+1} = min(cap, rollover_percentage × unused_k),
    unused_k = max(0, min(limit, limit + rollover_k - used_k))

that is, a share of the period's *own* unused quota: carried quota is never
carried twice, so the quota of a period is at most ``limit + cap``, where ``cap``
is ``max_rollover`` (default: no cap beyond ``rollover_percentage × limit``).

A period with no hits leaves all its quota unused, so after an idle period the
rollover is full. A key with no history reads the same way — a new client starts
with the full rollover — and that is what lets the key expire two periods after
its last hit without changing any decision. One record holds the state: the
period index, its usage and its rollover; a rejected hit's wait (to the next
period, or the one after if the next one's rollover is too small) is exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from ratescript.rates import Rate
from ratescript.scriptdsl import Key, Record, allow, deny, now_ms, script, window_index
from ratescript.strategies.base import Strategy
from ratescript.strategies.checks import check_horizon, check_number

__all__ = [
    "Quota",
    "QuotaWithRolloverStatMetadata",
    "QuotaWithRolloverStrategy",
    "quota_with_rollover",
]


class Quota(Record):
    period: float  # the period's index: floor(time / period_ms)
    used: float
    rollover: float


class QuotaWithRolloverStatMetadata(TypedDict):
    base_limit: float
    rollover_amount: float
    effective_limit: float
    usage: float
    period_start_ms: float
    exceeds_capacity: float


@script
def quota_with_rollover(  # type: ignore[no-untyped-def]
    quota: Key[Quota], limit: float, period_ms: float, percentage: float, cap: float,
    cost: float,
):  # fmt: skip
    now = now_ms()
    index = window_index(now, period_ms)
    # A missing key is a key idle for more than a period: the full rollover, no usage.
    q = quota.get(default=Quota(index - 2, 0, 0))
    # A clock that steps back stays in the stored period.
    current = max(index, q.period)
    full = min(cap, percentage * limit)
    used = q.used
    rollover = q.rollover
    if current == q.period + 1:
        rollover = min(cap, percentage * max(0, min(limit, limit + q.rollover - q.used)))
        used = 0
    elif current > q.period + 1:
        rollover = full
        used = 0
    effective = limit + rollover
    start = current * period_ms
    end = (current + 1) * period_ms
    if cost > limit + full:
        return deny(
            wait_ms=period_ms, remaining=max(0, effective - used), reset_ms=end - now,
            base_limit=limit, rollover_amount=rollover, effective_limit=effective, usage=used,
            period_start_ms=start, exceeds_capacity=1,
        )  # fmt: skip
    if used + cost <= effective:
        quota.set(Quota(current, used + cost, rollover), ttl_ms=end + period_ms - now + 1)
        return allow(
            remaining=max(0, effective - (used + cost)), reset_ms=end - now, base_limit=limit,
            rollover_amount=rollover, effective_limit=effective, usage=used + cost,
            period_start_ms=start, exceeds_capacity=0,
        )  # fmt: skip
    # Next period: this one's rollover; if that is too small, the one after has the full.
    allow_at = end + period_ms
    if cost <= limit + min(cap, percentage * max(0, min(limit, limit + rollover - used))):
        allow_at = end
    return deny(
        wait_ms=allow_at - now, remaining=max(0, effective - used), reset_ms=end - now,
        base_limit=limit, rollover_amount=rollover, effective_limit=effective, usage=used,
        period_start_ms=start, exceeds_capacity=0,
    )  # fmt: skip


@dataclass(frozen=True)
class QuotaWithRolloverStrategy(Strategy[QuotaWithRolloverStatMetadata]):
    """``rate.limit`` per period plus a share of the previous period's unused quota.

    Args:
        rollover_percentage: the share of a period's unused quota that carries over
            to the next period (in [0, 1]; 0 makes this a fixed window).
        max_rollover: the most that can carry over (>= 0); ``None``: no cap beyond
            ``rollover_percentage × rate.limit``.

    With ``"1000/30days"``, ``rollover_percentage=0.5`` and ``max_rollover=300``: a
    month that used 200 of its own 1000 gives the next month 1300; one that used
    all of it gives 1000. The rollover is not rounded to whole hits.

    Accuracy: exact per period. Memory: one record per key, for two periods after
    its last hit. Bursts: a whole period's quota at once, as a fixed window. Typical
    use: monthly API quotas and credits that should not be "use it or lose it".
    """

    rollover_percentage: float = 0.5
    max_rollover: float | None = None
    script = quota_with_rollover
    reuses_arguments = True

    def __post_init__(self) -> None:
        owner = "QuotaWithRolloverStrategy"
        check_number(
            owner, "rollover_percentage", self.rollover_percentage, low_open=False, high=1.0
        )
        if self.max_rollover is not None:
            check_number(owner, "max_rollover", self.max_rollover, low_open=False)

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        # A period's usage decides the next period's rollover: two periods.
        check_horizon("QuotaWithRolloverStrategy", rate, 2 * rate.expire + 1, "the period")
        limit = float(rate.limit)
        percentage = float(self.rollover_percentage)
        # Without a cap, the share of a whole period's quota: no rollover can exceed it.
        cap = percentage * limit if self.max_rollover is None else float(self.max_rollover)
        return (limit, float(rate.expire), percentage, cap, cost)
