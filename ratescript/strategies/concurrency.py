"""Concurrency limit: at most ``max_in_flight`` units held at once per key, as expiring leases.

A hit takes a *lease* of its cost that lasts ``lease_ms``; ``release`` gives it
back when the work is done; a lease whose holder died ends on its own at its
expiry. The leases are a log of ``(expiry, amount)`` entries, oldest first, one
per lease. A hit trims the expired leases and is admitted while the held units
plus its cost fit; a rejected hit waits until enough leases expire — read off the
stored expiries with the arithmetic the trim itself does, so exact on a key
nobody releases in the meantime.

Each lease has an id, its expiry, returned as ``metadata["lease_id"]``: the expiry
rounded up to the millisecond, or just after the newest id on the key if that is
later, so no two leases on a key share one. ``release(..., lease=id)`` gives back
that lease and no other: once it has expired (its slot may be someone else's by
now) or been released, it gives back nothing. To keep ids apart after a release,
the newest lease stays in the log with nothing left in it until it would have
expired (at most one such entry; a hit drops it once it is the oldest). Giving
back part of an entry needs a new log (the DSL can drop whole entries, not shrink
one), so the release script builds the log anew from a second read of the key,
emptied, and the entries it keeps.

``release`` without a lease gives back units from the *oldest* leases, whoever
holds them: a holder whose own lease has expired, or who releases twice, frees a
slot of someone still at work. It is kept for callers that hold no id; prefer the
lease id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypedDict

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
    #: The id of the lease a hit of cost 1 would take now (its expiry; 0 if rejected).
    lease_id: float
    exceeds_capacity: float


@script
def concurrency_acquire(  # type: ignore[no-untyped-def]
    leases: Key[Log], max_in_flight: float, lease_ms: float, cost: float
):
    now = now_ms()
    held = leases.get()
    held.trim(now)
    # Ids only grow: a new one is after every id still on the key, released ones too.
    newest = held.newest(default=now)
    if held.oldest_amount(default=1) == 0:
        held.drop_oldest()  # a released lease kept for its id alone (see the release)
    in_flight = held.sum()
    oldest = held.oldest(default=now)
    if cost > max_in_flight:
        return deny(
            wait_ms=lease_ms, remaining=max(0, max_in_flight - in_flight), reset_ms=oldest - now,
            in_flight=in_flight, max_in_flight=max_in_flight, oldest_lease_expiry_ms=oldest,
            lease_id=0, exceeds_capacity=1,
        )  # fmt: skip
    if in_flight + cost <= max_in_flight:
        # The lease's id is its expiry: rounded up to the ms (none ends early), and at
        # least 2**-10 ms (four doubles at today's epoch times) after every other id on
        # the key, so a release names this lease alone.
        lease = max(ceil(now) + lease_ms, newest + 0.0009765625)
        # The oldest lease after the hit (a cost of 0, which only looks, takes none).
        first = lease if held.count() == 0 and cost > 0 else oldest
        held.append(lease, cost)
        leases.set(held, ttl_ms=lease - now + 1)
        return allow(
            remaining=max(0, max_in_flight - (in_flight + cost)), reset_ms=first - now,
            in_flight=in_flight + cost, max_in_flight=max_in_flight,
            oldest_lease_expiry_ms=first, lease_id=lease if cost > 0 else 0,
            exceeds_capacity=0,
        )  # fmt: skip
    # The first expiry after which the hit fits, with the very arithmetic a later hit's
    # trim does (the running total less each lease, in order); at the latest, when the
    # last lease ends (what may be left then is a released lease's id, of no units).
    rest = in_flight
    wait = lease_ms
    for expiry, amount in held:
        rest = rest - amount
        if amount > 0:
            wait = expiry - now
        if rest + cost <= max_in_flight:
            break
    return deny(
        wait_ms=wait, remaining=max(0, max_in_flight - in_flight), reset_ms=oldest - now,
        in_flight=in_flight, max_in_flight=max_in_flight, oldest_lease_expiry_ms=oldest,
        lease_id=0, exceeds_capacity=0,
    )  # fmt: skip


@script
def concurrency_release(  # type: ignore[no-untyped-def]
    leases: Key[Log], max_in_flight: float, lease: float, cost: float
):
    now = now_ms()
    held = leases.get()
    held.trim(now)
    newest = held.newest(default=now)
    # A log to build the kept leases in: a second read of the key, emptied.
    kept = leases.get()
    kept.trim(kept.newest(default=now))
    released = 0.0
    for expiry, amount in held:
        taken = 0.0
        if lease == 0 or expiry == lease:
            taken = min(cost - released, amount)
            released = released + taken
        # The newest lease stays even when emptied: its id is what keeps the next
        # lease's id apart from every id given so far (a double release finds it empty).
        if taken < amount or expiry == newest:
            kept.append(expiry, amount - taken)
    in_flight = kept.sum()
    if kept.count() == 0:
        leases.delete()
    else:
        leases.set(kept, ttl_ms=kept.newest(default=now) - now + 1)
    # An emptied lease is only ever kept as the newest: if it is the oldest, it is alone.
    oldest = kept.oldest(default=now) if kept.oldest_amount(default=0) > 0 else now
    return allow(
        remaining=max(0, max_in_flight - in_flight), reset_ms=oldest - now, in_flight=in_flight,
        max_in_flight=max_in_flight, oldest_lease_expiry_ms=oldest, released=released,
    )  # fmt: skip


#: The cost a release of a whole lease runs with: more than any lease holds (finite,
#: so it travels to every store as a number).
_WHOLE_LEASE: Final = 2.0**1000


@dataclass(frozen=True)
class ConcurrencyLimitStrategy(Strategy[ConcurrencyLimitStatMetadata]):
    """At most ``max_in_flight`` units of work in flight per key; leases end after ``lease_ms``.

    Args:
        max_in_flight: the units that may be held at once (default: ``rate.limit``).
        lease_ms: how long a lease lasts if it is never released (default:
            ``rate.expire``): longer than the slowest work it guards, or a slow
            holder's slot is given away while it still works.

    Take a slot with ``decision = await strategy.hit(key, rate, store, cost)`` and give
    it back with ``await strategy.release(key, rate, store,
    lease=decision.metadata["lease_id"])`` when the work is done — in a ``finally``.
    A release names its lease, so it is safe however late it comes or however often
    it runs: a lease that has expired, or was released already, gives back nothing
    (its slot may be another holder's by now). ``release`` without a lease gives
    back units of the oldest leases, whoever holds them (see ``release``).

    Accuracy: exact; a rejected hit's wait is until enough leases expire, so a
    release can admit it sooner. Memory: one log per key, an entry per lease (at most
    ``max_in_flight`` entries for unit costs), plus the newest released one until it
    would have expired. Bursts: up to ``max_in_flight`` at once. Typical use: bounding
    concurrent expensive requests, uploads or websocket sessions per client.
    """

    max_in_flight: float | None = None
    lease_ms: float | None = None
    script = concurrency_acquire
    reuses_arguments = True
    hit_metadata = frozenset({"lease_id", "exceeds_capacity"})
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
        cost: float | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        lease: float | None = None,
    ) -> Decision:
        """Give back the lease ``lease`` (a hit's ``metadata["lease_id"]``), or units.

        With ``lease``: that lease alone — all of it, or ``cost`` units of it. A lease
        that has expired or was released already gives back nothing, so a late or
        repeated release never frees a slot another holder took since.

        Without ``lease``: ``cost`` units (default 1) of the oldest leases, whoever
        holds them. A holder whose lease has expired, or who releases twice, then
        frees a slot of a holder still at work: use it only where no id is at hand.

        Returns an admitted ``Decision`` whose ``metadata["released"]`` is what was
        given back and whose ``remaining`` is the free units after it. A cost of 0
        only looks.
        """
        rate = Rate.from_value(rate)
        if lease is not None:
            lease = check_number("ConcurrencyLimitStrategy.release", "lease", lease)
        if cost is None:
            cost = 1.0 if lease is None else _WHOLE_LEASE
        elif isinstance(cost, bool) or not cost >= 0:
            raise ConfigurationError(f"a cost must be a number >= 0, got {cost!r}")
        if rate.unlimited:
            return Decision(True, 0.0, math.inf, 0.0)
        keys = self.keys(key, context)
        if cost == 0:
            seen = await store.run(self.script.readonly, keys, self.arguments(rate, 0, context))
            return Decision(True, 0.0, seen.remaining, seen.reset_ms, seen.metadata)
        arguments = (self._max_in_flight(rate), 0.0 if lease is None else lease, float(cost))
        return await store.run(self.release_script, keys, arguments)
