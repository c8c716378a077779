"""The Starlette and FastAPI layer: throttles, middleware, decorator, headers.

Throttles and helpers are also exported from ``ratescript`` itself.
"""

from __future__ import annotations

from ratescript.asgi.decorators import throttled
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
    "ExceptionInfo",
    "HTTPThrottle",
    "HeaderStyle",
    "MiddlewareThrottle",
    "Throttle",
    "ThrottleGroup",
    "ThrottleMiddleware",
    "WebSocketThrottle",
    "default_identifier",
    "get_remote_address",
    "is_throttled",
    "limit_headers",
    "remote_address",
    "throttled",
]
