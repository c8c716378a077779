"""Failure policies under a real Redis that dies: each does what its docstring says.

A FastAPI app runs in process (httpx's ``ASGITransport``) over a private
``redis-server`` that the test kills, and starts again on the same port. Nothing is
mocked; time is injected instead: every store reads one fixed clock (windows never
roll over mid-test), the pauses of ``retry`` / ``failover`` are a recording sleep
that returns at once — and may restart the server, as if Redis came back while we
waited — and the breaker reads a clock the test moves.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
import servers
from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection

from ratescript.asgi import (
    CircuitBreaker,
    ExceptionInfo,
    HTTPThrottle,
    ThrottleGroup,
    failover,
    retry,
    store_fallback,
)
from ratescript.exceptions import ConfigurationError, StoreConnectionError
from ratescript.rates import Rate
from ratescript.stores.base import Store
from ratescript.stores.memory import InMemoryStore
from ratescript.stores.redis import RedisStore

from .helpers import request_from

pytestmark = pytest.mark.redis

NOW_MS = 1.7e12 + 0.25
#: The peer address httpx's ASGITransport reports, hence the client's identity.
CLIENT = "127.0.0.1"


def fixed_clock() -> float:
    return NOW_MS


def fresh_namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


class Clock:
    """Seconds, moved by the test (the breaker's clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Pauses:
    """The injected sleep: records each pause and returns at once.

    ``then[n]`` runs during the n-th pause (from 1), e.g. restarting Redis.
    """

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.then: dict[int, Callable[[], Awaitable[None]]] = {}

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        action = self.then.pop(len(self.seconds), None)
        if action is not None:
            await action()


def restarting(server: servers.LocalServer) -> Callable[[], Awaitable[None]]:
    async def restart() -> None:
        server.start()  # blocks until the new, empty server answers

    return restart


@pytest_asyncio.fixture
async def redis(own_redis: servers.LocalServer) -> AsyncIterator[RedisStore]:
    async with RedisStore(own_redis.url, namespace=fresh_namespace(), clock=fixed_clock) as store:
        yield store


@pytest.fixture
def memory() -> InMemoryStore:
    return InMemoryStore(namespace=fresh_namespace(), clock=fixed_clock)


@contextlib.asynccontextmanager
async def serving(dependency: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a FastAPI app whose one route, ``/``, depends on ``dependency``."""
    app = FastAPI()

    @app.get("/", dependencies=[Depends(dependency)])
    async def index() -> dict[str, bool]:
        return {"ok": True}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def remaining(throttle: HTTPThrottle, store: Store) -> float:
    """What ``throttle`` would still admit from the client, counted on ``store``."""
    rate = await throttle.rate_for(HTTPConnection({"type": "http"}), None)
    stat = await throttle.strategy.stat(throttle.key_for(CLIENT), rate, store)
    return stat.hits_remaining


def closed_port() -> int:
    """A port nothing listens on (connections are refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- the three named policies ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_allow_admits_every_request_while_redis_is_down(
    redis: RedisStore, own_redis: servers.LocalServer
) -> None:
    throttle = HTTPThrottle("allow", "1/hour", store=redis, on_error="allow")
    async with serving(throttle) as client:
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/")).status_code == 429  # the limit holds while Redis is up
        own_redis.kill()
        assert [(await client.get("/")).status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("min_wait_period", "on_error", "retry_after"),
    [
        (None, "throttle", "1"),  # DEFAULT_ERROR_WAIT_MS: 1000 ms
        (2500.0, "throttle", "3"),  # 2500 ms, rounded up to whole seconds
        (2500.0, None, "3"),  # "throttle" is the default policy
    ],
)
async def test_throttle_rejects_with_the_min_wait_period(
    redis: RedisStore,
    own_redis: servers.LocalServer,
    min_wait_period: float | None,
    on_error: Any,
    retry_after: str,
) -> None:
    throttle = HTTPThrottle(
        "closed", "100/hour", store=redis, on_error=on_error, min_wait_period=min_wait_period
    )
    async with serving(throttle) as client:
        assert (await client.get("/")).status_code == 200
        own_redis.kill()
        response = await client.get("/")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == retry_after


@pytest.mark.asyncio
async def test_raise_lets_the_store_connection_error_through(
    redis: RedisStore, own_redis: servers.LocalServer
) -> None:
    throttle = HTTPThrottle("raise", "100/hour", store=redis, on_error="raise")
    async with serving(throttle) as client:
        assert (await client.get("/")).status_code == 200
        own_redis.kill()
        with pytest.raises(StoreConnectionError, match=r"^redis run fixed_window: cannot reach"):
            await client.get("/")


@pytest.mark.asyncio
async def test_check_and_stat_report_the_failure_whatever_the_policy(
    redis: RedisStore, own_redis: servers.LocalServer
) -> None:
    """They answer what the store decided, not what a request gets: no policy applies."""
    throttle = HTTPThrottle("allow", "1/hour", store=redis, on_error="allow")
    own_redis.kill()
    assert await throttle(request_from()) is not None  # the policy admits the request
    with pytest.raises(StoreConnectionError):
        await throttle.check(request_from())
    with pytest.raises(StoreConnectionError):
        await throttle.stat(request_from())


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("wait_ms", "status", "retry_after"), [(4200.0, 429, "5"), (0.0, 200, None)]
)
async def test_a_custom_handler_is_told_the_failure_and_its_wait_is_obeyed(
    redis: RedisStore,
    own_redis: servers.LocalServer,
    wait_ms: float,
    status: int,
    retry_after: str | None,
) -> None:
    seen: list[ExceptionInfo] = []

    async def handler(connection: HTTPConnection, exc_info: ExceptionInfo) -> float:
        seen.append(exc_info)
        return wait_ms

    throttle = HTTPThrottle("custom", "100/hour", store=redis, on_error=handler, cost=2)
    own_redis.kill()
    async with serving(throttle) as client:
        response = await client.get("/")
    assert response.status_code == status
    assert response.headers.get("Retry-After") == retry_after
    [info] = seen
    assert isinstance(info["exception"], StoreConnectionError)
    assert info["store"] is redis
    assert info["throttle"] is throttle
    assert (info["cost"], info["rate"], info["context"]) == (2.0, Rate.from_value("100/hour"), None)
    assert info["connection"].url.path == "/"


@pytest.mark.asyncio
async def test_a_sync_handler_serves_as_well(
    redis: RedisStore, own_redis: servers.LocalServer
) -> None:
    def handler(connection: HTTPConnection, exc_info: ExceptionInfo) -> float:
        return 2500.0

    throttle = HTTPThrottle("sync", "100/hour", store=redis, on_error=handler)
    own_redis.kill()
    async with serving(throttle) as client:
        response = await client.get("/")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "3")


@pytest.mark.asyncio
async def test_the_store_on_error_is_the_default_and_the_throttle_wins(
    own_redis: servers.LocalServer, memory: InMemoryStore
) -> None:
    url, namespace = own_redis.url, fresh_namespace()
    async with (
        RedisStore(url, namespace=namespace, clock=fixed_clock, on_error="allow") as allowing,
        RedisStore(
            url, namespace=namespace, clock=fixed_clock, on_error=store_fallback(memory)
        ) as falling_back,
    ):
        inherits = HTTPThrottle("inherits", "1/hour", store=allowing)
        raises = HTTPThrottle("raises", "1/hour", store=allowing, on_error="raise")
        closes = HTTPThrottle("closes", "1/hour", store=allowing, on_error="throttle")
        counts = HTTPThrottle("counts", "1/hour", store=falling_back)
        own_redis.kill()
        async with serving(inherits) as client:
            assert [(await client.get("/")).status_code for _ in range(3)] == [200, 200, 200]
        async with serving(raises) as client:
            with pytest.raises(StoreConnectionError):
                await client.get("/")
        async with serving(closes) as client:
            assert (await client.get("/")).status_code == 429
        async with serving(counts) as client:  # the store's handler: counted on memory
            assert [(await client.get("/")).status_code for _ in range(2)] == [200, 429]
        assert await remaining(counts, memory) == 0


# --- retry ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_retry_succeeds_when_redis_comes_back_between_attempts(
    redis: RedisStore, own_redis: servers.LocalServer
) -> None:
    pauses = Pauses()
    pauses.then[2] = restarting(own_redis)
    handler = retry(max_retries=3, retry_delay=0.1, backoff_multiplier=2.0, sleep=pauses)
    throttle = HTTPThrottle("retry", "2/hour", store=redis, on_error=handler)
    own_redis.kill()
    async with serving(throttle) as client:
        assert (await client.get("/")).status_code == 200
        # The first retry met the dead server, the second the restarted one.
        assert pauses.seconds == [0.1, 0.2]
        assert await remaining(throttle, redis) == 1  # charged once, on Redis
        assert (await client.get("/")).status_code == 200  # Redis answers by itself again
        assert (await client.get("/")).status_code == 429
        assert pauses.seconds == [0.1, 0.2]


@pytest.mark.asyncio
async def test_retry_gives_up_after_max_retries_with_the_last_failure(
    redis: RedisStore, own_redis: servers.LocalServer
) -> None:
    pauses = Pauses()
    retrying = retry(3, 0.1, 3.0, sleep=pauses)
    first: list[BaseException] = []

    async def handler(connection: HTTPConnection, exc_info: ExceptionInfo) -> float:
        first.append(exc_info["exception"])
        return await retrying(connection, exc_info)

    throttle = HTTPThrottle("retry", "2/hour", store=redis, on_error=handler)
    own_redis.kill()
    async with serving(throttle) as client:
        with pytest.raises(StoreConnectionError) as raised:
            await client.get("/")
    assert pauses.seconds == pytest.approx([0.1, 0.3, 0.9])
    # The last retry's failure; the throttle's own first failure is its context.
    assert raised.value is not first[0]
    assert raised.value.__context__ is first[0]


@pytest.mark.asyncio
async def test_retry_does_not_retry_what_retry_on_excludes(
    redis: RedisStore, own_redis: servers.LocalServer
) -> None:
    pauses = Pauses()
    handler = retry(retry_on=(TimeoutError,), sleep=pauses)  # a refused connection is not one
    throttle = HTTPThrottle("retry", "2/hour", store=redis, on_error=handler)
    own_redis.kill()
    async with serving(throttle) as client:
        with pytest.raises(StoreConnectionError):
            await client.get("/")
    assert pauses.seconds == []


# --- store_fallback -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_store_fallback_counts_and_enforces_the_limit_on_the_fallback(
    redis: RedisStore, own_redis: servers.LocalServer, memory: InMemoryStore
) -> None:
    throttle = HTTPThrottle("fallback", "2/hour", store=redis, on_error=store_fallback(memory))
    async with serving(throttle) as client:
        assert (await client.get("/")).status_code == 200  # counted on Redis
        own_redis.kill()
        statuses = [(await client.get("/")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]  # counted on memory, from zero
        assert await remaining(throttle, memory) == 0
        own_redis.start()  # empty: counts never move between stores
        assert (await client.get("/")).status_code == 200
        assert await remaining(throttle, redis) == 1


@pytest.mark.asyncio
async def test_store_fallback_charges_every_throttle_of_a_group(
    redis: RedisStore, own_redis: servers.LocalServer, memory: InMemoryStore
) -> None:
    burst = HTTPThrottle("burst", "3/hour", store=redis, on_error=store_fallback(memory))
    sustained = HTTPThrottle("sustained", "2/hour", store=redis)
    own_redis.kill()
    async with serving(ThrottleGroup(burst, sustained)) as client:
        assert [(await client.get("/")).status_code for _ in range(3)] == [200, 200, 429]
    # Both were charged together on the fallback: the group's all-or-nothing holds there.
    assert await remaining(burst, memory) == 1
    assert await remaining(sustained, memory) == 0


@pytest.mark.asyncio
async def test_store_fallback_reraises_what_it_does_not_cover_and_a_failing_fallback(
    redis: RedisStore, own_redis: servers.LocalServer, memory: InMemoryStore
) -> None:
    own_redis.kill()
    narrow = HTTPThrottle(
        "narrow", "2/hour", store=redis, on_error=store_fallback(memory, (TimeoutError,))
    )
    async with serving(narrow) as client:
        with pytest.raises(StoreConnectionError, match=r"cannot reach redis://127\.0\.0\.1"):
            await client.get("/")
    assert await remaining(narrow, memory) == 2  # the fallback was never used

    port = closed_port()
    dead = RedisStore(f"redis://127.0.0.1:{port}/0", namespace=fresh_namespace())
    both = HTTPThrottle("both", "2/hour", store=redis, on_error=store_fallback(dead))
    async with serving(both) as client:
        with pytest.raises(StoreConnectionError) as raised:
            await client.get("/")
    await dead.close()
    # The fallback's own error, its cause the primary's.
    assert f"cannot reach redis://127.0.0.1:{port}/0" in str(raised.value)
    assert isinstance(raised.value.__cause__, StoreConnectionError)
    assert own_redis.url.removesuffix("/0") in str(raised.value.__cause__)


# --- failover and the circuit breaker ---------------------------------------------------------


@pytest.mark.asyncio
async def test_failover_opens_the_breaker_after_n_failures_then_skips_the_primary(
    redis: RedisStore, own_redis: servers.LocalServer, memory: InMemoryStore
) -> None:
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=30.0, clock=Clock())
    pauses = Pauses()
    handler = failover(memory, breaker, max_retries=1, retry_delay=0.05, sleep=pauses)
    throttle = HTTPThrottle("failover", "3/hour", store=redis, on_error=handler)
    own_redis.kill()
    async with serving(throttle) as client:
        # 1st request: the throttle's failure (1) and one retry (2), then memory.
        assert (await client.get("/")).status_code == 200
        assert (breaker.state, pauses.seconds) == ("closed", [0.05])
        # 2nd: the throttle's failure is the 3rd: open, no retry, memory.
        assert (await client.get("/")).status_code == 200
        assert (breaker.state, pauses.seconds) == ("open", [0.05])
        # Open: straight to memory, where the limit is enforced.
        assert (await client.get("/")).status_code == 200
        response = await client.get("/")
        assert response.status_code == 429 and response.headers["Retry-After"] != "0"
        assert (breaker.state, pauses.seconds) == ("open", [0.05])
    assert await remaining(throttle, memory) == 0


@pytest.mark.asyncio
async def test_failover_half_open_trials_reopen_on_failure_and_close_after_successes(
    redis: RedisStore, own_redis: servers.LocalServer, memory: InMemoryStore
) -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=30.0, success_threshold=2, clock=clock
    )
    pauses = Pauses()
    handler = failover(memory, breaker, max_retries=1, sleep=pauses)
    throttle = HTTPThrottle("failover", "100/hour", store=redis, on_error=handler)
    own_redis.kill()
    async with serving(throttle) as client:
        assert (await client.get("/")).status_code == 200
        assert (breaker.state, len(pauses.seconds)) == ("open", 0)
        clock.now += 29.9
        assert not breaker.allows_request()
        clock.now += 0.1
        assert (breaker.state, breaker.allows_request()) == ("half-open", True)

        # Half-open, Redis still down: the request is the trial; it fails, the circuit
        # opens again and the fallback answers, without retrying the primary.
        assert (await client.get("/")).status_code == 200
        assert (breaker.state, len(pauses.seconds)) == ("open", 0)
        assert await remaining(throttle, memory) == 98
        clock.now += 29.9
        assert breaker.state == "open"  # a fresh recovery timeout from the re-opening
        clock.now += 0.1

        # Redis is back: the half-open trial succeeds on Redis, and the next request
        # (another success) closes the circuit — no failure needs to reach the handler.
        own_redis.start()
        assert (await client.get("/")).status_code == 200
        assert breaker.state == "half-open"
        assert await remaining(throttle, redis) == 99
        assert (await client.get("/")).status_code == 200
        assert breaker.state == "closed"
        assert await remaining(throttle, redis) == 98
        assert await remaining(throttle, memory) == 98  # untouched since Redis returned
        assert pauses.seconds == []


@pytest.mark.asyncio
async def test_an_open_breaker_spares_requests_the_dead_primary(
    memory: InMemoryStore,
) -> None:
    """Measured on a server that never answers: each call costs the store's timeout."""
    timeout = 0.2
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        primary = RedisStore(url, namespace=fresh_namespace(), timeout=timeout)
        breaker = CircuitBreaker(failure_threshold=3)
        pauses = Pauses()
        handler = failover(memory, breaker, max_retries=2, sleep=pauses)
        throttle = HTTPThrottle("silent", "100/hour", store=primary, on_error=handler)
        elapsed = []
        async with serving(throttle) as client:
            for _ in range(2):
                started = time.monotonic()
                assert (await client.get("/")).status_code == 200
                elapsed.append(time.monotonic() - started)
        await primary.close()
    closed, opened = elapsed
    # Closed: the throttle's call and two retries, all timing out; that opened it.
    assert closed >= 3 * 0.9 * timeout
    assert pauses.seconds == [0.0, 0.0]
    # Open: the silent primary is not called at all, so no timeout is paid.
    assert opened < 0.9 * timeout
    assert await remaining(throttle, memory) == 98


def test_circuit_breaker_states_follow_outcomes_and_the_clock() -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        failure_threshold=2, recovery_timeout=10.0, success_threshold=2, clock=clock
    )

    def wait(seconds: float) -> None:
        clock.now += seconds

    steps: list[tuple[Callable[[], object], str]] = [
        (breaker.record_failure, "closed"),
        (breaker.record_success, "closed"),  # resets the count of consecutive failures
        (breaker.record_failure, "closed"),
        (breaker.record_failure, "open"),
        (breaker.record_success, "open"),  # outcomes while open change nothing
        (breaker.record_failure, "open"),
        (lambda: wait(9.999), "open"),
        (lambda: wait(0.001), "half-open"),  # recovery_timeout after it opened
        (breaker.record_success, "half-open"),
        (breaker.record_failure, "open"),  # one failed trial re-opens it ...
        (lambda: wait(9.999), "open"),  # ... for a whole new recovery_timeout
        (lambda: wait(0.001), "half-open"),
        (breaker.record_success, "half-open"),
        (breaker.record_success, "closed"),
        (breaker.record_failure, "closed"),  # a clean slate: one failure is not two
    ]
    seen = []
    for step, _expected in steps:
        step()
        seen.append((breaker.state, breaker.allows_request()))
    assert seen == [(state, state != "open") for _step, state in steps]
    assert "state='closed'" in repr(breaker)


@pytest.mark.parametrize(
    "build",
    [
        lambda: CircuitBreaker(failure_threshold=0),
        lambda: CircuitBreaker(success_threshold=True),
        lambda: CircuitBreaker(recovery_timeout=-1),
        lambda: CircuitBreaker(recovery_timeout=float("nan")),
        lambda: CircuitBreaker(clock=3.0),  # type: ignore[arg-type]
        lambda: retry(max_retries=-1),
        lambda: retry(retry_delay=float("inf")),
        lambda: retry(backoff_multiplier=0.5),
        # Numbers no double holds: an int past the range, pauses growing past it.
        lambda: retry(retry_delay=2**1100),
        lambda: retry(max_retries=5, backoff_multiplier=1e300),
        lambda: CircuitBreaker(recovery_timeout=2**1100),
        lambda: failover(InMemoryStore(), retry_delay=1, backoff_multiplier=2**1100),
        lambda: retry(retry_on=("StoreError",)),  # type: ignore[arg-type]
        lambda: store_fallback("redis://localhost:6379/0"),  # type: ignore[arg-type]
        lambda: failover(InMemoryStore(), breaker=object()),  # type: ignore[arg-type]
        lambda: failover(InMemoryStore(), max_retries=1.5),  # type: ignore[arg-type]
    ],
)
def test_bad_settings_fail_when_the_policy_is_built(build: Callable[[], object]) -> None:
    with pytest.raises(ConfigurationError):
        build()


def test_failover_exposes_its_fallback_and_a_breaker_of_its_own() -> None:
    fallback = InMemoryStore()
    one, two = failover(fallback), failover(fallback)
    assert one.store is fallback
    assert isinstance(one.breaker, CircuitBreaker) and one.breaker is not two.breaker
    shared = CircuitBreaker()
    assert failover(fallback, shared).breaker is shared
