"""fastapi-limiter: its ``RateLimiter`` dependency calls a pyrate-limiter ``Limiter``.

A decision is what the dependency does per request after resolving the route:
``await limiter.try_acquire_async(key, blocking=False)``. fastapi-limiter 0.2 is
built on pyrate-limiter (in-process and Redis buckets; no Memcached). A ``Limiter``
made from a bucket routes every key to that one bucket (``SingleBucketFactory``):
it limits all clients together, not each key on its own.
"""

from __future__ import annotations

import itertools
from typing import Any

from common import StepClock

from adapters.base import Adapter, Decider, NotAvailable, RateSpec, Servers

NO_MEMCACHED = "pyrate-limiter (under fastapi-limiter 0.2) has no Memcached bucket"
NO_COUNTER = "pyrate-limiter has no sliding window counter"
SHARED = (
    "fastapi-limiter: the documented `Limiter(Rate(...))` keeps one bucket for every key, "
    "so two clients share one limit (see the check); its token bucket is its GCRA "
    "under another name (pyrate-limiter `TokenBucket(GCRA)`)"
)


# pyrate-limiter ignores the key of a hit (one bucket for all): a bucket of its own
# per decider keeps measures apart. Processes of one contention case count alike.
_buckets = itertools.count()


class _FixedClock:
    """pyrate-limiter's clock interface (``now()`` in integer ms) over a StepClock."""

    def __init__(self, clock: StepClock) -> None:
        self._clock = clock

    def now(self) -> int:
        return int(self._clock.ms())


class _SharedClients:
    """One redis-py client per URL and event loop, as an app shares one among its limiters."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, int], list[Any]] = {}

    def get(self, url: str) -> Any:
        import asyncio

        import redis.asyncio

        entry = self._clients.setdefault((url, id(asyncio.get_running_loop())), [None, 0])
        if entry[0] is None:
            entry[0] = redis.asyncio.Redis.from_url(url)
        entry[1] += 1
        return entry[0]

    async def release(self, client: Any) -> None:
        for where, entry in list(self._clients.items()):
            if entry[0] is client:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._clients[where]
                    await client.aclose()


_clients = _SharedClients()


class FastapiLimiterAdapter(Adapter):
    name = "fastapi-limiter"
    distribution = "fastapi-limiter"
    keys_share_limit = True

    async def _limiter(
        self, store: str, strategy: str, rate: RateSpec, servers: Servers, clock: StepClock | None
    ) -> tuple[Any, Any]:
        """A pyrate ``Limiter`` and the redis client it uses (or None)."""
        from pyrate_limiter import Duration, Limiter, Rate
        from pyrate_limiter.abstracts.algorithm import GCRA, FixedWindow, TokenBucket
        from pyrate_limiter.buckets import InMemoryBucket, RedisBucket, RedisStateStore, StateBucket

        if store == "memcached":
            raise NotAvailable(NO_MEMCACHED)
        if strategy == "sliding_counter":
            raise NotAvailable(NO_COUNTER)
        rates = [Rate(rate.limit, Duration.SECOND * rate.period_s)]
        bucket_key = f"{self.namespace(servers)}:{strategy}:{next(_buckets)}"
        client: Any = None
        bucket: Any
        if store == "redis":
            client = _clients.get(servers.redis_url)
        if strategy in ("token_bucket", "gcra"):
            algorithm = TokenBucket() if strategy == "token_bucket" else GCRA()
            state_store = None if client is None else RedisStateStore(client, bucket_key)
            bucket = StateBucket(rates, algorithm=algorithm, store=state_store)
            if clock is not None:
                bucket._clock = _FixedClock(clock)
        else:
            algorithm = FixedWindow() if strategy == "fixed_window" else None
            if client is None:
                bucket = InMemoryBucket(rates, algorithm=algorithm)
                if clock is not None:
                    bucket._clock = _FixedClock(clock)
            else:
                bucket = await RedisBucket.init(rates, client, bucket_key, algorithm=algorithm)
                if clock is not None:
                    bucket.now = _FixedClock(clock).now
        return Limiter(bucket), client

    async def decider(
        self,
        store: str,
        strategy: str,
        rate: RateSpec,
        servers: Servers,
        clock: StepClock | None = None,
    ) -> Decider:
        limiter, client = await self._limiter(store, strategy, rate, servers, clock)

        async def hit(key: str) -> bool:
            return bool(await limiter.try_acquire_async(key, blocking=False))

        async def close() -> None:
            limiter.close()
            if client is not None:
                await _clients.release(client)

        return Decider(hit, close)

    def fastapi_strategy(self) -> str:
        return "sliding_log"

    def fastapi_app(self, store: str, servers: Servers, rate: RateSpec) -> Any:
        from fastapi import Depends, FastAPI
        from fastapi_limiter.depends import RateLimiter
        from pyrate_limiter import Duration, Limiter, Rate

        if store != "memory":
            raise NotAvailable(
                "the FastAPI measure uses fastapi-limiter's documented in-memory Limiter"
            )
        limiter = Limiter(Rate(rate.limit, Duration.SECOND * rate.period_s))
        app = FastAPI()

        @app.get("/plain")
        async def plain() -> dict[str, bool]:
            return {"ok": True}

        @app.get("/throttled", dependencies=[Depends(RateLimiter(limiter=limiter))])
        async def throttled() -> dict[str, bool]:
            return {"ok": True}

        return app

    def redis_key_pattern(self, servers: Servers) -> str:
        return f"{self.namespace(servers)}:*"

    def notes(self) -> list[str]:
        return [f"{SHARED}. {NO_MEMCACHED}; {NO_COUNTER}."]
