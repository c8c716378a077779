"""Benchmark: what a store adds to one decision, against its floor.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_stores.py``). For
each store it times, interleaved round by round so drift hits both alike:

* ``InMemoryStore.run(token_bucket)`` vs the bare Python target (the generated
  function plus building the ``Decision``) — target: at most 1.5x; and the same
  for ``run_one``, the synchronous path ``Strategy.hit`` takes on this store;
* ``RedisStore.run(token_bucket)`` vs a bare redis-py ``EVALSHA`` of an empty script
  (``return 1``) — target: at most 1.25x;
* ``MemcachedStore.run(token_bucket)`` vs a bare aiomcache ``gets`` + ``cas`` pair —
  target: at most 1.25x.

Redis and Memcached come from ``RATESCRIPT_REDIS_URL`` / ``RATESCRIPT_MEMCACHED_URL``
or are started locally on free ports. Loopback round trips are slow and noisy here:
compare the ratio within one run, not absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import statistics
import time
from collections.abc import Awaitable, Callable

from ratescript.builtin_scripts import token_bucket
from ratescript.conformance import servers
from ratescript.stores.memory import InMemoryStore

ARGS = (1e12, 1000.0, 1.0)  # a bucket that never runs dry: every hit writes


async def timed(call: Callable[[], Awaitable[object]], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        await call()
    return (time.perf_counter() - start) / count * 1e6


async def compare(
    name: str,
    subject: Callable[[], Awaitable[object]],
    floor: Callable[[], Awaitable[object]],
    rounds: int,
    count: int,
    target: float,
) -> None:
    await timed(subject, count)
    await timed(floor, count)  # warm up both
    mine: list[float] = []
    base: list[float] = []
    for _ in range(rounds):
        mine.append(await timed(subject, count))
        base.append(await timed(floor, count))
    ratio = statistics.median(mine) / statistics.median(base)
    verdict = "meets" if ratio <= target else "MISSES"
    mine_us, base_us = statistics.median(mine), statistics.median(base)
    print(
        f"{name:<10} store {mine_us:8.2f} µs   floor {base_us:8.2f} µs"
        f"   ratio {ratio:5.2f} ({verdict} ≤ {target})"
    )


async def bench_memory(rounds: int) -> None:
    store = InMemoryStore()
    compute, decision = token_bucket.compute, token_bucket.decision
    state = (5.0, 1.7e12)

    async def bare() -> object:
        return decision(compute(1.7e12, state, *ARGS))

    async def run() -> object:
        return await store.run(token_bucket, ["k"], ARGS)

    async def run_one() -> object:
        return store.run_one(token_bucket, "k", ARGS)

    await compare("memory", run, bare, rounds, 20_000, 1.5)
    # What `Strategy.hit` calls on this store: the same decision without the store's
    # own coroutine (`Store.immediate`).
    await compare("run_one", run_one, bare, rounds, 20_000, 1.5)


async def bench_redis(url: str, rounds: int) -> None:
    import redis.asyncio as aioredis

    from ratescript.stores.redis import RedisStore

    client = aioredis.Redis.from_url(url)
    empty_sha = await client.script_load("return 1")
    store = RedisStore(url)
    await store.initialize()

    async def bare() -> object:
        return await client.evalsha(empty_sha, 1, "bench:k")

    async def run() -> object:
        return await store.run(token_bucket, ["k"], ARGS)

    try:
        await compare("redis", run, bare, rounds, 1_000, 1.25)
    finally:
        await store.close()
        await client.aclose()


async def bench_memcached(url: str, rounds: int) -> None:
    import aiomcache

    from ratescript.stores.memcached import MemcachedStore

    host, _colon, port = url.removeprefix("memcached://").partition(":")
    client = aiomcache.Client(host, int(port))
    await client.set(b"bench:k", b"1")
    store = MemcachedStore(url)
    await store.initialize()

    async def bare() -> object:
        value, token = await client.gets(b"bench:k")
        return await client.cas(b"bench:k", value, token)

    async def run() -> object:
        return await store.run(token_bucket, ["k"], ARGS)

    try:
        await compare("memcached", run, bare, rounds, 1_000, 1.25)
    finally:
        await store.close()
        await client.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()
    print(
        f"# ratescript store benchmark — {time.strftime('%Y-%m-%d')}, Python "
        f"{platform.python_version()}, {platform.machine()}; medians over {options.rounds} rounds"
    )
    await bench_memory(options.rounds)
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(servers.server_url(servers.REDIS))
        memcached_url = stack.enter_context(servers.server_url(servers.MEMCACHED))
        await bench_redis(redis_url, options.rounds)
        await bench_memcached(memcached_url, options.rounds)


if __name__ == "__main__":
    asyncio.run(main())
