"""Rate-limit headers on every response, and where a client stands: ``throttle.stat``.

Run from the repository root::

    uvicorn examples.stats_and_headers:app

Every ``/data`` response carries ``RateLimit-Policy``, ``RateLimit`` (IETF draft) and
``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset``; ``/quota`` reports the client's
standing through ``Depends(throttle.stat)``, which never consumes quota.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from ratescript import HTTPThrottle
from ratescript.stores import InMemoryStore
from ratescript.strategies import StrategyStat, TokenBucketStatMetadata, TokenBucketStrategy

store = InMemoryStore(namespace="stats-example")
app = FastAPI(lifespan=store.lifespan)

api = HTTPThrottle(
    "api",
    "10/minute",
    strategy=TokenBucketStrategy(),
    rate_limit_headers="all",  # or "ietf" / "classic"
    headers={"Cache-Control": "no-store"},  # static headers added to 429s
)


@app.get("/data", dependencies=[Depends(api)])
async def data() -> dict[str, str]:
    return {"data": "value"}


@app.get("/quota")
async def quota(
    stat: StrategyStat[TokenBucketStatMetadata] = Depends(api.stat),
) -> dict[str, Any]:
    return {
        "limit": stat.rate.limit,
        "remaining": stat.hits_remaining,
        "wait_ms": stat.wait_ms,
        "tokens": stat.metadata["tokens"],  # the bucket as it stands
    }
