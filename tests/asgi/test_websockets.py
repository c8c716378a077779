"""``WebSocketThrottle`` through Starlette's ``TestClient``: per message, a JSON notice that
keeps the socket open (``is_throttled`` true for that message only); before ``accept()``,
a refused handshake (close code 1008); custom handlers; identifiers run once per socket."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Depends, FastAPI, WebSocket
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ratescript.asgi import EXEMPTED, Throttle, WebSocketThrottle, is_throttled, throttled

from .helpers import StoreFactory


def echo_app(throttle: WebSocketThrottle, store: Any) -> FastAPI:
    """Echoes each message, or answers "dropped" after the notice of a rejected one;
    "free:" messages cost nothing, "vip:" ones are not limited at all."""
    app = FastAPI(lifespan=store.lifespan)

    @app.websocket("/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                text = await websocket.receive_text()
                cost = 0 if text.startswith("free:") else 1
                await throttle(websocket, cost=cost, context={"vip": text.startswith("vip:")})
                verb = "dropped" if is_throttled(websocket) else "echo"
                await websocket.send_text(f"{verb} {text}")
        except WebSocketDisconnect:
            pass

    return app


async def rate_unless_vip(connection: Any, context: Any) -> str:
    return "0/0" if context and context["vip"] else "2/s"


def test_a_rejected_message_gets_a_json_notice_and_the_socket_stays_open(
    make_store: StoreFactory, now: list[float]
) -> None:
    store = make_store()
    throttle = WebSocketThrottle("ws", rate_unless_vip, store=store)
    with TestClient(echo_app(throttle, store)) as client, client.websocket_connect("/echo") as ws:
        now[0] += 250
        ws.send_text("a")
        assert ws.receive_text() == "echo a"
        ws.send_text("b")
        assert ws.receive_text() == "echo b"
        ws.send_text("c")
        assert ws.receive_json() == {
            "type": "rate_limit",
            "retry_after_ms": 750.0,
            "detail": "rate limit exceeded",
        }
        assert ws.receive_text() == "dropped c"
        # is_throttled was true for "c" only: free and unlimited messages pass at once.
        ws.send_text("free:d")
        assert ws.receive_text() == "echo free:d"
        ws.send_text("e")
        assert ws.receive_json()["retry_after_ms"] == 750.0
        assert ws.receive_text() == "dropped e"
        ws.send_text("vip:f")
        assert ws.receive_text() == "echo vip:f"
        now[0] += 750
        ws.send_text("g")
        assert ws.receive_text() == "echo g"


def test_a_throttle_dependency_refuses_the_handshake_with_1008(
    make_store: StoreFactory, now: list[float]
) -> None:
    store = make_store()
    throttle = WebSocketThrottle("ws", "1/min", store=store)
    app = FastAPI(lifespan=store.lifespan)

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket = Depends(throttle)) -> None:
        await websocket.accept()
        await websocket.send_text("welcome")
        await websocket.close()

    with TestClient(app) as client:
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_text() == "welcome"
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws"):
            pass
        assert (refused.value.code, refused.value.reason) == (1008, "rate limit exceeded")
        now[0] += 60_000
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_text() == "welcome"


def test_throttled_on_a_plain_starlette_websocket_endpoint(make_store: StoreFactory) -> None:
    store = make_store()
    throttle = WebSocketThrottle("ws", "1/min", store=store)

    @throttled(throttle)
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("welcome")
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=store.lifespan)
    with TestClient(app) as client:
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_text() == "welcome"
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws"):
            pass
        assert refused.value.code == 1008


class Notice:
    """A throttled handler that sends its own text and records the wait."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.waits: list[float] = []

    async def __call__(
        self, connection: Any, wait_ms: float, throttle: Throttle, context: dict[str, Any]
    ) -> None:
        self.waits.append(wait_ms)
        await connection.send_text(f"{self.name}: wait {wait_ms:.0f} ms")


def test_custom_handlers_replace_the_notice_and_the_throttles_wins(
    make_store: StoreFactory,
) -> None:
    by_store, own = Notice("store"), Notice("own")
    store = make_store(handle_throttled=by_store)
    inherits = WebSocketThrottle("inherits", "1/s", store=store)
    overrides = WebSocketThrottle("overrides", "1/s", store=store, handle_throttled=own)
    app = FastAPI(lifespan=store.lifespan)

    @app.websocket("/{which}")
    async def endpoint(websocket: WebSocket, which: str) -> None:
        throttle = inherits if which == "inherits" else overrides
        await websocket.accept()
        try:
            while True:
                text = await websocket.receive_text()
                await throttle(websocket)
                verb = "dropped" if is_throttled(websocket) else "echo"
                await websocket.send_text(f"{verb} {text}")
        except WebSocketDisconnect:
            pass

    with TestClient(app) as client:
        for which, expected in (("inherits", "store"), ("overrides", "own")):
            with client.websocket_connect(f"/{which}") as ws:
                ws.send_text("a")
                assert ws.receive_text() == "echo a"
                ws.send_text("b")
                assert ws.receive_text() == f"{expected}: wait 1000 ms"
                assert ws.receive_text() == "dropped b"
    assert (by_store.waits, own.waits) == ([1000.0], [1000.0])


def test_a_custom_identifier_runs_once_per_socket(make_store: StoreFactory) -> None:
    store = make_store()
    calls: list[str] = []

    async def by_token(connection: Any) -> Any:
        token = connection.query_params.get("token", "")
        calls.append(token)
        return EXEMPTED if token == "admin" else token

    throttle = WebSocketThrottle("ws", "2/min", store=store, identifier=by_token)
    with TestClient(echo_app(throttle, store)) as client:
        with client.websocket_connect("/echo?token=alice") as ws:
            for text in "xy":
                ws.send_text(text)
                assert ws.receive_text() == f"echo {text}"
            ws.send_text("z")
            assert ws.receive_json()["type"] == "rate_limit"
            assert ws.receive_text() == "dropped z"
        with client.websocket_connect("/echo?token=admin") as ws:
            for text in "xyz":
                ws.send_text(text)
                assert ws.receive_text() == f"echo {text}"
        # A new socket of the same client: a new connection, the same quota.
        with client.websocket_connect("/echo?token=alice") as ws:
            ws.send_text("again")
            assert ws.receive_json()["type"] == "rate_limit"
    assert calls == ["alice", "admin", "alice"]
