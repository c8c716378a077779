"""Checks of ``stores.grouping``, shared by the stores that group their hits on a key.

One mechanism serves Redis and Memcached, so its promises are checked by one piece
of code, run against each store's real server (or a port that never answers).
"""

from __future__ import annotations

import asyncio
import time

from ratescript.builtin_scripts import fixed_window
from ratescript.decision import Decision
from ratescript.exceptions import StoreConnectionError
from ratescript.stores.base import Store


async def check_a_cancelled_waiter_is_never_charged(store: Store) -> None:
    """A hit cancelled while it waits behind the one at the server changes nothing."""
    hits = [asyncio.ensure_future(store.run(fixed_window, ["k"], (1e9, 1e12, 1))) for _ in range(5)]
    await asyncio.sleep(0)  # each has started: the first at the server, four queued
    hits[2].cancel()
    outcomes = await asyncio.gather(*hits, return_exceptions=True)
    assert isinstance(outcomes[2], asyncio.CancelledError)
    remaining = [o.remaining for o in outcomes if isinstance(o, Decision)]
    assert remaining == [1e9 - 1, 1e9 - 2, 1e9 - 3, 1e9 - 4]
    assert (await store.get("k") or b"").endswith(b":4")


async def check_queued_hits_fail_with_the_first(
    store: Store, timeout: float, predecessor_failed: str
) -> list[BaseException]:
    """Hits queued behind one that cannot reach the server fail when it does, with
    ``predecessor_failed`` in their message, within one deadline; returns the outcomes."""
    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(store.run(fixed_window, ["k"], (5, 1000, 1)) for _ in range(6)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    assert all(isinstance(o, StoreConnectionError) for o in outcomes), outcomes
    assert all(predecessor_failed in str(o) for o in outcomes[1:])
    assert elapsed < 2 * timeout  # one deadline for all, not one after another
    await store.close()
    return [o for o in outcomes if isinstance(o, BaseException)]
