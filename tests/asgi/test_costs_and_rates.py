"""Costs (a number or a function of the connection and context) and rates (string, ``Rate``,
function): what each charges, and every invalid one refused with ``ConfigurationError``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from starlette.requests import HTTPConnection

from ratescript.asgi import HTTPThrottle, ThrottleGroup
from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.stores.base import Store
from ratescript.stores.memory import InMemoryStore

from .helpers import http, remaining


def app_with(*throttles: HTTPThrottle) -> FastAPI:
    app = FastAPI()
    dependency = ThrottleGroup(*throttles) if len(throttles) > 1 else throttles[0]

    @app.get("/", dependencies=[Depends(dependency)])
    async def index() -> None:
        return None

    @app.post("/", dependencies=[Depends(dependency)])
    async def create() -> None:
        return None

    return app


async def cost_from_header(connection: HTTPConnection, context: Mapping[str, Any] | None) -> float:
    assert context is None  # Depends passes no context
    return float(connection.headers.get("x-cost", "1"))


@pytest.mark.asyncio
async def test_an_int_cost_is_charged_per_hit(store: Store) -> None:
    throttle = HTTPThrottle("cost", "5/s", store=store, cost=2)
    async with http(app_with(throttle)) as client:
        assert [(await client.get("/")).status_code for _ in range(3)] == [200, 200, 429]
        assert await remaining(throttle) == 1


@pytest.mark.asyncio
async def test_an_async_cost_function_sees_the_connection(store: Store) -> None:
    throttle = HTTPThrottle("cost", "5/s", store=store, cost=cost_from_header)
    async with http(app_with(throttle)) as client:
        assert (await client.get("/", headers={"x-cost": "4"})).status_code == 200
        assert await remaining(throttle) == 1
        assert (await client.get("/", headers={"x-cost": "2"})).status_code == 429
        assert (await client.get("/", headers={"x-cost": "1"})).status_code == 200
        assert await remaining(throttle) == 0


@pytest.mark.asyncio
async def test_a_cost_function_is_given_the_context_of_a_direct_call(store: Store) -> None:
    seen: list[Any] = []

    def by_size(connection: HTTPConnection, context: Mapping[str, Any] | None) -> float:
        seen.append(context)
        assert context is not None
        return float(context["size"])

    throttle = HTTPThrottle("cost", "10/s", store=store, cost=by_size)
    app = FastAPI()

    @app.post("/upload")
    async def upload(request: Request) -> None:
        await throttle(request, context={"size": 7})

    async with http(app) as client:
        assert (await client.post("/upload")).status_code == 200
        assert (await client.post("/upload")).status_code == 429
    assert seen == [{"size": 7}, {"size": 7}]
    assert await remaining(throttle) == 3


@pytest.mark.asyncio
@pytest.mark.parametrize("grouped", [False, True], ids=["alone", "in-a-group"])
async def test_cost_zero_never_throttles_and_never_charges(store: Store, grouped: bool) -> None:
    async def reads_are_free(connection: HTTPConnection, context: object) -> float:
        return 0 if connection.scope["method"] == "GET" else 1

    throttle = HTTPThrottle("cost", "2/s", store=store, cost=reads_are_free)
    other = HTTPThrottle("other", "100/s", store=store)
    async with http(app_with(throttle, other) if grouped else app_with(throttle)) as client:
        assert (await client.get("/")).status_code == 200
        assert await remaining(throttle) == 2  # a free read charged nothing
        assert [(await client.post("/")).status_code for _ in range(3)] == [200, 200, 429]
        # Exhausted: a free read still passes, and still charges nothing.
        assert [(await client.get("/")).status_code for _ in range(3)] == [200, 200, 200]
        assert await remaining(throttle) == 0
    if grouped:
        assert await remaining(other) == 100 - 2 - 4  # two admitted posts, four reads


@pytest.mark.asyncio
async def test_a_direct_call_with_cost_zero_passes_an_exhausted_limit(store: Store) -> None:
    throttle = HTTPThrottle("cost", "1/s", store=store)
    app = FastAPI()

    @app.get("/")
    async def index(request: Request) -> None:
        await throttle(request, cost=int(request.query_params["cost"]))

    async with http(app) as client:
        assert (await client.get("/?cost=1")).status_code == 200
        assert (await client.get("/?cost=1")).status_code == 429
        assert (await client.get("/?cost=0")).status_code == 200


@pytest.mark.parametrize(
    "cost", [-1, math.inf, math.nan, True, "1", None, pytest.param(2**1100, id="2**1100")]
)
def test_an_invalid_cost_is_refused_at_construction(cost: Any) -> None:
    with pytest.raises(ConfigurationError, match="cost"):
        HTTPThrottle("cost", "1/s", cost=cost)


@pytest.mark.asyncio
@pytest.mark.parametrize("bad", [-1, math.inf, "2", None, pytest.param(2**1100, id="2**1100")])
async def test_an_invalid_cost_from_a_function_or_a_call_is_a_configuration_error(
    store: Store, bad: Any
) -> None:
    async def invalid(connection: HTTPConnection, context: object) -> Any:
        return bad

    throttle = HTTPThrottle("cost", "5/s", store=store, cost=invalid)
    async with http(app_with(throttle)) as client:
        with pytest.raises(ConfigurationError, match="cost"):
            await client.get("/")

    if bad is None:
        return  # a direct call's cost=None means "the throttle's own cost"
    direct = HTTPThrottle("direct", "5/s", store=store)
    app = FastAPI()

    @app.get("/")
    async def index(request: Request) -> None:
        await direct(request, cost=bad)

    async with http(app) as client:
        with pytest.raises(ConfigurationError, match="cost"):
            await client.get("/")
    assert await remaining(direct) == 5


@pytest.mark.asyncio
@pytest.mark.parametrize("rate", ["2/s", "2 per second", Rate(2, seconds=1)], ids=str)
async def test_a_rate_is_a_string_or_a_rate(store: Store, rate: Rate | str) -> None:
    throttle = HTTPThrottle("rate", rate, store=store)
    async with http(app_with(throttle)) as client:
        assert [(await client.get("/")).status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.asyncio
async def test_an_async_rate_function_picks_the_rate_per_connection(store: Store) -> None:
    async def by_plan(connection: HTTPConnection, context: object) -> Rate | str:
        return Rate(3, seconds=1) if connection.headers.get("x-plan") == "pro" else "1/s"

    throttle = HTTPThrottle("rate", by_plan, store=store)
    async with http(app_with(throttle), client=("198.51.100.1", 1)) as free:
        assert [(await free.get("/")).status_code for _ in range(2)] == [200, 429]
    async with http(app_with(throttle), client=("198.51.100.2", 1)) as pro:
        statuses = [(await pro.get("/", headers={"x-plan": "pro"})).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


@pytest.mark.asyncio
async def test_an_unlimited_rate_never_throttles(store: Store) -> None:
    throttle = HTTPThrottle("rate", "0/0", store=store)
    async with http(app_with(throttle)) as client:
        assert {(await client.get("/")).status_code for _ in range(5)} == {200}


@pytest.mark.parametrize("rate", ["2/fortnight", "", "many/s", "-1/s", 3, object()])
def test_a_bad_rate_is_refused_at_construction(rate: Any) -> None:
    with pytest.raises(ConfigurationError):
        HTTPThrottle("rate", rate)


@pytest.mark.asyncio
async def test_a_bad_rate_from_a_function_is_a_configuration_error(store: Store) -> None:
    async def nonsense(connection: HTTPConnection, context: object) -> str:
        return "lots/s"

    async with http(app_with(HTTPThrottle("rate", nonsense, store=store))) as client:
        with pytest.raises(ConfigurationError):
            await client.get("/")


@pytest.mark.parametrize(
    "options",
    [
        {"uid": ""},
        {"strategy": "fixed"},
        {"store": "redis://localhost"},
        {"min_wait_period": -1},
        {"min_wait_period": math.inf},
        pytest.param({"min_wait_period": 2**1100}, id="min_wait_period=2**1100"),  # no double
        {"on_error": "ignore"},
        {"rate_limit_headers": "rfc"},
        # Each of these used to pass here, then fail every request (or every 429) with a 500.
        {"identifier": "ip"},
        {"handle_throttled": "429"},
        {"headers": {"X-Quota-Tier": 1}},
        {"headers": {b"X-Quota-Tier": "1"}},
        {"headers": {"X Quota": "1"}},
        {"headers": {"X-Note": "é€"}},  # not latin-1
        {"headers": {"X-Note": "a\r\nSet-Cookie: b=c"}},
        {"headers": [("X-Note", "a")]},
    ],
    ids=lambda options: f"{next(iter(options))}={next(iter(options.values()))!r}",
)
def test_other_invalid_settings_are_refused_at_construction(options: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"uid": "t", "rate": "1/s", **options}
    with pytest.raises(ConfigurationError):
        HTTPThrottle(**arguments)


def test_a_store_refuses_a_handler_that_is_no_function() -> None:
    with pytest.raises(ConfigurationError, match="handle_throttled"):
        InMemoryStore(handle_throttled="429")  # type: ignore[arg-type]
