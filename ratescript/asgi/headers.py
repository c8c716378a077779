"""Rate-limit response headers: the IETF ``RateLimit`` fields and the classic ``X-`` ones.

The IETF fields follow draft-ietf-httpapi-ratelimit-headers (revisions 08–10):
``RateLimit-Policy: "<name>";q=<quota>;w=<window s>`` announces each limit, and
``RateLimit: "<name>";r=<remaining>;t=<seconds to reset>`` where a client stands —
one list member per limit, so an endpoint with several throttles reports them all.
The classic ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` carry only one limit:
the one with the fewest hits remaining, which is the one a client will meet first.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal

from ratescript.decision import Decision
from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate

__all__ = ["HeaderStyle", "check_style", "limit_headers"]

#: Which headers to send: the IETF fields, the classic ``X-RateLimit-*``, or both.
HeaderStyle = Literal["ietf", "classic", "all"]

_STYLES = ("ietf", "classic", "all")


def check_style(style: object) -> HeaderStyle | None:
    """``style`` if it names a header style (or is ``None``); else a ``ConfigurationError``."""
    if style is None or style in _STYLES:
        return style  # type: ignore[return-value]
    raise ConfigurationError(
        f'rate_limit_headers must be "ietf", "classic" or "all", got {style!r}'
    )


@functools.lru_cache(maxsize=1024)
def _sf_string(name: str) -> str:
    """``name`` as an RFC 8941 string: printable ASCII, quotes and backslashes escaped.

    Cached, like ``_policy``: names are a throttle's ``uid``, a handful per app, and
    headers on every response would otherwise escape them on every request.
    """
    printable = "".join(c if " " <= c <= "~" else "?" for c in name)
    return '"' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=1024)
def _policy(name: str, rate: Rate) -> str:
    """One member of ``RateLimit-Policy``: it depends on the limit only."""
    return f"{_sf_string(name)};q={rate.limit};w={max(1, _seconds(rate.expire))}"


def _seconds(ms: float) -> int:
    return max(0, math.ceil(ms / 1000.0)) if ms < math.inf else 0


def _remaining(decision: Decision) -> int:
    remaining = decision.remaining
    return max(0, math.floor(remaining)) if remaining < math.inf else 0


def limit_headers(
    style: HeaderStyle, limits: Sequence[tuple[str, Rate, Decision]]
) -> dict[str, str]:
    """The headers of ``style`` for ``(name, rate, decision)`` of every limit applied."""
    if not limits:
        return {}
    headers: dict[str, str] = {}
    if style in ("ietf", "all"):
        headers["RateLimit-Policy"] = ", ".join(_policy(name, rate) for name, rate, _ in limits)
        headers["RateLimit"] = ", ".join(
            f"{_sf_string(name)};r={_remaining(decision)};t={_seconds(decision.reset_ms)}"
            for name, _, decision in limits
        )
    if style in ("classic", "all"):
        _, rate, decision = min(limits, key=lambda limit: limit[2].remaining)
        headers["X-RateLimit-Limit"] = str(rate.limit)
        headers["X-RateLimit-Remaining"] = str(_remaining(decision))
        headers["X-RateLimit-Reset"] = str(_seconds(decision.reset_ms))
    return headers
