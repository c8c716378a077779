"""Redis: limits shared by every process and host, with a production failure policy.

Run from the repository root (Redis on localhost, or set ``RATESCRIPT_REDIS_URL``)::

    RATESCRIPT_REDIS_URL=redis://localhost:6379/0 uvicorn examples.redis_app:app --workers 4

``GET /data`` admits 5 requests per 10 s (a token bucket) and 100 per hour (a sliding
window counter), both checked by one ``EVALSHA``. When Redis fails, ``failover``
retries it once, then counts on an in-process store; after 5 failures in a row its
circuit breaker stops retrying for 30 s. ``GET /health`` shows the breaker.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from ratescript import HTTPThrottle, throttled
from ratescript.asgi.errors import CircuitBreaker, failover
from ratescript.stores import InMemoryStore, RedisStore
from ratescript.strategies import SlidingWindowCounterStrategy, TokenBucketStrategy

REDIS_URL = os.environ.get("RATESCRIPT_REDIS_URL", "redis://localhost:6379/0")


def create_app(url: str = REDIS_URL, namespace: str = "redis-example") -> FastAPI:
    """The app, its keys under ``namespace``, on the Redis server at ``url``."""
    # A short timeout: a request waits at most this long on an unreachable Redis.
    store = RedisStore(url, namespace=namespace, timeout=0.25)
    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=30.0, success_threshold=2)
    policy = failover(InMemoryStore(namespace=f"{namespace}-fallback"), breaker, max_retries=1)
    app = FastAPI(lifespan=store.lifespan)

    burst = HTTPThrottle(
        "data-burst", "5/10s", strategy=TokenBucketStrategy(), store=store, on_error=policy
    )
    hourly = HTTPThrottle(
        "data-hourly",
        "100/hour",
        strategy=SlidingWindowCounterStrategy(),
        store=store,
        on_error=policy,
    )

    @app.get("/data")
    @throttled(burst, hourly)
    async def data() -> dict[str, str]:
        return {"data": "value"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"rate_limit_store": breaker.state}

    return app


app = create_app()
