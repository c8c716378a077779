"""ratescript: asynchronous distributed rate limiting for Starlette and FastAPI.

Strategies are transaction scripts written in a small Python DSL and compiled to Lua
(Redis), Python (in-memory) and Memcached operations, so every store makes the same decision
in one round trip.
"""

from __future__ import annotations

from ratescript.asgi.decorators import throttled
from ratescript.asgi.identifiers import EXEMPTED, get_remote_address, remote_address
from ratescript.asgi.throttles import (
    HTTPThrottle,
    Throttle,
    ThrottleGroup,
    WebSocketThrottle,
    is_throttled,
)
from ratescript.config import (
    get_lock_blocking,
    get_lock_blocking_timeout,
    get_lock_ttl,
    set_lock_blocking,
    set_lock_blocking_timeout,
    set_lock_ttl,
)
from ratescript.decision import Decision
from ratescript.exceptions import (
    ConfigurationError,
    ConnectionThrottled,
    CorruptStateError,
    LockTimeoutError,
    RatescriptError,
    ScriptCompileError,
    ScriptError,
    ScriptRuntimeError,
    StoreConnectionError,
    StoreError,
)
from ratescript.rates import Rate

__version__ = "0.1.0"

__all__ = [
    "EXEMPTED",
    "ConfigurationError",
    "ConnectionThrottled",
    "CorruptStateError",
    "Decision",
    "HTTPThrottle",
    "LockTimeoutError",
    "Rate",
    "RatescriptError",
    "ScriptCompileError",
    "ScriptError",
    "ScriptRuntimeError",
    "StoreConnectionError",
    "StoreError",
    "Throttle",
    "ThrottleGroup",
    "WebSocketThrottle",
    "get_lock_blocking",
    "get_lock_blocking_timeout",
    "get_lock_ttl",
    "get_remote_address",
    "is_throttled",
    "remote_address",
    "set_lock_blocking",
    "set_lock_blocking_timeout",
    "set_lock_ttl",
    "throttled",
]
