"""``await throttle.stat(connection)`` and ``Depends(throttle.stat)``: where a client
stands — rate, hits left, wait, metadata — without ever consuming quota."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Depends, FastAPI

from ratescript.asgi import HTTPThrottle
from ratescript.rates import Rate
from ratescript.stores.base import Store
from ratescript.strategies import StrategyStat, TokenBucketStrategy

from .helpers import START_MS, http, request_from

pytestmark = pytest.mark.asyncio


def app_with(throttle: HTTPThrottle) -> FastAPI:
    app = FastAPI()

    @app.get("/", dependencies=[Depends(throttle)])
    async def index() -> None:
        return None

    @app.get("/stat")
    async def stat(found: StrategyStat[Any] = Depends(throttle.stat)) -> dict[str, Any]:
        return {
            "rate": str(found.rate),
            "hits_remaining": found.hits_remaining,
            "wait_ms": found.wait_ms,
            "window_end_ms": found.metadata["window_end_ms"],
        }

    return app


async def test_stat_as_a_dependency_never_consumes_quota(store: Store, now: list[float]) -> None:
    throttle = HTTPThrottle("stat", "3/min", store=store)
    now[0] += 15_000
    async with http(app_with(throttle)) as client:
        looks = [(await client.get("/stat")).json() for _ in range(5)]
        assert (
            looks
            == [
                {
                    "rate": str(Rate(3, minutes=1)),
                    "hits_remaining": 3.0,
                    "wait_ms": 0.0,
                    "window_end_ms": START_MS + 60_000,
                }
            ]
            * 5
        )
        # The five looks cost nothing: the full quota is still there.
        assert [(await client.get("/")).status_code for _ in range(4)] == [200, 200, 200, 429]
        exhausted = (await client.get("/stat")).json()
        assert exhausted["hits_remaining"] == 0.0
        assert exhausted["wait_ms"] == 45_000.0
        assert (await client.get("/")).status_code == 429


async def test_stat_called_directly_reports_the_strategy_metadata(
    store: Store, now: list[float]
) -> None:
    throttle = HTTPThrottle("stat", "4/s", store=store, strategy=TokenBucketStrategy())
    request = request_from()
    fresh = await throttle.stat(request)
    assert (fresh.rate, fresh.hits_remaining, fresh.wait_ms) == (Rate(4, seconds=1), 4.0, 0.0)
    assert fresh.metadata["capacity"] == 4.0
    assert fresh.metadata["refill_rate_per_ms"] == pytest.approx(4 / 1000)
    for _ in range(4):
        decision = await throttle.check(request)
        assert decision is not None and decision.allowed
    empty = await throttle.stat(request)
    assert empty.hits_remaining == pytest.approx(0.0)
    assert empty.wait_ms == pytest.approx(250.0)
    now[0] += 500
    refilled = await throttle.stat(request)
    assert refilled.hits_remaining == pytest.approx(2.0)
    assert refilled.wait_ms == 0.0
    assert await throttle.stat(request) == refilled  # looking changed nothing


async def test_stat_uses_the_connections_own_rate(store: Store) -> None:
    async def by_plan(connection: Any, context: Any) -> str:
        return "10/min" if connection.headers.get("x-plan") == "pro" else "2/min"

    throttle = HTTPThrottle("stat", by_plan, store=store)
    free = await throttle.stat(request_from(("198.51.100.1", 1)))
    pro = await throttle.stat(request_from(("198.51.100.2", 1), {"x-plan": "pro"}))
    assert (free.rate, free.hits_remaining) == (Rate(2, minutes=1), 2.0)
    assert (pro.rate, pro.hits_remaining) == (Rate(10, minutes=1), 10.0)
