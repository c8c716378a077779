"""The shapes of the functions a throttle takes: rates, costs, handlers, failure policies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from starlette.requests import HTTPConnection

from ratescript.rates import Rate

if TYPE_CHECKING:
    from ratescript.asgi.throttles import Throttle
    from ratescript.stores.base import Store

__all__ = [
    "Context",
    "CostFunc",
    "ErrorHandler",
    "ExceptionInfo",
    "OnError",
    "RateFunc",
    "ThrottledHandler",
]

Context = Mapping[str, Any]
#: A rate chosen per connection: ``(connection, context) -> Rate | str`` (or awaitable).
RateFunc = Callable[[HTTPConnection, Context | None], Rate | str | Awaitable[Rate | str]]
#: A cost chosen per connection: ``(connection, context) -> number`` (or awaitable).
CostFunc = Callable[[HTTPConnection, Context | None], float | Awaitable[float]]
#: Runs when a hit is rejected: ``(connection, wait_ms, throttle, context)``.
ThrottledHandler = Callable[[Any, float, "Throttle", dict[str, Any]], Awaitable[Any]]


class ExceptionInfo(TypedDict):
    """What an error handler is told about a failed check.

    ``attempt(store)`` runs the very same check again — same keys, rates and costs —
    on ``store`` (``None``: the store that failed) and returns its wait in ms (0 when
    admitted); retries and fallbacks are built on it.
    """

    exception: BaseException
    connection: HTTPConnection
    cost: float
    rate: Rate
    context: Context | None
    store: Store
    throttle: Throttle
    attempt: Callable[[Store | None], Awaitable[float]]


#: A failure handler: ``(connection, exc_info) -> wait_ms`` (0 admits the hit).
ErrorHandler = Callable[[HTTPConnection, ExceptionInfo], Awaitable[float]]
#: A failure policy: fail open, fail closed, re-raise, or a handler.
OnError = Literal["allow", "throttle", "raise"] | ErrorHandler
