"""``@throttled(t1, t2, ...)``: throttles declared on the endpoint itself.

The wrapper charges the throttles — together, atomically, like a ``ThrottleGroup`` —
before it calls the endpoint. On FastAPI it asks for the connection through a hidden
parameter annotated ``HTTPConnection`` rather than a hidden ``Depends``: FastAPI fills
such a parameter for free, while every dependency costs it a full solving pass (about
as much again as the whole check). On a plain Starlette endpoint
(``async def endpoint(request)``) it finds the request among the arguments. Rate-limit
headers go on FastAPI's response, and on a ``Response`` the endpoint returns. Stacked
decorators merge into one wrapper and one group.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.requests import HTTPConnection
from starlette.responses import Response

from ratescript.asgi.enforce import enforce
from ratescript.asgi.headers import put_headers
from ratescript.asgi.throttles import Throttle, ThrottleGroup
from ratescript.exceptions import ConfigurationError

__all__ = ["throttled"]

EndpointT = TypeVar("EndpointT", bound=Callable[..., Awaitable[Any]])

# Hidden parameters FastAPI fills for free (it passes the connection and its response
# object to parameters annotated so, without solving a dependency); a plain Starlette
# endpoint never receives them and the wrapper finds the request among its arguments.
_CONNECTION = "__ratescript_connection"
_RESPONSE = "__ratescript_response"
# Set on a wrapper: (the wrapper, its throttles, the endpoint it wraps).
_STACKED = "__ratescript_throttled__"


def throttled(*throttles: Throttle) -> Callable[[EndpointT], EndpointT]:
    """Decorate an async endpoint so every hit is charged to all ``throttles`` first.

    Stacked ``@throttled`` decorators make one group, as ``@throttled(a, b)`` does: the
    throttles are charged together, atomically, by one wrapper.
    """
    ThrottleGroup(*throttles)  # checks them now, at import

    def decorate(endpoint: EndpointT) -> EndpointT:
        if not inspect.iscoroutinefunction(endpoint):
            raise ConfigurationError(f"@throttled needs an async endpoint, got {endpoint!r}")
        stacked = getattr(endpoint, _STACKED, None)
        if stacked is not None and stacked[0] is endpoint:
            # A second wrapper would charge its throttles apart from the first's (one
            # could be charged when the other rejects), and both would take the
            # connection FastAPI passes once: the throttles join the inner group.
            _, inner_throttles, inner = stacked
            return _wrap(inner, (*throttles, *inner_throttles))  # type: ignore[return-value]
        if _CONNECTION in inspect.signature(endpoint).parameters:
            raise ConfigurationError(
                f"@throttled is applied twice to {endpoint.__name__}, with another decorator "
                "between: stack the @throttled decorators together, or list every throttle "
                "in one @throttled(a, b)"
            )
        return _wrap(endpoint, throttles)  # type: ignore[return-value]

    return decorate


def _wrap(
    endpoint: Callable[..., Awaitable[Any]], throttles: tuple[Throttle, ...]
) -> Callable[..., Awaitable[Any]]:
    """``endpoint`` behind one wrapper charging all ``throttles`` together."""
    group = ThrottleGroup(*throttles)
    wants_headers = any(throttle.rate_limit_headers for throttle in throttles)
    signature = inspect.signature(endpoint)

    @functools.wraps(endpoint)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        connection = kwargs.pop(_CONNECTION, None)
        response = kwargs.pop(_RESPONSE, None)
        if connection is None:
            connection = next(
                (a for a in (*args, *kwargs.values()) if isinstance(a, HTTPConnection)),
                None,
            )
            if connection is None:
                raise ConfigurationError(
                    f"@throttled endpoint {endpoint.__name__} got no request or websocket"
                )
        headers = await enforce(group.throttles, connection, None, None, response)
        result = await endpoint(*args, **kwargs)
        # FastAPI ignores its injected response's headers when the endpoint returns
        # a Response of its own, and Starlette has none: put them on the result.
        if headers and isinstance(result, Response):
            put_headers(result, headers)
        return result

    hidden = [
        inspect.Parameter(
            _CONNECTION, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=HTTPConnection
        )
    ]
    if wants_headers:
        hidden.append(
            inspect.Parameter(
                _RESPONSE, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Response
            )
        )
    parameters = list(signature.parameters.values())
    # Keyword-only parameters must precede **kwargs.
    at = next(
        (i for i, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD),
        len(parameters),
    )
    parameters[at:at] = hidden
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    # What a stacked @throttled finds: this very wrapper (functools.wraps copies the
    # attribute to a foreign decorator's wrapper, which must not be unwrapped), its
    # throttles and the endpoint beneath.
    setattr(wrapper, _STACKED, (wrapper, throttles, endpoint))
    return wrapper
