"""Concurrency limit: at most ``max_in_flight`` units held at once per key, as expiring leases.

A hit takes a *lease* of its cost that lasts ``lease_ms``; ``release`` gives units
back when the work is done; a lease whose holder died ends on its own at its
expiry. The leases are a log of ``(expiry, amount)`` entries, oldest first (leases
taken in the same millisecond merge, so memory is bounded by distinct
milliseconds). A hit trims the expired leases and is admitted while the held
units plus its cost fit; a rejected hit waits until enough leases expire — read
off the stored expiries with the arithmetic the trim itself does, so exact on a
key nobody releases in the meantime.

Leases are anonymous, so ``release`` gives back units from the *oldest* leases.
That is the safe end: the leases left expire no earlier than those of the
holders still at work, so no slot is freed before a working holder's own lease
would have ended. Giving back part of a merged entry needs a new log (the DSL
can drop whole entries, not shrink one), so the release script builds the log
anew from a second read of the key, emptied, and the entries it keeps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict

from ratescript.decision import Decision
from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.scriptdsl import Key, Log, allow, ceil, deny, now_ms, script
from ratescript.scriptdsl.script import Script
from ratescript.stores.base import Store
from ratescript.strategies.base import Strategy
from ratescript.strategies.checks import check_horizon, check_number

__all__ = [
    "ConcurrencyLimitStatMetadata",
    "ConcurrencyLimitStrategy",
    "concurrency_acquire",
    "concurrency_release",
]


class ConcurrencyLimitStatMetadata(TypedDict):
    in_flight: float
    max_in_flight: float
    #: When the oldest lease ends on its own (ms since the epoch; now if none).
    oldest_lease_expiry_ms: float
    exceeds_capacity: float


@script
def concurrency_acquire(  # type: ignore[no-untyped-def]
    leases: Key[Log], max_in_flight: float, lease_ms: float, cost: float
):
    now = now_ms()
    held = leases.get()
    held.trim(now)
    in_flight = held.sum()
    oldest = held.oldest(default=now)
    if cost > max_in_flight:
        return deny(
            wait_ms=lease_ms, remaining=max(0, max_in_flight - in_flight), reset_ms=oldest - now,
            in_flight=in_flight, max_in_flight=max_in_flight, oldest_lease_expiry_ms=oldest,
            exceeds_capacity=1,
        )  # fmt: skip
    if in_flight + cost <= max_in_flight:
        # Rounded up to the ms: leases of one millisecond merge, and none ends early.
        held.append(ceil(now) + lease_ms, cost)
        leases.set(held, ttl_ms=held.newest(default=now) - now + 1)
        return allow(
            remaining=max(0, max_in_flight - (in_flight + cost)),
            reset_ms=held.oldest(default=now) - now, in_flight=in_flight + cost,
            max_in_flight=max_in_flight, oldest_lease_expiry_ms=held.oldest(default=now),
            exceeds_capacity=0,
        )  # fmt: skip
    # The first expiry after which the hit fits, with the very arithmetic a later hit's
    # trim does (the running total less each lease, in order): with fractional costs any
    # other sum can round the other way. Once every lease has ended, the log is empty
    # (its total exactly 0) and the hit fits.
    rest = in_flight
    wait = held.newest(default=now) - now
    for expiry, amount in held:
        rest = rest - amount
        if rest + cost <= max_in_flight:
            wait = expiry - now
            break
    return deny(
        wait_ms=wait, remaining=max(0, max_in_flight - in_flight), reset_ms=oldest - now,
        in_flight=in_flight, max_in_flight=max_in_flight, oldest_lease_expiry_ms=oldest,
        exceeds_capacity=0,
    )  # fmt: skip


@script
def concurrency_release(leases: Key[Log], max_in_flight: float, cost: float):  # type: ignore[no-untyped-def]
    now = now_ms()
    held = leases.get()
    held.trim(now)
    # A log to build the kept leases in: a second read of the key, emptied.
    kept = leases.get()
    kept.trim(kept.newest(default=now))
    left = cost
    for expiry, amount in held:
        if left >= amount:
            left -= amount
        else:
            kept.append(expiry, amount - left)
            left = 0
    released = cost - left
    in_flight = kept.sum()
    if kept.count() == 0:
        leases.delete()
    else:
        leases.set(kept, ttl_ms=kept.newest(default=now) - now + 1)
    return allow(
        remaining=max(0, max_in_flight - in_flight), reset_ms=kept.oldest(default=now) - now,
        in_flight=in_flight, max_in_flight=max_in_flight,
        oldest_lease_expiry_ms=kept.oldest(default=now), released=released,
    )  # fmt: skip


@dataclass(frozen=True)
class ConcurrencyLimitStrategy(Strategy[ConcurrencyLimitStatMetadata]):
    """At most ``max_in_flight`` units of work in flight per key; leases end after ``lease_ms``.

    Args:
        max_in_flight: the units that may be held at once (default: ``rate.limit``).
        lease_ms: how long a lease lasts if it is never released (default:
            ``rate.expire``): longer than the slowest work it guards, or a slow
            holder's slot is given away while it still works.

    Take a slot with ``await strategy.hit(key, rate, store, cost)`` (or call the
    strategy), and give it back with ``await strategy.release(key, rate, store,
    cost)`` when the work is done — in a ``finally``. A release gives back exactly
    ``cost`` units (fewer if fewer are held), from the oldest leases.

    Accuracy: exact; a rejected hit's wait is until enough leases expire, so a
    release can admit it sooner. Memory: one log per key, an entry per millisecond
    with leases (at most ``max_in_flight`` entries for unit costs). Bursts: up to
    ``max_in_flight`` at once. Typical use: bounding concurrent expensive requests,
    uploads or websocket sessions per client.
    """

    max_in_flight: float | None = None
    lease_ms: float | None = None
    script = concurrency_acquire
    reuses_arguments = True
    #: The script ``release`` runs.
    release_script: ClassVar[Script] = concurrency_release

    def __post_init__(self) -> None:
        for name in ("max_in_flight", "lease_ms"):
            value = getattr(self, name)
            if value is not None:
                check_number("ConcurrencyLimitStrategy", name, value)

    def _max_in_flight(self, rate: Rate) -> float:
        return float(rate.limit if self.max_in_flight is None else self.max_in_flight)

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        lease = float(rate.expire if self.lease_ms is None else self.lease_ms)
        # A lease ends lease_ms after the millisecond it was taken in.
        check_horizon("ConcurrencyLimitStrategy", rate, lease + 1, "the lease")
        return (self._max_in_flight(rate), lease, cost)

    async def release(
        self,
        key: str,
        rate: Rate | str,
        store: Store,
        cost: float = 1,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Give back ``cost`` units of ``key``'s leases, oldest first.

        Returns an admitted ``Decision`` whose ``metadata["released"]`` is what was
        given back (less than ``cost`` when fewer units were held) and whose
        ``remaining`` is the free units after it.
        """
        rate = Rate.from_value(rate)
        if cost < 0 or cost != cost:
            raise ConfigurationError(f"a cost must be a number >= 0, got {cost!r}")
        if rate.unlimited:
            return Decision(True, 0.0, math.inf, 0.0)
        keys = self.keys(key, context)
        if cost == 0:
            seen = await store.run(self.script.readonly, keys, self.arguments(rate, 0, context))
            return Decision(True, 0.0, seen.remaining, seen.reset_ms, seen.metadata)
        return await store.run(self.release_script, keys, (self._max_in_flight(rate), float(cost)))
