"""InMemoryStore: exact decisions, expiry on its own clock, bounded memory, thread safety."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence

import pytest

from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.conformance.executors import LuaExecutor, PythonExecutor
from ratescript.decision import Decision
from ratescript.exceptions import (
    ConfigurationError,
    CorruptStateError,
    LockTimeoutError,
    ScriptError,
    StoreError,
)
from ratescript.rates import Rate
from ratescript.scriptdsl.script import Script
from ratescript.stores import store_from_url
from ratescript.stores.base import Store
from ratescript.stores.memory import InMemoryStore
from ratescript.strategies import TokenBucketStrategy

from .plain import check_a_ttl_must_be_a_finite_number


class FakeClock:
    def __init__(self, now: float = 1_700_000_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> Iterator[InMemoryStore]:
    yield InMemoryStore(namespace="test", clock=clock)


@pytest.mark.asyncio
@pytest.mark.parametrize("script", [token_bucket, fixed_window, sliding_log], ids=lambda s: s.name)
async def test_decisions_match_the_python_target(
    store: InMemoryStore, clock: FakeClock, script
) -> None:  # type: ignore[no-untyped-def]
    reference = PythonExecutor(encoded=True)
    args = (3.0, 1000.0, 1.0)
    for step in [0, 10, 10, 10, 500, 700, 0, 2000, 1, 1]:
        clock.now += step
        got = await store.run(script, ["user:1"], args)
        want = reference.run(script, ["test:user:1"], args, clock.now)
        assert got == want
    assert await store.get("user:1") == reference.state(clock.now, ["test:user:1"])["test:user:1"]


@pytest.mark.asyncio
async def test_keys_expire_on_the_stores_clock_in_whole_milliseconds(
    store: InMemoryStore, clock: FakeClock
) -> None:
    clock.now = 1000.9
    await store.set("k", b"v", ttl_ms=10)  # expires at floor(1000.9) + 10 = 1010
    clock.now = 1010.99
    assert await store.get("k") == b"v"
    clock.now = 1011.0
    assert await store.get("k") is None


@pytest.mark.asyncio
async def test_an_expired_bucket_decides_like_a_full_one(
    store: InMemoryStore, clock: FakeClock
) -> None:
    for _ in range(3):
        assert (await store.run(token_bucket, ["k"], (3.0, 1000.0, 1.0))).allowed
    assert not (await store.run(token_bucket, ["k"], (3.0, 1000.0, 1.0))).allowed
    clock.now += 5000
    decision = await store.run(token_bucket, ["k"], (3.0, 1000.0, 1.0))
    assert decision.allowed and decision.remaining == 2.0
    assert len(store) == 1


def test_memory_stays_bounded_under_many_distinct_keys(clock: FakeClock) -> None:
    store = InMemoryStore(clock=clock)
    keys = 300_000
    largest = 0
    for index in range(keys):
        clock.now += 1.0  # each key lives 100 ms: about 100 live at any time
        store.run_now(fixed_window, [f"ratescript:ip:{index}"], (5.0, 100.0, 1.0))
        largest = max(largest, len(store))
    # Without reclaiming, the dict would hold every key; the sweep keeps it near the live set.
    assert largest < 1_000, largest


def test_scripts_are_atomic_across_threads_and_event_loops(clock: FakeClock) -> None:
    store = InMemoryStore(clock=clock)
    admitted = []
    lock = threading.Lock()

    def worker() -> None:
        async def fire() -> int:
            decisions = await asyncio.gather(
                *(store.run(fixed_window, ["hot"], (100.0, 1e9, 1.0)) for _ in range(100))
            )
            return sum(d.allowed for d in decisions)

        count = asyncio.run(fire())  # a fresh event loop per thread
        with lock:
            admitted.append(count)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 100


async def strategy_hits(store: InMemoryStore, rate: Rate) -> Decision:
    """Three hits of a token bucket (the first computes the arguments, the next reuse them)."""
    strategy = TokenBucketStrategy()
    for _ in range(2):
        await strategy("k", rate, store)
    return await strategy.hit("k", rate, store)


class _CountingStore(InMemoryStore):
    """Changes what ``run`` does (here, counts), so every hit must go through it."""

    runs = 0

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[float]) -> Decision:
        self.runs += 1
        return await super().run(script, keys, args)


@pytest.mark.asyncio
async def test_strategies_skip_run_only_where_it_is_the_stores_own(clock: FakeClock) -> None:
    rate = Rate(10, seconds=1)
    assert InMemoryStore.immediate and not _CountingStore.immediate

    class OwnRunOne(InMemoryStore):
        def run_one(self, script: Script, key: str, args: Sequence[float]) -> Decision:
            raise AssertionError("not immediate: strategies call `run`")

    assert not OwnRunOne.immediate
    assert (await strategy_hits(OwnRunOne(clock=clock), rate)).allowed
    counting = _CountingStore(clock=clock)
    plain = InMemoryStore(clock=clock)
    strategy = TokenBucketStrategy()
    for _ in range(3):  # the first hit computes the arguments, the next two reuse them
        decision = await strategy.hit("k", rate, counting)
        assert decision == await strategy.hit("k", rate, plain)
    assert counting.runs == 3
    with pytest.raises(NotImplementedError, match="only through `run`"):
        Store.run_one(counting, token_bucket, "k", (1.0, 1.0, 1.0))


@pytest.mark.asyncio
async def test_a_corrupt_value_raises_naming_the_key_and_stays(store: InMemoryStore) -> None:
    await store.set("k", b"garbage")
    with pytest.raises(CorruptStateError, match="test:k"):
        await store.run(token_bucket, ["k"], (3.0, 1000.0, 1.0))
    assert await store.get("k") == b"garbage"


@pytest.mark.asyncio
async def test_a_value_of_another_shape_is_corrupt_like_on_redis(
    store: InMemoryStore, clock: FakeClock
) -> None:
    lua = LuaExecutor()
    for _ in range(2):
        clock.now += 1
        await store.run(sliding_log, ["k"], (3.0, 1000.0, 1.0))
        lua.run(sliding_log, ["test:k"], (3.0, 1000.0, 1.0), clock.now)
    with pytest.raises(CorruptStateError, match="expected 2 numbers"):
        await store.run(token_bucket, ["k"], (3.0, 1000.0, 1.0))
    with pytest.raises(CorruptStateError, match="expected 2 numbers"):
        lua.run(token_bucket, ["test:k"], (3.0, 1000.0, 1.0), clock.now)


@pytest.mark.asyncio
async def test_values_written_by_scripts_read_back_as_stored_bytes(
    store: InMemoryStore, clock: FakeClock
) -> None:
    await store.run(token_bucket, ["k"], (3.0, 1000.0, 1.0))
    assert await store.get("k") == b"2:%.17g" % clock.now
    await store.set("k", b"1:%.17g" % clock.now)  # plain bytes are decoded by the next script
    decision = await store.run(token_bucket, ["k"], (3.0, 1000.0, 1.0))
    assert decision.allowed and decision.remaining == 0.0


@pytest.mark.asyncio
async def test_wrong_keys_or_arguments_are_clear_errors(store: InMemoryStore) -> None:
    with pytest.raises(ConfigurationError, match="declares 1 keys, got 2"):
        await store.run(token_bucket, ["a", "b"], (3.0, 1000.0, 1.0))
    with pytest.raises(ScriptError, match="takes 3 arguments"):
        await store.run(token_bucket, ["a"], (3.0,))


@pytest.mark.asyncio
async def test_plain_operations(store: InMemoryStore, clock: FakeClock) -> None:
    assert await store.get("missing") is None
    await store.set("s", "text")
    assert await store.get("s") == b"text"
    assert await store.increment("n") == 1
    assert await store.increment("n", 5) == 6
    assert await store.decrement("n", 10) == -4
    assert await store.increment_with_ttl("t", 2, ttl_ms=50) == 2
    assert await store.increment_with_ttl("t", 2, ttl_ms=50) == 4  # TTL set only on creation
    clock.now += 51
    assert await store.get("t") is None
    assert await store.expire("s", 10)
    assert not await store.expire("missing", 10)
    assert await store.multi_get(["s", "missing", "n"]) == [b"text", None, b"-4"]
    assert await store.delete("s")
    assert not await store.delete("s")
    with pytest.raises(StoreError, match="not an integer"):
        await store.set("x", b"abc")
        await store.increment("x")
    await store.reset()
    assert await store.get("n") is None


@pytest.mark.asyncio
async def test_a_ttl_must_be_a_finite_number(store: InMemoryStore) -> None:
    await check_a_ttl_must_be_a_finite_number(store)


@pytest.mark.asyncio
async def test_the_lock_excludes_and_times_out(store: InMemoryStore) -> None:
    async with store.lock("job", ttl=5):
        with pytest.raises(LockTimeoutError, match="job"):
            async with store.lock("job", blocking=False):
                pass
        with pytest.raises(LockTimeoutError):
            async with store.lock("job", blocking_timeout=0.01):
                pass
    async with store.lock("job", blocking=False):  # released
        pass


@pytest.mark.asyncio
async def test_namespace_prefixes_every_key_and_is_validated(clock: FakeClock) -> None:
    one = InMemoryStore(namespace="one", clock=clock)
    await one.run(token_bucket, ["k"], (3.0, 1000.0, 1.0))
    assert list(one._data) == ["one:k"]
    with pytest.raises(ConfigurationError, match="braces"):
        InMemoryStore(namespace="a{b}")
    # Namespace "a" with key "b:k" would be namespace "a:b" with key "k".
    for overlapping in ("a:b", "a#index"):
        with pytest.raises(ConfigurationError, match="cannot contain ':' or '#'"):
            InMemoryStore(namespace=overlapping)


def test_a_memory_url_takes_nothing_after_its_scheme() -> None:
    store = store_from_url("memory://", namespace="app")
    assert isinstance(store, InMemoryStore) and store.namespace == "app"
    # The rest of the URL was ignored: a store of namespace "ratescript".
    for url in ("memory://x?namespace=y", "memory://localhost", "memory:///"):
        with pytest.raises(ConfigurationError, match="'memory://' takes nothing after it"):
            store_from_url(url)


@pytest.mark.asyncio
async def test_context_manager_and_lifespan(store: InMemoryStore) -> None:
    assert not store.ready
    async with store as entered:
        assert entered is store and store.ready
    assert not store.ready
    async with store.lifespan(app=None):
        assert store.ready
