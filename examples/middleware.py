"""Throttles for whole groups of routes: ``ThrottleMiddleware``.

Run from the repository root::

    uvicorn examples.middleware:app

Reads under ``/api/`` get 5 a minute, writes 2 a minute, requests carrying an
``X-API-Key`` another 100 a minute; ``/health`` is not limited. A rule applies when
its methods, then its path (a regular expression matched at the start of the path),
then its predicate match; the rules a request matches are checked together,
atomically.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from starlette.requests import HTTPConnection

from ratescript import HTTPThrottle
from ratescript.asgi import MiddlewareThrottle, ThrottleMiddleware
from ratescript.stores import InMemoryStore

store = InMemoryStore(namespace="middleware-example")
app = FastAPI(lifespan=store.lifespan)


async def has_api_key(connection: HTTPConnection) -> bool:
    return "x-api-key" in connection.headers


app.add_middleware(
    ThrottleMiddleware,
    middleware_throttles=[
        MiddlewareThrottle(HTTPThrottle("api-reads", "5/minute"), path="/api/", methods={"GET"}),
        MiddlewareThrottle(
            HTTPThrottle("api-writes", "2/minute"),
            path="/api/",
            methods={"POST", "PUT", "DELETE"},
        ),
        MiddlewareThrottle(
            HTTPThrottle("api-keyed", "100/minute"),
            path=re.compile(r"/api/(items|orders)"),
            predicate=has_api_key,
        ),
    ],
    store=store,  # optional: throttles without a store use it (else the lifespan's)
)


@app.get("/api/items")
async def list_items() -> dict[str, list[int]]:
    return {"items": [1, 2, 3]}


@app.post("/api/items")
async def add_item() -> dict[str, str]:
    return {"status": "added"}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
