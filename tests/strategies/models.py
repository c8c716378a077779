"""Plain-Python reference models of the eight strategies, in exact arithmetic.

Each model is written from the strategy's documented definition, not from its
script: ``hit(now, cost)`` returns ``(allowed, wait_ms, remaining)`` for a hit at
``now`` and applies it to the model's own state. Times and amounts are
``Fraction``s, so a model never rounds; ``wait_ms`` is the exact time until the
same hit would be admitted on an otherwise idle key, or ``None`` when the cost is
more than the strategy can ever admit (the strategies then answer some finite
wait with ``metadata["exceeds_capacity"] == 1``; the models do not prescribe it).

A cost of 0 is admitted and leaves the state as it was. ``remaining`` is what the
strategy reports: what is left after an admitted hit, what is left as it stands
after a rejected one.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, NamedTuple, Protocol

from ratescript.rates import Rate
from ratescript.strategies import (
    FixedWindowStrategy,
    GCRAStrategy,
    LeakyBucketStrategy,
    LeakyBucketWithQueueStrategy,
    SlidingWindowCounterStrategy,
    SlidingWindowLogStrategy,
    Strategy,
    TokenBucketStrategy,
    TokenBucketWithDebtStrategy,
)
from ratescript.strategies.gcra import GCRA_SLACK_MS

__all__ = [
    "GCRA",
    "FixedWindow",
    "LeakyBucket",
    "LeakyBucketWithQueue",
    "Model",
    "Outcome",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "TokenBucket",
    "TokenBucketWithDebt",
    "model_for",
]

Number = int | float | Fraction


class Outcome(NamedTuple):
    allowed: bool
    #: 0 when allowed; None when the cost can never be admitted.
    wait_ms: Fraction | None
    remaining: Fraction


class Model(Protocol):
    #: Whether the strategy's own arithmetic is exact for the parameters the tests
    #: draw (dyadic rates on a quarter-millisecond clock); False: waits involve a
    #: division that rounds, so only they are compared with a tolerance.
    exact_wait: bool

    def hit(self, now: Number, cost: Number) -> Outcome: ...


def _f(x: Number) -> Fraction:
    return x if isinstance(x, Fraction) else Fraction(x)


class FixedWindow:
    """At most ``limit`` per window ``[k·period, (k+1)·period)``; rejected hits do not count."""

    exact_wait = True

    def __init__(self, limit: Number, period_ms: Number) -> None:
        self.limit, self.period = _f(limit), _f(period_ms)
        self.start: Fraction | None = None
        self.count = Fraction(0)

    def hit(self, now: Number, cost: Number) -> Outcome:
        now, cost = _f(now), _f(cost)
        start = now // self.period * self.period
        if start != self.start:
            self.start, self.count = start, Fraction(0)
        if cost > self.limit:
            return Outcome(False, None, self.limit - self.count)
        if self.count + cost <= self.limit:
            self.count += cost
            return Outcome(True, Fraction(0), self.limit - self.count)
        return Outcome(False, start + self.period - now, self.limit - self.count)  # next window


class TokenBucketWithDebt:
    """Tokens refill at ``rate`` per ms up to ``capacity``; a hit may take them down to
    ``-max_debt``. A plain token bucket is the case ``max_debt == 0``."""

    exact_wait = True

    def __init__(self, capacity: Number, rate_per_ms: Number, max_debt: Number) -> None:
        self.capacity, self.rate, self.max_debt = _f(capacity), _f(rate_per_ms), _f(max_debt)
        self.tokens = self.capacity  # a new key is a full bucket
        self.stamp: Fraction | None = None

    def _refill(self, now: Fraction) -> None:
        if self.stamp is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def _remaining(self) -> Fraction:
        return max(Fraction(0), self.tokens + self.max_debt)

    def hit(self, now: Number, cost: Number) -> Outcome:
        now, cost = _f(now), _f(cost)
        self._refill(now)
        if cost > self.capacity + self.max_debt:
            return Outcome(False, None, self._remaining())
        if self.tokens - cost >= -self.max_debt:
            self.tokens -= cost
            return Outcome(True, Fraction(0), self._remaining())
        # Idle, the bucket regains ``rate`` per ms (it cannot fill past the capacity
        # first: the shortfall is at most capacity + max_debt - tokens).
        return Outcome(False, (cost - self.max_debt - self.tokens) / self.rate, self._remaining())


class TokenBucket(TokenBucketWithDebt):
    def __init__(self, capacity: Number, rate_per_ms: Number) -> None:
        super().__init__(capacity, rate_per_ms, 0)


class GCRA:
    """Theoretical arrival time: admit a hit of cost ``c`` while
    ``max(TAT, now) + c·T - now <= T + tolerance + slack``, then ``TAT = max(TAT, now) + c·T``.

    ``slack`` (``GCRA_SLACK_MS``, 2**-9 ms) is what the strategy allows for the rounding
    of a TAT near the epoch; a backlog within ``slack``
    of a whole number of intervals is taken as exactly that many (the strategy's
    canonical TAT; with the drawn cases, a backlog is whole or a quarter ms off).
    """

    exact_wait = True

    def __init__(self, interval_ms: Number, tolerance_ms: Number) -> None:
        self.interval, self.tolerance = _f(interval_ms), _f(tolerance_ms)
        self.slack = Fraction(GCRA_SLACK_MS)
        self.tat: Fraction | None = None  # none yet: idle

    def _room(self, ahead: Fraction) -> Fraction:
        """Hits of cost 1 that would be admitted now, one after the other."""
        slack = self.tolerance + self.interval + self.slack - ahead
        return Fraction(max(0, math.floor(slack / self.interval)))

    def hit(self, now: Number, cost: Number) -> Outcome:
        now, cost = _f(now), _f(cost)
        tat = now if self.tat is None else max(self.tat, now)
        limit = self.interval + self.tolerance + self.slack
        if cost * self.interval > limit:
            return Outcome(False, None, self._room(tat - now))
        if tat + cost * self.interval - now <= limit:
            ahead = tat - now
            whole = math.floor(ahead / self.interval + Fraction(1, 2))
            if abs(ahead - whole * self.interval) <= self.slack:
                ahead = whole * self.interval
            if cost:
                self.tat = now + ahead + cost * self.interval
            return Outcome(True, Fraction(0), self._room(ahead + cost * self.interval))
        return Outcome(False, tat + cost * self.interval - limit - now, self._room(tat - now))


class SlidingWindowLog:
    """Exactly ``limit`` in any window: an admitted hit at ``t`` counts until
    ``ceil(t) + period`` (excluded)."""

    exact_wait = True

    def __init__(self, limit: Number, period_ms: Number) -> None:
        self.limit, self.period = _f(limit), _f(period_ms)
        self.entries: list[tuple[Fraction, Fraction]] = []  # (expiry, cost), one per hit

    def _used_after(self, t: Fraction) -> Fraction:
        return sum((cost for expiry, cost in self.entries if expiry > t), Fraction(0))

    def hit(self, now: Number, cost: Number) -> Outcome:
        now, cost = _f(now), _f(cost)
        self.entries = [(expiry, c) for expiry, c in self.entries if expiry > now]
        used = self._used_after(now)
        if cost > self.limit:
            return Outcome(False, None, self.limit - used)
        if used + cost <= self.limit:
            if cost:
                self.entries.append((math.ceil(now) + self.period, cost))
            return Outcome(True, Fraction(0), self.limit - used - cost)
        # The first expiry after which what is left leaves room for the hit.
        fits_at = min(e for e, _ in self.entries if self._used_after(e) + cost <= self.limit)
        return Outcome(False, fits_at - now, self.limit - used)


class SlidingWindowCounter:
    """Windows aligned like the fixed window; the estimate at ``now`` is
    ``previous · (window end - now) / period + current``, admitted while
    ``estimate + cost <= limit``; rejected hits do not count."""

    exact_wait = False  # the wait divides by a hit count

    def __init__(self, limit: Number, period_ms: Number) -> None:
        self.limit, self.period = _f(limit), _f(period_ms)
        self.counts: dict[Fraction, Fraction] = {}  # window start -> admitted cost

    def _estimate(self, now: Fraction) -> tuple[Fraction, Fraction, Fraction, Fraction]:
        start = now // self.period * self.period
        current = self.counts.get(start, Fraction(0))
        previous = self.counts.get(start - self.period, Fraction(0))
        weighted = previous * (start + self.period - now) / self.period + current
        return start, current, previous, weighted

    def hit(self, now: Number, cost: Number) -> Outcome:
        now, cost = _f(now), _f(cost)
        start, current, previous, weighted = self._estimate(now)
        left = max(Fraction(0), self.limit - weighted)
        if cost > self.limit:
            return Outcome(False, None, left)
        if weighted + cost <= self.limit:
            if cost:
                self.counts[start] = current + cost
            return Outcome(True, Fraction(0), max(Fraction(0), self.limit - weighted - cost))
        # Idle, the estimate falls linearly: within this window as the previous one's
        # weight fades (enough once current + cost fits), else through the next window
        # as this one's weight fades.
        if current + cost <= self.limit:
            fits_at = start + self.period - (self.limit - current - cost) * self.period / previous
        else:
            end = start + self.period
            fits_at = end + self.period - (self.limit - cost) * self.period / current
        return Outcome(False, fits_at - now, left)


class LeakyBucket:
    """A meter of ``capacity`` draining ``leak`` per ms; a hit adds its cost if it fits."""

    exact_wait = True

    def __init__(self, capacity: Number, leak_per_ms: Number) -> None:
        self.capacity, self.leak = _f(capacity), _f(leak_per_ms)
        self.level = Fraction(0)
        self.stamp: Fraction | None = None

    def hit(self, now: Number, cost: Number) -> Outcome:
        now, cost = _f(now), _f(cost)
        if self.stamp is not None:
            self.level = max(Fraction(0), self.level - (now - self.stamp) * self.leak)
        self.stamp = now
        if cost > self.capacity:
            return Outcome(False, None, self.capacity - self.level)
        if self.level + cost <= self.capacity:
            self.level += cost
            return Outcome(True, Fraction(0), self.capacity - self.level)
        overflow = self.level + cost - self.capacity
        return Outcome(False, overflow / self.leak, self.capacity - self.level)


class LeakyBucketWithQueue:
    """Strict FIFO, one cost unit served per ``interval`` ms; a hit joins the queue if
    the cost units not yet served plus its own stay within ``max_queue``.

    ``delay_ms``: after an admitted hit, how long until it is served.
    """

    exact_wait = True

    def __init__(self, interval_ms: Number, max_queue: Number) -> None:
        self.interval, self.max_queue = _f(interval_ms), _f(max_queue)
        self.served_at: Fraction | None = None  # when everything admitted has been served
        self.delay_ms = Fraction(0)

    def hit(self, now: Number, cost: Number) -> Outcome:
        now, cost = _f(now), _f(cost)
        slot = now if self.served_at is None else max(self.served_at, now)
        backlog = (slot - now) / self.interval  # cost units admitted, not yet served
        left = max(Fraction(0), self.max_queue - backlog)
        if cost > self.max_queue:
            return Outcome(False, None, left)
        if backlog + cost <= self.max_queue:
            self.delay_ms = slot - now
            if cost:
                self.served_at = slot + cost * self.interval
            return Outcome(True, Fraction(0), max(Fraction(0), self.max_queue - backlog - cost))
        # The backlog shrinks by one unit per interval.
        fits_at = slot - (self.max_queue - cost) * self.interval
        return Outcome(False, fits_at - now, left)


def _rate_per_ms(rate: Rate) -> Fraction:
    return Fraction(rate.limit) / _f(rate.expire)


def model_for(strategy: Strategy[Any], rate: Rate) -> Model:
    """A fresh model of ``strategy`` at ``rate``, its defaults spelled out as documented."""
    limit, period = Fraction(rate.limit), _f(rate.expire)
    if isinstance(strategy, FixedWindowStrategy):
        return FixedWindow(limit, period)
    if isinstance(strategy, TokenBucketWithDebtStrategy):
        capacity = limit if strategy.burst_size is None else _f(strategy.burst_size)
        debt = capacity / 2 if strategy.max_debt is None else _f(strategy.max_debt)
        return TokenBucketWithDebt(capacity, _rate_per_ms(rate), debt)
    if isinstance(strategy, TokenBucketStrategy):
        capacity = limit if strategy.burst_size is None else _f(strategy.burst_size)
        return TokenBucket(capacity, _rate_per_ms(rate))
    if isinstance(strategy, GCRAStrategy):
        return GCRA(period / limit, _f(strategy.burst_tolerance_ms))
    if isinstance(strategy, SlidingWindowLogStrategy):
        return SlidingWindowLog(limit, period)
    if isinstance(strategy, SlidingWindowCounterStrategy):
        return SlidingWindowCounter(limit, period)
    if isinstance(strategy, LeakyBucketStrategy):
        capacity = limit if strategy.capacity is None else _f(strategy.capacity)
        return LeakyBucket(capacity, _rate_per_ms(rate))
    if isinstance(strategy, LeakyBucketWithQueueStrategy):
        queue = limit if strategy.max_queue is None else _f(strategy.max_queue)
        return LeakyBucketWithQueue(period / limit, queue)
    raise TypeError(f"no model of {type(strategy).__name__}")
