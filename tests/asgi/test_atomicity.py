"""Several limits on one endpoint are charged atomically — with ``@throttled``, a
``ThrottleGroup`` dependency and the middleware: when one rejects, none is charged.
On Redis all of them cost one round trip."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi import Depends, FastAPI
from redis.asyncio import Redis

from ratescript.asgi import (
    HTTPThrottle,
    MiddlewareThrottle,
    ThrottleGroup,
    ThrottleMiddleware,
    throttled,
)
from ratescript.stores.base import Store
from ratescript.stores.redis import RedisStore
from ratescript.strategies import SlidingWindowLogStrategy, TokenBucketStrategy

from .helpers import START_MS, http, remaining

pytestmark = pytest.mark.asyncio

Style = Callable[[list[HTTPThrottle]], FastAPI]


def decorated(throttles: list[HTTPThrottle]) -> FastAPI:
    app = FastAPI()

    @app.get("/api/")
    @throttled(*throttles)
    async def index() -> None:
        return None

    return app


def group_dependency(throttles: list[HTTPThrottle]) -> FastAPI:
    app = FastAPI()

    @app.get("/api/", dependencies=[Depends(ThrottleGroup(*throttles))])
    async def index() -> None:
        return None

    return app


def middleware(throttles: list[HTTPThrottle]) -> FastAPI:
    app = FastAPI()

    @app.get("/api/")
    async def index() -> None:
        return None

    rules = [MiddlewareThrottle(throttle, path="/api/") for throttle in throttles]
    app.add_middleware(ThrottleMiddleware, middleware_throttles=rules)
    return app


STYLES = [decorated, group_dependency, middleware]


def three_limits(store: Store) -> list[HTTPThrottle]:
    """A burst limit, a sustained one and a token bucket (its refill is negligible here)."""
    return [
        HTTPThrottle("burst", "2/s", store=store),
        HTTPThrottle("sustained", "3/min", store=store, strategy=SlidingWindowLogStrategy()),
        HTTPThrottle("bucket", "10/day", store=store, strategy=TokenBucketStrategy()),
    ]


@pytest.mark.parametrize("style", STYLES, ids=lambda style: style.__name__)
async def test_when_one_limit_rejects_no_other_is_charged(
    store: Store, now: list[float], style: Style
) -> None:
    throttles = three_limits(store)
    async with http(style(throttles)) as client:
        assert [(await client.get("/api/")).status_code for _ in range(3)] == [200, 200, 429]
        assert [await remaining(t) for t in throttles] == pytest.approx(
            [0, 1, 8], abs=0.01
        )  # burst rejected alone
        now[0] += 1000
        assert [(await client.get("/api/")).status_code for _ in range(2)] == [200, 429]
        assert [await remaining(t) for t in throttles] == pytest.approx(
            [1, 0, 7], abs=0.01
        )  # sustained rejected
        now[0] += 1000
        assert (await client.get("/api/")).status_code == 429
        assert [await remaining(t) for t in throttles] == pytest.approx([2, 0, 7], abs=0.01)


@pytest.mark.parametrize("style", STYLES, ids=lambda style: style.__name__)
async def test_several_limits_on_redis_cost_one_round_trip(redis_url: str, style: Style) -> None:
    def clock() -> float:
        return START_MS

    store = RedisStore(redis_url, namespace=f"asgi-{uuid.uuid4().hex[:12]}", clock=clock)
    counter = Redis.from_url(redis_url)

    async def commands() -> tuple[int, int]:
        """Requests read from clients so far (scripts' own calls are not), and EVALSHAs."""
        processed = (await counter.info("stats"))["total_reads_processed"]
        evalsha = (await counter.info("commandstats")).get("cmdstat_evalsha", {"calls": 0})
        return int(processed), int(evalsha["calls"])

    try:
        await commands()  # the counter's own connection set-up is not the store's
        first, second = await commands(), await commands()
        own = second[0] - first[0]  # what the two INFOs themselves count
        async with http(style(three_limits(store))) as client:
            assert (await client.get("/api/")).status_code == 200  # loads the script
            before = await commands()
            assert (await client.get("/api/")).status_code == 200  # charges all three
            admitted = await commands()
            assert (await client.get("/api/")).status_code == 429  # charges none
            rejected = await commands()
        assert (admitted[0] - before[0] - own, admitted[1] - before[1]) == (1, 1)
        assert (rejected[0] - admitted[0] - own, rejected[1] - admitted[1]) == (1, 1)
    finally:
        await counter.aclose()
        await store.close()


async def test_a_group_spanning_stores_stops_at_the_first_rejecting_store() -> None:
    """Atomic per store; across stores, a rejection leaves the later stores uncharged."""
    from ratescript.stores.memory import InMemoryStore

    first_store = InMemoryStore(clock=lambda: START_MS)
    second_store = InMemoryStore(clock=lambda: START_MS)
    strict = HTTPThrottle("strict", "1/min", store=first_store)
    loose = HTTPThrottle("loose", "5/min", store=second_store)
    app = FastAPI()

    @app.get("/api/", dependencies=[Depends(ThrottleGroup(strict, loose))])
    async def index() -> None:
        return None

    async with http(app) as client:
        assert [(await client.get("/api/")).status_code for _ in range(3)] == [200, 429, 429]
    assert await remaining(strict) == 0
    assert await remaining(loose) == 4  # charged once: the rejections never reached it


async def everyone(connection: object) -> str:
    """One identity for every client: a global limit."""
    return "all"


@pytest.mark.parametrize("style", STYLES, ids=lambda style: style.__name__)
async def test_limits_of_different_identities_keep_their_own_keys_in_a_group(
    store: Store, style: Style
) -> None:
    """A global limit grouped with a per-client one is global: its key does not take the
    client's name, so it counts every client's hits, and the same throttle used alone
    elsewhere counts on the very same key."""
    per_client = HTTPThrottle("per-client", "5/min", store=store)
    global_limit = HTTPThrottle("global", "3/min", store=store, identifier=everyone)
    app = style([per_client, global_limit])

    @app.get("/alone/", dependencies=[Depends(global_limit)])
    async def alone() -> None:
        return None

    statuses = []
    for index in range(6):
        async with http(app, client=(f"203.0.113.{index}", 4000)) as client:
            statuses.append((await client.get("/api/")).status_code)
    assert statuses == [200, 200, 200, 429, 429, 429]
    assert await remaining(global_limit) == 0
    assert await remaining(per_client, client=("203.0.113.0", 4000)) == 4
    assert await remaining(per_client, client=("203.0.113.5", 4000)) == 5  # refused: uncharged
    async with http(app, client=("198.51.100.7", 4000)) as client:
        assert (await client.get("/alone/")).status_code == 429
