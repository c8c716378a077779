"""Rate-limit response headers: the IETF ``RateLimit`` fields and the classic ``X-`` ones.

The IETF fields follow draft-ietf-httpapi-ratelimit-headers (revisions 08–10):
``RateLimit-Policy: "<name>";q=<quota>;w=<window s>`` announces each limit, and
``RateLimit: "<name>";r=<remaining>;t=<seconds to reset>`` where a client stands —
one list member per limit, so an endpoint with several throttles reports them all.
The classic ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` carry only one limit:
the one with the fewest hits remaining, which is the one a client will meet first — on
a rejection, among the limits that rejected it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from starlette.responses import Response

from ratescript.decision import Decision
from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate

__all__ = [
    "HeaderStyle",
    "check_static_headers",
    "check_style",
    "limit_headers",
    "one_limit_headers",
    "put_headers",
]

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


# RFC 9110 field names are tokens; a value may hold anything latin-1 but the characters
# that would end the field (CR, LF) or that servers refuse (NUL).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_IN_VALUE = re.compile(r"[\r\n\x00]")


def check_static_headers(headers: object) -> dict[str, str]:
    """A throttle's ``headers=`` as a dict, checked now: a name or value HTTP cannot
    carry would otherwise turn every 429 into a 500 when the response is encoded."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"headers must be a mapping of names to values, got {headers!r}")
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ConfigurationError(f"header name {name!r} is not an HTTP field name")
        if not isinstance(value, str):
            raise ConfigurationError(f"header {name!r}: the value must be a string, got {value!r}")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise ConfigurationError(
                f"header {name!r}: HTTP carries latin-1 text only, got {value!r}"
            ) from exc
        if _FORBIDDEN_IN_VALUE.search(value):
            raise ConfigurationError(f"header {name!r}: CR, LF and NUL end a field, got {value!r}")
    return dict(headers)


@functools.lru_cache(maxsize=1024)
def _sf_string(name: str) -> str:
    """``name`` as an RFC 8941 string: printable ASCII, quotes and backslashes escaped.

    Cached, like ``_policy``: names are a throttle's ``uid``, a handful per app, and
    headers on every response would otherwise escape them on every request.
    """
    printable = "".join(c if " " <= c <= "~" else "?" for c in name)
    return '"' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=1024)
def _policy(name: str, limit: int, expire_ms: float) -> str:
    """One member of ``RateLimit-Policy``: it depends on the limit only.

    Keyed by numbers, not the ``Rate``: its hash and equality are Python methods, which
    would cost more than the cache saves.

    The draft's window is whole seconds. A window that is not (``1/500ms``) is announced
    over the next whole second with the quota scaled to it, rounded down — ``q=2;w=1``,
    not ``q=1;w=1``, which would tell a client half its rate.
    """
    window = max(1, _seconds(expire_ms))
    quota = limit
    if 0 < expire_ms < math.inf and window * 1000.0 != expire_ms:
        # (1 + 1e-12): a quotient a rounding error puts just below a whole number.
        quota = math.floor(limit * (window * 1000.0 / expire_ms) * (1 + 1e-12))
    return f"{_sf_string(name)};q={quota};w={window}"


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
        headers["RateLimit-Policy"] = ", ".join(
            _policy(name, rate.limit, rate.expire) for name, rate, _ in limits
        )
        headers["RateLimit"] = ", ".join(
            f"{_sf_string(name)};r={_remaining(decision)};t={_seconds(decision.reset_ms)}"
            for name, _, decision in limits
        )
    if style in ("classic", "all"):
        _, rate, decision = min(limits, key=lambda limit: (limit[2].allowed, limit[2].remaining))
        headers["X-RateLimit-Limit"] = str(rate.limit)
        headers["X-RateLimit-Remaining"] = str(_remaining(decision))
        headers["X-RateLimit-Reset"] = str(_seconds(decision.reset_ms))
    return headers


def one_limit_headers(
    style: HeaderStyle, name: str, rate: Rate
) -> Callable[[Decision], dict[str, str]]:
    """``limit_headers(style, [(name, rate, decision)])`` as a function of the decision.

    A throttle of one fixed rate sends the same policy on every response: computed once
    here, a response pays only for where its client stands (the general function costs
    about as much as an in-process decision).
    """
    ietf = style in ("ietf", "all")
    classic = style in ("classic", "all")
    policy = _policy(name, rate.limit, rate.expire)
    member = _sf_string(name) + ";r="
    limit = str(rate.limit)

    def headers(decision: Decision) -> dict[str, str]:
        # `_remaining` and `_seconds`, inline: this runs on every response.
        left = decision.remaining
        remaining = max(0, math.floor(left)) if left < math.inf else 0
        reset_ms = decision.reset_ms
        reset = max(0, math.ceil(reset_ms / 1000.0)) if reset_ms < math.inf else 0
        made: dict[str, str] = {}
        if ietf:
            made["RateLimit-Policy"] = policy
            made["RateLimit"] = f"{member}{remaining};t={reset}"
        if classic:
            made["X-RateLimit-Limit"] = limit
            made["X-RateLimit-Remaining"] = str(remaining)
            made["X-RateLimit-Reset"] = str(reset)
        return made

    return headers


@functools.lru_cache(maxsize=256)
def _field_name(name: str) -> bytes:
    return name.lower().encode("latin-1")


def put_headers(response: Response, headers: Mapping[str, str]) -> None:
    """``response.headers.update(headers)``, in one pass over the response's headers.

    Starlette's ``MutableHeaders`` sets a field by scanning and editing its list once
    per field (two rate-limit fields cost as much as a decision). This drops every field
    being set in one pass, then appends them: the same headers, in another order only
    among fields of different names.
    """
    raw = response.headers.raw  # the response's own list, not a copy
    # By field name: names that differ only in case are one field, the last value wins.
    fields = {_field_name(name): value.encode("latin-1") for name, value in headers.items()}
    for name, _ in raw:
        if name in fields:
            raw[:] = [field for field in raw if field[0] not in fields]
            break
    raw.extend(fields.items())
