"""``Rate``: how many requests a client may make in a period, and the rate string grammar."""

from __future__ import annotations

import math
import numbers
import re
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Final

from ratescript.exceptions import ConfigurationError

__all__ = ["Rate"]

# Milliseconds in one unit, under every spelling the grammar accepts.
_UNIT_MS: Final[dict[str, int]] = {
    "ms": 1,
    "millisecond": 1,
    "milliseconds": 1,
    "s": 1_000,
    "sec": 1_000,
    "secs": 1_000,
    "second": 1_000,
    "seconds": 1_000,
    "m": 60_000,
    "min": 60_000,
    "mins": 60_000,
    "minute": 60_000,
    "minutes": 60_000,
    "h": 3_600_000,
    "hr": 3_600_000,
    "hrs": 3_600_000,
    "hour": 3_600_000,
    "hours": 3_600_000,
    "d": 86_400_000,
    "day": 86_400_000,
    "days": 86_400_000,
}

# Constructor keyword -> milliseconds per unit, largest first (``__repr__`` relies on the order).
_KEYWORD_MS: Final[tuple[tuple[str, int], ...]] = (
    ("days", 86_400_000),
    ("hours", 3_600_000),
    ("minutes", 60_000),
    ("seconds", 1_000),
    ("milliseconds", 1),
)

# Every alternative ends the string (the match is anchored), so the order of the units only
# matters for speed; longest first avoids a backtrack from "m" to "ms"/"min".
_UNITS: Final = "|".join(sorted(_UNIT_MS, key=len, reverse=True))

# <limit> ("/" | "per") [<period>] [<unit>], on the stripped text.  The number patterns are
# unambiguous and no two whitespace runs touch, so a long bad string fails in linear time.
_RATE_RE: Final = re.compile(
    rf"""
    (?P<limit>[0-9]+)
    \s* (?: / | per ) \s*
    (?: (?P<period>[0-9]+(?:\.[0-9]+)? | \.[0-9]+) \s* )?
    (?P<unit>{_UNITS})?
    """,
    re.ASCII | re.IGNORECASE | re.VERBOSE,
)

# A limit above 2**53 is not a whole number of hits in a double.
_MAX_LIMIT: Final = 2**53

_EXAMPLES: Final = "e.g. '100/minute', '5/10s', '2 per second', '1000/500ms' or '0/0' (unlimited)"


class Rate:
    """A limit of ``limit`` requests per period; immutable, hashable, compared by value.

    Args:
        limit: requests allowed per period, a whole number >= 0.
        milliseconds, seconds, minutes, hours, days: added together to make the period;
            each a finite number >= 0 (fractions allowed, e.g. ``minutes=1.5``).

    A rate whose limit or period is zero is *unlimited*: it never throttles.  Two rates are
    equal when their ``limit`` and ``expire`` (period in milliseconds) are, however they
    were spelled: ``Rate(100, minutes=1) == Rate.parse("100/60s")``.
    """

    __slots__ = ("_expire", "_limit")

    _limit: int
    _expire: int | float

    def __init__(
        self,
        limit: int | float,
        milliseconds: int | float = 0,
        seconds: int | float = 0,
        minutes: int | float = 0,
        hours: int | float = 0,
        days: int | float = 0,
    ) -> None:
        whole_limit = _check_number("limit", limit)
        if whole_limit.denominator != 1:
            raise ConfigurationError(f"Rate limit must be a whole number, got {limit!r}")
        parts = {
            "days": days,
            "hours": hours,
            "minutes": minutes,
            "seconds": seconds,
            "milliseconds": milliseconds,
        }
        expire_ms = sum(
            (_check_number(name, parts[name]) * unit_ms for name, unit_ms in _KEYWORD_MS),
            Fraction(0),
        )
        self._assign(int(whole_limit), expire_ms)

    def _assign(self, limit: int, expire_ms: Fraction) -> None:
        # Every strategy computes in doubles: a limit or period a double cannot hold, or
        # a period that would round to 0 (an unlimited rate), is a configuration error.
        if limit > _MAX_LIMIT:
            raise ConfigurationError(
                "Rate limit must be at most 2**53 (the whole numbers a double holds), "
                f"got {_describe(Fraction(limit))}"
            )
        try:
            as_float = float(expire_ms)
        except OverflowError:
            as_float = math.inf
        if not math.isfinite(as_float):
            raise ConfigurationError(
                f"Rate period is too long: {_describe(expire_ms)} ms does not fit in a double"
            )
        if as_float == 0 and expire_ms != 0:
            raise ConfigurationError(
                f"Rate period is too short: {_describe(expire_ms)} ms rounds to 0 in a double"
            )
        expire = int(expire_ms) if expire_ms.denominator == 1 else as_float
        object.__setattr__(self, "_limit", limit)
        object.__setattr__(self, "_expire", expire)

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Read a rate string such as ``"100/minute"``, ``"5/10s"`` or ``"2 per second"``.

        The grammar is ``<limit> ("/" | "per") [<period>] [<unit>]``, case-insensitive,
        with optional spaces between the parts.  It is the one Traffik users already
        write, so their configuration carries over unchanged:

        * the limit is a whole number: a request is counted whole, and a fractional limit
          such as ``"1.5/s"`` is better written ``"3/2s"``;
        * the period may be fractional (``"3/1.5s"``) and defaults to 1 (``"5/m"``);
        * the unit is ``ms``, ``s``, ``m``, ``h`` or ``d``, also spelled out, singular or
          plural (``sec``, ``mins``, ``hrs``, ``days`` ...), so both a terse ``"5/m"`` and
          a readable ``"20 per 2 mins"`` work;
        * a zero limit means unlimited with any period (``"0/0"``, ``"0/m"``); a zero
          period is the same in every unit, so ``"0/0"`` needs none, but a nonzero
          limit with a zero period (``"5/0s"``) is rejected as almost surely a typo.

        ``"unlimited"``, what ``str()`` gives for an unlimited rate, is accepted too.

        Raises:
            ConfigurationError: the text is not a rate; the message quotes it and shows
                accepted forms.
        """
        if not isinstance(text, str):
            raise ConfigurationError(f"expected a rate string, {_EXAMPLES}; got {text!r}")
        stripped = text.strip()
        if stripped.lower() == "unlimited":
            return cls(0)
        match = _RATE_RE.fullmatch(stripped)
        if match is None:
            raise _parse_error(text, "expected a whole-number limit, '/' or 'per', period, unit")
        limit = int(match["limit"])
        period, unit = match["period"], match["unit"]
        if period is None and unit is None:
            raise _parse_error(text, "no period or unit after the limit")
        period_count = Fraction(1) if period is None else Fraction(period)
        if unit is None and period_count != 0:
            raise _parse_error(text, f"the period {period} has no unit")
        expire_ms = period_count * (_UNIT_MS[unit.lower()] if unit is not None else 0)
        if limit != 0 and expire_ms == 0:
            raise _parse_error(text, f"a limit of {limit} needs a period greater than zero")
        rate = cls.__new__(cls)
        try:
            rate._assign(limit, expire_ms)
        except ConfigurationError as exc:
            raise _parse_error(text, str(exc)) from None
        return rate

    @classmethod
    def from_value(cls, value: Rate | str) -> Rate:
        """Return ``value`` if it is a ``Rate``, else parse it as a rate string."""
        if isinstance(value, Rate):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        raise ConfigurationError(f"expected a Rate or a rate string, {_EXAMPLES}; got {value!r}")

    @property
    def limit(self) -> int:
        """Requests allowed per period."""
        return self._limit

    @property
    def expire(self) -> int | float:
        """The period in milliseconds: an ``int`` when whole, else a ``float``."""
        return self._expire

    @property
    def unlimited(self) -> bool:
        """True when the rate never throttles: a zero limit or a zero period."""
        return self._limit == 0 or self._expire == 0

    @property
    def is_subsecond(self) -> bool:
        """True when the period is shorter than one second (and not zero)."""
        return 0 < self._expire < 1_000

    @property
    def rps(self) -> float:
        """Requests per second (``math.inf`` when unlimited)."""
        return self._per(1_000)

    @property
    def rpm(self) -> float:
        """Requests per minute (``math.inf`` when unlimited)."""
        return self._per(60_000)

    @property
    def rph(self) -> float:
        """Requests per hour (``math.inf`` when unlimited)."""
        return self._per(3_600_000)

    @property
    def rpd(self) -> float:
        """Requests per day (``math.inf`` when unlimited)."""
        return self._per(86_400_000)

    def _per(self, window_ms: int) -> float:
        if self.unlimited:
            return math.inf
        return self._limit * window_ms / self._expire

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rate):
            return NotImplemented
        return (self._limit, self._expire) == (other._limit, other._expire)

    def __hash__(self) -> int:
        return hash((self._limit, self._expire))

    def __str__(self) -> str:
        """Canonical form ``"<limit>/<seconds>s"`` or ``"<limit>/<ms>ms"``; parses back."""
        if self.unlimited:
            return "unlimited"
        expire = self._expire
        if isinstance(expire, int) and expire % 1_000 == 0:
            return f"{self._limit}/{expire // 1_000}s"
        # A float's repr may use an exponent ("1e-05"), which the grammar does not accept.
        return f"{self._limit}/{Decimal(repr(expire)):f}ms"

    def __repr__(self) -> str:
        expire = self._expire
        if expire == 0:
            return f"Rate({self._limit})"
        if isinstance(expire, float):
            return f"Rate({self._limit}, milliseconds={expire!r})"
        name, unit_ms = next((n, ms) for n, ms in _KEYWORD_MS if expire % ms == 0)
        return f"Rate({self._limit}, {name}={expire // unit_ms})"

    # Hidden from type checkers, which would otherwise allow assigning any attribute.
    if not TYPE_CHECKING:

        def __setattr__(self, name: str, value: object) -> None:
            raise AttributeError(f"Rate is immutable; cannot set {name!r}")

        def __delattr__(self, name: str) -> None:
            raise AttributeError(f"Rate is immutable; cannot delete {name!r}")

    def __reduce__(self) -> tuple[type[Rate], tuple[int, int | float]]:
        # The default slot-restoring pickle protocol would go through __setattr__.
        return (type(self), (self._limit, self._expire))


def _check_number(name: str, value: object) -> Fraction:
    """Validate one constructor argument and return it as an exact fraction."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = "; to read a string use Rate.parse()" if isinstance(value, str) else ""
        raise ConfigurationError(f"Rate {name} must be a number, got {value!r}{hint}")
    if isinstance(value, numbers.Integral):
        exact = Fraction(int(value))
    else:
        as_float = float(value)
        if not math.isfinite(as_float):
            raise ConfigurationError(f"Rate {name} must be finite, got {value!r}")
        if as_float == 0 and value != 0:  # a Fraction too small for a double
            raise ConfigurationError(f"Rate {name} rounds to 0 in a double, got {value!r}")
        # Go through the shortest repr so `seconds=0.1` means exactly 100 ms, not
        # 100.00000000000000555 ms from the binary value of 0.1.
        exact = Fraction(repr(as_float))
    if exact < 0:
        raise ConfigurationError(f"Rate {name} must be >= 0, got {value!r}")
    return exact


def _describe(value: Fraction) -> str:
    """An exact number for a message, shortened when it has hundreds of digits."""
    text = str(value) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _parse_error(text: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"invalid rate {text!r}: {problem}; {_EXAMPLES}")
