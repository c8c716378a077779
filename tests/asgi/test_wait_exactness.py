"""A rejected hit's wait is exact: 1 ms before it the hit is still rejected, at it admitted;
and a client obeying ``Retry-After`` (the wait rounded up) is admitted — for each strategy."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Depends, FastAPI

from ratescript.asgi import HTTPThrottle
from ratescript.decision import Decision
from ratescript.stores.base import Store
from ratescript.strategies import (
    FixedWindowStrategy,
    GCRAStrategy,
    LeakyBucketStrategy,
    SlidingWindowCounterStrategy,
    SlidingWindowLogStrategy,
    Strategy,
    TokenBucketStrategy,
)

from .helpers import http, request_from

pytestmark = pytest.mark.asyncio

STRATEGIES = [
    FixedWindowStrategy(),
    SlidingWindowCounterStrategy(),
    SlidingWindowLogStrategy(),
    TokenBucketStrategy(),
    GCRAStrategy(),
    LeakyBucketStrategy(),
]


def name(strategy: Strategy[Any]) -> str:
    return type(strategy).__name__


async def exhaust(throttle: HTTPThrottle) -> Decision:
    """Hit until rejected; the rejection."""
    for _ in range(20):
        decision = await throttle.check(request_from())
        assert decision is not None
        if not decision.allowed:
            return decision
    raise AssertionError("never rejected")


@pytest.mark.parametrize("strategy", STRATEGIES, ids=name)
async def test_the_wait_is_exact_to_the_millisecond(
    store: Store, now: list[float], strategy: Strategy[Any]
) -> None:
    throttle = HTTPThrottle("exact", "3/s", store=store, strategy=strategy)
    now[0] += 123  # not on a window boundary
    rejected = await exhaust(throttle)
    assert rejected.wait_ms > 1
    now[0] += rejected.wait_ms - 1
    early = await throttle.check(request_from())
    assert early is not None and not early.allowed
    assert early.wait_ms == pytest.approx(1, abs=1e-3)
    now[0] += 1
    on_time = await throttle.check(request_from())
    assert on_time is not None and on_time.allowed


@pytest.mark.parametrize("strategy", STRATEGIES, ids=name)
async def test_a_client_obeying_retry_after_is_admitted(
    store: Store, now: list[float], strategy: Strategy[Any]
) -> None:
    throttle = HTTPThrottle("exact", "3/5s", store=store, strategy=strategy)
    app = FastAPI()

    @app.get("/", dependencies=[Depends(throttle)])
    async def index() -> None:
        return None

    async with http(app) as client:
        now[0] += 1234
        for _ in range(20):
            response = await client.get("/")
            if response.status_code == 429:
                break
        else:
            raise AssertionError("never rejected")
        seconds = int(response.headers["Retry-After"])
        assert 1 <= seconds <= 10  # a sliding window counter may wait past a period
        now[0] += seconds * 1000
        assert (await client.get("/")).status_code == 200
