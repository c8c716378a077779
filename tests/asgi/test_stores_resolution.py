"""Which store a throttle uses: its own, the app's lifespan store, the one entered with
``async with store:``, or — with ``dynamic_store=True`` — the one a middleware set for
the request; and a clear error when there is none."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from fastapi import Depends, FastAPI, Request
from starlette.responses import Response

from ratescript.asgi import HTTPThrottle
from ratescript.exceptions import ConfigurationError
from ratescript.stores.base import Store, current_store, default_store

from .helpers import StoreFactory, http, lifespan, remaining

pytestmark = pytest.mark.asyncio


def app_with(throttle: HTTPThrottle, store: Store | None = None) -> FastAPI:
    app = FastAPI(lifespan=store.lifespan if store is not None else None)

    @app.get("/", dependencies=[Depends(throttle)])
    async def index() -> None:
        return None

    return app


async def test_no_store_anywhere_is_a_clear_configuration_error() -> None:
    throttle = HTTPThrottle("orphan", "1/s")
    async with http(app_with(throttle)) as client:
        with pytest.raises(ConfigurationError) as raised:
            await client.get("/")
    message = str(raised.value)
    assert "'orphan' has no store" in message
    for remedy in ("store=", "lifespan=store.lifespan", "async with store:"):
        assert remedy in message


async def test_the_lifespan_store_serves_throttles_without_one(store: Store) -> None:
    throttle = HTTPThrottle("life", "1/min")
    app = app_with(throttle, store)
    async with lifespan(app):
        assert default_store() is store
        async with http(app) as client:
            assert [(await client.get("/")).status_code for _ in range(2)] == [200, 429]
        assert await remaining(HTTPThrottle("life", "1/min", store=store)) == 0
    # Shut down: the store is gone from the app and from the process.
    assert not hasattr(app.state, "ratescript_store")
    async with http(app) as client:
        with pytest.raises(ConfigurationError, match="has no store"):
            await client.get("/")


async def test_each_app_uses_its_own_lifespan_store(new_store: StoreFactory) -> None:
    throttle = HTTPThrottle("life", "1/min")  # one throttle, shared by two apps
    first_store, second_store = new_store(), new_store()
    first, second = app_with(throttle, first_store), app_with(throttle, second_store)
    async with lifespan(first), lifespan(second):
        async with http(first) as client:
            assert [(await client.get("/")).status_code for _ in range(2)] == [200, 429]
        async with http(second) as client:
            assert [(await client.get("/")).status_code for _ in range(2)] == [200, 429]


async def test_async_with_store_makes_it_the_default(store: Store) -> None:
    throttle = HTTPThrottle("default", "1/min")
    app = app_with(throttle)
    async with store, http(app) as client:
        assert [(await client.get("/")).status_code for _ in range(2)] == [200, 429]
    assert default_store() is None
    assert await remaining(HTTPThrottle("default", "1/min", store=store)) == 0


async def test_a_store_entered_for_the_task_serves_throttles_without_one(store: Store) -> None:
    # A test that enters `async with store():` around an app whose lifespan never runs
    # (ASGITransport runs none) must not find its throttles without a store.
    throttle = HTTPThrottle("task", "1/min")
    app = app_with(throttle)
    async with store(close_on_exit=False), http(app) as client:
        assert default_store() is None
        assert [(await client.get("/")).status_code for _ in range(2)] == [200, 429]
    assert current_store() is None
    assert await remaining(HTTPThrottle("task", "1/min", store=store)) == 0


async def test_the_lifespan_store_wins_over_the_tasks(new_store: StoreFactory) -> None:
    task_store, lifespan_store = new_store(), new_store()
    throttle = HTTPThrottle("order", "1/min")
    app = app_with(throttle, lifespan_store)
    async with lifespan(app), task_store(close_on_exit=False), http(app) as client:
        await client.get("/")
    assert await remaining(HTTPThrottle("order", "1/min", store=lifespan_store)) == 0
    assert await remaining(HTTPThrottle("order", "1/min", store=task_store)) == 1


async def test_the_throttles_own_store_wins(new_store: StoreFactory) -> None:
    own, lifespan_store = new_store(), new_store()
    throttle = HTTPThrottle("own", "1/min", store=own)
    app = app_with(throttle, lifespan_store)
    async with lifespan(app):
        async with http(app) as client:
            await client.get("/")
        assert await remaining(HTTPThrottle("own", "1/min", store=own)) == 0
        assert await remaining(HTTPThrottle("own", "1/min", store=lifespan_store)) == 1


async def test_dynamic_store_gives_each_tenant_its_own_quota(new_store: StoreFactory) -> None:
    tenants = {"acme": new_store(), "globex": new_store()}
    fallback = new_store()
    throttle = HTTPThrottle("tenant", "2/min", dynamic_store=True)
    app = app_with(throttle, fallback)

    @app.middleware("http")
    async def pick_tenant(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        tenant = tenants.get(request.headers.get("x-tenant", ""))
        if tenant is None:
            return await call_next(request)
        async with tenant(app, close_on_exit=False):
            assert current_store() is tenant
            return await call_next(request)

    async def statuses(client: object, tenant: str, n: int) -> list[int]:
        headers = {"x-tenant": tenant} if tenant else {}
        get = client.get  # type: ignore[attr-defined]
        return [(await get("/", headers=headers)).status_code for _ in range(n)]

    async with lifespan(app), http(app) as client:
        assert await statuses(client, "acme", 3) == [200, 200, 429]
        assert await statuses(client, "globex", 3) == [200, 200, 429]
        assert current_store() is None  # the tenant was set for its request only
        # Without a tenant the app's store serves; each store counted only its own.
        assert await statuses(client, "", 3) == [200, 200, 429]
        # close_on_exit=False: a tenant's store stays open for its next request.
        assert tenants["acme"].ready
        assert await statuses(client, "acme", 1) == [429]
    for store in (*tenants.values(), fallback):
        assert await remaining(HTTPThrottle("tenant", "2/min", store=store)) == 0


async def test_a_callable_strategy_is_refused_with_the_way_to_write_one() -> None:
    # Traffik's custom strategy is an async (key, rate, backend, cost) -> wait_ms.
    async def traffik_style(key: str, rate: object, store: object, cost: int = 1) -> float:
        return 0.0

    with pytest.raises(ConfigurationError, match="must be a ratescript Strategy") as raised:
        HTTPThrottle("custom", "1/s", strategy=traffik_style)  # type: ignore[arg-type]
    assert "Writing your own strategy in the DSL" in str(raised.value)
