"""The shapes of the functions a throttle takes: rates, costs, handlers, failure policies.

Each may be a plain function or an async one (returning an awaitable): ``maybe_await``
takes either, so a sync function works where an async one does instead of failing on
every request.
"""

from __future__ import annotations

import inspect
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
    "maybe_await",
]

Context = Mapping[str, Any]
#: A rate chosen per connection: ``(connection, context) -> Rate | str`` (or awaitable).
RateFunc = Callable[[HTTPConnection, Context | None], Rate | str | Awaitable[Rate | str]]
#: A cost chosen per connection: ``(connection, context) -> number`` (or awaitable).
CostFunc = Callable[[HTTPConnection, Context | None], float | Awaitable[float]]
#: Runs when a hit is rejected: ``(connection, wait_ms, throttle, context)`` (or awaitable).
ThrottledHandler = Callable[[Any, float, "Throttle", dict[str, Any]], Any]


async def maybe_await(value: Any) -> Any:
    """What a sync or async function returned: ``value``, awaited if it is awaitable."""
    return await value if inspect.isawaitable(value) else value


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


#: A failure handler: ``async (connection, exc_info) -> wait_ms`` (0 admits the hit), the
#: shape of the ready-made ones in ``ratescript.asgi.errors``.
ErrorHandler = Callable[[HTTPConnection, ExceptionInfo], Awaitable[float]]
#: A failure policy: fail open, fail closed, re-raise, or a handler (a sync one serves too).
OnError = (
    Literal["allow", "throttle", "raise"]
    | ErrorHandler
    | Callable[[HTTPConnection, ExceptionInfo], float]
)
