"""ratescript: asynchronous distributed rate limiting for Starlette and FastAPI.

Strategies are transaction scripts written in a small Python DSL and compiled to Lua
(Redis), Python (in-memory) and Memcached operations, so every store makes the same decision
in one round trip.
"""

from __future__ import annotations

from ratescript.decision import Decision
from ratescript.exceptions import (
    ConfigurationError,
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
    "ConfigurationError",
    "CorruptStateError",
    "Decision",
    "LockTimeoutError",
    "Rate",
    "RatescriptError",
    "ScriptCompileError",
    "ScriptError",
    "ScriptRuntimeError",
    "StoreConnectionError",
    "StoreError",
]
