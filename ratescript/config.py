"""Process-wide defaults for store locks: their TTL, whether they wait, and for how long.

Why process-wide: a lock is taken deep inside a hand-written strategy or a store, far
from where an operator decides how long a request may wait for one. The defaults are
read from the environment when this module is imported (``import ratescript`` does),
so a bad value stops the process at start-up instead of failing its first request:

- ``RATESCRIPT_DEFAULT_LOCK_TTL``: seconds a lock lives before it frees itself (a
  crashed holder cannot block the others for ever); unset means no TTL.
- ``RATESCRIPT_DEFAULT_BLOCKING``: ``true``/``false`` (also ``1``/``0``, ``yes``/``no``,
  any case): whether ``lock()`` waits for a held lock or fails at once; default true.
- ``RATESCRIPT_DEFAULT_BLOCKING_TIMEOUT``: seconds ``lock()`` waits at most before it
  raises ``LockTimeoutError``; unset means no limit.

An empty variable counts as unset. The environment is read once; later changes go
through the setters, which validate exactly like the start-up parsing. Every store's
``lock()`` resolves an argument it was not given through ``resolve_lock_options``.
"""

from __future__ import annotations

import math
import os
from typing import Final

from ratescript.exceptions import ConfigurationError

__all__ = [
    "get_lock_blocking",
    "get_lock_blocking_timeout",
    "get_lock_ttl",
    "resolve_lock_options",
    "set_lock_blocking",
    "set_lock_blocking_timeout",
    "set_lock_ttl",
]

LOCK_TTL_ENV: Final = "RATESCRIPT_DEFAULT_LOCK_TTL"
BLOCKING_ENV: Final = "RATESCRIPT_DEFAULT_BLOCKING"
BLOCKING_TIMEOUT_ENV: Final = "RATESCRIPT_DEFAULT_BLOCKING_TIMEOUT"

_TRUE: Final = frozenset({"true", "1", "yes"})
_FALSE: Final = frozenset({"false", "0", "no"})


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int no double holds: float() would raise it bare
        return False


def _seconds(value: object, what: str, *, positive: bool) -> float | None:
    """``value`` as finite seconds (``None`` stays ``None``); else ``ConfigurationError``."""
    if value is None:
        return None
    bound = "> 0" if positive else ">= 0"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not _finite(value)
        or value < 0
        or (positive and value == 0)
    ):
        raise ConfigurationError(
            f"{what} must be a finite number of seconds {bound} or None, got {value!r}"
        )
    return float(value)


def _env_seconds(name: str, *, positive: bool) -> float | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number of seconds") from None
    return _seconds(value, name, positive=positive)


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    word = raw.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not one of true, false, 1, 0, yes, no")


# Read at import: a bad environment fails ``import ratescript``, not a request.
_lock_ttl: float | None = _env_seconds(LOCK_TTL_ENV, positive=True)
_blocking: bool = _env_bool(BLOCKING_ENV, True)
_blocking_timeout: float | None = _env_seconds(BLOCKING_TIMEOUT_ENV, positive=False)


def set_lock_ttl(seconds: float | None) -> None:
    """Default lock TTL in seconds (> 0); ``None``: locks live until released."""
    global _lock_ttl
    _lock_ttl = _seconds(seconds, "the lock TTL", positive=True)


def set_lock_blocking(blocking: bool) -> None:
    """Whether ``lock()`` waits for a held lock by default (``False``: fail at once)."""
    global _blocking
    if not isinstance(blocking, bool):
        raise ConfigurationError(f"lock blocking must be True or False, got {blocking!r}")
    _blocking = blocking


def set_lock_blocking_timeout(seconds: float | None) -> None:
    """Default longest wait for a lock in seconds (>= 0); ``None``: no limit."""
    global _blocking_timeout
    _blocking_timeout = _seconds(seconds, "the lock blocking timeout", positive=False)


def get_lock_ttl() -> float | None:
    """The default lock TTL in seconds, or ``None`` (no TTL)."""
    return _lock_ttl


def get_lock_blocking() -> bool:
    """Whether locks wait for their holder by default."""
    return _blocking


def get_lock_blocking_timeout() -> float | None:
    """The default longest wait for a lock in seconds, or ``None`` (no limit)."""
    return _blocking_timeout


def resolve_lock_options(
    ttl: float | None, blocking: bool | None, blocking_timeout: float | None
) -> tuple[float | None, bool, float | None]:
    """A ``lock()`` call's ``(ttl, blocking, blocking_timeout)``, defaults filled in.

    ``None`` means "the configured default", so ``math.inf`` is how a call asks for no
    TTL or no time limit when a default is set; it comes back as ``None``. For store
    authors: every store's ``lock()`` starts with this, so all honour the defaults.
    """
    if ttl is None:
        ttl = _lock_ttl
    elif ttl != math.inf:
        ttl = _seconds(ttl, "a lock ttl", positive=True)
    else:
        ttl = None
    if blocking is None:
        blocking = _blocking
    if blocking_timeout is None:
        blocking_timeout = _blocking_timeout
    elif blocking_timeout != math.inf:
        blocking_timeout = _seconds(blocking_timeout, "a lock blocking_timeout", positive=False)
    else:
        blocking_timeout = None
    return ttl, bool(blocking), blocking_timeout
