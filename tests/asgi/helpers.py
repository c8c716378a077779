"""Helpers of the ASGI tests: an in-process HTTP client, a lifespan runner, bare requests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
from starlette.requests import Request
from starlette.types import ASGIApp, Message

from ratescript.asgi import Throttle
from ratescript.stores.base import Store

#: A whole number of days (so of hours, minutes, seconds): every fixed window starts here.
START_MS = 1_700_006_400_000.0
#: The peer address of ``http()`` clients unless a test picks another.
CLIENT = ("203.0.113.7", 50000)
#: ``make_store`` / ``new_store``: ``(**store options) -> a fresh store on the fake clock``.
StoreFactory = Callable[..., Store]


@contextlib.asynccontextmanager
async def http(app: ASGIApp, client: tuple[str, int] = CLIENT) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx`` client calling ``app`` in process, as the peer ``client``."""
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as session:
        yield session


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run ``app``'s ASGI lifespan around the block (``ASGITransport`` does not)."""
    to_app: asyncio.Queue[Message] = asyncio.Queue()
    from_app: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        stopped = await from_app.get()
        await task
        assert stopped["type"] == "lifespan.shutdown.complete", stopped


def request_from(
    client: tuple[str, int] = CLIENT, headers: dict[str, str] | None = None
) -> Request:
    """A bare HTTP request, for calling ``throttle.stat`` / ``check`` outside an app."""
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": raw,
        "client": client,
        "query_string": b"",
    }
    return Request(scope)


async def remaining(throttle: Throttle, client: tuple[str, int] = CLIENT) -> float:
    """What ``throttle.stat`` says ``client`` has left (a look: it charges nothing)."""
    found = await throttle.stat(request_from(client))
    return float(found.hits_remaining)
