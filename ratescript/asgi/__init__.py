"""The Starlette and FastAPI layer: throttles, middleware, decorator, headers, failure policies.

Throttles and helpers are also exported from ``ratescript`` itself; the failure
policies (``retry``, ``store_fallback``, ``failover``, ``CircuitBreaker``) only here
and in ``ratescript.asgi.errors``.
"""

from __future__ import annotations

from ratescript.asgi.decorators import throttled
from ratescript.asgi.errors import CircuitBreaker, failover, retry, store_fallback
from ratescript.asgi.headers import HeaderStyle, limit_headers
from ratescript.asgi.identifiers import (
    EXEMPTED,
    default_identifier,
    get_remote_address,
    remote_address,
)
from ratescript.asgi.middleware import MiddlewareThrottle, ThrottleMiddleware
from ratescript.asgi.throttles import (
    ExceptionInfo,
    HTTPThrottle,
    Throttle,
    ThrottleGroup,
    WebSocketThrottle,
    is_throttled,
)

__all__ = [
    "EXEMPTED",
    "CircuitBreaker",
    "ExceptionInfo",
    "HTTPThrottle",
    "HeaderStyle",
    "MiddlewareThrottle",
    "Throttle",
    "ThrottleGroup",
    "ThrottleMiddleware",
    "WebSocketThrottle",
    "default_identifier",
    "failover",
    "get_remote_address",
    "is_throttled",
    "limit_headers",
    "remote_address",
    "retry",
    "store_fallback",
    "throttled",
]
