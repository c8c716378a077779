"""What a rejected HTTP hit answers: 429, ``Retry-After`` rounded up, the detail,
``min_wait_period``, static ``headers=``, and custom handlers (the throttle's, else the store's)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.exceptions import HTTPException

from ratescript.asgi import HTTPThrottle, Throttle
from ratescript.stores.base import Store

from .helpers import StoreFactory, http

pytestmark = pytest.mark.asyncio


def app_with(throttle: HTTPThrottle) -> FastAPI:
    app = FastAPI()

    @app.get("/", dependencies=[Depends(throttle)])
    async def index() -> None:
        return None

    return app


async def test_retry_after_rounds_the_wait_up_and_retrying_then_succeeds(
    store: Store, now: list[float]
) -> None:
    throttle = HTTPThrottle("resp", "1/5s", store=store)
    async with http(app_with(throttle)) as client:
        assert (await client.get("/")).status_code == 200
        now[0] += 1200  # 3800 ms left in the window
        rejected = await client.get("/")
        assert rejected.status_code == 429
        assert rejected.headers["Retry-After"] == "4"
        assert rejected.json()["detail"] == "Too many requests. Retry in 4 seconds."
        now[0] += 3799
        assert (await client.get("/")).status_code == 429
        now[0] += 1  # exactly the wait
        assert (await client.get("/")).status_code == 200


async def test_min_wait_period_lengthens_a_short_wait_only(store: Store, now: list[float]) -> None:
    throttle = HTTPThrottle("resp", "1/s", store=store, min_wait_period=7000)
    long_wait = HTTPThrottle("long", "1/20s", store=store, min_wait_period=7000)
    async with http(app_with(throttle)) as client:
        await client.get("/")
        assert (await client.get("/")).headers["Retry-After"] == "7"
    async with http(app_with(long_wait)) as client:
        await client.get("/")
        assert (await client.get("/")).headers["Retry-After"] == "20"


async def test_static_headers_go_on_the_429(store: Store) -> None:
    static = {"X-Why": "too eager", "X-Where": "café"}  # any latin-1 text
    throttle = HTTPThrottle("resp", "1/s", store=store, headers=static)
    async with http(app_with(throttle)) as client:
        admitted = await client.get("/")
        assert "X-Why" not in admitted.headers
        rejected = await client.get("/")
        assert rejected.headers["X-Why"] == "too eager"
        assert (b"x-where", "café".encode("latin-1")) in rejected.headers.raw
        assert rejected.headers["Retry-After"] == "1"


class Recorder:
    """A throttled handler answering 503 with its name, recording what it was told."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[float, Throttle, dict[str, Any]]] = []

    async def __call__(
        self, connection: Any, wait_ms: float, throttle: Throttle, context: dict[str, Any]
    ) -> None:
        self.calls.append((wait_ms, throttle, context))
        raise HTTPException(503, detail=f"busy ({self.name})", headers={"X-Wait": str(wait_ms)})


async def test_a_custom_handler_replaces_the_429(store: Store, now: list[float]) -> None:
    handler = Recorder("throttle")
    throttle = HTTPThrottle("resp", "1/s", store=store, handle_throttled=handler)
    async with http(app_with(throttle)) as client:
        await client.get("/")
        now[0] += 250
        rejected = await client.get("/")
    assert rejected.status_code == 503
    assert rejected.json() == {"detail": "busy (throttle)"}
    assert rejected.headers["X-Wait"] == "750.0"
    [(wait_ms, seen, context)] = handler.calls
    assert wait_ms == 750.0
    assert seen is throttle
    assert context["headers"] == {}
    # The whole decision, also where the admitting hits built none (the in-process
    # store's runner for a throttle without headers).
    [decision] = context["decisions"]
    assert (decision.allowed, decision.wait_ms, decision.remaining) == (False, 750.0, 0.0)
    assert decision.metadata["current_count"] == 1.0


async def test_the_store_handler_is_the_default_and_the_throttle_handler_wins(
    new_store: StoreFactory,
) -> None:
    store_handler, own_handler = Recorder("store"), Recorder("own")
    store = new_store(handle_throttled=store_handler)
    inherits = HTTPThrottle("inherits", "1/s", store=store)
    overrides = HTTPThrottle("overrides", "1/s", store=store, handle_throttled=own_handler)
    async with http(app_with(inherits)) as client:
        await client.get("/")
        assert (await client.get("/")).json() == {"detail": "busy (store)"}
    async with http(app_with(overrides)) as client:
        await client.get("/")
        assert (await client.get("/")).json() == {"detail": "busy (own)"}
    assert [call[1] for call in store_handler.calls] == [inherits]
    assert [call[1] for call in own_handler.calls] == [overrides]


async def test_a_sync_handler_is_called_like_an_async_one(new_store: StoreFactory) -> None:
    """Like rate and cost functions, a handler may be sync: not a 500 on every rejection."""
    told: list[tuple[str, float]] = []

    def own(connection: Any, wait_ms: float, throttle: Throttle, context: Any) -> None:
        told.append(("own", wait_ms))
        raise HTTPException(503, detail="busy")

    def from_store(connection: Any, wait_ms: float, throttle: Throttle, context: Any) -> None:
        told.append(("store", wait_ms))  # returns: the request goes through

    store = new_store(handle_throttled=from_store)
    overrides = HTTPThrottle("overrides", "1/s", store=store, handle_throttled=own)
    async with http(app_with(overrides)) as client:
        assert [(await client.get("/")).status_code for _ in range(2)] == [200, 503]
    async with http(app_with(HTTPThrottle("inherits", "1/s", store=store))) as client:
        assert [(await client.get("/")).status_code for _ in range(2)] == [200, 200]
    assert told == [("own", 1000.0), ("store", 1000.0)]


async def test_a_handler_that_returns_lets_the_request_through(store: Store) -> None:
    logged: list[float] = []

    async def log_only(connection: Any, wait_ms: float, throttle: Throttle, context: Any) -> None:
        logged.append(wait_ms)

    throttle = HTTPThrottle("resp", "1/s", store=store, handle_throttled=log_only)
    async with http(app_with(throttle)) as client:
        assert [(await client.get("/")).status_code for _ in range(3)] == [200, 200, 200]
    assert logged == [1000.0, 1000.0]
