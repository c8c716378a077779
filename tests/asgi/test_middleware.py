"""``ThrottleMiddleware``: which requests each rule applies to (method, then path, then
predicate), the 429 it answers, and the store it lends to throttles without one."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI, WebSocket
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ratescript.asgi import (
    HTTPThrottle,
    MiddlewareThrottle,
    ThrottleMiddleware,
    WebSocketThrottle,
    is_throttled,
)
from ratescript.exceptions import ConfigurationError
from ratescript.stores.base import Store

from .helpers import CLIENT, StoreFactory, http, remaining


def app_behind(*rules: MiddlewareThrottle, store: Store | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/api/items")
    async def items() -> str:
        return "items"

    @app.post("/api/items")
    async def create() -> str:
        return "created"

    @app.get("/public")
    async def public() -> str:
        return "public"

    app.add_middleware(ThrottleMiddleware, middleware_throttles=list(rules), store=store)
    return app


@pytest.mark.asyncio
async def test_a_rule_limits_matching_requests_with_a_429(store: Store, now: list[float]) -> None:
    throttle = HTTPThrottle("mw", "2/5s", store=store)
    app = app_behind(MiddlewareThrottle(throttle, path="/api/"))
    async with http(app) as client:
        assert (await client.get("/api/items")).text == '"items"'
        assert (await client.post("/api/items")).text == '"created"'
        rejected = await client.get("/api/items")
        assert rejected.status_code == 429
        assert rejected.headers["Retry-After"] == "5"
        assert rejected.json() == {"detail": "Too many requests. Retry in 5 seconds."}
        # Other paths are not limited, and nothing charges the throttle for them.
        assert {(await client.get("/public")).status_code for _ in range(3)} == {200}
        now[0] += 5000
        assert (await client.get("/api/items")).status_code == 200


@pytest.mark.asyncio
async def test_a_compiled_pattern_and_methods_in_any_case(store: Store) -> None:
    throttle = HTTPThrottle("mw", "1/s", store=store)
    rule = MiddlewareThrottle(throttle, path=re.compile(r"/api/items$"), methods={"post"})
    async with http(app_behind(rule)) as client:
        assert {(await client.get("/api/items")).status_code for _ in range(3)} == {200}
        assert [(await client.post("/api/items")).status_code for _ in range(2)] == [200, 429]
        assert (await client.get("/public")).status_code == 200


@pytest.mark.asyncio
async def test_a_sync_predicate_serves_as_well(store: Store) -> None:
    def flagged(connection: HTTPConnection) -> bool:
        return connection.headers.get("x-flag") == "1"

    rule = MiddlewareThrottle(HTTPThrottle("mw", "1/min", store=store), predicate=flagged)
    async with http(app_behind(rule)) as client:
        assert {(await client.get("/public")).status_code for _ in range(3)} == {200}
        sent = [await client.get("/public", headers={"x-flag": "1"}) for _ in range(2)]
        assert [response.status_code for response in sent] == [200, 429]


@pytest.mark.asyncio
async def test_a_get_rule_limits_head_too(store: Store) -> None:
    """Starlette answers HEAD with a route's GET endpoint: the endpoint runs for HEAD too."""
    ran: list[str] = []

    async def items(request: Request) -> PlainTextResponse:
        ran.append(request.method)
        return PlainTextResponse("items")

    app = Starlette(routes=[Route("/api/items", items, methods=["GET"])])
    throttle = HTTPThrottle("mw", "2/min", store=store)
    app.add_middleware(
        ThrottleMiddleware,
        middleware_throttles=[MiddlewareThrottle(throttle, path="/api/", methods={"GET"})],
    )
    async with http(app) as client:
        assert (await client.get("/api/items")).status_code == 200
        assert [(await client.head("/api/items")).status_code for _ in range(3)] == [200, 429, 429]
    assert ran == ["GET", "HEAD"]


@pytest.mark.asyncio
async def test_method_then_path_then_predicate(store: Store) -> None:
    asked: list[str] = []

    async def only_flagged(connection: HTTPConnection) -> bool:
        asked.append(f"{connection.scope['method']} {connection.url.path}")
        return connection.headers.get("x-flag") == "1"

    throttle = HTTPThrottle("mw", "1/min", store=store)
    rule = MiddlewareThrottle(throttle, path="/api/", methods=["GET"], predicate=only_flagged)
    async with http(app_behind(rule)) as client:
        await client.post("/api/items", headers={"x-flag": "1"})  # the method excludes
        await client.get("/public", headers={"x-flag": "1"})  # the path excludes
        assert asked == []  # the predicate was never asked
        assert (await client.get("/api/items")).status_code == 200  # the predicate excludes
        assert asked == ["GET /api/items"]
        assert await remaining(throttle) == 1
        flagged = [(await client.get("/api/items", headers={"x-flag": "1"})).status_code]
        flagged.append((await client.get("/api/items", headers={"x-flag": "1"})).status_code)
        assert flagged == [200, 429]


@pytest.mark.asyncio
async def test_under_a_mount_rules_match_the_path_the_sub_app_routes_on(store: Store) -> None:
    """The sub-app's scope["path"] keeps the "/v1" prefix; its own routes match without it."""
    sub = app_behind(MiddlewareThrottle(HTTPThrottle("mw", "1/min", store=store), path="/api/"))
    app = FastAPI()
    app.mount("/v1", sub)
    async with http(app) as client:
        assert [(await client.get("/v1/api/items")).status_code for _ in range(2)] == [200, 429]
        assert (await client.get("/v1/public")).status_code == 200


@pytest.mark.asyncio
async def test_behind_a_root_path_rules_match_the_path_the_app_routes_on(store: Store) -> None:
    """``uvicorn --root-path /prefix``: the path carries the prefix, the routes do not."""
    app = app_behind(MiddlewareThrottle(HTTPThrottle("mw", "1/min", store=store), path="/api/"))
    transport = httpx.ASGITransport(app=app, client=CLIENT, root_path="/prefix")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        statuses = [(await client.get("/prefix/api/items")).status_code for _ in range(2)]
    assert statuses == [200, 429]


@pytest.mark.asyncio
async def test_the_middleware_store_serves_its_throttles_and_the_endpoints(
    store: Store,
) -> None:
    rule = MiddlewareThrottle(HTTPThrottle("mw", "5/s"), path="/api/")
    endpoint_throttle = HTTPThrottle("endpoint", "1/s")
    app = app_behind(rule, store=store)

    @app.get("/limited", dependencies=[Depends(endpoint_throttle)])
    async def limited() -> str:
        return "limited"

    async with http(app) as client:
        assert (await client.get("/api/items")).status_code == 200
        assert await remaining(HTTPThrottle("mw", "5/s", store=store)) == 4
        # No rule matches /limited: the endpoint's throttle still finds the store.
        assert [(await client.get("/limited")).status_code for _ in range(2)] == [200, 429]


def test_websockets_pass_through_unthrottled_but_get_the_store(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    rule = MiddlewareThrottle(HTTPThrottle("mw", "1/min"), path="/api/")
    socket_throttle = WebSocketThrottle("ws", "2/min")  # no store: the middleware's

    @contextlib.asynccontextmanager
    async def open_only(app: object) -> AsyncIterator[None]:
        # Opens and closes the store in the app's loop, without making it a default.
        await store.initialize()
        yield
        await store.close()

    app = FastAPI(lifespan=open_only)

    @app.websocket("/api/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await socket_throttle(websocket)
        await websocket.send_text("dropped" if is_throttled(websocket) else "hello")
        await websocket.close()

    app.add_middleware(ThrottleMiddleware, middleware_throttles=[rule], store=store)
    with TestClient(app) as client:
        for _ in range(2):
            with client.websocket_connect("/api/ws") as socket:
                assert socket.receive_text() == "hello"
        with client.websocket_connect("/api/ws") as socket:
            assert socket.receive_json()["type"] == "rate_limit"
            assert socket.receive_text() == "dropped"
        # The HTTP rule was never charged by the sockets.
        assert [client.get("/api/nothing").status_code for _ in range(2)] == [404, 429]


def test_bad_rules_are_refused() -> None:
    throttle = HTTPThrottle("mw", "1/s")
    with pytest.raises(ConfigurationError, match="path pattern"):
        MiddlewareThrottle(throttle, path="/api/(")
    with pytest.raises(ConfigurationError, match="predicate"):
        MiddlewareThrottle(throttle, predicate=True)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        MiddlewareThrottle("not a throttle")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ThrottleMiddleware(FastAPI(), middleware_throttles=[throttle])  # type: ignore[list-item]
