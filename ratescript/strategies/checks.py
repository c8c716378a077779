"""Checks of strategy parameters: each numeric one once, at construction, the same way.

Every strategy validates its numeric parameters with ``check_number``: a real number,
not a ``bool`` (``True`` is an ``int`` to Python, never a capacity to a user), finite,
and in the parameter's range; anything else is a ``ConfigurationError`` naming the
strategy and the parameter, raised when the strategy is built rather than on its
first hit.

``check_horizon`` is the one check that needs the rate: a strategy whose state must
outlive ``MAX_TTL_MS`` (about ten years, the longest TTL every store keeps) would
forget it early and admit hits it should reject, so such a rate (or parameter) is
rejected when the strategy computes its arguments for it.
"""

from __future__ import annotations

import math
import numbers
from typing import Final

from ratescript.exceptions import ConfigurationError
from ratescript.scriptdsl.runtime import MAX_TTL_MS

__all__ = ["MAX_HORIZON_MS", "check_horizon", "check_number"]

#: The longest a strategy's state may have to be kept, in ms: ``MAX_TTL_MS`` less the
#: millisecond every script adds to a TTL and the one a TTL is rounded up by.
MAX_HORIZON_MS: Final = MAX_TTL_MS - 2.0


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


def check_horizon(owner: str, rate: object, horizon_ms: float, what: str) -> None:
    """Reject a rate or parameters whose state would have to outlive every store's TTL.

    ``horizon_ms`` is the longest the strategy's state must be kept at ``rate`` to
    decide exactly (its longest TTL); ``what`` says what makes it that long, for the
    message (built only on failure: this runs whenever arguments are computed).
    """
    if not horizon_ms <= MAX_HORIZON_MS:
        raise ConfigurationError(
            f"{owner} at {rate}: {what} makes its state last {horizon_ms:.17g} ms, longer "
            f"than a store keeps a key ({MAX_HORIZON_MS:.17g} ms, about ten years); use a "
            "shorter period or smaller parameters"
        )
