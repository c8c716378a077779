"""Checks of strategy parameters: each numeric one once, at construction, the same way.

Every strategy validates its numeric parameters with ``check_number``: a real number,
not a ``bool`` (``True`` is an ``int`` to Python, never a capacity to a user), finite,
and in the parameter's range; anything else is a ``ConfigurationError`` naming the
strategy and the parameter, raised when the strategy is built rather than on its
first hit.
"""

from __future__ import annotations

import math
import numbers

from ratescript.exceptions import ConfigurationError

__all__ = ["check_number"]


def _bounds(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if high == math.inf:
        return f"{'>' if low_open else '>='} {low:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_number(
    owner: str,
    name: str,
    value: object,
    *,
    low: float = 0.0,
    high: float = math.inf,
    low_open: bool = True,
    high_open: bool = False,
) -> float:
    """``value`` as a float if it is a finite real number in range, else ``ConfigurationError``.

    The range is ``low < value`` (``low <= value`` when not ``low_open``) and
    ``value <= high`` (``value < high`` when ``high_open``); by default, ``> 0``.
    """
    bounds = _bounds(low, high, low_open, high_open)
    problem = f"{owner}: {name} must be a finite number {bounds}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(problem)
    try:
        number = float(value)
    except (OverflowError, ValueError):  # a huge Fraction or int, a broken Real
        raise ConfigurationError(problem) from None
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    if not math.isfinite(number) or below or above:
        raise ConfigurationError(problem)
    return number
