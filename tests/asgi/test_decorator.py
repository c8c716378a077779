"""``@throttled(t1, t2)`` on a FastAPI endpoint and on a plain Starlette one."""

from __future__ import annotations

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


def test_a_sync_endpoint_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="async"):

        @throttled(HTTPThrottle("t", "1/s"))  # type: ignore[type-var]
        def index(request: StarletteRequest) -> None:
            return None


def test_it_needs_a_throttle() -> None:
    with pytest.raises(ConfigurationError):
        throttled()
