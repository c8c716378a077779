"""ratescript: ``await strategy(key, rate, store)`` on its three stores."""

from __future__ import annotations

from typing import Any

from common import StepClock

from adapters.base import Adapter, Decider, NotAvailable, RateSpec, Servers


class RatescriptAdapter(Adapter):
    name = "ratescript"
    distribution = "ratescript"

    def _store(self, store: str, servers: Servers, clock: StepClock | None) -> Any:
        from ratescript.stores.memcached import MemcachedStore
        from ratescript.stores.memory import InMemoryStore
        from ratescript.stores.redis import RedisStore

        namespace = self.namespace(servers)
        if store == "memory":
            if clock is None:
                return InMemoryStore(namespace=namespace)
            return InMemoryStore(namespace=namespace, clock=clock.ms)
        if store == "redis":
            if clock is None:
                return RedisStore(servers.redis_url, namespace=namespace)
            return RedisStore(servers.redis_url, namespace=namespace, clock=clock.ms)
        if store == "memcached":
            if clock is None:
                return MemcachedStore(servers.memcached_url, namespace=namespace)
            return MemcachedStore(servers.memcached_url, namespace=namespace, clock=clock.ms)
        raise NotAvailable(f"no {store} store")

    @staticmethod
    def _strategy(strategy: str, rate: RateSpec) -> Any:
        from ratescript import strategies

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
        from ratescript.rates import Rate

        the_store = self._store(store, servers, clock)
        await the_store.initialize()
        the_strategy = self._strategy(strategy, rate)
        the_rate = Rate(rate.limit, seconds=rate.period_s)

        async def hit(key: str) -> bool:
            return await the_strategy(key, the_rate, the_store) == 0.0

        return Decider(hit, the_store.close)

    #: The ways to put one throttle on a route, besides ``Depends`` (the judged one).
    STYLES = ("depends", "decorator", "middleware")

    def fastapi_app(
        self, store: str, servers: Servers, rate: RateSpec, style: str = "depends"
    ) -> Any:
        from fastapi import Depends, FastAPI

        from ratescript import HTTPThrottle, throttled
        from ratescript.asgi import MiddlewareThrottle, ThrottleMiddleware
        from ratescript.rates import Rate

        the_store = self._store(store, servers, None)
        throttle = HTTPThrottle("bench", Rate(rate.limit, seconds=rate.period_s), store=the_store)
        app = FastAPI(lifespan=the_store.lifespan)

        @app.get("/plain")
        async def plain() -> dict[str, bool]:
            return {"ok": True}

        if style == "depends":

            @app.get("/throttled", dependencies=[Depends(throttle)])
            async def limited() -> dict[str, bool]:
                return {"ok": True}

        elif style == "decorator":

            @app.get("/throttled")
            @throttled(throttle)
            async def decorated() -> dict[str, bool]:
                return {"ok": True}

        else:

            @app.get("/throttled")
            async def unmarked() -> dict[str, bool]:
                return {"ok": True}

            app.add_middleware(
                ThrottleMiddleware,
                middleware_throttles=[MiddlewareThrottle(throttle, path="/throttled")],
            )
        return app
