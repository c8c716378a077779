"""limits' asyncio API (``limits.aio``): what slowapi would run were it asynchronous.

Redis through redis-py (``implementation="redispy"``, the client every other library
here uses), Memcached through memcachio (limits' default asynchronous client).
"""

from __future__ import annotations

from common import StepClock

from adapters.base import Adapter, Decider, NotAvailable, RateSpec, Servers
from adapters.slowapi_ import (
    NO_BUCKETS,
    NO_MOVING_MEMCACHED,
    REAL_CLOCK,
    check_strategy,
    storage_uri,
)


class LimitsAioAdapter(Adapter):
    name = "limits.aio"
    distribution = "limits"
    has_fastapi = False

    async def decider(
        self,
        store: str,
        strategy: str,
        rate: RateSpec,
        servers: Servers,
        clock: StepClock | None = None,
    ) -> Decider:
        import limits
        import limits.aio.strategies
        import limits.storage

        class_name, _slowapi_name = check_strategy(store, strategy)
        if clock is not None:
            raise NotAvailable(REAL_CLOCK)
        options: dict[str, str] = {}
        if store == "redis":
            options = {"implementation": "redispy", "key_prefix": self.namespace(servers)}
        storage = limits.storage.storage_from_string(
            storage_uri(store, servers, "async+"), **options
        )
        limiter = getattr(limits.aio.strategies, class_name)(storage)
        item = limits.RateLimitItemPerSecond(
            rate.limit, rate.period_s, namespace=self.namespace(servers)
        )

        async def hit(key: str) -> bool:
            return bool(await limiter.hit(item, key))

        async def close() -> None:
            return None

        return Decider(hit, close)

    def notes(self) -> list[str]:
        return [
            f"limits.aio: {NO_BUCKETS}; {NO_MOVING_MEMCACHED}. Not a FastAPI integration "
            "itself: it appears in the decision, round-trip, contention and memory tables only."
        ]
