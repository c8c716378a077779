"""``Depends(throttle)``, ``Depends(ThrottleGroup(...))`` and ``await throttle(request)``.

Every test runs on every store; the clock is ``now[0]`` and only the test moves it.
That a group charges all or none is proved in ``test_atomicity``.
"""

from __future__ import annotations

import pytest
from fastapi import Depends, FastAPI, Request

from ratescript.asgi import HTTPThrottle, ThrottleGroup
from ratescript.exceptions import ConnectionThrottled
from ratescript.stores.base import Store
from ratescript.stores.memory import InMemoryStore

from .helpers import http, remaining, request_from

pytestmark = pytest.mark.asyncio


async def test_depends_admits_the_limit_then_answers_429(store: Store, now: list[float]) -> None:
    throttle = HTTPThrottle("dep", "2/5s", store=store)
    app = FastAPI()

    @app.get("/", dependencies=[Depends(throttle)])
    async def index() -> dict[str, bool]:
        return {"ok": True}

    async with http(app) as client:
        assert [(await client.get("/")).status_code for _ in range(2)] == [200, 200]
        rejected = await client.get("/")
        assert rejected.status_code == 429
        assert rejected.headers["Retry-After"] == "5"
        assert rejected.json() == {"detail": "Too many requests. Retry in 5 seconds."}
        now[0] += 5000
        assert (await client.get("/")).status_code == 200


async def test_depends_returns_the_request_to_the_endpoint(store: Store) -> None:
    throttle = HTTPThrottle("dep", "1/s", store=store)
    app = FastAPI()

    @app.get("/items/{item}")
    async def item(item: int, request: Request = Depends(throttle)) -> dict[str, object]:
        return {"item": item, "path": request.url.path, "method": request.method}

    async with http(app) as client:
        response = await client.get("/items/7")
        assert response.json() == {"item": 7, "path": "/items/7", "method": "GET"}
        assert (await client.get("/items/8")).status_code == 429


async def test_each_client_address_has_its_own_quota(store: Store) -> None:
    throttle = HTTPThrottle("dep", "1/s", store=store)
    app = FastAPI()

    @app.get("/", dependencies=[Depends(throttle)])
    async def index() -> None:
        return None

    async with (
        http(app, client=("198.51.100.1", 1)) as first,
        http(app, client=("198.51.100.2", 1)) as second,
    ):
        assert (await first.get("/")).status_code == 200
        assert (await first.get("/")).status_code == 429
        assert (await second.get("/")).status_code == 200
        assert (await second.get("/")).status_code == 429


async def test_direct_call_charges_the_cost_and_uses_the_context_detail(store: Store) -> None:
    throttle = HTTPThrottle("direct", "5/s", store=store)
    app = FastAPI()
    seen: list[Request] = []

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        seen.append(await throttle(request, cost=3, context={"detail": "uploads are dear"}))
        return {"accepted": 3}

    @app.get("/ping")
    async def ping(request: Request) -> None:
        await throttle.hit(request)

    async with http(app) as client:
        assert (await client.post("/upload")).status_code == 200
        assert seen[0].url.path == "/upload"  # the connection comes back
        assert await remaining(throttle) == 2
        rejected = await client.post("/upload")  # 3 > 2 left
        assert rejected.status_code == 429
        assert rejected.json() == {"detail": "uploads are dear"}
        assert await remaining(throttle) == 2  # a rejected hit is not charged
        assert [(await client.get("/ping")).status_code for _ in range(3)] == [200, 200, 429]


async def test_a_group_returns_the_request(store: Store) -> None:
    group = ThrottleGroup(
        HTTPThrottle("a", "1/s", store=store), HTTPThrottle("b", "2/s", store=store)
    )
    app = FastAPI()

    @app.get("/where")
    async def where(request: Request = Depends(group)) -> str:
        return request.url.path

    async with http(app) as client:
        assert (await client.get("/where")).json() == "/where"
        assert (await client.get("/where")).status_code == 429


async def test_on_the_in_process_store_a_hit_runs_the_fused_runner_its_headers_need(
    now: list[float],
) -> None:
    """Without rate-limit headers an admitted hit reads nothing of its decision, so the
    throttle runs the runner that builds none (``check_runner``); with headers, the
    full one. Either way the decisions are the strategy's: admitted up to the limit,
    then the 429 and its headers."""
    store = InMemoryStore(clock=lambda: now[0])
    plain = HTTPThrottle("plain", "2/min", store=store)
    ietf = HTTPThrottle("ietf", "2/min", store=store, rate_limit_headers="ietf")
    script = plain.strategy.script
    for throttle in (plain, ietf):
        await throttle(request_from())
        await throttle(request_from())
        with pytest.raises(ConnectionThrottled) as rejected:
            await throttle(request_from())
        assert rejected.value.headers["Retry-After"] == "60"
    assert plain._runner == (store, store.check_runner(script))
    assert ietf._runner == (store, store.runners(script)[0])
    assert rejected.value.headers["RateLimit"] == '"ietf";r=0;t=60'
