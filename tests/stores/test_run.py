"""What ``Store.run`` guarantees on every store, whatever the caller passes.

Arguments reach every target as doubles, as Redis reads them; a script that writes
gets distinct keys (the Python targets read every key before the body runs, the Lua
target at each ``get``: two parameters on one key would see different values).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ratescript.builtin_scripts import token_bucket
from ratescript.decision import Decision
from ratescript.exceptions import ConfigurationError, CorruptStateError, StoreError
from ratescript.scriptdsl import Key, allow, deny, script
from ratescript.scriptdsl.compose import compose_all
from ratescript.scriptdsl.script import Script
from ratescript.stores.base import Store
from ratescript.stores.memcached import MemcachedStore
from ratescript.stores.memory import InMemoryStore
from ratescript.stores.redis import RedisStore
from ratescript.strategies import TokenBucketStrategy
from ratescript.strategies.gcra import gcra


@pytest_asyncio.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("memcached", marks=pytest.mark.memcached),
    ]
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    made: Store
    if request.param == "redis":
        made = RedisStore(request.getfixturevalue("redis_url"), namespace=namespace)
    elif request.param == "memcached":
        made = MemcachedStore(request.getfixturevalue("memcached_url"), namespace=namespace)
    else:
        made = InMemoryStore(namespace=namespace)
    async with made:
        yield made


def exact(decision: Decision) -> tuple[object, ...]:
    """A decision with every number as its exact bytes (so -0.0 differs from 0.0)."""
    numbers = (decision.wait_ms, decision.remaining, decision.reset_ms, *decision.metadata.values())
    return (decision.allowed, tuple(b"%.17g" % x for x in numbers))


@script
def negates(k: Key[float], a: float):  # type: ignore[no-untyped-def]
    if a > 9007199254740992:  # 2**53: a double just above it is 2**53 + 2
        return allow(remaining=-a)
    return deny(1, remaining=-a)


@script
def negates_on_two_keys(k: Key[float], j: Key[float], a: float):  # type: ignore[no-untyped-def]
    if a > 9007199254740992:
        return allow(remaining=-a)
    return deny(1, remaining=-a)


@pytest.mark.asyncio
@pytest.mark.parametrize("compiled", [negates, negates_on_two_keys], ids=lambda s: s.name)
async def test_int_arguments_decide_as_the_doubles_redis_reads(
    store: Store, compiled: Script
) -> None:
    """``0`` is ``0.0``, whose negation is ``-0.0``; ``2**53 + 1`` is the double ``2**53``."""
    keys = ["{t}:k", "{t}:j"][: compiled.key_count]
    for _ in range(2):  # the in-process store binds a runner on the first run
        assert exact(await store.run(compiled, keys, [0])) == (False, (b"1", b"-0", b"0"))
        assert exact(await store.run(compiled, keys, (2**53 + 1,))) == (
            False,
            (b"1", b"-9007199254740992", b"0"),
        )


@script
def two_counters(a: Key[float], b: Key[float]):  # type: ignore[no-untyped-def]
    x = a.get(default=0)
    a.set(x + 1)
    y = b.get(default=0)  # on one key: 1 in Lua, 0 in Python (read before the body)
    b.set(y + 10)
    return allow(remaining=y)


@script(readonly=True)
def reads_two(a: Key[float], b: Key[float]):  # type: ignore[no-untyped-def]
    x = a.get(default=1)
    y = b.get(default=2)
    return allow(remaining=x + y)


@pytest.mark.asyncio
async def test_a_script_that_writes_refuses_one_key_for_two_parameters(store: Store) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await store.run(two_counters, ["k", "k"], [])
    assert "`two_counters` writes, so its keys must be distinct" in str(caught.value)
    assert "parameters `a` and `b` name one key ('k')" in str(caught.value)
    assert await store.get("k") is None
    # Keys are stored under their own names: a tagged one is another key.
    assert (await store.run(two_counters, ["{t}:k", "k"], [])).allowed


@pytest.mark.asyncio
async def test_one_key_may_be_read_through_two_parameters(store: Store) -> None:
    """Reads see the same value on every target; ``stat`` runs a read-only script
    composed with itself on the strategy's key, given twice."""
    await store.set("k", b"5")
    assert (await store.run(reads_two, ["k", "k"], [])).remaining == 10.0
    twin = token_bucket.readonly
    both = await store.run(compose_all(twin, twin), ["b", "b"], [2.0, 1000.0, 0.0] * 2)
    assert both.allowed and both.metadata["1__remaining"] == 2.0
    strategy = TokenBucketStrategy()
    assert (await strategy.hit("b", "2/s", store)).allowed
    assert 1.0 <= (await strategy.stat("b", "2/s", store)).hits_remaining < 2.0


@pytest.mark.redis
@pytest.mark.asyncio
async def test_a_script_redis_cannot_load_fails_as_a_store_error_naming_it(redis_url: str) -> None:
    """The compiler refuses what Lua 5.1 cannot load; a server that still refuses a script
    (another Lua, a patched one) fails each hit with ratescript's error, alone or grouped."""
    broken = Script(token_bucket.ir, token_bucket.__wrapped__)
    broken.lua_source = broken.lua_batch_source = "return (("
    broken.lua_sha = broken.lua_batch_sha = hashlib.sha1(b"return ((").hexdigest()
    async with RedisStore(redis_url, namespace=f"test-{uuid.uuid4().hex[:12]}") as store:
        hits = [store.run(broken, ["k"], [2.0, 1000.0, 1.0]) for _ in range(4)]
        outcomes = await asyncio.gather(*hits, return_exceptions=True)
    for outcome in outcomes:
        assert isinstance(outcome, StoreError), outcome
        assert "run token_bucket" in str(outcome) and "Error compiling script" in str(outcome)


@pytest.mark.asyncio
@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"9" * 400], ids=["inf", "-inf", "digits"])
@pytest.mark.parametrize("compiled", [gcra, token_bucket], ids=lambda s: s.name)
async def test_a_stored_number_no_double_can_hold_is_corrupt(
    store: Store, compiled: Script, number: bytes
) -> None:
    """Digits that overflow a double read as infinity in Python's ``float`` and Lua's
    ``tonumber``; no script ever wrote one (a write of a non-finite number fails), so
    the value is foreign: a GCRA would otherwise tell its client to wait for ever."""
    fields = len(compiled.keys[0].fields)
    raw = b":".join([*[b"1"] * (fields - 1), number]) if fields else number
    await store.set("k", raw)
    with pytest.raises(CorruptStateError) as caught:
        await store.run(compiled, ["k"], [1.0] * compiled.param_count)
    assert caught.value.key == f"{store.namespace}:k"
    assert await store.get("k") == raw
