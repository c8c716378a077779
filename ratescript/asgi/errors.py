"""Failure policies between "allow" and "raise": retry, fall back to another store, fail over.

Why: a rate limiter stands in front of every request, so when its store fails the
request still needs an answer. ``"allow"`` keeps the service up but unprotected,
``"throttle"`` keeps it protected but down; these handlers try to keep *both*, by
trying the store again (a blip), or counting on a second store (an outage). Each
returns an async ``ErrorHandler`` ``(connection, exc_info) -> wait_ms`` for
``on_error=`` on a throttle or a store.

They are all built on ``exc_info["attempt"](store)``, which re-runs the check that
failed — same keys, rates and costs, every throttle of a group together — so a
retried or re-homed hit is charged exactly as the first try would have been, and a
limit counted on the fallback store is still enforced there.

A handler that cannot produce a wait raises, and the throttle lets that exception
through (an HTTP 500 unless the app handles it): a policy that cannot decide must
not admit silently. Compose with a custom handler to end in ``"allow"`` or
``"throttle"`` instead.

**How the circuit breaker of ``failover`` works.** A throttle whose policy carries
a breaker consults it before calling its store: while the breaker is open the store
is not called at all (the check fails at once with ``StoreConnectionError`` and the
handler sends it to the fallback store), so an outage costs no timeouts. Every call
that reaches the primary reports to the breaker — successes from the throttle
itself, failures through the handler — so once ``recovery_timeout`` has passed, the
next request is the half-open trial, and ``success_threshold`` answered requests
close the circuit again without any help from the handler.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Final, Literal

from starlette.requests import HTTPConnection

from ratescript.asgi.types import ErrorHandler, ExceptionInfo
from ratescript.exceptions import ConfigurationError, StoreError
from ratescript.stores.base import Store

__all__ = [
    "TRANSIENT_ERRORS",
    "BreakerState",
    "CircuitBreaker",
    "Failover",
    "failover",
    "retry",
    "store_fallback",
]

#: Exception types the handlers treat as a store failure by default: ratescript's
#: store errors, and the OS / timeout errors a hand-written store may let through.
TRANSIENT_ERRORS: Final[tuple[type[Exception], ...]] = (StoreError, OSError, TimeoutError)

#: ``"closed"``: all is well; ``"open"``: the primary is skipped; ``"half-open"``:
#: the primary is being tried again.
BreakerState = Literal["closed", "open", "half-open"]
#: An async sleep taking seconds (``asyncio.sleep``; tests inject their own).
Sleep = Callable[[float], Awaitable[object]]
ExceptionTypes = tuple[type[BaseException], ...]


def _count(value: object, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int no double holds: float() would raise it bare
        return False


def _number(value: object, what: str, minimum: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not _finite(value)
        or value < minimum
    ):
        raise ConfigurationError(f"{what} must be a finite number >= {minimum:g}, got {value!r}")
    return float(value)


def _exception_types(value: object, what: str) -> ExceptionTypes:
    types = value if isinstance(value, tuple) else (value,)
    if not types or not all(isinstance(t, type) and issubclass(t, BaseException) for t in types):
        raise ConfigurationError(f"{what} must be exception classes, got {value!r}")
    return types


def _delays(max_retries: object, retry_delay: object, backoff_multiplier: object) -> list[float]:
    """The pause before each retry: ``retry_delay``, then multiplied each time."""
    count = _count(max_retries, "max_retries", 0)
    first = _number(retry_delay, "retry_delay (seconds)", 0)
    factor = _number(backoff_multiplier, "backoff_multiplier", 1)
    try:
        delays = [first * factor**n for n in range(count)]
    except OverflowError:
        delays = [math.inf]
    if not all(map(math.isfinite, delays)):
        raise ConfigurationError(
            f"{count} retries of retry_delay={retry_delay!r} and backoff_multiplier="
            f"{backoff_multiplier!r} pause longer than any number of seconds"
        )
    return delays


def _store(store: object) -> Store:
    if not isinstance(store, Store):
        raise ConfigurationError(f"the fallback must be a ratescript Store, got {store!r}")
    return store


def retry(
    max_retries: int = 3,
    retry_delay: float = 0.1,
    backoff_multiplier: float = 2.0,
    retry_on: ExceptionTypes = TRANSIENT_ERRORS,
    *,
    sleep: Sleep = asyncio.sleep,
) -> ErrorHandler:
    """Run the failed check again on the same store, after growing pauses.

    For blips: a restarted server, a dropped connection, a failover inside a Redis
    deployment. The first try has already failed when the handler runs; it then
    makes up to ``max_retries`` more, pausing ``retry_delay`` seconds before the
    first and ``backoff_multiplier`` times longer before each next (0.1, 0.2, 0.4 s
    by default), and returns the first answer it gets.

    It raises — so the throttle raises — when the failure is not one of
    ``retry_on`` (at once, without retrying), when a retry fails with something
    not in ``retry_on``, and when every retry has failed (the last failure, its
    ``__context__`` leading back to the first). A request can wait for the sum of
    the pauses plus each retry's own time: keep both short.

    ``sleep`` is the pause; inject a fake one in tests.
    """
    delays = _delays(max_retries, retry_delay, backoff_multiplier)
    retry_on = _exception_types(retry_on, "retry_on")

    async def handler(connection: HTTPConnection, exc_info: ExceptionInfo) -> float:
        error = exc_info["exception"]
        if not isinstance(error, retry_on):
            raise error
        attempt = exc_info["attempt"]
        for delay in delays:
            await sleep(delay)
            try:
                return await attempt(None)
            except retry_on as exc:
                error = exc
        raise error

    return handler


def store_fallback(store: Store, fallback_on: ExceptionTypes = TRANSIENT_ERRORS) -> ErrorHandler:
    """Run the failed check on ``store`` instead, e.g. an ``InMemoryStore``.

    For outages: the limit keeps being enforced, per process, on the fallback while
    the primary is away. Counts do not move between stores: hits counted on the
    fallback are forgotten when the primary returns, and the other way round.

    A failure not in ``fallback_on`` is re-raised; when the fallback fails too, its
    error is raised with the primary's as its ``__cause__``.
    """
    fallback = _store(store)
    fallback_on = _exception_types(fallback_on, "fallback_on")

    async def handler(connection: HTTPConnection, exc_info: ExceptionInfo) -> float:
        error = exc_info["exception"]
        if not isinstance(error, fallback_on):
            raise error
        try:
            return await exc_info["attempt"](fallback)
        except Exception as exc:
            raise exc from error

    return handler


class CircuitBreaker:
    """Remembers that a store keeps failing, so the next requests skip it for a while.

    Closed, it counts consecutive failures (a success resets the count);
    ``failure_threshold`` of them open it. Open, ``allows_request()`` is false until
    ``recovery_timeout`` seconds have passed; then it is half-open and lets trials
    through: ``success_threshold`` successes in a row close it, one failure opens it
    again for another ``recovery_timeout``. Outcomes recorded while open change
    nothing (they belong to calls made before it opened).

    One breaker belongs to one store: share it among the throttles of that store so
    they learn from each other. State lives in this process; the transitions happen
    without ``await``, so concurrent requests on one event loop see them at once.

    Args:
        failure_threshold: consecutive failures that open the circuit.
        recovery_timeout: seconds open before the next trial.
        success_threshold: consecutive trial successes that close it.
        clock: seconds, from any origin (``time.monotonic``); inject one in tests.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        success_threshold: int = 2,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = _count(failure_threshold, "failure_threshold", 1)
        self.recovery_timeout = _number(recovery_timeout, "recovery_timeout (seconds)", 0)
        self.success_threshold = _count(success_threshold, "success_threshold", 1)
        if not callable(clock):
            raise ConfigurationError(f"clock must be a callable returning seconds, got {clock!r}")
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._successes = 0
        self._opened_at = 0.0

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self.state!r}, failure_threshold={self.failure_threshold}, "
            f"recovery_timeout={self.recovery_timeout:g}, "
            f"success_threshold={self.success_threshold})"
        )

    @property
    def state(self) -> BreakerState:
        """``"closed"``, ``"open"`` or ``"half-open"`` (open turns half-open by the clock)."""
        if self._state == "open" and self._clock() - self._opened_at >= self.recovery_timeout:
            self._state = "half-open"
            self._successes = 0
        return self._state

    def allows_request(self) -> bool:
        """Whether the store may be called now (closed, or half-open for a trial)."""
        return self.state != "open"

    def record_success(self) -> None:
        """A call to the store succeeded."""
        state = self.state
        if state == "closed":
            self._failures = 0
        elif state == "half-open":
            self._successes += 1
            if self._successes >= self.success_threshold:
                self._state = "closed"
                self._failures = 0

    def record_failure(self) -> None:
        """A call to the store failed."""
        state = self.state
        if state == "closed":
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open()
        elif state == "half-open":
            self._open()

    def _open(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self._failures = 0
        self._successes = 0


class Failover:
    """The handler ``failover()`` returns: retries on the primary, then the fallback.

    ``store`` (the fallback) and ``breaker`` are public, so an app can show the
    breaker's state on a health endpoint, or share it.
    """

    def __init__(
        self,
        store: Store,
        breaker: CircuitBreaker,
        delays: list[float],
        fallback_on: ExceptionTypes,
        sleep: Sleep,
    ) -> None:
        self.store = store
        self.breaker = breaker
        self.fallback_on = fallback_on
        self._delays = delays
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"failover(store={self.store!r}, breaker={self.breaker!r})"

    async def __call__(self, connection: HTTPConnection, exc_info: ExceptionInfo) -> float:
        error = exc_info["exception"]
        if not isinstance(error, self.fallback_on):
            raise error
        breaker = self.breaker
        # The throttle's own call is the first failure (a half-open trial that failed
        # re-opens the circuit; while open, nothing was called and nothing changes).
        breaker.record_failure()
        attempt = exc_info["attempt"]
        for delay in self._delays:
            if not breaker.allows_request():
                break
            await self._sleep(delay)
            if not breaker.allows_request():  # opened by another request meanwhile
                break
            try:
                wait_ms = await attempt(None)
            except self.fallback_on:
                breaker.record_failure()
                continue
            breaker.record_success()
            return wait_ms
        try:
            return await attempt(self.store)
        except Exception as exc:
            raise exc from error


def failover(
    store: Store,
    breaker: CircuitBreaker | None = None,
    max_retries: int = 2,
    retry_delay: float = 0.0,
    backoff_multiplier: float = 2.0,
    fallback_on: ExceptionTypes = TRANSIENT_ERRORS,
    *,
    sleep: Sleep = asyncio.sleep,
) -> Failover:
    """Retry the primary store while it seems healthy, else count on ``store``.

    The production policy: a blip is absorbed by retries, an outage by the fallback
    store, and once the ``breaker`` has seen the primary fail ``failure_threshold``
    times in a row the primary is not called at all until ``recovery_timeout`` has
    passed, so an outage costs requests nothing but the fallback's own work.

    On a failure in ``fallback_on`` (anything else is re-raised):

    - breaker open: the throttle did not call the primary; the check runs on ``store``.
    - breaker closed: the throttle's failed call counts as a failure, then up to
      ``max_retries`` retries on the primary follow, pausing like ``retry()``, each
      recorded; the first success is the answer. If the breaker opens meanwhile, or
      every retry fails, the check runs on ``store``.
    - breaker half-open: the throttle's own call was the trial; its failure re-opens
      the circuit and the check runs on ``store``. (Successful calls are recorded by
      the throttle: ``success_threshold`` of them close the circuit.)

    When ``store`` fails too its error is raised, the primary's as its ``__cause__``.
    ``breaker`` defaults to a ``CircuitBreaker()`` of this handler's own (``.breaker``).
    """
    if breaker is not None and not isinstance(breaker, CircuitBreaker):
        raise ConfigurationError(f"breaker must be a CircuitBreaker, got {breaker!r}")
    return Failover(
        _store(store),
        breaker if breaker is not None else CircuitBreaker(),
        _delays(max_retries, retry_delay, backoff_multiplier),
        _exception_types(fallback_on, "fallback_on"),
        sleep,
    )
