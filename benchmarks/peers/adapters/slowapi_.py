"""slowapi: its ``Limiter`` runs the *synchronous* ``limits`` storages and strategies.

A decision is what slowapi's ``limit`` decorator does per request:
``limiter.hit(item, key)`` of a ``limits.strategies`` rate limiter over a
``limits.storage`` storage (redis-py, pymemcache), blocking the event loop meanwhile.
"""

from __future__ import annotations

from typing import Any

from common import StepClock

# Module level: FastAPI reads the route's annotation ``request: Request`` by name
# from this module's globals (annotations are strings here).
from starlette.requests import Request

from adapters.base import Adapter, Decider, NotAvailable, RateSpec, Servers

# limits' rate limiters by our strategy names; slowapi's ``strategy=`` names them too.
LIMITERS = {
    "fixed_window": ("FixedWindowRateLimiter", "fixed-window"),
    "sliding_log": ("MovingWindowRateLimiter", "moving-window"),
    "sliding_counter": ("SlidingWindowCounterRateLimiter", "sliding-window-counter"),
}
NO_BUCKETS = "limits has no token bucket or GCRA (fixed, moving and sliding-counter windows only)"
NO_MOVING_MEMCACHED = "limits' Memcached storage has no moving window"
REAL_CLOCK = (
    "limits' moving window reads time.time() and trims by count, not time: its log holds "
    "the 1,000 prefilled entries plus every timed hit"
)


def storage_uri(store: str, servers: Servers, scheme_prefix: str = "") -> str:
    if store == "memory":
        return f"{scheme_prefix}memory://"
    if store == "redis":
        return scheme_prefix + servers.redis_url
    if store == "memcached":
        return f"{scheme_prefix}memcached://{servers.memcached_host}:{servers.memcached_port}"
    raise NotAvailable(f"no {store} storage")


def check_strategy(store: str, strategy: str) -> tuple[str, str]:
    if strategy not in LIMITERS:
        raise NotAvailable(NO_BUCKETS)
    if strategy == "sliding_log" and store == "memcached":
        raise NotAvailable(NO_MOVING_MEMCACHED)
    return LIMITERS[strategy]


class SlowapiAdapter(Adapter):
    name = "slowapi"
    distribution = "slowapi"

    def _options(self, store: str, servers: Servers) -> dict[str, Any]:
        return {"key_prefix": self.namespace(servers)} if store == "redis" else {}

    async def decider(
        self,
        store: str,
        strategy: str,
        rate: RateSpec,
        servers: Servers,
        clock: StepClock | None = None,
    ) -> Decider:
        import limits
        import limits.storage
        import limits.strategies

        class_name, _slowapi_name = check_strategy(store, strategy)
        if clock is not None:
            raise NotAvailable(REAL_CLOCK)
        storage = limits.storage.storage_from_string(
            storage_uri(store, servers), **self._options(store, servers)
        )
        limiter = getattr(limits.strategies, class_name)(storage)
        item = limits.RateLimitItemPerSecond(
            rate.limit, rate.period_s, namespace=self.namespace(servers)
        )

        async def hit(key: str) -> bool:
            return bool(limiter.hit(item, key))

        async def close() -> None:
            closer = getattr(storage, "close", None)
            if closer is not None:
                closer()

        return Decider(hit, close)

    def fastapi_app(self, store: str, servers: Servers, rate: RateSpec) -> Any:
        from fastapi import FastAPI
        from slowapi import Limiter, _rate_limit_exceeded_handler
        from slowapi.errors import RateLimitExceeded
        from slowapi.util import get_remote_address

        limiter = Limiter(
            key_func=get_remote_address,
            storage_uri=storage_uri(store, servers),
            key_prefix=self.namespace(servers),
        )
        app = FastAPI()
        app.state.limiter = limiter
        app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]

        @app.get("/plain")
        async def plain(request: Request) -> dict[str, bool]:
            return {"ok": True}

        @app.get("/throttled")
        @limiter.limit(f"{rate.limit}/{rate.period_s} seconds")
        async def throttled(request: Request) -> dict[str, bool]:
            return {"ok": True}

        return app

    def notes(self) -> list[str]:
        return [
            f"slowapi (through limits): {NO_BUCKETS}; {NO_MOVING_MEMCACHED}. Its limiter "
            "is synchronous: every Redis or Memcached call blocks the event loop.",
            REAL_CLOCK + ".",
        ]
