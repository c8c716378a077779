"""``@throttled(t1, t2, ...)``: throttles declared on the endpoint itself.

On a FastAPI endpoint the decorator adds one hidden dependency — a ``ThrottleGroup``
of the throttles — so FastAPI runs it before the endpoint, exactly like
``dependencies=[Depends(...)]``, and the throttles are charged atomically. On a
plain Starlette endpoint (``async def endpoint(request)``) the wrapper charges them
itself before calling the endpoint, and adds their rate-limit headers (if any) to the
response the endpoint returns.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.requests import HTTPConnection
from starlette.responses import Response

from ratescript.asgi.throttles import Throttle, ThrottleGroup, _enforce
from ratescript.exceptions import ConfigurationError

__all__ = ["throttled"]

EndpointT = TypeVar("EndpointT", bound=Callable[..., Awaitable[Any]])

_PARAMETER = "__ratescript_throttled"
_NOT_INJECTED: Any = object()


def _dependency(group: ThrottleGroup) -> Any:
    try:
        from fastapi import Depends
    except ImportError:  # plain Starlette: the wrapper charges the throttles itself
        return _NOT_INJECTED
    return Depends(group)


def throttled(*throttles: Throttle) -> Callable[[EndpointT], EndpointT]:
    """Decorate an async endpoint so every hit is charged to all ``throttles`` first."""
    group = ThrottleGroup(*throttles)

    def decorate(endpoint: EndpointT) -> EndpointT:
        if not inspect.iscoroutinefunction(endpoint):
            raise ConfigurationError(f"@throttled needs an async endpoint, got {endpoint!r}")
        signature = inspect.signature(endpoint)

        @functools.wraps(endpoint)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            injected = kwargs.pop(_PARAMETER, _NOT_INJECTED)
            if injected is _NOT_INJECTED:
                connection = next(
                    (a for a in (*args, *kwargs.values()) if isinstance(a, HTTPConnection)),
                    None,
                )
                if connection is None:
                    raise ConfigurationError(
                        f"@throttled endpoint {endpoint.__name__} got no request or websocket"
                    )
                # No FastAPI ``response`` to carry the rate-limit headers: put them on
                # the response the endpoint returns.
                headers = await _enforce(group.throttles, connection, None, None, None)
                response = await endpoint(*args, **kwargs)
                if headers and isinstance(response, Response):
                    response.headers.update(headers)
                return response
            return await endpoint(*args, **kwargs)

        hidden = inspect.Parameter(
            _PARAMETER, inspect.Parameter.KEYWORD_ONLY, default=_dependency(group)
        )
        parameters = list(signature.parameters.values())
        # A keyword-only parameter must precede **kwargs.
        at = next(
            (i for i, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD),
            len(parameters),
        )
        parameters.insert(at, hidden)
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
