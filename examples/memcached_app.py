"""Memcached: limits shared through a Memcached server, with store-wide defaults.

Run from the repository root (memcached on localhost, or set
``RATESCRIPT_MEMCACHED_URL``)::

    RATESCRIPT_MEMCACHED_URL=memcached://localhost:11211 uvicorn examples.memcached_app:app

Each script runs as a ``gets``/``cas`` plan, so decisions match Redis and the
in-process store exactly. The store carries defaults for its throttles: a failure
policy (count on an in-process store while Memcached is away) and a throttled
handler (a 429 with a friendlier message); a throttle's own settings would win.
"""

from __future__ import annotations

import math
import os
from typing import Any

from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection

from ratescript import ConnectionThrottled, HTTPThrottle, Throttle
from ratescript.asgi.errors import store_fallback
from ratescript.stores import InMemoryStore, MemcachedStore
from ratescript.strategies import SlidingWindowLogStrategy

MEMCACHED_URL = os.environ.get("RATESCRIPT_MEMCACHED_URL", "memcached://localhost:11211")


async def polite_429(
    connection: HTTPConnection, wait_ms: float, throttle: Throttle, context: dict[str, Any]
) -> None:
    seconds = math.ceil(wait_ms / 1000)
    raise ConnectionThrottled(
        wait_ms,
        f"{throttle.uid}: limit reached, please retry in {seconds} s",
        headers=context["headers"],
    )


def create_app(url: str = MEMCACHED_URL, namespace: str = "memcached-example") -> FastAPI:
    """The app, its keys under ``namespace``, on the Memcached server at ``url``."""
    store = MemcachedStore(
        url,
        namespace=namespace,
        timeout=0.25,
        on_error=store_fallback(InMemoryStore(namespace=f"{namespace}-fallback")),
        handle_throttled=polite_429,
    )
    app = FastAPI(lifespan=store.lifespan)
    quotes = HTTPThrottle("quotes", "4/minute", strategy=SlidingWindowLogStrategy())

    @app.get("/quote", dependencies=[Depends(quotes)])
    async def quote() -> dict[str, str]:
        return {"quote": "Simple is better than complex."}

    return app


app = create_app()
