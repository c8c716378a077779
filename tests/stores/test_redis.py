"""``RedisStore`` against real Redis servers: standalone, killed and restarted, silent, Cluster.

No mocks and no fake Redis: every test talks to a ``redis-server`` started for it.
Time is injected (a fake clock) wherever a decision depends on it; elapsed times
are measured, never waited for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import servers
from ranged_logs import by_range
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.decision import Decision
from ratescript.exceptions import (
    ConfigurationError,
    CorruptStateError,
    LockTimeoutError,
    ScriptRuntimeError,
    StoreConnectionError,
    StoreError,
)
from ratescript.scriptdsl import Key, allow, deny, script
from ratescript.scriptdsl.codec import LOG_MAGIC, canonical
from ratescript.scriptdsl.script import Script
from ratescript.stores.memory import InMemoryStore
from ratescript.stores.redis import RedisStore

from .common import FakeClock, Pair, divide, exact, fresh_namespace, hit_sequence
from .concurrency import run_contended
from .groups import check_a_cancelled_waiter_is_never_charged, check_queued_hits_fail_with_the_first
from .plain import check_a_ttl_must_be_a_finite_number

pytestmark = pytest.mark.redis

HOUR_MS = 3_600_000.0


@script
def two_keys(hits: Key[float], total: Key[Pair], limit: float):  # type: ignore[no-untyped-def]
    h = hits.get(default=0)
    t = total.get(default=Pair(0, 0))
    if h < limit:
        hits.set(h + 1, ttl_ms=3_600_000)
        total.set(Pair(t.first + 1, t.second + h))
        return allow(remaining=limit - h - 1)
    return deny(wait_ms=1000, remaining=0)


def _require_binaries(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        servers.unavailable(f"{', '.join(missing)} not on PATH (apt-get install redis-server)")


@pytest_asyncio.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    """A plain redis-py client on the session server, to look behind the store's back."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    """A store with a fake clock, in a namespace of its own, emptied afterwards."""
    async with RedisStore(redis_url, namespace=fresh_namespace(), clock=FakeClock()) as store:
        yield store
        await store.reset()


@pytest.fixture
def own_redis() -> Iterator[servers.LocalServer]:
    """A private redis-server, which the test may kill and start again on the same port."""
    _require_binaries("redis-server")
    server = servers.start_redis()
    yield server
    server.stop()


# --- the same decisions as the in-process store ---------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("compiled", "params"),
    [
        (token_bucket, (5.0, HOUR_MS)),
        (fixed_window, (5.0, HOUR_MS)),
        (sliding_log, (5.0, HOUR_MS)),
        (by_range(sliding_log), (5.0, HOUR_MS)),
    ],
    ids=["token_bucket", "fixed_window", "sliding_log", "sliding_log_by_range"],
)
@pytest.mark.parametrize("seed", [1, 2])
async def test_builtin_scripts_decide_exactly_like_the_in_memory_store(
    redis_url: str, compiled: Script, params: tuple[float, float], seed: int
) -> None:
    clock = FakeClock()
    namespace = fresh_namespace()
    memory = InMemoryStore(namespace=namespace, clock=clock)
    keys = ["alice", "bob", "{tagged}:carol"]
    verdicts = set()
    async with RedisStore(redis_url, namespace=namespace, clock=clock) as redis:
        for now, key, cost in hit_sequence(seed, keys, (1.0, 2.0, 0.5, 7.0), params[1]):
            clock.now = now
            expected = exact(await memory.run(compiled, [key], (*params, cost)))
            assert exact(await redis.run(compiled, [key], (*params, cost))) == expected, (now, key)
            verdicts.add(expected[0])
            # What the in-process store still holds, Redis holds byte for byte (Redis may
            # also hold keys the fake clock has expired: its TTLs follow the wall clock),
            # once the entries a log dropped in place are left out.
            held = await memory.get(key)
            if held is not None:
                stored = await redis.get(key)
                assert stored is not None and canonical(stored) == held
        await redis.reset()
    assert verdicts == {True, False}  # the sequence exercised both admissions and denials


@pytest.mark.asyncio
async def test_server_clock_reads_redis_time(redis_url: str, raw: Redis) -> None:
    async with RedisStore(redis_url, namespace=fresh_namespace(), clock="server") as store:
        seconds, micros = await raw.time()
        before = seconds * 1000 + micros / 1000
        decision = await store.run(fixed_window, ["k"], (10, HOUR_MS, 1))
        seconds, micros = await raw.time()
        after = seconds * 1000 + micros / 1000
        # reset_ms = window end - now, so the script's "now" is recoverable.
        window_end = (before // HOUR_MS + 1) * HOUR_MS
        assert decision.allowed
        if window_end == (after // HOUR_MS + 1) * HOUR_MS:
            assert window_end - after <= decision.reset_ms <= window_end - before
        for _ in range(3):
            decision = await store.run(token_bucket, ["b"], (3, 1e9, 1))
        assert decision.allowed and decision.remaining < 1
        denied = await store.run(token_bucket, ["b"], (3, 1e9, 1))
        assert not denied.allowed and denied.wait_ms > 0
        await store.reset()


# --- one round trip, cached scripts --------------------------------------------------------


async def command_calls(client: Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    changed = {name: after[name] - before.get(name, 0) for name in after}
    return {name: calls for name, calls in changed.items() if calls}


@pytest.mark.asyncio
async def test_one_evalsha_per_decision(own_redis: servers.LocalServer) -> None:
    """Each decision is one EVALSHA; the GET and SET inside the script are all else (it
    cannot fail after its write, so it saves nothing first: see ``_rs_undo``)."""
    client = Redis.from_url(own_redis.url)
    async with RedisStore(own_redis.url, clock=FakeClock()) as store:
        await store.run(token_bucket, ["warm"], (1000, HOUR_MS, 1))  # loads the script
        before = await command_calls(client)
        for index in range(50):
            assert (await store.run(token_bucket, [f"k{index % 5}"], (1000, HOUR_MS, 1))).allowed
        after = await command_calls(client)
    await client.aclose()
    assert delta(before, after) == {"evalsha": 50, "get": 50, "set": 50, "info": 1}


@pytest.mark.asyncio
async def test_noscript_after_script_flush_is_recovered_in_one_extra_call(
    own_redis: servers.LocalServer,
) -> None:
    client = Redis.from_url(own_redis.url)
    async with RedisStore(own_redis.url, clock=FakeClock()) as store:
        first = await store.run(token_bucket, ["k"], (10, HOUR_MS, 1))
        await client.script_flush()
        assert await client.script_exists(token_bucket.lua_sha) == [False]
        before = await command_calls(client)
        second = await store.run(token_bucket, ["k"], (10, HOUR_MS, 1))
        after = await command_calls(client)
        third = await store.run(token_bucket, ["k"], (10, HOUR_MS, 1))
    assert await client.script_exists(token_bucket.lua_sha) == [True]
    await client.aclose()
    assert (first.remaining, second.remaining, third.remaining) == (9, 8, 7)
    assert delta(before, after) == {"evalsha": 1, "eval": 1, "get": 1, "set": 1, "info": 1}


# --- one process's hits on one key: sent in groups --------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "compiled",
    [token_bucket, sliding_log, by_range(sliding_log)],
    ids=["token_bucket", "sliding_log", "sliding_log_by_range"],
)
async def test_hits_that_queue_on_a_key_run_as_a_group_each_with_its_own_decision(
    own_redis: servers.LocalServer, compiled: Script
) -> None:
    client = Redis.from_url(own_redis.url)
    await client.script_load(compiled.lua_source)
    await client.script_load(compiled.lua_batch_source)
    store = RedisStore(own_redis.url, clock=FakeClock())
    before = await command_calls(client)
    decisions = await asyncio.gather(
        *(store.run(compiled, ["k"], (10.0, HOUR_MS, 1.0)) for _ in range(250))
    )
    after = await command_calls(client)
    # In arrival order, as if one after another: ten admitted, each seeing one fewer.
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 240
    assert [d.remaining for d in decisions[:10]] == [9.0 - i for i in range(10)]
    # The first hit went alone, the 249 that queued behind it in groups of at most 100.
    assert delta(before, after)["evalsha"] == 4
    memory = InMemoryStore(clock=FakeClock())
    expected = [await memory.run(compiled, ["k"], (10.0, HOUR_MS, 1.0)) for _ in range(250)]
    assert decisions == expected
    assert canonical(await store.get("k") or b"") == await memory.get("k")
    await store.close()
    await client.aclose()


@pytest.mark.asyncio
async def test_groups_survive_script_flush(own_redis: servers.LocalServer) -> None:
    client = Redis.from_url(own_redis.url)
    store = RedisStore(own_redis.url, clock=FakeClock())
    for _ in range(2):  # the second time, after SCRIPT FLUSH
        await asyncio.gather(*(store.run(fixed_window, ["k"], (1e9, 1e12, 1)) for _ in range(5)))
        assert await client.script_exists(fixed_window.lua_batch_sha) == [True]
        await client.script_flush()
    assert (await store.get("k") or b"").endswith(b":10")
    await store.close()
    await client.aclose()


@pytest.mark.asyncio
async def test_a_hit_that_fails_in_a_group_fails_alone(store: RedisStore) -> None:
    memory = InMemoryStore(clock=store.clock)
    with pytest.raises(ScriptRuntimeError) as alone:
        await memory.run(divide, ["k"], (1, 0))
    outcomes = await asyncio.gather(
        *(store.run(divide, ["k"], (1, b)) for b in (1, 1, 0, 1, 1)), return_exceptions=True
    )
    assert isinstance(outcomes[2], ScriptRuntimeError)
    assert str(outcomes[2]) == str(alone.value)  # the same DSL file and line
    assert [o.remaining for o in outcomes if isinstance(o, Decision)] == [0.0, 1.0, 2.0, 3.0]
    assert await store.get("k") == b"4"


@pytest.mark.asyncio
async def test_a_group_meeting_a_value_of_another_type_fails_each_hit(
    store: RedisStore, raw: Redis
) -> None:
    await raw.rpush(store.full_key("k"), b"a list")
    outcomes = await asyncio.gather(
        *(store.run(token_bucket, ["k"], (10, HOUR_MS, 1)) for _ in range(4)),
        return_exceptions=True,
    )
    for outcome in outcomes:
        assert isinstance(outcome, StoreError) and "WRONGTYPE" in str(outcome)
        assert str(outcome).startswith("redis run token_bucket: ")
        assert not isinstance(outcome, CorruptStateError | StoreConnectionError)


@pytest.mark.asyncio
async def test_a_queued_hit_cancelled_before_its_turn_is_never_charged(store: RedisStore) -> None:
    await check_a_cancelled_waiter_is_never_charged(store)


@pytest.mark.asyncio
async def test_when_the_server_is_out_of_reach_queued_hits_fail_with_the_first(
    silent_port: int,
) -> None:
    store = RedisStore(f"redis://127.0.0.1:{silent_port}/0", timeout=0.3)
    await check_queued_hits_fail_with_the_first(
        store, 0.3, "the call before this one on its keys failed"
    )


# --- failures -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_redis_killed_mid_run_fails_fast_then_recovers_on_its_own(
    own_redis: servers.LocalServer,
) -> None:
    timeout = 2.0
    outcomes: list[tuple[str, float]] = []
    down = asyncio.Event()
    back = asyncio.Event()
    stop = False

    async with RedisStore(own_redis.url, clock=FakeClock(), timeout=timeout) as store:

        async def hammer() -> None:
            while not stop:
                started = time.monotonic()
                try:
                    await store.run(token_bucket, ["k"], (1e6, HOUR_MS, 1))
                    outcomes.append(("ok", time.monotonic() - started))
                    if down.is_set():
                        back.set()
                except StoreConnectionError as exc:
                    assert str(exc).startswith("redis run token_bucket: cannot reach")
                    outcomes.append(("down", time.monotonic() - started))
                    down.set()
                await asyncio.sleep(0)

        workers = [asyncio.create_task(hammer()) for _ in range(4)]
        while len(outcomes) < 20:
            await asyncio.sleep(0)
        await asyncio.to_thread(own_redis.kill)
        await asyncio.wait_for(down.wait(), 30)
        while sum(kind == "down" for kind, _ in outcomes) < 20:
            await asyncio.sleep(0)
        await asyncio.to_thread(own_redis.start)  # a new, empty server on the same port
        await asyncio.wait_for(back.wait(), 30)
        stop = True
        await asyncio.gather(*workers)

        failed = [elapsed for kind, elapsed in outcomes if kind == "down"]
        # A refused connection fails at once (a few ms here), not at the deadline.
        assert max(failed) < timeout / 4
        assert outcomes[-1][0] == "ok"
        # The restarted server had no scripts: the store loaded it again by itself.
        client = Redis.from_url(own_redis.url)
        assert await client.script_exists(token_bucket.lua_sha) == [True]
        await client.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("given", ["url", "client without timeouts"])
async def test_a_server_that_never_answers_times_out(silent_port: int, given: str) -> None:
    timeout = 0.3
    client = Redis(host="127.0.0.1", port=silent_port)  # no socket timeout of its own
    target = f"redis://127.0.0.1:{silent_port}/0" if given == "url" else client
    store = RedisStore(target, timeout=timeout, clock=FakeClock())
    for attempt in ("initialize", "run"):
        started = time.monotonic()
        expected = rf"^redis {attempt}\b.*: cannot reach redis://127.0.0.1:{silent_port}/0: "
        with pytest.raises(StoreConnectionError, match=expected):
            if attempt == "initialize":
                await store.initialize()
            else:
                await store.run(token_bucket, ["k"], (10, HOUR_MS, 1))
        assert timeout * 0.9 <= time.monotonic() - started < timeout + 0.2
    await store.close()
    await client.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("given", ["keyword", "url"])
async def test_a_burst_beyond_max_connections_waits_for_a_connection(
    own_redis: servers.LocalServer, given: str
) -> None:
    client = Redis.from_url(own_redis.url)
    if given == "keyword":
        store = RedisStore(own_redis.url, clock=FakeClock(), max_connections=3)
    else:  # redis-py lets the query win over keywords: it must not bound the pool itself
        store = RedisStore(f"{own_redis.url}?max_connections=3", clock=FakeClock())
    # 20 keys: hits on one key would queue behind one call (see the groups below).
    decisions = await asyncio.gather(
        *(store.run(token_bucket, [f"k{i % 20}"], (1000, HOUR_MS, 1)) for i in range(200))
    )  # used without initialize(): the store connects on first use
    assert sorted(decision.remaining for decision in decisions) == sorted([*range(990, 1000)] * 20)
    clients = await client.info("clients")
    assert clients["connected_clients"] <= 3 + 1  # the store's and ours
    await store.close()
    await client.aclose()


@pytest.mark.asyncio
async def test_a_corrupt_value_is_reported_with_its_key_and_left_untouched(
    store: RedisStore,
) -> None:
    await store.set("k", b"garbage")
    with pytest.raises(CorruptStateError) as caught:
        await store.run(token_bucket, ["k"], (10, HOUR_MS, 1))
    assert caught.value.key == f"{store.namespace}:k"
    assert f"{store.namespace}:k" in str(caught.value)
    assert await store.get("k") == b"garbage"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"1:1,2:3",  # the text layout of earlier versions
        LOG_MAGIC + struct.pack("<2d", 0.0, 0.0) + b"x",  # not a whole entry
        b"XXXX" + struct.pack("<4d", 0.0, 0.0, 1.0, 1.0),  # wrong magic
        LOG_MAGIC + struct.pack("<4d", 1.0, 2.0, 1.0, 1.0),  # drops more than it holds
        LOG_MAGIC + struct.pack("<4d", 1.0, 0.5, 1.0, 1.0),  # drops half an entry
    ],
    ids=["empty", "text", "ragged", "magic", "overdropped", "half-dropped"],
)
async def test_a_corrupt_log_is_reported_like_on_the_in_memory_store(
    store: RedisStore, raw: bytes
) -> None:
    memory = InMemoryStore(namespace=store.namespace, clock=store.clock)
    for target in (memory, store):
        await target.set("log", raw)
        with pytest.raises(CorruptStateError, match="expected a log") as caught:
            await target.run(sliding_log, ["log"], (5, HOUR_MS, 1))
        assert caught.value.key == f"{store.namespace}:log"
        assert await target.get("log") == raw


@pytest.mark.asyncio
async def test_a_failing_script_fails_as_on_the_in_memory_store(store: RedisStore) -> None:
    memory = InMemoryStore(clock=store.clock)
    with pytest.raises(ScriptRuntimeError, match="division by zero") as in_memory:
        await memory.run(divide, ["k"], (1, 0))
    with pytest.raises(ScriptRuntimeError, match="division by zero") as in_redis:
        await store.run(divide, ["k"], (1, 0))
    assert str(in_redis.value) == str(in_memory.value)  # same DSL file and line


@script
def counts_then_fails(k: Key[float], y: float):  # type: ignore[no-untyped-def]
    n = k.get(default=0)
    k.set(n + 1, ttl_ms=3_600_000)
    return allow(remaining=n / y)  # fails for y == 0, after the write


@pytest.mark.asyncio
async def test_a_script_that_fails_after_writing_leaves_its_keys_as_they_were(
    store: RedisStore, raw: Redis
) -> None:
    assert (await store.run(counts_then_fails, ["k"], (1,))).remaining == 0
    await store.set("kept", b"5")  # no TTL
    before = await raw.pttl(store.full_key("k"))
    for key in ("k", "kept", "missing"):
        with pytest.raises(ScriptRuntimeError, match="division by zero"):
            await store.run(counts_then_fails, [key], (0,))
    assert await store.get("k") == b"1"
    assert 0 <= before - await raw.pttl(store.full_key("k")) < 1000  # its TTL, as it was
    assert await store.get("kept") == b"5"
    assert await raw.pttl(store.full_key("kept")) == -1
    assert await store.get("missing") is None
    # In a group, the hit that fails alone puts back only what it wrote.
    outcomes = await asyncio.gather(
        *(store.run(counts_then_fails, ["g"], (y,)) for y in (1, 1, 0, 1)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[2], ScriptRuntimeError)
    assert [o.remaining for o in outcomes if isinstance(o, Decision)] == [0.0, 1.0, 2.0]
    assert await store.get("g") == b"3"


@pytest.mark.asyncio
async def test_other_redis_errors_are_store_errors(store: RedisStore, raw: Redis) -> None:
    await raw.rpush(store.full_key("k"), b"a list")
    with pytest.raises(StoreError, match=r"^redis run token_bucket: WRONGTYPE") as caught:
        await store.run(token_bucket, ["k"], (10, HOUR_MS, 1))
    assert not isinstance(caught.value, CorruptStateError | StoreConnectionError)


# --- plain operations -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_plain_operations(store: RedisStore, raw: Redis) -> None:
    assert await store.get("a") is None
    await store.set("a", b"bytes")
    await store.set("b", "text", ttl_ms=60_000.5)
    await store.set("c", 0.1)
    await store.set("d", 12)
    assert await store.multi_get(["a", "b", "c", "d", "missing"]) == [
        b"bytes",
        b"text",
        b"0.10000000000000001",
        b"12",
        None,
    ]
    assert await store.multi_get([]) == []
    assert await raw.pttl(store.full_key("a")) == -1
    assert 59_000 < await raw.pttl(store.full_key("b")) <= 60_001

    assert await store.delete("a") is True
    assert await store.delete("a") is False

    assert await store.increment("n") == 1
    assert await store.increment("n", 5) == 6
    assert await store.decrement("n", 2) == 4
    with pytest.raises(StoreError, match=r"^redis increment: "):
        await store.increment("b")

    assert await store.increment_with_ttl("t", 3, 10_000) == 3
    assert 9_000 < await raw.pttl(store.full_key("t")) <= 10_000
    await raw.pexpire(store.full_key("t"), 50_000)
    assert await store.increment_with_ttl("t", 1, 10_000) == 4  # the TTL is set only on creation
    assert await raw.pttl(store.full_key("t")) > 10_000
    assert await store.increment_with_ttl("n", 1, 10_000) == 5  # an existing key keeps no TTL
    assert await raw.pttl(store.full_key("n")) == -1

    assert await store.expire("n", 20_000) is True
    assert 19_000 < await raw.pttl(store.full_key("n")) <= 20_000
    assert await store.expire("missing", 20_000) is False


@pytest.mark.asyncio
async def test_a_ttl_must_be_a_finite_number(store: RedisStore) -> None:
    await check_a_ttl_must_be_a_finite_number(store)


@pytest.mark.asyncio
async def test_a_key_may_be_any_text_as_on_the_other_stores(
    store: RedisStore, redis_url: str
) -> None:
    # A lone surrogate, which UTF-8 cannot encode strictly: a bare UnicodeEncodeError.
    names = ["\ud800", "a\udfff", "\U0001f600", "\ud83d\ude00"]
    for count, name in enumerate(names, start=1):
        for _ in range(count):
            await store.run(fixed_window, [name], (10, HOUR_MS, 1))
        await store.set(f"plain:{name}", name.encode("utf-8", "surrogatepass"))
    for count, name in enumerate(names, start=1):  # each its own key
        assert (await store.run(fixed_window, [name], (10, HOUR_MS, 1))).remaining == 9 - count
        assert await store.get(f"plain:{name}") == name.encode("utf-8", "surrogatepass")
    client = Redis.from_url(redis_url)  # encodes strictly
    async with RedisStore(client, namespace=store.namespace) as given:
        with pytest.raises(StoreError, match="encoding_errors='surrogatepass'"):
            await given.run(fixed_window, ["\ud800"], (10, HOUR_MS, 1))
    await client.aclose()


@pytest.mark.asyncio
async def test_lock_is_exclusive(store: RedisStore, redis_url: str) -> None:
    inside = 0
    most_inside = 0

    async def critical_section() -> None:
        nonlocal inside, most_inside
        async with store.lock("l", ttl=30, blocking_timeout=30):
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0)
            await store.increment("counter")
            inside -= 1

    await asyncio.gather(*(critical_section() for _ in range(20)))
    assert most_inside == 1
    assert await store.get("counter") == b"20"

    async with RedisStore(redis_url, namespace=store.namespace) as other:
        async with store.lock("l", ttl=30):
            with pytest.raises(LockTimeoutError, match=r"^redis lock: lock 'l' is held"):
                async with other.lock("l", blocking=False):
                    pass
        async with other.lock("l", blocking=False):  # released on exit
            pass


@pytest.mark.asyncio
async def test_lock_times_out(store: RedisStore) -> None:
    async with store.lock("l", ttl=30):
        started = time.monotonic()
        with pytest.raises(LockTimeoutError):
            async with store.lock("l", blocking_timeout=0.1):
                pass
        assert 0.1 <= time.monotonic() - started < 1.0


@pytest.mark.asyncio
async def test_lock_has_a_ttl_and_never_releases_a_lock_it_lost(
    store: RedisStore, raw: Redis
) -> None:
    key = store.full_key("lock:l")
    async with store.lock("l", ttl=10):
        assert 9_000 < await raw.pttl(key) <= 10_000
        await raw.set(key, b"someone else's token")  # as if ours expired and was retaken
    assert await raw.get(key) == b"someone else's token"


@pytest.mark.asyncio
async def test_reset_deletes_only_its_own_namespace(redis_url: str, raw: Redis) -> None:
    base = fresh_namespace()
    # "?" and "*" are SCAN glob characters: they must match themselves only.
    namespaces = [f"{base}?", f"{base}b", f"{base}*", f"{base}"]
    await raw.mset({f"{base}?:k{index}": b"1" for index in range(1234)})
    for namespace in namespaces[1:]:
        await raw.mset({f"{namespace}:k{index}": b"1" for index in range(3)})
    async with RedisStore(redis_url, namespace=namespaces[0]) as store:
        await store.reset()
    remaining = sorted([key async for key in raw.scan_iter(match=f"{base}*")])
    assert remaining == sorted(
        f"{ns}:k{index}".encode() for ns in namespaces[1:] for index in range(3)
    )
    await raw.delete(*remaining)


@pytest.mark.asyncio
async def test_no_namespace_can_hold_another_so_reset_clears_its_own_only(
    redis_url: str, raw: Redis
) -> None:
    base = fresh_namespace()
    # Were "{base}:eu" a namespace, reset() of `base` (SCAN "{base}:*") would empty it.
    with pytest.raises(ConfigurationError, match="cannot contain ':' or '#'"):
        RedisStore(redis_url, namespace=f"{base}:eu")
    async with (
        RedisStore(redis_url, namespace=base) as store,
        RedisStore(redis_url, namespace=f"{base}-eu") as neighbour,
    ):
        await store.set("eu:x", b"mine")
        await neighbour.set("x", b"theirs")
        await store.reset()
        assert await store.get("eu:x") is None
        assert await neighbour.get("x") == b"theirs"
        await neighbour.reset()


# --- life cycle and configuration -----------------------------------------------------------


@pytest.mark.asyncio
async def test_async_with_and_lifespan_open_and_close_the_store(redis_url: str) -> None:
    store = RedisStore(redis_url, namespace=fresh_namespace())
    assert not store.ready and store.client is None
    async with store as entered:
        assert entered is store and store.ready and store.client is not None
    assert not store.ready and store.client is None
    async with store.lifespan(app=object()):
        assert store.ready
        await store.set("k", b"v")
        assert await store.get("k") == b"v"
        await store.reset()
    assert not store.ready


@pytest.mark.asyncio
async def test_a_given_client_is_never_closed_and_a_factory_runs_at_initialize(
    redis_url: str,
) -> None:
    client = Redis.from_url(redis_url)
    async with RedisStore(client) as store:
        assert store.client is client
    assert await client.ping()  # still usable
    assert store.client is client

    made: list[Redis] = []

    def factory() -> Redis:
        made.append(Redis.from_url(redis_url))
        return made[-1]

    store = RedisStore(factory)
    assert made == []
    async with store:
        assert store.client is made[0]
    assert store.client is None
    await client.aclose()


@pytest.mark.asyncio
async def test_an_async_factory_is_refused_with_the_fix_and_no_stray_coroutine(
    redis_url: str,
) -> None:
    async def factory() -> Redis:  # Traffik documents this form
        return Redis.from_url(redis_url)

    store = RedisStore(factory)
    # filterwarnings=error: a coroutine left unawaited would fail this test too.
    with pytest.raises(ConfigurationError, match="factory is async") as raised:
        await store.initialize()
    assert "RedisStore(lambda: redis.asyncio.from_url(url))" in str(raised.value)


@pytest.mark.parametrize("given", ["url", "factory"])
def test_a_store_used_on_a_new_event_loop_connects_afresh(redis_url: str, given: str) -> None:
    if given == "url":
        store = RedisStore(redis_url, namespace=fresh_namespace(), max_connections=2)
    else:
        store = RedisStore(lambda: Redis.from_url(redis_url), namespace=fresh_namespace())
    store.clock = FakeClock()

    async def hits() -> list[float]:
        # More hits than connections: some wait for a slot, on this loop.
        decisions = await asyncio.gather(
            *(store.run(token_bucket, [f"k{i}"], (10, HOUR_MS, 1)) for i in range(5))
        )
        return [decision.remaining for decision in decisions]

    with warnings.catch_warnings():
        # Never closed, the connections of each finished loop are left to the collector.
        warnings.simplefilter("ignore", ResourceWarning)
        # The second loop's first call wrote its request on a connection of the first
        # (the server ran it) and failed reading the reply: RuntimeError.
        assert [asyncio.run(hits()) for _ in range(3)] == [[9.0] * 5, [8.0] * 5, [7.0] * 5]
        asyncio.run(store.reset())
        asyncio.run(store.close())
        gc.collect()


@pytest.mark.parametrize(
    "url",
    [
        "localhost:6379",
        "http://localhost:6379/0",
        "redis://localhost:port/0",
        "redis://localhost:6379/zero",
        "unix://",
        "redis://user:s3cret@localhost:port/0",
        "redis://localhost:0/0",  # redis-py would connect to 6379
        "rediss://localhost:0",
    ],
)
def test_a_malformed_url_is_a_configuration_error_showing_an_example(url: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid Redis URL") as caught:
        RedisStore(url)
    message = str(caught.value)
    assert "redis://localhost:6379/0" in message
    assert "s3cret" not in message
    assert url.replace("s3cret", "***") in message


@pytest.mark.asyncio
async def test_configuration_mistakes_are_caught_at_construction(redis_url: str) -> None:
    decoding = Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ConfigurationError, match="decode_responses=False"):
        RedisStore(decoding)
    with pytest.raises(ConfigurationError, match="decode_responses=False"):
        RedisStore(redis_url, decode_responses=True)
    with pytest.raises(ConfigurationError, match="apply only when RedisStore is given a URL"):
        RedisStore(decoding, max_connections=3)
    with pytest.raises(ConfigurationError, match="clock"):
        RedisStore(redis_url, clock="local")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="timeout"):
        RedisStore(redis_url, timeout=0)
    with pytest.raises(ConfigurationError, match="timeout"):
        RedisStore(redis_url, timeout=2**1100)  # no double holds it
    with pytest.raises(ConfigurationError, match="max_connections"):
        RedisStore(redis_url, max_connections=0)
    # The URL's query options are checked as keywords are (redis-py lets them win).
    with pytest.raises(ConfigurationError, match="decode_responses=False, got 'true' in the URL"):
        RedisStore(f"{redis_url}?decode_responses=true")
    with pytest.raises(ConfigurationError, match="decode_responses=False, got 'false'"):
        RedisStore(f"{redis_url}?decode_responses=false")  # redis-py would take "false" as true
    with pytest.raises(ConfigurationError, match=r"max_connections .* got 0 in the URL"):
        RedisStore(f"{redis_url}?max_connections=0")
    # An unknown option failed only on the first call, with redis-py's TypeError.
    typo = "unknown Redis client option 'max_conections' {}; did you mean 'max_connections'"
    with pytest.raises(ConfigurationError, match=typo.format("in the URL .*")):
        RedisStore(f"{redis_url}?max_conections=5")
    with pytest.raises(ConfigurationError, match=typo.format("given to RedisStore")):
        RedisStore(redis_url, max_conections=5)
    with pytest.raises(ConfigurationError, match="takes a Redis URL"):
        RedisStore(42)  # type: ignore[arg-type]
    await decoding.aclose()


# --- accuracy under contention --------------------------------------------------------------


@pytest.mark.parametrize(
    ("script_name", "args"),
    [
        ("token_bucket", (100.0, 1e12, 1.0)),  # capacity 100, refilled over ~30 years
        ("fixed_window", (100.0, 1e12, 1.0)),  # the current window runs 2001–2033
    ],
)
def test_exactly_the_limit_is_admitted_under_contention(
    redis_url: str, script_name: str, args: tuple[float, ...]
) -> None:
    # Accuracy, not latency: opening 400 connections at once on a small CI machine can
    # take longer than the default 1 s deadline of a call.
    for _ in range(2):
        store_kwargs = {
            "url_or_client_or_factory": redis_url,
            "namespace": fresh_namespace(),
            "timeout": 30.0,
        }
        admitted = run_contended(
            "ratescript.stores.redis:RedisStore",
            store_kwargs,
            script_name,
            args,
            processes=4,
            hits=100,
        )
        assert admitted == 100


# --- Redis Cluster --------------------------------------------------------------------------


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port + 10_000 > 65_535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _cluster_state(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"CLUSTER INFO\r\n")
        return sock.recv(4096)


@pytest.fixture(scope="module")
def cluster_nodes() -> Iterator[list[int]]:
    """Three cluster-enabled redis-servers (masters, no replicas), joined into one cluster."""
    _require_binaries("redis-server", "redis-cli")
    directory = tempfile.mkdtemp(prefix="ratescript-cluster-")

    def argv(port: int) -> list[str]:
        return [
            "redis-server",
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", directory,
            "--cluster-enabled", "yes",
            "--cluster-config-file", os.path.join(directory, f"nodes-{port}.conf"),
            "--cluster-node-timeout", "5000",
        ]  # fmt: skip

    kind = dataclasses.replace(servers.REDIS, argv=argv)
    nodes = [servers.LocalServer(kind, _free_cluster_port()) for _ in range(3)]
    try:
        for node in nodes:
            node.start()
        subprocess.run(
            [
                "redis-cli", "--cluster", "create",
                *(f"127.0.0.1:{node.port}" for node in nodes),
                "--cluster-replicas", "0", "--cluster-yes",
            ],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not all(b"cluster_state:ok" in _cluster_state(node.port) for node in nodes):
            if time.monotonic() > deadline:
                pytest.fail("the local Redis Cluster did not reach cluster_state:ok in 30 s")
            time.sleep(0.1)
        yield [node.port for node in nodes]
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest_asyncio.fixture
async def cluster_store(cluster_nodes: list[int]) -> AsyncIterator[RedisStore]:
    client = RedisCluster(host="127.0.0.1", port=cluster_nodes[0])
    async with RedisStore(client, namespace=fresh_namespace(), clock=FakeClock()) as store:
        yield store
        await store.reset()
    await client.aclose()


@pytest.mark.asyncio
async def test_cluster_decides_like_the_in_memory_store(cluster_store: RedisStore) -> None:
    assert isinstance(cluster_store.client, RedisCluster)
    clock = cluster_store.clock
    assert isinstance(clock, FakeClock)
    memory = InMemoryStore(namespace=cluster_store.namespace, clock=clock)
    keys = [f"user-{index}" for index in range(30)]  # spread over every node
    for compiled in (token_bucket, fixed_window, sliding_log):
        for now, key, cost in hit_sequence(3, keys, (1.0, 2.0), HOUR_MS):
            clock.now = now
            expected = exact(await memory.run(compiled, [key], (5, HOUR_MS, cost)))
            assert exact(await cluster_store.run(compiled, [key], (5, HOUR_MS, cost))) == expected
        await memory.reset()
        await cluster_store.reset()


@pytest.mark.asyncio
async def test_cluster_runs_multi_key_scripts_of_one_hash_tag(cluster_store: RedisStore) -> None:
    assert cluster_store.one_slot_per_script
    memory = InMemoryStore(namespace=cluster_store.namespace, clock=cluster_store.clock)
    for index in range(40):
        keys = [f"{{user-{index % 7}}}:hits", f"{{user-{index % 7}}}:total-{index % 3}"]
        expected = exact(await memory.run(two_keys, keys, (4,)))
        assert exact(await cluster_store.run(two_keys, keys, (4,))) == expected
    # Stored under their own names, as when each is used alone.
    names = [f"{{user-{index % 7}}}:total-{index % 3}" for index in range(21)]
    assert await cluster_store.multi_get(names) == await memory.multi_get(names)
    assert any(value is not None for value in await cluster_store.multi_get(names))


@pytest.mark.asyncio
async def test_cluster_refuses_a_script_of_keys_in_several_slots(
    cluster_store: RedisStore,
) -> None:
    """A clear configuration error, sent nowhere: not a store failure a policy could admit."""
    with pytest.raises(ConfigurationError, match="several Redis Cluster hash slots"):
        await cluster_store.run(two_keys, ["{user-1}:hits", "{user-2}:total"], (4,))
    assert await cluster_store.multi_get(["{user-1}:hits", "{user-2}:total"]) == [None, None]


@pytest.mark.asyncio
async def test_cluster_groups_throttles_of_different_identities(
    cluster_store: RedisStore,
) -> None:
    """A per-client and a global limit on one endpoint: each identity's keys are charged
    by their own script, and a global rejection stops the request."""
    import httpx
    from fastapi import FastAPI

    from ratescript.asgi import HTTPThrottle, throttled

    async def everyone(connection: object) -> str:
        return "all"

    per_client = HTTPThrottle("per-client", "5/min", store=cluster_store)
    global_limit = HTTPThrottle("global", "3/min", store=cluster_store, identifier=everyone)
    app = FastAPI()

    @app.get("/")
    @throttled(per_client, global_limit)
    async def index() -> None:
        return None

    statuses = []
    for index in range(5):
        transport = httpx.ASGITransport(app=app, client=(f"203.0.113.{index}", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            statuses.append((await client.get("/")).status_code)
    assert statuses == [200, 200, 200, 429, 429]
    assert await cluster_store.get("{all}:global") is not None
    assert await cluster_store.get("{203.0.113.0}:per-client") is not None


@pytest.mark.asyncio
async def test_cluster_plain_operations_reset_and_script_flush(
    cluster_store: RedisStore, cluster_nodes: list[int]
) -> None:
    keys = [f"k{index}" for index in range(50)]
    for index, key in enumerate(keys):
        await cluster_store.set(key, index)
    assert await cluster_store.multi_get(keys) == [b"%d" % index for index in range(50)]
    assert await cluster_store.increment_with_ttl("n", 2, 10_000) == 2
    async with cluster_store.lock("l", ttl=10):
        with pytest.raises(LockTimeoutError):
            async with cluster_store.lock("l", blocking=False):
                pass

    assert (await cluster_store.run(token_bucket, ["k-script"], (5, HOUR_MS, 1))).allowed
    for port in cluster_nodes:
        node = Redis(port=port)
        await node.script_flush()
        await node.aclose()
    assert (await cluster_store.run(token_bucket, ["k-script"], (5, HOUR_MS, 1))).remaining == 3

    await cluster_store.reset()
    assert await cluster_store.multi_get([*keys, "n", "k-script"]) == [None] * 52
