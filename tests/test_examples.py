"""Every app in examples/ imports, says how to run it, and enforces its limits.

Each runs under its own lifespan, driven through ``httpx.ASGITransport`` (Starlette's
``TestClient`` for the WebSocket one), with its stores' clocks frozen, so no limit
depends on how fast the test runs. The Redis and Memcached apps run against the real
servers of the ``redis_url`` / ``memcached_url`` fixtures.
"""

from __future__ import annotations

import importlib
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import servers
from fastapi import FastAPI
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ratescript import Throttle
from ratescript.conformance import ScriptCase, check_stores, store_factory
from ratescript.stores.base import Store
from ratescript.stores.memcached import MemcachedStore
from ratescript.stores.memory import InMemoryStore
from ratescript.stores.redis import RedisStore

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))  # examples/ is imported as the namespace package `examples`
from examples import cooldown  # noqa: E402

EXAMPLES = sorted(path.stem for path in (ROOT / "examples").glob("*.py"))
APPS = [name for name in EXAMPLES if name != "cooldown"]  # cooldown.py is a strategy only


def load(name: str) -> ModuleType:
    return importlib.import_module(f"examples.{name}")


class Clock:
    """A store clock that moves only when told: limits never depend on test speed.

    It starts at the top of the current hour, so every window the examples use (10 s to
    an hour, aligned to the epoch) starts with the test: started at the wall time, a test
    that moves the clock by 2 s could cross into a fresh minute and see its limit reset.
    """

    def __init__(self) -> None:
        self.now = float(int(time.time() // 3600) * 3_600_000)

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def serve(app: FastAPI, *stores: Store) -> AsyncIterator[tuple[httpx.AsyncClient, Clock]]:
    """Run ``app``'s lifespan and a client for it; the clocks of its stores frozen."""
    clock = Clock()
    async with app.router.lifespan_context(app):
        for store in (app.state.ratescript_store, *stores):
            store.clock = clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://example") as client:
            yield client, clock


async def statuses(
    client: httpx.AsyncClient, method: str, url: str, times: int, **kw: Any
) -> list[int]:
    return [(await client.request(method, url, **kw)).status_code for _ in range(times)]


def request_from(app: FastAPI) -> Request:
    """A request from the address ``httpx.ASGITransport`` gives its clients."""
    return Request({"type": "http", "client": ("127.0.0.1", 123), "headers": [], "app": app})


async def remaining(throttle: Throttle, app: FastAPI) -> float:
    return (await throttle.stat(request_from(app))).hits_remaining


# --- every example ---------------------------------------------------------------------------


def test_there_is_an_example_per_integration_style() -> None:
    assert set(APPS) >= {
        "dependencies",
        "decorator",
        "middleware",
        "websocket",
        "direct_call",
        "multi_tenant",
        "redis_app",
        "memcached_app",
        "stats_and_headers",
        "custom_strategy",
    }


@pytest.mark.parametrize("name", APPS)
def test_each_example_is_an_app_that_says_how_to_run_it(name: str) -> None:
    module = load(name)
    assert isinstance(module.app, FastAPI)
    assert module.__doc__ is not None and f"uvicorn examples.{name}:app" in module.__doc__


# --- one test per example ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_dependencies() -> None:
    example = load("dependencies")
    app = example.app
    async with serve(app) as (client, _clock):
        assert await statuses(client, "GET", "/items", 6) == [200] * 5 + [429]
        response = await client.get("/items")
        assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1

        assert await statuses(client, "GET", "/search?q=x", 3) == [200, 200, 429]
        assert (await client.get("/items")).status_code == 429  # the limits are separate

        alice, bob = {"x-api-key": "alice"}, {"x-api-key": "bob"}
        assert await statuses(client, "GET", "/me", 4, headers=alice) == [200] * 3 + [429]
        assert await statuses(client, "GET", "/me", 1, headers=bob) == [200]
        assert (
            await statuses(client, "GET", "/me", 10, headers={"x-api-key": "internal"})
            == [200] * 10
        )

        assert await statuses(client, "POST", "/upload", 5) == [200] * 3 + [429] * 2
        _burst, hourly = example.upload_limits.throttles
        assert await remaining(hourly, app) == 17  # rejected uploads charged nothing


@pytest.mark.asyncio
async def test_decorator() -> None:
    example = load("decorator")
    async with serve(example.app) as (client, clock):
        assert await statuses(client, "POST", "/orders", 5) == [200] * 3 + [429] * 2
        assert await remaining(example.hourly, example.app) == 97
        clock.now += 10_000  # the burst bucket refills
        assert await statuses(client, "POST", "/orders", 1) == [200]
        assert await statuses(client, "GET", "/report", 2) == [200, 429]


@pytest.mark.asyncio
async def test_middleware() -> None:
    async with serve(load("middleware").app) as (client, _clock):
        assert await statuses(client, "GET", "/api/items", 6) == [200] * 5 + [429]
        throttled = await client.get("/api/items")
        assert throttled.json()["detail"] and "retry-after" in throttled.headers
        assert await statuses(client, "POST", "/api/items", 3) == [200, 200, 429]
        assert await statuses(client, "GET", "/health", 10) == [200] * 10


@pytest.mark.asyncio
async def test_middleware_rules_a_request_matches_are_checked_together() -> None:
    example = load("middleware")
    rules = example.app.user_middleware[0].kwargs["middleware_throttles"]
    keyed = next(rule.throttle for rule in rules if rule.throttle.uid == "api-keyed")
    key = {"x-api-key": "k1"}
    async with serve(example.app) as (client, clock):
        clock.now += 3_600_000  # past the windows test_middleware spent in this store
        assert await statuses(client, "GET", "/api/items", 6, headers=key) == [200] * 5 + [429]
        # Charged by the 5 admitted reads only: the rejected one charged no rule.
        assert await remaining(keyed, example.app) == 95
        assert await statuses(client, "GET", "/health", 2, headers=key) == [200, 200]
        assert await statuses(client, "POST", "/api/items", 1) == [200]  # no key: no charge
        assert await remaining(keyed, example.app) == 95


def test_websocket(monkeypatch: pytest.MonkeyPatch) -> None:
    example = load("websocket")
    clock = Clock()
    monkeypatch.setattr(example.store, "clock", clock)
    with TestClient(example.app) as client:
        with client.websocket_connect("/ws") as websocket:
            replies = []
            for n in range(7):
                websocket.send_text(f"hello {n}")
                replies.append(websocket.receive_json())
            assert [reply["type"] for reply in replies] == ["echo"] * 5 + ["rate_limit"] * 2
            assert replies[5]["retry_after_ms"] > 0
            clock.now += 2000  # one token back: the same connection goes on
            websocket.send_text("again")
            assert websocket.receive_json() == {"type": "echo", "text": "again"}
        for _ in range(2):
            with client.websocket_connect("/ws"):
                pass
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws"):
            pass
        assert refused.value.code == 1008


@pytest.mark.asyncio
async def test_direct_call() -> None:
    async with serve(load("direct_call").app) as (client, _clock):
        assert await statuses(client, "GET", "/export?rows=5000", 3) == [200, 200, 429]
        assert await statuses(client, "GET", "/export?rows=1", 1) == [429]
        assert await statuses(client, "POST", "/convert/pdf", 3) == [200, 200, 429]
        assert await statuses(client, "POST", "/convert/txt", 1) == [429]
        degraded = [(await client.get("/suggest?q=cat")).json()["degraded"] for _ in range(4)]
        assert degraded == [False, False, False, True]


@pytest.mark.asyncio
async def test_multi_tenant() -> None:
    example = load("multi_tenant")
    async with serve(example.app, *example.TENANT_STORES.values()) as (client, _clock):
        acme, globex = {"x-tenant": "acme"}, {"x-tenant": "globex"}
        assert await statuses(client, "GET", "/data", 4, headers=acme) == [200] * 3 + [429]
        assert await statuses(client, "GET", "/data", 4, headers=globex) == [200] * 3 + [429]
        assert await statuses(client, "GET", "/data", 4) == [200] * 3 + [429]
    # Each tenant's hits were counted in its own store.
    fresh = InMemoryStore(namespace="tenant-new")
    for store, left in [*((s, 0) for s in example.TENANT_STORES.values()), (fresh, 3)]:
        async with store(example.app, close_on_exit=False):
            assert await remaining(example.api, example.app) == left


@pytest.mark.asyncio
@pytest.mark.redis
async def test_redis_app(redis_url: str) -> None:
    app = load("redis_app").create_app(redis_url, namespace=f"example-{uuid.uuid4().hex}")
    async with serve(app) as (client, clock):
        assert await statuses(client, "GET", "/data", 7) == [200] * 5 + [429] * 2
        assert (await client.get("/health")).json() == {"rate_limit_store": "closed"}
        clock.now += 2000  # the token bucket: one token per 2 s
        assert await statuses(client, "GET", "/data", 2) == [200, 429]


@pytest.mark.asyncio
@pytest.mark.memcached
async def test_memcached_app(memcached_url: str) -> None:
    app = load("memcached_app").create_app(memcached_url, namespace=f"example-{uuid.uuid4().hex}")
    async with serve(app) as (client, _clock):
        assert await statuses(client, "GET", "/quote", 5) == [200] * 4 + [429]
        throttled = await client.get("/quote")
        assert throttled.status_code == 429
        assert throttled.json()["detail"].startswith("quotes: limit reached, please retry in")


@pytest.mark.asyncio
async def test_stats_and_headers() -> None:
    async with serve(load("stats_and_headers").app) as (client, _clock):
        first = await client.get("/data")
        assert first.headers["ratelimit-policy"] == '"api";q=10;w=60'
        assert first.headers["ratelimit"].startswith('"api";r=9;')
        assert first.headers["x-ratelimit-limit"] == "10"
        assert first.headers["x-ratelimit-remaining"] == "9"
        quotas = [(await client.get("/quota")).json() for _ in range(3)]
        assert [q["remaining"] for q in quotas] == [9, 9, 9]  # looking is free
        assert quotas[0] == {"limit": 10, "remaining": 9, "wait_ms": 0, "tokens": 9}
        assert await statuses(client, "GET", "/data", 10) == [200] * 9 + [429]
        throttled = await client.get("/data")
        assert throttled.status_code == 429
        assert throttled.headers["cache-control"] == "no-store"
        assert throttled.headers["x-ratelimit-remaining"] == "0"
        assert int(throttled.headers["retry-after"]) >= 1


@pytest.mark.asyncio
async def test_custom_strategy() -> None:
    async with serve(load("custom_strategy").app) as (client, clock):
        assert await statuses(client, "POST", "/doorbell", 2) == [200, 429]  # cooling down
        cooling = await client.post("/doorbell")
        assert cooling.headers["retry-after"] == "2"
        rings = []
        for _ in range(3):
            clock.now += 2000
            rings += await statuses(client, "POST", "/doorbell", 1)
        assert rings == [200, 200, 429]  # cooled down twice, then the quota of 3 is spent


# --- the tutorial's strategy (docs/strategies.md) -----------------------------------------------

CASE = ScriptCase(
    cooldown.cooldown,
    {
        "limit": st.integers(1, 5).map(float),
        "period_ms": st.just(60_000.0),
        "cooldown_ms": st.floats(0, 30_000),
    },
    {"cost": st.sampled_from([0.0, 1.0, 2.0])},
)


@pytest.mark.asyncio
async def test_the_cooldown_strategy_cools_down() -> None:
    clock = Clock()
    clock.now = 1_700_000_000_000.0
    store = InMemoryStore(clock=clock)
    strategy = cooldown.CooldownStrategy(cooldown_ms=200)
    waits = []
    for offset in (0, 100, 200, 400, 700):
        clock.now = 1_700_000_000_000.0 + offset
        waits.append(await strategy("user", "3/s", store))
    assert waits == [0.0, 100.0, 0.0, 0.0, 300.0]  # cooldown, cooldown over, quota of 3 spent


@pytest.mark.redis
@pytest.mark.memcached
def test_the_kit_certifies_the_tutorial_strategy(redis_url: str, memcached_url: str) -> None:
    check_stores(
        {
            "memory": store_factory(InMemoryStore),
            "redis": store_factory(RedisStore, url_or_client_or_factory=redis_url),
            "memcached": store_factory(MemcachedStore, url=memcached_url),
        },
        [CASE],
        max_examples=20,
    )


@pytest.mark.asyncio
@pytest.mark.redis
async def test_redis_app_counts_on_its_fallback_while_redis_is_down(
    own_redis: servers.LocalServer,
) -> None:
    """The docstring's failure policy: Redis dies, limits go on in process, the breaker opens."""
    app = load("redis_app").create_app(own_redis.url, namespace=f"example-{uuid.uuid4().hex}")
    async with serve(app) as (client, _clock):
        assert await statuses(client, "GET", "/data", 2) == [200, 200]
        own_redis.stop()
        # The in-process fallback starts empty: the burst of 5 again, then a 429.
        assert await statuses(client, "GET", "/data", 6) == [200] * 5 + [429]
        assert (await client.get("/health")).json() == {"rate_limit_store": "open"}


@pytest.mark.asyncio
@pytest.mark.memcached
async def test_memcached_app_counts_on_its_fallback_while_memcached_is_down(
    own_memcached: servers.LocalServer,
) -> None:
    """The store's default policy: Memcached dies, the limit goes on in process."""
    app = load("memcached_app").create_app(own_memcached.url, namespace=f"ex-{uuid.uuid4().hex}")
    async with serve(app) as (client, _clock):
        assert await statuses(client, "GET", "/quote", 3) == [200] * 3
        own_memcached.stop()
        # The in-process fallback starts empty: 4 a minute again, with the store's
        # own throttled handler.
        assert await statuses(client, "GET", "/quote", 4) == [200] * 4
        throttled = await client.get("/quote")
        assert throttled.status_code == 429
        assert throttled.json()["detail"].startswith("quotes: limit reached")
