"""traffik: ``await strategy(key, rate, backend, cost)`` on its three backends."""

from __future__ import annotations

import importlib
from typing import Any

from common import StepClock

from adapters.base import Adapter, Decider, NotAvailable, RateSpec, Servers

# Where each strategy reads the clock (``from traffik._utils import time``): the
# module global the harness replaces while a sliding log runs on a StepClock.
_CLOCK_MODULE = "traffik.strategies.sliding_window"


class TraffikAdapter(Adapter):
    name = "traffik"
    distribution = "traffik"

    def _backend(self, store: str, servers: Servers) -> Any:
        namespace = self.namespace(servers)
        if store == "memory":
            from traffik.backends.inmemory import InMemoryBackend

            return InMemoryBackend(namespace=namespace)
        if store == "redis":
            from traffik.backends.redis import RedisBackend

            return RedisBackend(servers.redis_url, namespace=namespace)
        if store == "memcached":
            from traffik.backends.memcached import MemcachedBackend

            return MemcachedBackend(
                host=servers.memcached_host, port=servers.memcached_port, namespace=namespace
            )
        raise NotAvailable(f"no {store} backend")

    @staticmethod
    def _strategy(strategy: str, rate: RateSpec) -> Any:
        import traffik.strategies as strategies

        if strategy == "token_bucket":
            return strategies.TokenBucketStrategy()
        if strategy == "gcra":
            return strategies.GCRAStrategy(burst_tolerance_ms=rate.burst_tolerance_ms)
        if strategy == "sliding_log":
            return strategies.SlidingWindowLogStrategy()
        if strategy == "fixed_window":
            return strategies.FixedWindowStrategy()
        if strategy == "sliding_counter":
            return strategies.SlidingWindowCounterStrategy()
        raise NotAvailable(f"no {strategy}")

    async def decider(
        self,
        store: str,
        strategy: str,
        rate: RateSpec,
        servers: Servers,
        clock: StepClock | None = None,
    ) -> Decider:
        from traffik.rates import Rate

        backend = self._backend(store, servers)
        await backend.initialize()
        the_strategy = self._strategy(strategy, rate)
        the_rate = Rate(limit=rate.limit, seconds=rate.period_s)
        restore: Any = None
        if clock is not None:
            if strategy != "sliding_log":
                raise NotAvailable("the harness moves traffik's clock for the sliding log only")
            module = importlib.import_module(_CLOCK_MODULE)
            restore = module.time
            module.time = clock.seconds

        async def hit(key: str) -> bool:
            return await the_strategy(key, the_rate, backend, 1) == 0.0

        async def close() -> None:
            if restore is not None:
                importlib.import_module(_CLOCK_MODULE).time = restore
            await backend.close()

        return Decider(hit, close)

    def fastapi_app(self, store: str, servers: Servers, rate: RateSpec) -> Any:
        from fastapi import Depends, FastAPI
        from traffik import HTTPThrottle
        from traffik.rates import Rate

        backend = self._backend(store, servers)
        throttle = HTTPThrottle(
            uid="bench", rate=Rate(limit=rate.limit, seconds=rate.period_s), backend=backend
        )
        app = FastAPI(lifespan=backend.lifespan)

        @app.get("/plain")
        async def plain() -> dict[str, bool]:
            return {"ok": True}

        @app.get("/throttled", dependencies=[Depends(throttle)])
        async def throttled() -> dict[str, bool]:
            return {"ok": True}

        return app

    def notes(self) -> list[str]:
        return [
            "traffik runs every strategy as lock + `get` + `set` + unlock through its "
            "backend (the sliding window counter adds an `increment_with_ttl` script); "
            "its sliding log is one serialized string parsed and rewritten per decision."
        ]
