"""The exceptions ratescript raises, under one root.

Why one root: an application can catch ``RatescriptError`` around a throttle and
know it has seen every failure ratescript itself can produce.

    RatescriptError
    ├── ConnectionThrottled         a hit was rejected: HTTP 429 with Retry-After
    │                               (also a Starlette ``HTTPException``, so apps render it)
    ├── ConfigurationError          a bad rate string, parameter or setting
    ├── ScriptError                 anything about a transaction script
    │   ├── ScriptCompileError      the script is outside the DSL subset
    │   └── ScriptRuntimeError      the script failed while running (division by zero, ...)
    └── StoreError                  a store operation failed
        ├── StoreConnectionError    the store could not be reached in time
        ├── LockTimeoutError        a store lock could not be had in time
        └── CorruptStateError       a stored value is not what the script wrote
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from starlette.exceptions import HTTPException

__all__ = [
    "ConfigurationError",
    "ConnectionThrottled",
    "CorruptStateError",
    "LockTimeoutError",
    "RatescriptError",
    "ScriptCompileError",
    "ScriptError",
    "ScriptRuntimeError",
    "StoreConnectionError",
    "StoreError",
]


class RatescriptError(Exception):
    """Root of every exception ratescript raises."""


class ConfigurationError(RatescriptError, ValueError):
    """A rate, parameter or setting is invalid; raised at start-up, not per request."""


class ScriptError(RatescriptError):
    """Something is wrong with a transaction script."""


class ScriptCompileError(ScriptError):
    """The script uses a construct outside the DSL subset.

    Carries the file, line and column of the offending construct and prints the
    source line beneath the message, so the author sees where to look.
    """

    def __init__(
        self,
        message: str,
        *,
        filename: str = "<script>",
        lineno: int = 0,
        col_offset: int = 0,
        source_line: str = "",
    ) -> None:
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.col_offset = col_offset
        self.source_line = source_line
        text = f"{filename}:{lineno}:{col_offset + 1}: {message}"
        if source_line:
            text += f"\n    {source_line.strip()}"
        super().__init__(text)


class ScriptRuntimeError(ScriptError):
    """A script failed while running, the same way on every target."""


class StoreError(RatescriptError):
    """A store operation failed; the message names the store and the operation."""

    def __init__(self, message: str, *, store: str = "", operation: str = "") -> None:
        self.store = store
        self.operation = operation
        prefix = " ".join(part for part in (store, operation) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class StoreConnectionError(StoreError):
    """The store could not be reached (or did not answer in time)."""


class LockTimeoutError(StoreError):
    """A store lock could not be acquired within its blocking timeout."""


class CorruptStateError(StoreError):
    """A stored value could not be decoded as what the script declared for its key."""

    def __init__(self, key: str, value: bytes | str, expected: str) -> None:
        self.key = key
        self.value = value
        shown = repr(value if len(value) <= 60 else value[:60]) + (
            "" if len(value) <= 60 else "..."
        )
        found = f"corrupt value {shown}" if value else "corrupt value"
        super().__init__(f"{found} at key {key!r}: expected {expected}")


class ConnectionThrottled(HTTPException, RatescriptError):
    """A connection hit its limit: rendered as HTTP 429 with ``Retry-After``.

    A Starlette ``HTTPException`` so that FastAPI and Starlette render it without an
    extra handler. ``wait_ms`` is the exact wait; ``Retry-After`` rounds it up to
    whole seconds, because a client that retries early is rejected again.
    """

    def __init__(
        self,
        wait_ms: float,
        detail: str | None = None,
        *,
        status_code: int = 429,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.wait_ms = wait_ms
        self.retry_after = retry_after_seconds(wait_ms)
        merged = {"Retry-After": str(self.retry_after), **(headers or {})}
        super().__init__(
            status_code,
            detail
            or f"Too many requests. Retry in {self.retry_after} "
            + ("second." if self.retry_after == 1 else "seconds."),
            merged,
        )


def retry_after_seconds(wait_ms: float) -> int:
    """``Retry-After`` for a wait: whole seconds, rounded up (at least 1 for any wait)."""
    if wait_ms <= 0:
        return 0
    return max(1, math.ceil(wait_ms / 1000.0))
