"""Memory per limited key: N distinct keys, one hit each.

Redis: the sum of ``MEMORY USAGE`` (``SAMPLES 0``: exact) over every key the library
wrote in a namespace of its own, divided by N; the keys per limited key too (locks,
fences and indexes included). In process: the ``tracemalloc`` delta over the N hits,
divided by N.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import tracemalloc
from typing import Any

from adapters import Adapter, RateSpec, Servers
from decisions import make_decider

MEMORY_STRATEGIES = ("fixed_window", "token_bucket", "gcra", "sliding_log")
# A rate whose state outlives the run: after one hit a token bucket needs 36 s to
# refill, so it is kept (at 1,000,000/h a bucket is full again, and gone, in 4 ms).
RATE = RateSpec(100, 3600)


async def _redis_usage(pattern: str, url: str) -> tuple[int, int]:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
        total = 0
        for key in keys:
            total += int(await client.memory_usage(key, samples=0) or 0)
        return total, len(keys)
    finally:
        await client.aclose()


async def memory_per_key(
    adapters: list[Adapter], servers: Servers, keys: int, stores: list[str]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    serial = itertools.count()
    for store, strategy, adapter in itertools.product(stores, MEMORY_STRATEGIES, adapters):
        # A namespace of its own, so the keys found are this measure's only.
        own = dataclasses.replace(servers, run_id=f"{servers.run_id}m{next(serial)}")
        row: dict[str, Any] = {"library": adapter.name, "store": store, "strategy": strategy}
        rows.append(row)
        decider, row["status"], row["detail"] = await make_decider(
            adapter, store, strategy, RATE, own
        )
        if decider is None:
            continue
        names = [f"user{i}" for i in range(keys)]
        try:
            await decider.hit("warm-up")
            if store == "memory":
                gc.collect()
                tracemalloc.start()
                before = tracemalloc.get_traced_memory()[0]
                for name in names:
                    await decider.hit(name)
                gc.collect()
                after = tracemalloc.get_traced_memory()[0]
                tracemalloc.stop()
                row["bytes_per_key"] = (after - before) / keys
            else:
                for name in names:
                    await decider.hit(name)
                total, found = await _redis_usage(adapter.redis_key_pattern(own), own.redis_url)
                # The warm-up key's share is taken out as one key's average.
                row["bytes_per_key"] = total / (keys + 1)
                row["redis_keys_per_key"] = found / (keys + 1)
        except Exception as exc:
            row["status"], row["detail"] = "error", f"{type(exc).__name__}: {exc}"[:300]
        finally:
            if tracemalloc.is_tracing():
                tracemalloc.stop()
            await decider.close()
    print("  memory per key done", flush=True)
    return rows
