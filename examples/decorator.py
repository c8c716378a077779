"""Throttles declared on the endpoint: ``@throttled(burst, sustained)``.

Run from the repository root::

    uvicorn examples.decorator:app

``POST /orders`` admits 3 orders per 10 s and 100 per hour. Both limits are checked
by one composed script, atomically: an order the burst limit rejects is not counted
against the hourly one.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request

from ratescript import HTTPThrottle, throttled
from ratescript.stores import InMemoryStore
from ratescript.strategies import GCRAStrategy, TokenBucketStrategy

store = InMemoryStore(namespace="decorator-example")
app = FastAPI(lifespan=store.lifespan)

burst = HTTPThrottle("orders-burst", "3/10s", strategy=TokenBucketStrategy())
hourly = HTTPThrottle("orders-hourly", "100/hour")


@app.post("/orders")
@throttled(burst, hourly)
async def create_order() -> dict[str, str]:
    return {"status": "created"}


# The decorator also fits endpoints that take the request themselves.
@app.get("/report")
@throttled(HTTPThrottle("report", "1/minute", strategy=GCRAStrategy()))
async def report(request: Request) -> dict[str, str]:
    return {"report": f"for {request.client.host if request.client else 'you'}"}
