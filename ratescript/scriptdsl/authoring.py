"""What a script author writes with: ``Key``, ``Record``, ``Log`` and the verdicts.

These names exist so that a script is valid, type-checkable Python that an editor
understands. They are never executed: the compiler reads the function's source and
generates code for each target, so calling any of these outside a compiled script
raises ``ScriptError`` instead of silently doing something different.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Generic, NoReturn, TypeVar

from ratescript.exceptions import ScriptError

__all__ = [
    "Key",
    "Log",
    "Record",
    "Verdict",
    "allow",
    "ceil",
    "deny",
    "floor",
    "now_ms",
    "window_index",
]

T = TypeVar("T")


def _only_in_scripts(name: str) -> NoReturn:
    raise ScriptError(
        f"`{name}` only has meaning inside a function decorated with @script; "
        "the compiler translates it, Python never runs it"
    )


class Record:
    """Named numeric fields stored together under one key.

    Subclass it and annotate the fields, in the order they are stored::

        class Bucket(Record):
            tokens: float
            stamp: float
    """

    fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = tuple(name for name in inspect.get_annotations(cls) if name != "fields")
        cls.fields = tuple(dict.fromkeys((*cls.fields, *own)))

    def __init__(self, *values: float, **named: float) -> None:
        _only_in_scripts(type(self).__name__)


class Log:
    """An ordered list of ``(time, amount)`` entries stored under one key.

    Enough for a sliding log, a FIFO queue and leases: ``trim``, ``append``,
    ``drop_oldest``, ``sum``, ``count``, ``oldest``/``newest`` (times),
    ``oldest_amount``/``newest_amount``, and ``for time, amount in log:``.
    """

    def trim(self, cutoff: float) -> None:
        _only_in_scripts("Log.trim")

    def append(self, time: float, amount: float) -> None:
        _only_in_scripts("Log.append")

    def drop_oldest(self) -> None:
        _only_in_scripts("Log.drop_oldest")

    def sum(self) -> float:
        _only_in_scripts("Log.sum")

    def count(self) -> float:
        _only_in_scripts("Log.count")

    def oldest(self, default: float) -> float:
        _only_in_scripts("Log.oldest")

    def newest(self, default: float) -> float:
        _only_in_scripts("Log.newest")

    def oldest_amount(self, default: float) -> float:
        _only_in_scripts("Log.oldest_amount")

    def newest_amount(self, default: float) -> float:
        _only_in_scripts("Log.newest_amount")

    def __iter__(self) -> Any:
        _only_in_scripts("iterating a Log")


class Key(Generic[T]):
    """A key the script reads or writes; declare it as a parameter: ``bucket: Key[Bucket]``.

    ``T`` is ``float`` (one number), a ``Record`` subclass, or ``Log``.
    """

    def get(self, default: T | None = None) -> T:
        _only_in_scripts("Key.get")

    def set(self, value: T, ttl_ms: float | None = None) -> None:
        _only_in_scripts("Key.set")

    def delete(self) -> None:
        _only_in_scripts("Key.delete")


class Verdict:
    """The type of ``allow(...)`` and ``deny(...)``; a script returns one."""


def allow(remaining: float = 0.0, reset_ms: float = 0.0, **metadata: float) -> Verdict:
    """Admit the hit; ``remaining`` and ``reset_ms`` describe the state afterwards."""
    _only_in_scripts("allow")


def deny(
    wait_ms: float, remaining: float = 0.0, reset_ms: float = 0.0, **metadata: float
) -> Verdict:
    """Reject the hit; ``wait_ms`` is how long until the same hit would be admitted."""
    _only_in_scripts("deny")


def now_ms() -> float:
    """The script's clock, in milliseconds since the epoch."""
    _only_in_scripts("now_ms")


def floor(x: float) -> float:
    """Lua's ``math.floor``: returns a float and keeps ``-0.0``."""
    _only_in_scripts("floor")


def ceil(x: float) -> float:
    """Lua's ``math.ceil``: returns a float; ``ceil(-0.5)`` is ``-0.0``."""
    _only_in_scripts("ceil")


def window_index(time: float, period_ms: float) -> float:
    """The fixed window holding ``time``: ``k`` with ``k·period_ms <= time < (k+1)·period_ms``.

    Exact for any period, whole number of ms or not (``floor(time / period_ms)`` can be
    off by one when the quotient rounds): the window starts at ``k * period_ms`` and
    ends at ``(k + 1) * period_ms``, exactly where the next one starts.
    """
    _only_in_scripts("window_index")
