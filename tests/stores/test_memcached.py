"""``MemcachedStore`` against real memcached servers: shared, private, restarted, silent.

No mocks: every test talks to a ``memcached`` started for the session or for itself;
faults come from a real server being killed, a socket that never answers, a server
that hangs up, or a proxy that holds back one reply. Time is a fake clock wherever a
decision depends on it; elapsed times are measured, never waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import itertools
import re
import shutil
import socket
import sys
import time
import warnings
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest
import pytest_asyncio
import servers
from hypothesis import given, settings
from hypothesis import strategies as st

from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.conformance.machine import check_stores, store_factory
from ratescript.decision import Decision
from ratescript.exceptions import (
    ConfigurationError,
    CorruptStateError,
    LockTimeoutError,
    ScriptRuntimeError,
    StoreConnectionError,
    StoreError,
)
from ratescript.rates import Rate
from ratescript.scriptdsl import Key, allow, deny, script
from ratescript.scriptdsl.codec import codec_for
from ratescript.scriptdsl.script import Script
from ratescript.stores import store_from_url
from ratescript.stores.memcached import MemcachedStore, memcached_exptime, memcached_key
from ratescript.stores.memory import InMemoryStore
from ratescript.strategies import FixedWindowStrategy

from .common import FakeClock, Pair, divide, exact, fresh_namespace, hit_sequence
from .concurrency import SHARED_RATE, run_contended, run_shared_keys
from .groups import check_a_cancelled_waiter_is_never_charged, check_queued_hits_fail_with_the_first
from .plain import check_a_ttl_must_be_a_finite_number

pytestmark = pytest.mark.memcached

HOUR_MS = 3_600_000.0
DAY_S = 86_400


@script
def two_keys(hits: Key[float], total: Key[Pair], limit: float):  # type: ignore[no-untyped-def]
    h = hits.get(default=0)
    t = total.get(default=Pair(0, 0))
    if h < limit:
        hits.set(h + 1, ttl_ms=3_600_000)
        total.set(Pair(t.first + 1, t.second + h), ttl_ms=3_600_000)
        return allow(remaining=limit - h - 1)
    return deny(wait_ms=1000, remaining=0)


@script
def take_all(k: Key[float]):  # type: ignore[no-untyped-def]
    v = k.get(default=0)
    k.delete()
    return allow(remaining=v)


def wire_key(store: MemcachedStore, key: str) -> bytes:
    return memcached_key(store.full_key(key))


# --- talking to memcached behind the store's back -------------------------------------------


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def raw(url: str, request: bytes, until: bytes = b"\r\n") -> bytes:
    """Send ``request`` on a connection of its own; the reply up to ``until``."""
    host = url.removeprefix("memcached://").rsplit(":", 1)[0]
    reader, writer = await asyncio.open_connection(host, _port(url))
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.readuntil(until), 5)
    finally:
        writer.close()
        await writer.wait_closed()


async def seconds_left(url: str, key: bytes) -> int:
    """The remaining TTL memcached reports for ``key`` (-1: none)."""
    reply = await raw(url, b"mg %s t\r\n" % key)
    found = re.fullmatch(rb"HD t(-?\d+)\r\n", reply)
    assert found, reply
    return int(found.group(1))


async def stats(url: str) -> dict[str, bytes]:
    reply = await raw(url, b"stats\r\n", until=b"END\r\n")
    return {
        name.decode(): value
        for _stat, name, value in (line.split(b" ", 2) for line in reply.splitlines()[:-1])
    }


# --- fixtures -------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def store(memcached_url: str) -> AsyncIterator[MemcachedStore]:
    """A store with a fake clock, in a namespace of its own, emptied afterwards."""
    async with MemcachedStore(
        memcached_url, namespace=fresh_namespace(), clock=FakeClock(), track_keys=True
    ) as store:
        yield store
        await store.reset()


def _require_memcached() -> None:
    if shutil.which("memcached") is None:
        servers.unavailable("memcached is not on PATH (apt-get install memcached)")


@pytest.fixture
def own_memcached() -> Iterator[servers.LocalServer]:
    """A private memcached, which the test may kill and start again on the same port."""
    _require_memcached()
    server = servers.start_memcached()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def clients(url: str, count: int) -> AsyncIterator[list[MemcachedStore]]:
    """Several stores on one namespace: separate connections, like separate processes."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(MemcachedStore(url, namespace="ns", clock=FakeClock()))
            for _ in range(count)
        ]


# --- the same decisions as the in-process store ---------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "compiled", [token_bucket, fixed_window, sliding_log], ids=lambda s: str(s.name)
)
@pytest.mark.parametrize("seed", [1, 2])
async def test_builtin_scripts_decide_exactly_like_the_in_memory_store(
    memcached_url: str, compiled: Script, seed: int
) -> None:
    clock = FakeClock()
    namespace = fresh_namespace()
    memory = InMemoryStore(namespace=namespace, clock=clock)
    keys = ["alice", "bob smith", "{tagged}:carol", "dave\n" * 60]  # unsafe and long ones too
    params = (5.0, HOUR_MS)
    async with MemcachedStore(
        memcached_url, namespace=namespace, clock=clock, track_keys=True
    ) as store:
        for now, key, cost in hit_sequence(seed, keys, (1.0, 2.0, 0.5, 7.0), params[1]):
            clock.now = now
            expected = exact(await memory.run(compiled, [key], (*params, cost)))
            assert exact(await store.run(compiled, [key], (*params, cost))) == expected, (now, key)
            # What the in-process store still holds, memcached holds byte for byte.
            held = await memory.get(key)
            if held is not None:
                assert await store.get(key) == held
        await store.reset()


def test_the_conformance_kit_passes(memcached_url: str) -> None:
    check_stores(
        {"memcached": store_factory(MemcachedStore, url=memcached_url)},
        max_examples=15,
        steps=20,
    )


@pytest.mark.asyncio
async def test_a_failing_script_fails_as_on_the_in_memory_store(store: MemcachedStore) -> None:
    memory = InMemoryStore(clock=FakeClock())
    for target in (memory, store):
        with pytest.raises(ScriptRuntimeError, match="division by zero"):
            await target.run(divide, ["k"], (1, 0))
    assert await store.get("k") is None


@pytest.mark.asyncio
async def test_a_script_deletes_a_key_only_if_unchanged_since_read(
    store: MemcachedStore,
) -> None:
    await store.run(divide, ["k"], (7, 1))
    assert (await store.run(take_all, ["k"], ())).remaining == 7
    assert await store.get("k") is None
    assert (await store.run(take_all, ["k"], ())).remaining == 0  # deleting nothing is fine


# --- several keys: the plan lock --------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_two_key_script_is_atomic_across_clients(
    own_memcached: servers.LocalServer,
) -> None:
    """Without the lock, a lost race on the second key after the first landed would
    apply the first write twice: ``hits`` and ``total`` would disagree."""
    async with clients(own_memcached.url, 4) as stores:
        decisions = await asyncio.gather(
            *(each.run(two_keys, ["hits", "total"], (1000,)) for each in stores for _ in range(25))
        )
        assert all(decision.allowed for decision in decisions)
        assert sorted(decision.remaining for decision in decisions) == list(range(900, 1000))
        assert await stores[0].multi_get(["hits", "total"]) == [
            b"100",
            b"100:4950",  # 0 + 1 + ... + 99: every run saw the hits of all runs before it
        ]


class WrittenBetween(MemcachedStore):
    """Lands another client's bytes on ``victim`` just before this store first writes it:
    a lock-free plan that read before the plan lock was taken, landing late."""

    url = ""
    victim = b""
    theirs = b""

    async def _write(self, codec: Any, key: bytes, *args: Any, **kwargs: Any) -> int | None:
        if key == self.victim and self.theirs:
            request = b"set %s 0 0 %d\r\n%s\r\n" % (key, len(self.theirs), self.theirs)
            assert await raw(self.url, request) == b"STORED\r\n"
            self.theirs = b""
        return await super()._write(codec, key, *args, **kwargs)


@pytest.mark.asyncio
async def test_a_plan_whose_later_write_loses_undoes_the_first_and_runs_again(
    memcached_url: str,
) -> None:
    store = WrittenBetween(memcached_url, namespace=fresh_namespace(), clock=FakeClock())
    store.url = memcached_url
    store.victim = memcached_key(store.full_key("{u}:total"))
    store.theirs = b"5:7"
    async with store:
        decision = await store.run(two_keys, ["{u}:hits", "{u}:total"], (10,))
        # Run again from their write: one hit counted once, their total kept and added to.
        assert decision.remaining == 9
        assert await store.multi_get(["{u}:hits", "{u}:total"]) == [b"1", b"6:7"]


@pytest.mark.asyncio
async def test_a_two_key_script_waits_for_its_lock(memcached_url: str) -> None:
    namespace = fresh_namespace()
    # The lock of the plans on hash tag "hits", held by someone else.
    lock_key = memcached_key(f"{namespace}#plan:hits")
    assert await raw(memcached_url, b"add %s 0 30 5\r\nother\r\n" % lock_key) == b"STORED\r\n"
    async with MemcachedStore(
        memcached_url, namespace=namespace, clock=FakeClock(), timeout=0.2
    ) as store:
        started = time.monotonic()
        with pytest.raises(LockTimeoutError, match=r"^memcached lock: plan lock of 'hits' is held"):
            await store.run(two_keys, ["{hits}:count", "{hits}:total"], (10,))
        assert 1.5 < time.monotonic() - started < 3.0  # a 2 s wait: memcached counts seconds
        # A single-key plan on the tag reads the lock with its key, and waits for it too:
        # while a plan of several keys holds them, a lone hit must not land in between.
        with pytest.raises(LockTimeoutError, match=r"plan lock of 'hits' is held"):
            await store.run(fixed_window, ["{hits}:count"], (10, HOUR_MS, 1))
        assert await store.multi_get(["{hits}:count", "{hits}:total"]) == [None, None]
        await raw(memcached_url, b"delete %s\r\n" % lock_key)
        assert (await store.run(two_keys, ["{hits}:count", "{hits}:total"], (10,))).remaining == 9
        assert await raw(memcached_url, b"get %s\r\n" % lock_key) == b"END\r\n"  # released


# --- races: compare-and-swap ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_clients_racing_on_one_key_retry_to_an_exact_count(
    own_memcached: servers.LocalServer,
) -> None:
    async def one_after_another(each: MemcachedStore) -> None:
        # One hit at a time per client: a client's own hits would run as one group.
        for _ in range(25):
            await each.run(fixed_window, ["k"], (1e9, 1e12, 1))

    async with clients(own_memcached.url, 8) as stores:
        before = await stats(own_memcached.url)
        await asyncio.gather(*(one_after_another(each) for each in stores))
        after = await stats(own_memcached.url)
        assert (await stores[0].get("k") or b"").endswith(b":200")
    assert int(after["cas_badval"]) > int(before["cas_badval"])  # races were lost, and retried


# --- a key this process last wrote: decided without reading it -----------------------------


async def round_trips(url: str, hits: Callable[[], Awaitable[object]]) -> int:
    """What ``hits`` asked of the server, as it counts: the keys read (``gets``, ``mg``)
    and the writes. A lock-free read of a key reads its tag's plan lock in the same
    ``gets``: two keys, one round trip."""
    before = await stats(url)
    await hits()
    after = await stats(url)
    return sum(int(after[name]) - int(before[name]) for name in ("cmd_get", "cmd_set"))


async def decides_alike(
    store: MemcachedStore, memory: InMemoryStore, compiled: Script, args: Sequence[float]
) -> None:
    """One hit on ``k``: the store decides exactly as the in-process store."""
    expected = exact(await memory.run(compiled, ["k"], args))
    assert exact(await store.run(compiled, ["k"], args)) == expected


@pytest.mark.asyncio
async def test_a_key_this_process_last_wrote_costs_one_round_trip_per_hit(
    own_memcached: servers.LocalServer,
) -> None:
    clock = FakeClock()
    memory = InMemoryStore(clock=clock)
    args = (5.0, HOUR_MS, 1.0)
    async with MemcachedStore(own_memcached.url, clock=clock) as store:

        def both() -> Awaitable[None]:
            return decides_alike(store, memory, token_bucket, args)

        assert await round_trips(own_memcached.url, both) == 3  # read (and the lock), write
        for _ in range(8):  # admitted ones write (ms C<token>), denied ones check (mg c)
            clock.now += 100.0
            assert await round_trips(own_memcached.url, both) == 1
        assert await store.get("k") == await memory.get("k")


@pytest.mark.parametrize(
    ("first", "then"),
    [(sliding_log, fixed_window), (token_bucket, sliding_log), (divide, token_bucket)],
    ids=lambda compiled: compiled.name,
)
@pytest.mark.asyncio
async def test_a_value_this_process_wrote_is_not_handed_to_a_script_of_another_shape(
    store: MemcachedStore, first: Script, then: Script
) -> None:
    """Our last write is reused only by a script that reads that shape; another one
    reads the stored bytes and fails on them exactly as in process and on Redis."""
    memory = InMemoryStore(clock=store.clock)

    def args(compiled: Script) -> tuple[float, ...]:
        return (5.0, HOUR_MS, 1.0)[: compiled.param_count]

    for target in (memory, store):
        await target.run(first, ["k"], args(first))
        with pytest.raises(CorruptStateError) as caught:
            await target.run(then, ["k"], args(then))
        assert caught.value.key == target.full_key("k")
    assert await store.get("k") == await memory.get("k")  # left as the first script wrote it


@pytest.mark.asyncio
async def test_a_key_someone_else_writes_is_read_again_until_our_write_is_seen_in_place(
    own_memcached: servers.LocalServer,
) -> None:
    clock = FakeClock()
    memory = InMemoryStore(clock=clock)
    args = (1e6, HOUR_MS, 1.0)
    async with (
        MemcachedStore(own_memcached.url, clock=clock) as mine,
        MemcachedStore(own_memcached.url, clock=clock) as other,  # as another process
    ):

        def hit(store: MemcachedStore) -> Awaitable[None]:
            clock.now += 1.0
            return decides_alike(store, memory, fixed_window, args)

        url = own_memcached.url
        # A read counts twice: the key and its tag's plan lock, in one `gets`.
        assert await round_trips(url, lambda: hit(mine)) == 3  # first sight: read, write
        assert await round_trips(url, lambda: hit(mine)) == 1  # as last written
        assert await round_trips(url, lambda: hit(other)) == 3
        assert await round_trips(url, lambda: hit(mine)) == 4  # stale: refused, read, write
        assert await round_trips(url, lambda: hit(mine)) == 3  # read first: shared key
        assert await round_trips(url, lambda: hit(mine)) == 1  # that read saw our write
        await raw(url, b"delete %s\r\n" % memcached_key(mine.full_key("k")))
        await memory.delete("k")
        assert await round_trips(url, lambda: hit(mine)) == 4  # gone: refused, read, add
        assert await mine.get("k") == await memory.get("k")


@pytest.mark.asyncio
async def test_a_denied_hit_on_a_key_deleted_behind_our_back_is_decided_afresh(
    own_memcached: servers.LocalServer,
) -> None:
    args = (2.0, HOUR_MS, 1.0)
    async with MemcachedStore(own_memcached.url, clock=FakeClock()) as store:
        assert [(await store.run(fixed_window, ["k"], args)).allowed for _ in range(3)] == [
            True,
            True,
            False,  # decided from what we wrote, confirmed by its token
        ]
        await raw(own_memcached.url, b"delete %s\r\n" % memcached_key(store.full_key("k")))
        assert (await store.run(fixed_window, ["k"], args)).remaining == 1.0


@pytest.mark.asyncio
async def test_a_token_from_before_a_restart_is_never_trusted_after_it(
    own_memcached: servers.LocalServer,
) -> None:
    """A restarted memcached numbers CAS tokens from 1 again: the token we last wrote
    may then belong to another value of the key. Set up exactly that; the store must
    decide from the value the server holds."""
    args = (10.0, HOUR_MS, 1.0)
    async with MemcachedStore(own_memcached.url, clock=FakeClock(), pool_size=1) as store:
        await store.run(fixed_window, ["k"], args)
        key = memcached_key(store.full_key("k"))
        written = await store.get("k")
        assert written is not None and written.endswith(b":1")
        token = int((await raw(own_memcached.url, b"mg %s c\r\n" % key)).split(b" c")[1])
        own_memcached.stop()
        own_memcached.start()
        for index in range(token - 1):  # fresh counter: 1, 2, ... up to token - 1
            await raw(own_memcached.url, b"set filler%d 0 0 1\r\nx\r\n" % index)
        count_five = written[: -len(b"1")] + b"5"
        request = b"set %s 0 0 %d\r\n%s\r\n" % (key, len(count_five), count_five)
        assert await raw(own_memcached.url, request) == b"STORED\r\n"
        assert await raw(own_memcached.url, b"mg %s c\r\n" % key) == b"HD c%d\r\n" % token
        decision = await store.run(fixed_window, ["k"], args)
    assert decision.remaining == 4.0  # the sixth hit of the window, not the second


# --- one process's hits on one key: run in groups ---------------------------------------------


@pytest.mark.asyncio
async def test_hits_that_queue_on_a_key_run_as_a_group_each_with_its_own_decision(
    own_memcached: servers.LocalServer,
) -> None:
    store = MemcachedStore(own_memcached.url, clock=FakeClock())
    before = await stats(own_memcached.url)
    decisions = await asyncio.gather(
        *(store.run(token_bucket, ["k"], (10.0, HOUR_MS, 1.0)) for _ in range(50))
    )
    after = await stats(own_memcached.url)
    # In arrival order, as if one after another: ten admitted, each seeing one token fewer.
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 40
    assert [d.remaining for d in decisions[:10]] == [9.0 - i for i in range(10)]
    assert {d.wait_ms for d in decisions[10:]} == {HOUR_MS / 10}
    # The first hit went alone (a read, a write), the 49 that queued behind it together,
    # from the state the first one wrote (a write): three round trips, not 100. (The read
    # is of two keys: the key and its tag's plan lock.)
    assert int(after["cmd_get"]) - int(before["cmd_get"]) == 2
    assert int(after["cmd_set"]) - int(before["cmd_set"]) == 2
    memory = InMemoryStore(clock=FakeClock())
    for _ in range(50):
        await memory.run(token_bucket, ["k"], (10.0, HOUR_MS, 1.0))
    assert await store.get("k") == await memory.get("k")
    await store.close()


@pytest.mark.asyncio
async def test_a_hit_that_fails_in_a_group_fails_alone(store: MemcachedStore) -> None:
    outcomes = await asyncio.gather(
        *(store.run(divide, ["k"], (1, b)) for b in (1, 1, 0, 1, 1)), return_exceptions=True
    )
    assert isinstance(outcomes[2], ScriptRuntimeError)
    assert [o.remaining for o in outcomes if isinstance(o, Decision)] == [0.0, 1.0, 2.0, 3.0]
    assert await store.get("k") == b"4"


@pytest.mark.asyncio
async def test_a_queued_hit_cancelled_before_its_turn_is_never_charged(
    store: MemcachedStore,
) -> None:
    await check_a_cancelled_waiter_is_never_charged(store)


@pytest.mark.asyncio
async def test_when_the_server_is_out_of_reach_queued_hits_fail_with_the_first(
    silent_port: int,
) -> None:
    store = MemcachedStore(f"memcached://127.0.0.1:{silent_port}", timeout=0.3)
    outcomes = await check_queued_hits_fail_with_the_first(
        store, 0.3, "the call before this one on its key failed"
    )
    assert "no answer" in str(outcomes[0])


@pytest.mark.parametrize(
    ("script_name", "args"),
    [
        ("token_bucket", (100.0, 1e12, 1.0)),  # capacity 100, refilled over ~30 years
        ("fixed_window", (100.0, 1e12, 1.0)),  # the current window runs 2001–2033
    ],
)
def test_exactly_the_limit_is_admitted_under_contention(
    memcached_url: str, script_name: str, args: tuple[float, ...]
) -> None:
    for _ in range(2):
        store_kwargs = {"url": memcached_url, "namespace": fresh_namespace(), "timeout": 30.0}
        admitted = run_contended(
            "ratescript.stores.memcached:MemcachedStore",
            store_kwargs,
            script_name,
            args,
            processes=4,
            hits=100,
        )
        assert admitted == 100


async def _counts(url: str, namespace: str, keys: Sequence[str]) -> list[float]:
    """How many hits each fixed-window key of ``run_shared_keys`` has counted."""
    window = FixedWindowStrategy()
    async with MemcachedStore(url, namespace=namespace) as store:
        stats = [await window.stat(key, SHARED_RATE, store) for key in keys]
    limit = Rate.from_value(SHARED_RATE).limit
    return [limit - stat.hits_remaining for stat in stats]


@pytest.mark.parametrize(
    "jobs",
    [
        # A key charged alone (lock-free) and in a group (locked) keeps every hit.
        [(["{u}:a", "{u}:b"], 150), (["{u}:b"], 150)] * 2,
        # Groups whose first keys carry different tags share a third key.
        [(["{u1}:a", "{g}:shared"], 150), (["{u2}:a", "{g}:shared"], 150), (["{g}:shared"], 150)],
    ],
    ids=["alone-and-grouped", "groups-of-several-tags"],
)
def test_a_key_shared_by_groups_and_lone_hits_counts_every_hit(
    memcached_url: str, jobs: list[tuple[list[str], int]]
) -> None:
    namespace = fresh_namespace()
    store_kwargs = {"url": memcached_url, "namespace": namespace, "timeout": 30.0}
    admitted = run_shared_keys("ratescript.stores.memcached:MemcachedStore", store_kwargs, jobs)
    assert admitted == sum(hits for _, hits in jobs)
    keys = sorted({key for job_keys, _ in jobs for key in job_keys})
    expected = [sum(hits for job_keys, hits in jobs if key in job_keys) for key in keys]
    assert asyncio.run(_counts(memcached_url, namespace, keys)) == expected


# --- failures -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_memcached_killed_mid_run_fails_fast_then_recovers_with_fresh_state(
    own_memcached: servers.LocalServer,
) -> None:
    timeout = 2.0
    args = (3.0, HOUR_MS, 1.0)
    async with MemcachedStore(own_memcached.url, clock=FakeClock(), timeout=timeout) as store:
        remaining = [(await store.run(token_bucket, ["k"], args)).remaining for _ in range(4)]
        assert remaining == [2, 1, 0, 0]

        await asyncio.to_thread(own_memcached.kill)
        outcomes = await asyncio.gather(
            *(store.run(token_bucket, ["k"], args) for _ in range(20)), return_exceptions=True
        )
        for outcome in outcomes:
            assert isinstance(outcome, StoreConnectionError), outcome
            assert str(outcome).startswith("memcached run token_bucket: cannot reach")
        started = time.monotonic()
        with pytest.raises(StoreConnectionError):
            await store.get("k")
        assert time.monotonic() - started < timeout / 4  # refused at once, not at the deadline

        await asyncio.to_thread(own_memcached.start)  # a new, empty server on the same port
        assert (await store.run(token_bucket, ["k"], args)).remaining == 2  # a fresh bucket

        # Restarted while this loop is blocked, so the pooled connections still look
        # alive: the store notices they were closed and resends on new ones.
        own_memcached.kill()
        own_memcached.start()
        assert (await store.run(token_bucket, ["k"], args)).remaining == 2


@pytest.mark.asyncio
async def test_a_key_deleted_behind_our_back_starts_fresh(
    store: MemcachedStore, memcached_url: str
) -> None:
    args = (3.0, HOUR_MS, 1.0)
    for _ in range(3):
        await store.run(token_bucket, ["k"], args)
    await raw(memcached_url, b"delete %s\r\n" % wire_key(store, "k"))  # as an eviction would
    assert (await store.run(token_bucket, ["k"], args)).remaining == 2


@pytest.mark.asyncio
async def test_a_log_written_by_another_client_is_read_afresh(
    store: MemcachedStore, memcached_url: str
) -> None:
    """The store keeps the logs it wrote decoded; different bytes are decoded again."""
    args = (3.0, HOUR_MS, 1.0)
    for remaining in (2.0, 1.0):  # the second read finds the bytes the first wrote
        assert (await store.run(sliding_log, ["k"], args)).remaining == remaining
    # another client filled the window
    full = codec_for(sliding_log.keys[0]).encode(([(store.clock() + HOUR_MS, 3.0)], 3.0))
    key = wire_key(store, "k")
    stored = await raw(memcached_url, b"set %s 0 0 %d\r\n%s\r\n" % (key, len(full), full))
    assert stored == b"STORED\r\n"
    assert not (await store.run(sliding_log, ["k"], args)).allowed
    await raw(memcached_url, b"delete %s\r\n" % key)
    assert (await store.run(sliding_log, ["k"], args)).remaining == 2.0


@pytest.mark.asyncio
async def test_a_server_that_never_answers_times_out(silent_port: int) -> None:
    timeout = 0.3
    store = MemcachedStore(f"memcached://127.0.0.1:{silent_port}", timeout=timeout)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "initialize": store.initialize,
        "run token_bucket": lambda: store.run(token_bucket, ["k"], (10, HOUR_MS, 1)),
        "get": lambda: store.get("k"),
        "lock": lambda: store.lock("l").__aenter__(),
    }
    for operation, call in calls.items():
        started = time.monotonic()
        with pytest.raises(StoreConnectionError, match=rf"^memcached {operation}: no answer"):
            await call()
        assert timeout * 0.9 <= time.monotonic() - started < timeout + 0.2
    await store.close()


@pytest.mark.asyncio
async def test_calls_in_flight_together_each_keep_their_own_deadline(silent_port: int) -> None:
    """The calls' deadlines share one timer; each still fails at its own, not sooner or later."""
    timeout = 0.4
    store = MemcachedStore(f"memcached://127.0.0.1:{silent_port}", timeout=timeout)

    async def get_after(delay: float) -> float:
        await asyncio.sleep(delay)
        started = time.monotonic()
        with pytest.raises(StoreConnectionError, match=r"^memcached get: no answer"):
            await store.get(f"k{delay}")
        return time.monotonic() - started

    elapsed = await asyncio.gather(*(get_after(delay) for delay in (0, 0, 0.1, 0.25, 0.3)))
    for each in elapsed:
        assert timeout * 0.9 <= each < timeout + 0.2
    await store.close()


@pytest.mark.asyncio
async def test_a_call_cancelled_from_outside_stays_cancelled(silent_port: int) -> None:
    store = MemcachedStore(f"memcached://127.0.0.1:{silent_port}", timeout=0.3)
    call = asyncio.ensure_future(store.get("k"))
    await asyncio.sleep(0.05)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # A deadline that expires leaves the caller's task as it found it: not cancelled.
    with pytest.raises(StoreConnectionError, match="no answer"):
        await store.get("k")
    if sys.version_info >= (3, 11):
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)
    await store.close()


@pytest.mark.asyncio
async def test_a_cancellation_that_meets_the_deadline_is_not_swallowed(silent_port: int) -> None:
    """3.11+ counts a task's cancellations, so the caller's one survives the deadline's;
    3.10 cannot tell them apart, and the documented fallback reads both as the expiry."""
    timeout = 0.2
    store = MemcachedStore(f"memcached://127.0.0.1:{silent_port}", timeout=timeout)
    call = asyncio.ensure_future(store.get("k"))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    loop.call_later(timeout, call.cancel)  # just after the call's deadline
    time.sleep(timeout + 0.1)  # blocks the loop: both come due in one iteration
    if sys.version_info >= (3, 11):
        with pytest.raises(asyncio.CancelledError):
            await call
    else:
        with pytest.raises(StoreConnectionError, match="no answer"):
            await call
    await store.close()


def test_deadlines_hold_when_the_store_moves_to_another_event_loop(silent_port: int) -> None:
    timeout = 0.3
    store = MemcachedStore(f"memcached://127.0.0.1:{silent_port}", timeout=timeout)

    async def cancelled_call() -> None:
        call = asyncio.ensure_future(store.get("k"))
        await asyncio.sleep(0.05)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call

    async def timed_out_call() -> float:
        started = time.monotonic()
        with pytest.raises(StoreConnectionError, match="no answer"):
            await asyncio.wait_for(store.get("k"), 5)  # never hangs the test
        return time.monotonic() - started

    asyncio.run(cancelled_call())  # leaves the deadline timer set on a loop now closed
    assert timeout * 0.9 <= asyncio.run(timed_out_call()) < timeout + 0.2
    asyncio.run(store.close())


def test_a_store_used_on_a_new_event_loop_connects_afresh(memcached_url: str) -> None:
    store = MemcachedStore(memcached_url, namespace=fresh_namespace(), pool_size=2)
    store.clock = FakeClock()

    async def hits() -> list[float]:
        # More hits than connections: some wait for one from the pool, on this loop.
        decisions = await asyncio.gather(
            *(store.run(token_bucket, [f"k{i}"], (10, HOUR_MS, 1)) for i in range(5))
        )
        return [decision.remaining for decision in decisions]

    with warnings.catch_warnings():
        # Never closed, the connections of each finished loop are left to the collector.
        warnings.simplefilter("ignore", ResourceWarning)
        # The second loop's first call wrote its request on the connection the first loop
        # had left, then failed reading the reply: RuntimeError.
        assert [asyncio.run(hits()) for _ in range(3)] == [[9.0] * 5, [8.0] * 5, [7.0] * 5]
        asyncio.run(store.close())
        gc.collect()


@pytest.mark.asyncio
async def test_a_server_that_hangs_up_fails_at_once() -> None:
    """aiomcache 0.8.2 spins forever on such a connection; the store must not."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hung = MemcachedStore(f"memcached://127.0.0.1:{port}", timeout=5.0)
    started = time.monotonic()
    with pytest.raises(StoreConnectionError, match=r"^memcached initialize: cannot reach"):
        await hung.initialize()
    with pytest.raises(StoreConnectionError, match=r"^memcached run token_bucket: cannot reach"):
        await hung.run(token_bucket, ["k"], (10, HOUR_MS, 1))
    assert time.monotonic() - started < 1.0  # not the 5 s deadline, and no endless loop
    await hung.close()
    server.close()
    await server.wait_closed()


class HoldingProxy:
    """A TCP proxy to memcached that can hold back the reply to the next write."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.hold_next_write = False
        self.release = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def __aenter__(self) -> HoldingProxy:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _connect(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [client_out, server_out]
        held = asyncio.Event()  # set while this connection's next reply must wait

        async def requests() -> None:
            while data := await client_in.read(65536):
                if self.hold_next_write and data.startswith((b"ms ", b"cas ", b"add ")):
                    self.hold_next_write = False
                    held.set()
                server_out.write(data)

        async def replies() -> None:
            while data := await server_in.read(65536):
                if held.is_set():
                    await self.release.wait()
                    held.clear()
                with contextlib.suppress(ConnectionError):
                    client_out.write(data)

        for pump in (requests(), replies()):
            task = asyncio.ensure_future(pump)
            self._tasks.add(task)


@pytest.mark.asyncio
async def test_a_reply_that_comes_too_late_never_answers_another_call(memcached_url: str) -> None:
    args = (10.0, HOUR_MS, 1.0)
    async with (
        HoldingProxy(_port(memcached_url)) as proxy,
        MemcachedStore(
            f"memcached://127.0.0.1:{proxy.port}", clock=FakeClock(), timeout=0.3, pool_size=1
        ) as store,
    ):
        assert (await store.run(fixed_window, ["k"], args)).remaining == 9
        proxy.hold_next_write = True
        with pytest.raises(StoreConnectionError, match="no answer"):
            await store.run(fixed_window, ["k"], args)  # its write landed; its reply is held
        proxy.release.set()
        # Had the connection gone back to the pool, this call would read the held
        # reply as its own. The server counted the timed-out hit.
        assert (await store.run(fixed_window, ["k"], args)).remaining == 7


@pytest.mark.asyncio
async def test_a_corrupt_value_is_reported_with_its_key_and_left_untouched(
    store: MemcachedStore,
) -> None:
    await store.set("k", b"garbage")
    with pytest.raises(CorruptStateError) as caught:
        await store.run(token_bucket, ["k"], (10, HOUR_MS, 1))
    assert caught.value.key == f"{store.namespace}:k"
    assert f"{store.namespace}:k" in str(caught.value)
    assert await store.get("k") == b"garbage"


@pytest.mark.asyncio
async def test_a_server_without_cas_is_refused(memcached_url: str) -> None:
    _require_memcached()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    no_cas = dataclasses.replace(
        servers.MEMCACHED, argv=lambda port: [*servers.MEMCACHED.argv(port), "-C"]
    )
    server = servers.LocalServer(no_cas, port)
    server.start()
    try:
        async with MemcachedStore(server.url, clock=FakeClock()) as store:
            await store.run(token_bucket, ["k"], (10, HOUR_MS, 1))  # created with add
            with pytest.raises(StoreError, match=r"CAS disabled \(memcached -C\)"):
                await store.run(token_bucket, ["k"], (10, HOUR_MS, 1))
    finally:
        server.stop()


# --- keys and TTLs --------------------------------------------------------------------------

_MEMCACHED_KEY = re.compile(rb"[\x21-\x7e]{1,250}")


@given(st.text(max_size=400), st.text(max_size=400))
@settings(max_examples=300)
def test_every_name_makes_a_valid_key_and_different_names_different_keys(
    first: str, second: str
) -> None:
    for name in (first, second):
        assert _MEMCACHED_KEY.fullmatch(memcached_key(name))
    if first != second:
        assert memcached_key(first) != memcached_key(second)


def test_keys_are_kept_readable_and_hashed_forms_cannot_be_forged() -> None:
    assert memcached_key("ns:user:42") == b"ns:user:42"
    hashed = memcached_key("ns:bob smith")
    assert hashed.startswith(b"ns:bob_smith#") and len(hashed) == 13 + 64
    assert memcached_key("ns:bob_smith") == b"ns:bob_smith"
    assert memcached_key(hashed.decode()) != hashed  # a name with '#' is hashed too
    assert len(memcached_key("x" * 251)) < 250 and memcached_key("x" * 250) == b"x" * 250


@pytest.mark.asyncio
async def test_long_and_unsafe_keys_work_and_do_not_collide(store: MemcachedStore) -> None:
    names = ["a b", "a_b", "tab\there", "new\nline", "ünïcödé", "x" * 300, "x" * 301, "#", ""]
    names += ["\ud800", "\U0001f600", "\ud83d\ude00"]  # a lone surrogate; one pair, two halves
    names.append(memcached_key(store.full_key("a b")).decode().removeprefix(store.namespace + ":"))
    for count, name in enumerate(names, start=1):
        for _ in range(count):
            await store.run(fixed_window, [name], (100, HOUR_MS, 1))
    for count, name in enumerate(names, start=1):
        decision = await store.run(fixed_window, [name], (100, HOUR_MS, 1))
        assert decision.remaining == 100 - count - 1, name


def test_ttls_are_rounded_up_to_whole_seconds_plus_the_one_memcached_may_cut() -> None:
    now = 1_700_000_000.5
    assert memcached_exptime(None, now) == 0  # never expires
    assert memcached_exptime(1, now) == 2  # a 1 s exptime may expire at once
    assert memcached_exptime(0.001, now) == 2
    assert memcached_exptime(1000, now) == 2
    assert memcached_exptime(1001, now) == 3
    thirty_days_ms = 30 * DAY_S * 1000
    assert memcached_exptime(thirty_days_ms - 1000, now) == 30 * DAY_S  # the largest relative
    assert memcached_exptime(thirty_days_ms, now) == 1_700_000_001 + 30 * DAY_S + 1  # absolute
    assert memcached_exptime(10 * 365 * DAY_S * 1000, now) == 1_700_000_001 + 3650 * DAY_S + 1
    # memcached reads 2**31 and above as negative (gone at once): cut to the last second
    # it can name, and to "never" once that has passed.
    assert memcached_exptime(2**31 * 1000, now) == 2**31 - 1
    assert memcached_exptime((2**31 - 1_700_000_002) * 1000, now) == 2**31 - 1
    assert memcached_exptime(31 * DAY_S * 1000, 2**31 - 2.5) == 2**31 - 1
    assert memcached_exptime(31 * DAY_S * 1000, 2**31 - 0.5) == 0
    assert memcached_exptime(31 * DAY_S * 1000, 2**32 + 5.0) == 0


@pytest.mark.asyncio
async def test_ttls_reach_memcached_as_intended(store: MemcachedStore, memcached_url: str) -> None:
    await store.set("short", b"v", ttl_ms=1)
    assert 1 <= await seconds_left(memcached_url, wire_key(store, "short")) <= 2
    await store.set("month", b"v", ttl_ms=31 * DAY_S * 1000)
    assert await store.get("month") == b"v"  # sent as seconds, it would mean 1970: gone
    # memcached's own clock runs up to a few seconds behind the wall clock
    assert abs(await seconds_left(memcached_url, wire_key(store, "month")) - 31 * DAY_S) <= 5
    await store.set("forever", b"v")
    assert await seconds_left(memcached_url, wire_key(store, "forever")) == -1
    # Past 2038-01-19 memcached's 32-bit exptime overflowed: the key was dropped at once.
    until_2038_s = 2**31 - 1 - time.time()
    decades_ms = 40 * 365 * DAY_S * 1000
    await store.set("decades", b"v", ttl_ms=decades_ms)
    assert await store.get("decades") == b"v"
    assert abs(await seconds_left(memcached_url, wire_key(store, "decades")) - until_2038_s) <= 5
    assert await store.increment_with_ttl("counter", 5, decades_ms) == 5
    assert await store.decrement("counter", 10) == -5  # through cas, keeping the TTL left
    assert await store.get("counter") == b"-5"
    await store.set("lasting", b"v", ttl_ms=HOUR_MS)
    assert await store.expire("lasting", decades_ms) is True
    assert await store.get("lasting") == b"v"
    await store.run(token_bucket, ["bucket"], (10, HOUR_MS, 1))  # TTL: 6 min + 1 ms
    assert 360 <= await seconds_left(memcached_url, wire_key(store, "bucket")) <= 362


# --- plain operations -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_plain_operations(store: MemcachedStore, memcached_url: str) -> None:
    assert await store.get("nope") is None
    await store.set("s", "text")
    await store.set("i", 42)
    await store.set("f", 0.1)
    assert await store.multi_get(["s", "nope", "i", "s", "f"]) == [
        b"text",
        None,
        b"42",
        b"text",
        b"0.10000000000000001",
    ]
    assert await store.multi_get([]) == []
    assert await store.delete("s") is True
    assert await store.delete("s") is False

    assert await store.increment("c") == 1
    assert await store.increment("c", 5) == 6
    assert await store.decrement("c", 10) == -4  # below zero, where memcached's decr stops
    assert await store.increment("c", 3) == -1
    assert await store.increment("c", 2) == 1
    assert await store.get("c") == b"1"
    assert await store.decrement("fresh", 2) == -2

    assert await store.increment_with_ttl("t", 5, 60_000) == 5
    assert await store.decrement("t", 10) == -5  # through cas: the TTL is kept
    assert 59 <= await seconds_left(memcached_url, wire_key(store, "t")) <= 61
    assert await store.expire("t", 600_000) is True
    assert 599 <= await seconds_left(memcached_url, wire_key(store, "t")) <= 601
    assert await store.expire("nope", 1000) is False

    # memcached's own decr leaves "9 " (space-padded) in place of "10"
    await raw(memcached_url, b"set %s 0 0 2\r\n10\r\n" % wire_key(store, "padded"))
    assert await raw(memcached_url, b"decr %s 1\r\n" % wire_key(store, "padded")) == b"9\r\n"
    assert await store.increment("padded") == 10

    await store.set("word", b"abc")
    with pytest.raises(StoreError, match=r"^memcached increment: value at '.*:word' is not an int"):
        await store.increment("word")
    with pytest.raises(StoreError, match=r"^memcached decrement: value at '.*:word' is not an int"):
        await store.decrement("word")


@pytest.mark.asyncio
async def test_a_ttl_must_be_a_finite_number(store: MemcachedStore) -> None:
    await check_a_ttl_must_be_a_finite_number(store)


@pytest.mark.asyncio
async def test_concurrent_increments_from_several_clients_are_exact(
    store: MemcachedStore, memcached_url: str
) -> None:
    async with MemcachedStore(memcached_url, namespace=store.namespace) as other:
        await asyncio.gather(
            *(target.increment("n", 2) for target in (store, other) for _ in range(50)),
            *(target.decrement("n") for target in (store, other) for _ in range(60)),
        )
    assert await store.get("n") == b"80"


# --- locks ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_lock_is_exclusive(store: MemcachedStore, memcached_url: str) -> None:
    inside = 0
    most_inside = 0

    async def critical_section(target: MemcachedStore) -> None:
        nonlocal inside, most_inside
        async with target.lock("l", ttl=30, blocking_timeout=30):
            inside += 1
            most_inside = max(most_inside, inside)
            await target.increment("counter")
            inside -= 1

    async with MemcachedStore(memcached_url, namespace=store.namespace) as other:
        await asyncio.gather(*(critical_section(target) for target in (store, other) * 10))
        assert most_inside == 1
        assert await store.get("counter") == b"20"

        async with store.lock("l", ttl=30):
            with pytest.raises(LockTimeoutError, match=r"^memcached lock: lock 'l' is held"):
                async with other.lock("l", blocking=False):
                    pass
        async with other.lock("l", blocking=False):  # released on exit
            pass


@pytest.mark.asyncio
async def test_lock_times_out(store: MemcachedStore) -> None:
    async with store.lock("l", ttl=30):
        started = time.monotonic()
        with pytest.raises(LockTimeoutError):
            async with store.lock("l", blocking_timeout=0.1):
                pass
        assert 0.08 <= time.monotonic() - started < 1.0


@pytest.mark.asyncio
async def test_lock_has_a_ttl_and_never_releases_a_lock_it_lost(
    store: MemcachedStore, memcached_url: str
) -> None:
    key = memcached_key(f"{store.namespace}#lock:l")
    async with store.lock("l", ttl=10):
        assert 10 <= await seconds_left(memcached_url, key) <= 11
        # As if ours expired and someone else took the lock.
        await raw(memcached_url, b"set %s 0 30 5\r\nother\r\n" % key)
    assert await raw(memcached_url, b"get %s\r\n" % key, until=b"END\r\n") == (
        b"VALUE %s 0 5\r\nother\r\nEND\r\n" % key
    )


# --- reset ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_reset_needs_track_keys(memcached_url: str) -> None:
    async with MemcachedStore(memcached_url, namespace=fresh_namespace()) as store:
        with pytest.raises(StoreError, match=r"^memcached reset: .*track_keys=True"):
            await store.reset()


@pytest.mark.asyncio
async def test_reset_deletes_what_the_store_created_in_its_namespace_only(
    memcached_url: str,
) -> None:
    namespace = fresh_namespace()
    async with (
        MemcachedStore(
            memcached_url, namespace=namespace, track_keys=True, clock=FakeClock()
        ) as store,
        MemcachedStore(
            memcached_url, namespace=fresh_namespace(), track_keys=True, clock=FakeClock()
        ) as neighbour,
        MemcachedStore(
            memcached_url, namespace=namespace, track_keys=True, clock=FakeClock()
        ) as twin,
    ):
        names = [f"k{index}" for index in range(300)] + ["a b" * 200]
        for name in names[:150]:
            await store.run(token_bucket, [name], (10, HOUR_MS, 1))
        for name in names[150:]:
            await twin.set(name, b"v")  # another client of the same namespace
        await store.increment("counter")
        await store.run(two_keys, ["{x}:x", "{x}:y"], (5,))
        await neighbour.set("k0", b"theirs")

        await store.reset()
        assert await store.multi_get([*names, "counter", "{x}:x", "{x}:y"]) == [None] * 304
        assert await neighbour.get("k0") == b"theirs"
        await store.reset()  # nothing left: still fine
        await neighbour.reset()


# The key index of track_keys: 64 items of space-separated keys, a key's item chosen by the
# CRC-32 of its Memcached key.
INDEX_ITEMS = 64


def index_item(store: MemcachedStore, number: int) -> bytes:
    return memcached_key(f"{store.namespace}#index:{number}")


def names_in_one_index_item(store: MemcachedStore, count: int) -> list[str]:
    """``count`` names (about 50 bytes each) whose keys the index lists in its item 0."""
    names = (f"user-{index}-{'x' * 40}" for index in itertools.count())
    in_item_0 = (name for name in names if zlib.crc32(wire_key(store, name)) % INDEX_ITEMS == 0)
    return list(itertools.islice(in_item_0, count))


async def index_entries(url: str, store: MemcachedStore) -> list[bytes]:
    """Every entry of the store's key index, read behind its back."""
    items = b" ".join(index_item(store, number) for number in range(INDEX_ITEMS))
    lines = (await raw(url, b"get %s\r\n" % items, until=b"END\r\n")).split(b"\r\n")
    # VALUE <key> <flags> <length>, then the item's data, a line of its own; then END.
    return [entry for data in lines[1:-2:2] for entry in data.split()]


class CompactingSoon(MemcachedStore):
    index_compact_after = 4


@pytest.mark.asyncio
async def test_a_key_is_listed_once_however_often_it_is_written(
    store: MemcachedStore, memcached_url: str
) -> None:
    for _ in range(5):
        await store.run(token_bucket, ["k"], (10, HOUR_MS, 1))
        # The later keys of a plan were listed on every hit.
        await store.run(two_keys, ["x", "y"], (10,))
    keys = [wire_key(store, name) for name in ("k", "x", "y")]
    assert sorted(await index_entries(memcached_url, store)) == sorted(keys)


@pytest.mark.asyncio
async def test_the_key_index_drops_keys_created_again_or_gone(memcached_url: str) -> None:
    store = CompactingSoon(
        memcached_url, namespace=fresh_namespace(), track_keys=True, clock=FakeClock()
    )
    first, gone, kept = names_in_one_index_item(store, 3)
    for name in (first, gone, kept):
        await store.run(fixed_window, [name], (10, HOUR_MS, 1))
    await store.delete(first)
    await store.delete(gone)
    await store.run(fixed_window, [first], (10, HOUR_MS, 1))  # created again: listed again
    # That was the item's 4th entry: it is compacted meanwhile, and close() waits for it.
    await store.close()
    listed = await index_entries(memcached_url, store)
    assert sorted(listed) == sorted(wire_key(store, name) for name in (first, kept))
    await store.reset()
    await store.close()


@pytest.fixture
def small_items_memcached() -> Iterator[servers.LocalServer]:
    """A private memcached whose items hold 1 KB at most (``-I 1k``): an index item is full
    after about 20 entries."""
    _require_memcached()
    options = ["-I", "1k", "-o", "slab_chunk_max=1024"]
    kind = dataclasses.replace(
        servers.MEMCACHED, argv=lambda port: [*servers.MEMCACHED.argv(port), *options]
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = servers.LocalServer(kind, port)
    server.start()
    yield server
    server.stop()


@pytest.mark.asyncio
async def test_a_full_key_index_never_fails_a_hit_and_is_compacted(
    small_items_memcached: servers.LocalServer,
) -> None:
    url = small_items_memcached.url
    store = MemcachedStore(url, namespace="ns", track_keys=True, clock=FakeClock())
    names = names_in_one_index_item(store, 62)
    for name in names[:60]:  # 3 KB of entries for one 1 KB item
        # Once the item was full: StoreError "cannot update the key index".
        assert (await store.run(fixed_window, [name], (10, HOUR_MS, 1))).remaining == 9
    await store.close()  # once the compactions started meanwhile have finished
    listed = await index_entries(url, store)
    assert 10 < len(listed) < 30 and set(listed) <= {wire_key(store, name) for name in names}
    for name in names[:60]:
        await store.delete(name)
    await store.close()
    # The item is full of keys that are gone: this key's entry does not fit (the key goes
    # unlisted), the item is compacted, and the next key is listed. Another process: this
    # one compacted the full item in vain (all live), and waits for 1024 more keys.
    other = MemcachedStore(url, namespace="ns", track_keys=True, clock=FakeClock())
    await other.run(fixed_window, [names[60]], (10, HOUR_MS, 1))
    await other.close()
    await other.run(fixed_window, [names[61]], (10, HOUR_MS, 1))
    assert await index_entries(url, other) == [wire_key(other, names[61])]
    await other.close()


# --- configuration and life cycle -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379",
        "memcached://",
        "memcached://127.0.0.1:port",
        "memcached://127.0.0.1:11211/0",
        "memcached://user:secret@127.0.0.1:11211",
        "127.0.0.1:11211",
        "memcached://127.0.0.1:0",  # not the default port: another server could answer there
        42,
    ],
)
def test_a_malformed_url_is_a_configuration_error_showing_an_example(url: object) -> None:
    with pytest.raises(ConfigurationError, match=r"memcached://127\.0\.0\.1:11211"):
        MemcachedStore(url)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        {"pool_size": 0},
        {"timeout": 0},
        {"timeout": float("nan")},
        {"timeout": 2**1100},  # no double holds it
        {"max_retries": -1},
        {"namespace": "app:eu"},  # namespace "app" with key "eu:x" would be this one's "x"
        {"namespace": "app#index"},  # the store's own items are named `namespace#...`
    ],
)
def test_bad_settings_are_configuration_errors(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        MemcachedStore("memcached://127.0.0.1:11211", **options)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_life_cycle(memcached_url: str) -> None:
    store = store_from_url(memcached_url, namespace=fresh_namespace(), clock=FakeClock())
    assert isinstance(store, MemcachedStore)
    assert not store.ready
    assert (await store.run(token_bucket, ["k"], (10, HOUR_MS, 1))).allowed  # lazily connected
    async with store:
        assert store.ready
    assert not store.ready
    await store.close()  # idempotent
    assert (await store.run(token_bucket, ["k"], (10, HOUR_MS, 1))).remaining == 8
    await store.close()
    for url in ("memcached://127.0.0.1", "memcached://127.0.0.1:"):  # no port: the default
        assert "127.0.0.1:11211" in repr(MemcachedStore(url))


@pytest.mark.asyncio
async def test_a_plan_keeps_its_connection_from_its_read_to_its_write(memcached_url: str) -> None:
    """Handed back to the pool between them, each plan's write queued behind the reads of
    every plan waiting for a connection: a burst larger than the pool serves within one
    ``timeout`` read every key in time and then failed every write (measured: 1,000
    concurrent hits on 10 connections all failed, with a 0.5 s timeout)."""
    store = MemcachedStore(
        memcached_url, namespace=fresh_namespace(), clock=FakeClock(), pool_size=1
    )
    wire = store._wire
    send = wire.send
    done: list[tuple[str, bytes]] = []  # (task, verb) as each reply came back

    async def recording(request: bytes, read: Any, newest: int | None = None) -> Any:
        reply = await send(request, read, newest)
        done.append((asyncio.current_task().get_name(), request.split(b" ", 1)[0]))  # type: ignore[union-attr]
        return reply

    wire.send = recording  # type: ignore[method-assign]
    hits = [
        asyncio.create_task(store.run(token_bucket, [f"k{i}"], (10, HOUR_MS, 1)), name=f"hit{i}")
        for i in range(3)
    ]
    assert [decision.remaining for decision in await asyncio.gather(*hits)] == [9.0] * 3
    tasks = [task for task, _ in done]
    assert tasks == sorted(tasks), done  # each hit's read and write, then the next hit's
    assert [verb for _, verb in done] == [b"gets", b"ms"] * 3
    await store.close()
