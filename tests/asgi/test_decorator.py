"""``@throttled(t1, t2)`` on a FastAPI endpoint and on a plain Starlette one."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ratescript.asgi import HTTPThrottle, throttled
from ratescript.exceptions import ConfigurationError
from ratescript.stores.base import Store

from .helpers import http, remaining


@pytest.mark.asyncio
async def test_on_fastapi_the_endpoint_keeps_its_parameters(store: Store) -> None:
    first = HTTPThrottle("first", "2/s", store=store)
    second = HTTPThrottle("second", "5/s", store=store)
    app = FastAPI()
    calls: list[int] = []

    @app.get("/items/{item}")
    @throttled(first, second)
    async def item(item: int, request: Request, q: str = "none") -> dict[str, object]:
        calls.append(item)
        return {"item": item, "q": q, "path": request.url.path}

    async with http(app) as client:
        response = await client.get("/items/3?q=x")
        assert response.json() == {"item": 3, "q": "x", "path": "/items/3"}
        assert (await client.get("/items/4")).status_code == 200
        rejected = await client.get("/items/5")
        assert rejected.status_code == 429
        assert rejected.headers["Retry-After"] == "1"
    assert calls == [3, 4]  # the rejected hit never reached the endpoint
    # Charged once per admitted hit (not once by FastAPI and again by the wrapper).
    assert await remaining(second) == 3


@pytest.mark.asyncio
async def test_on_fastapi_it_appears_in_no_openapi_parameter(store: Store) -> None:
    app = FastAPI()

    @app.get("/items/{item}")
    @throttled(HTTPThrottle("t", "1/s", store=store))
    async def item(item: int) -> int:
        return item

    parameters = app.openapi()["paths"]["/items/{item}"]["get"]["parameters"]
    assert [p["name"] for p in parameters] == ["item"]


@pytest.mark.asyncio
async def test_on_a_plain_starlette_endpoint(store: Store, now: list[float]) -> None:
    first = HTTPThrottle("first", "1/s", store=store)
    second = HTTPThrottle("second", "3/s", store=store)

    @throttled(first, second)
    async def index(request: StarletteRequest) -> Response:
        return JSONResponse({"path": request.url.path})

    app = Starlette(routes=[Route("/", index)])
    async with http(app) as client:
        assert (await client.get("/")).json() == {"path": "/"}
        rejected = await client.get("/")
        assert rejected.status_code == 429
        assert rejected.headers["Retry-After"] == "1"
        assert await remaining(second) == 2  # the first throttle's rejection charged none
        now[0] += 1000
        assert (await client.get("/")).status_code == 200


@pytest.mark.asyncio
async def test_on_a_plain_starlette_endpoint_headers_reach_the_response(store: Store) -> None:
    throttle = HTTPThrottle("plain", "2/s", store=store, rate_limit_headers="ietf")

    @throttled(throttle)
    async def index(request: StarletteRequest) -> Response:
        return JSONResponse({"ok": True}, headers={"X-Own": "kept"})

    app = Starlette(routes=[Route("/", index)])
    async with http(app) as client:
        admitted = await client.get("/")
        assert admitted.headers["X-Own"] == "kept"
        assert admitted.headers["RateLimit"] == '"plain";r=1;t=1'
        assert admitted.headers["RateLimit-Policy"] == '"plain";q=2;w=1'


@pytest.mark.asyncio
async def test_stacked_decorators_are_one_atomic_group_on_fastapi(
    store: Store, now: list[float]
) -> None:
    burst = HTTPThrottle("burst", "1/s", store=store, rate_limit_headers="ietf")
    hourly = HTTPThrottle("hourly", "3/h", store=store, rate_limit_headers="ietf")
    app = FastAPI()
    calls: list[int] = []

    @app.get("/items/{item}")
    @throttled(burst)
    @throttled(hourly)
    async def item(item: int) -> int:
        calls.append(item)
        return item

    async with http(app) as client:
        admitted = await client.get("/items/1")
        assert admitted.headers["RateLimit"] == '"burst";r=0;t=1, "hourly";r=2;t=3600'
        assert (await client.get("/items/2")).status_code == 429
        assert await remaining(hourly) == 2  # the burst's rejection charged no hour
        now[0] += 1000
        assert (await client.get("/items/3")).status_code == 200
    assert calls == [1, 3]
    parameters = app.openapi()["paths"]["/items/{item}"]["get"]["parameters"]
    assert [p["name"] for p in parameters] == ["item"]


@pytest.mark.asyncio
async def test_stacked_decorators_on_a_plain_starlette_endpoint(store: Store) -> None:
    first = HTTPThrottle("first", "5/s", store=store)
    second = HTTPThrottle("second", "1/s", store=store)
    third = HTTPThrottle("third", "5/s", store=store)

    @throttled(first)
    @throttled(second)
    @throttled(third)
    async def index(request: StarletteRequest) -> Response:
        return JSONResponse({"path": request.url.path})

    app = Starlette(routes=[Route("/", index)])
    async with http(app) as client:
        assert [(await client.get("/")).status_code for _ in range(2)] == [200, 429]
    assert [await remaining(t) for t in (first, second, third)] == [4, 0, 4]


def test_stacking_across_another_decorator_is_a_clear_error() -> None:
    def logged(endpoint: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(endpoint)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await endpoint(*args, **kwargs)

        return wrapper

    with pytest.raises(ConfigurationError, match="one @throttled"):

        @throttled(HTTPThrottle("outer", "1/s"))
        @logged
        @throttled(HTTPThrottle("inner", "1/s"))
        async def index(request: StarletteRequest) -> None:
            return None


def test_a_sync_endpoint_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="async"):

        @throttled(HTTPThrottle("t", "1/s"))  # type: ignore[type-var]
        def index(request: StarletteRequest) -> None:
            return None


def test_it_needs_a_throttle() -> None:
    with pytest.raises(ConfigurationError):
        throttled()
