"""The tiny runtime generated Python runs on: Lua 5.1's numeric semantics in Python.

Generated Python must give bit-identical results to generated Lua. Python differs
from Lua 5.1 in a few places (see FACTS.md), each handled here once:

* ``math.floor``/``math.ceil`` return ``int`` and lose ``-0.0``; Lua returns a
  double and ``ceil(-0.5)`` is ``-0.0``;
* ``%`` on floats differs; Lua's is ``a - floor(a/b)*b``;
* ``sum()`` of floats is compensated since Python 3.12; Lua adds in order — so a
  log keeps a running total that every target updates with the same operations.
"""

from __future__ import annotations

import math
from typing import Any, Final

from ratescript.decision import NO_METADATA
from ratescript.exceptions import ScriptRuntimeError

__all__ = [
    "DELETE",
    "KEEP",
    "MAX_TTL_MS",
    "lua_ceil",
    "lua_floor",
    "lua_mod",
    "namespace",
]


class _Sentinel:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


KEEP: Final = _Sentinel("KEEP")  # the key is not written
DELETE: Final = _Sentinel("DELETE")  # the key is deleted
# TTLs are clamped to [1 ms, ~10 years]: Redis rejects PX 0 and huge values overflow.
MAX_TTL_MS: Final = 315_360_000_000.0

LogEntries = list[tuple[float, float]]


def lua_floor(x: float) -> float:
    """``math.floor`` of Lua 5.1: a double, ``-0.0`` kept, infinities and NaN unchanged.

    For a finite ``x``, ``x // 1.0`` is exactly ``floor(x)`` as a double, ``-0.0 // 1.0``
    included, with no int made and converted back (``float(math.floor(x))`` costs twice
    as much); ``x - x`` is 0 exactly when ``x`` is finite, NaN for infinities and NaN.
    """
    if x - x == 0.0:
        return x // 1.0
    return x


def lua_ceil(x: float) -> float:
    """``math.ceil`` of Lua 5.1: ``ceil(-0.5)`` is ``-0.0``, like C's ``ceil``."""
    if x - x == 0.0:  # finite: ``-floor(-x)``, whose sign is C's (see ``lua_floor``)
        return -(-x // 1.0)
    return x


def lua_mod(a: float, b: float) -> float:
    """Lua 5.1's ``a % b``: ``a - floor(a/b)*b``; a zero divisor is an error on every target."""
    return a - lua_floor(a / b) * b


def lua_window_index(time: float, period: float) -> float:
    """The window ``k`` with ``k·period <= time < (k+1)·period``, computed in doubles.

    ``time / period`` can round to a neighbouring ``k`` when ``period`` is not a whole
    number of ms, so its floor is corrected by one either way: a window then ends
    exactly where the next begins. A zero period is an error on every target. The
    reference for the Python targets, which write it inline (``window_index`` there).
    """
    index = lua_floor(time / period)
    if index * period > time:
        index = index - 1.0
    elif (index + 1.0) * period <= time:
        index = index + 1.0
    return index


def _nonfinite(line: int) -> ScriptRuntimeError:
    return ScriptRuntimeError(f"line {line}: cannot store a number that is not finite")


def ttl(value: float) -> float:
    """A key's TTL in whole milliseconds, clamped to what every store accepts."""
    if 1.0 <= value <= MAX_TTL_MS:  # the usual TTL, once per write: nothing to clamp
        return float(math.ceil(value))
    return max(1.0, min(MAX_TTL_MS, lua_ceil(value)))


# A log travels as its entries plus their running total: every target adds an
# appended amount and subtracts a dropped one, in the same order, so the total is
# bit-identical everywhere and ``log.sum()`` never walks the log. An emptied log's
# total is exactly 0, so rounding never outlives the entries it came from.


def log_copy(stored: tuple[LogEntries, float] | None) -> tuple[LogEntries, float]:
    """The entries (a fresh list the script may change) and total of a stored log."""
    if stored is None:
        return [], 0.0
    entries = stored[0]
    # A slice copies a decoded log (a list subclass) at memcpy speed; list() would
    # iterate it, twice as slow for 1,000 entries.
    return (entries[:] if isinstance(entries, list) else list(entries)), stored[1]


def log_trim(entries: LogEntries, total: float, cutoff: float) -> float:
    """Drop the entries up to ``cutoff`` from the head; the new total."""
    count = 0
    for time, amount in entries:
        if not time <= cutoff:
            break
        total = total - amount
        count += 1
    if count:
        del entries[:count]
    return total if entries else 0.0


def log_append(entries: LogEntries, total: float, time: float, amount: float, line: int) -> float:
    """Append ``(time, amount)``, or merge into the last entry if not later; the new total."""
    if time - time != 0.0 or amount - amount != 0.0:
        raise _nonfinite(line)
    if entries:
        last_time, last_amount = entries[-1]
        if time <= last_time:
            entries[-1] = (last_time, last_amount + amount)
            return total + amount
    entries.append((time, amount))
    return total + amount


def log_drop_oldest(entries: LogEntries, total: float) -> float:
    """Drop the oldest entry, if any; the new total."""
    if entries:
        total = total - entries[0][1]
        del entries[0]
    return total if entries else 0.0


def namespace() -> dict[str, Any]:
    """The globals generated Python runs with: these helpers, under ``_rs_`` names."""
    return {
        "__builtins__": {
            "abs": abs,
            "len": len,
            "float": float,
            "list": list,
        },
        "_KEEP": KEEP,
        "_NO_METADATA": NO_METADATA,
        "_DELETE": DELETE,
        "_rs_ifloor": math.floor,
        "_rs_ceil": lua_ceil,
        "_rs_mod": lua_mod,
        "_rs_nonfinite": _nonfinite,
        "_rs_ttl": ttl,
        "_rs_log_copy": log_copy,
        "_rs_log_trim": log_trim,
        "_rs_log_append": log_append,
        "_rs_log_drop_oldest": log_drop_oldest,
    }
