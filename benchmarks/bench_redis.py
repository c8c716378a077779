"""Benchmark: ``RedisStore.run(token_bucket)`` against bare redis-py ``EVALSHA`` calls.

Run with ``.venv/bin/python benchmarks/bench_redis.py``. Three ways of taking one
decision are timed call by call, interleaved round by round (the order rotating),
so drift and noise hit all three alike:

* ``store``  — ``RedisStore.run(token_bucket)``: the whole client path;
* ``bare tb`` — redis-py ``evalsha`` of the token-bucket Lua with the same ``ARGV``:
  the script's cost in Redis, without the store's client-side work;
* ``bare 1`` — redis-py ``evalsha`` of ``return 1`` on one key: the floor;
* ``reply``  — ``evalsha`` of a script that only returns a constant reply shaped like the
  token bucket's: what carrying and parsing the reply alone costs over ``bare 1``.

The target is ``store / bare 1 ≤ 1.25`` (medians of one run). Then Redis's own view:
``INFO commandstats`` ``usec_per_call`` of ``EVALSHA`` for each script run alone,
from before/after deltas (nothing is reset, so a shared server is left alone).

The server comes from ``RATESCRIPT_REDIS_URL`` or is started locally on a free
port. Loopback round trips are slow and noisy here: compare ratios within one run,
never absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import statistics
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from ratescript.builtin_scripts import token_bucket
from ratescript.conformance import servers
from ratescript.stores.redis import RedisStore

ARGS = (1e12, 1000.0, 1.0)  # a bucket that never runs dry: every hit reads and writes
TARGET = 1.25
EMPTY_SCRIPT = "return 1"

Call = Callable[[], Awaitable[object]]


async def timed_calls(call: Call, count: int, into: list[float]) -> None:
    """Await ``call`` ``count`` times, appending each latency in µs to ``into``."""
    clock = time.perf_counter_ns
    for _ in range(count):
        started = clock()
        await call()
        into.append((clock() - started) / 1000)


def lua_literal(reply: object) -> str:
    """Lua that evaluates to ``reply`` (bytes, or a list of them: digits, signs, spaces)."""
    if isinstance(reply, list):
        return "{" + ", ".join(lua_literal(item) for item in reply) + "}"
    assert isinstance(reply, bytes), reply
    return "'" + reply.decode() + "'"


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


async def evalsha_usec_per_call(client: Redis, call: Call, count: int) -> float:
    """Redis's own time per ``EVALSHA`` of ``call``, from ``INFO commandstats`` deltas."""

    async def evalsha_totals() -> tuple[int, int]:
        stats = await client.info("commandstats")
        entry = stats.get("cmdstat_evalsha", {"calls": 0, "usec": 0})
        return int(entry["calls"]), int(entry["usec"])

    calls_before, usec_before = await evalsha_totals()
    for _ in range(count):
        await call()
    calls_after, usec_after = await evalsha_totals()
    return (usec_after - usec_before) / max(1, calls_after - calls_before)


async def bench(url: str, rounds: int, count: int) -> bool:
    client = Redis.from_url(url)
    store = RedisStore(url, namespace="bench-redis")
    await store.initialize()
    empty_sha = await client.script_load(EMPTY_SCRIPT)
    tb_sha = await client.script_load(token_bucket.lua_source)
    bare_key = "bench-redis:bare"
    argv = [b"%.17g" % arg for arg in ARGS]
    sample = await client.evalsha(tb_sha, 1, bare_key, b"%.17g" % (time.time() * 1000.0), *argv)
    reply_sha = await client.script_load(f"return {lua_literal(sample)}")

    async def store_run() -> object:
        return await store.run(token_bucket, ["k"], ARGS)

    async def bare_empty() -> object:
        return await client.evalsha(empty_sha, 1, bare_key)

    async def bare_token_bucket() -> object:
        # The ARGV the store sends: the clock, then the arguments, all as %.17g.
        now = b"%.17g" % (time.time() * 1000.0)
        return await client.evalsha(tb_sha, 1, bare_key, now, *argv)

    async def bare_reply() -> object:
        return await client.evalsha(reply_sha, 1, bare_key)

    calls: dict[str, Call] = {
        "store": store_run,
        "bare tb": bare_token_bucket,
        "bare 1": bare_empty,
        "reply": bare_reply,
    }
    samples: dict[str, list[float]] = {name: [] for name in calls}
    try:
        for call in calls.values():  # warm up: connections, script caches
            await timed_calls(call, count, [])
        order = list(calls)
        for round_number in range(rounds):
            shift = round_number % len(order)
            for name in order[shift:] + order[:shift]:
                await timed_calls(calls[name], count, samples[name])

        medians = {name: statistics.median(values) for name, values in samples.items()}
        print(f"{'':8} {'median µs':>10} {'p99 µs':>10} {'vs bare 1':>10}")
        for name, values in samples.items():
            ratio = medians[name] / medians["bare 1"]
            print(f"{name:8} {medians[name]:10.1f} {p99(values):10.1f} {ratio:10.3f}")
        ratio = medians["store"] / medians["bare 1"]
        verdict = "meets" if ratio <= TARGET else "MISSES"
        print(f"store / bare 1 = {ratio:.3f}: {verdict} the target (≤ {TARGET})")
        print(
            f"  store / bare tb = {medians['store'] / medians['bare tb']:.3f}: the store's"
            " client-side work (the bare client pays redis-py's default socket timeout)"
        )
        print(
            f"  reply / bare 1 = {medians['reply'] / medians['bare 1']:.3f}: the reply's shape"
            " alone (redis-py's parser reads an array element by element)"
        )
        print("Redis INFO commandstats, EVALSHA usec_per_call, each script alone:")
        for name in ("bare 1", "reply", "bare tb", "store"):
            usec = await evalsha_usec_per_call(client, calls[name], count * 4)
            print(f"  {name:8} {usec:6.2f} µs")
        return ratio <= TARGET
    finally:
        await store.close()
        await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds")
    parser.add_argument("--count", type=int, default=500, help="calls per kind per round")
    options = parser.parse_args()
    print(
        f"# ratescript Redis benchmark — {time.strftime('%Y-%m-%d')}, Python "
        f"{platform.python_version()}, {platform.machine()}; {options.rounds} rounds × "
        f"{options.count} calls of each kind"
    )
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(servers.server_url(servers.REDIS))
        await bench(url, options.rounds, options.count)


if __name__ == "__main__":
    asyncio.run(main())
