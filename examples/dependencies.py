"""Throttles as FastAPI dependencies: ``Depends(throttle)``.

Run from the repository root::

    uvicorn examples.dependencies:app

then ``curl -i localhost:8000/items`` six times within a minute: the sixth answer is
``429 Too Many Requests`` with a ``Retry-After`` header.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.requests import HTTPConnection

from ratescript import EXEMPTED, HTTPThrottle, ThrottleGroup
from ratescript.stores import InMemoryStore
from ratescript.strategies import SlidingWindowLogStrategy

store = InMemoryStore(namespace="dependencies-example")
# Throttles that name no store use the one this lifespan opens.
app = FastAPI(lifespan=store.lifespan)

# 5 requests a minute per client address, in fixed windows (the default strategy).
items_limit = HTTPThrottle("items", "5/minute")


@app.get("/items", dependencies=[Depends(items_limit)])
async def list_items() -> dict[str, list[int]]:
    return {"items": [1, 2, 3]}


# A throttle returns the connection, so it can stand in for the Request parameter.
search_limit = HTTPThrottle("search", "2/5s", strategy=SlidingWindowLogStrategy())


@app.get("/search")
async def search(q: str, request: Request = Depends(search_limit)) -> dict[str, Any]:
    return {"q": q, "client": request.client.host if request.client else None}


async def api_key(connection: HTTPConnection) -> Any:
    """Limit by API key; the internal key is never limited."""
    key = connection.headers.get("x-api-key", "anonymous")
    return EXEMPTED if key == "internal" else f"key:{key}"


per_key = HTTPThrottle("per-key", "3/minute", identifier=api_key)


@app.get("/me", dependencies=[Depends(per_key)])
async def me(request: Request) -> dict[str, str | None]:
    return {"api_key": request.headers.get("x-api-key")}


# Two limits checked atomically: when the burst limit rejects, the hourly one is not
# charged. (Two separate Depends would be two separate checks.)
upload_limits = ThrottleGroup(
    HTTPThrottle("upload-burst", "3/10s"), HTTPThrottle("upload-hourly", "20/hour")
)


@app.post("/upload", dependencies=[Depends(upload_limits)])
async def upload() -> dict[str, str]:
    return {"status": "stored"}
