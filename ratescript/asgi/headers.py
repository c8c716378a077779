"""Rate-limit response headers: the IETF ``RateLimit`` fields and the classic ``X-`` ones.

The IETF fields follow draft-ietf-httpapi-ratelimit-headers (revisions 08–10):
``RateLimit-Policy: "<name>";q=<quota>;w=<window s>`` announces each limit, and
``RateLimit: "<name>";r=<remaining>;t=<seconds to reset>`` where a client stands —
one list member per limit, so an endpoint with several throttles reports them all.
The classic ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` carry only one limit:
the one with the fewest hits remaining, which is the one a client will meet first — on
a rejection, among the limits that rejected it.

Separate checks of one request (two ``Depends``, a middleware rule and a route's
throttle, throttles on two stores) each produce these fields; ``merge_fields`` joins
them as one check of every limit would: the lists gain members (a limit named twice
keeps its latest), the classic fields keep the limit with the fewest hits left.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Literal

from starlette.responses import Response

from ratescript.decision import Decision
from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate

__all__ = [
    "HeaderStyle",
    "check_static_headers",
    "check_style",
    "limit_headers",
    "merge_fields",
    "merge_headers",
    "merge_raw",
    "one_limit_headers",
    "put_headers",
    "rate_limit_fields",
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


# The IETF fields are Structured Field lists, one member per limit; the classic ones
# describe one limit together.
_LISTS: Final = frozenset({"ratelimit", "ratelimit-policy"})
_CLASSIC: Final = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def _split(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside Structured Field strings (``"a, b"``)."""
    parts: list[str] = []
    start, quoted, escaped = 0, False, False
    for at, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:at])
            start = at + 1
    parts.append(text[start:])
    return parts


def _members(value: str) -> list[str]:
    """The members of a Structured Field list."""
    return [member.strip() for member in _split(value, ",") if member.strip()]


def _member_name(member: str) -> str:
    """A list member's item — a limit's name — without its parameters."""
    return _split(member, ";")[0].strip()


def _remaining_of(values: Mapping[str, list[str]]) -> int | None:
    """The hits left that one complete set of classic fields names; ``None`` if none does."""
    if any(len(values.get(name, ())) != 1 for name in _CLASSIC):
        return None
    text = values["x-ratelimit-remaining"][0].strip()
    return int(text) if text.isdigit() else None


def merge_fields(
    existing: Sequence[tuple[str, str]], headers: Mapping[str, str], *, rejected: bool = False
) -> list[tuple[str, str]]:
    """The fields ``existing`` with ``headers`` set, the rate-limit ones merged.

    A field not about rate limits is replaced, as ``MutableHeaders.update`` does. The
    ``RateLimit`` and ``RateLimit-Policy`` lists gain the new members, a member of a
    name already listed replacing the old one (the same limit checked again). The
    classic fields keep whichever complete set has fewer hits left — or the existing
    set when it describes a ``rejected`` response: it names the limit that rejected.
    """
    new = {name.lower(): (name, value) for name, value in headers.items()}
    kept: list[tuple[str, str]] = []
    replaced: dict[str, list[str]] = {}
    for name, value in existing:
        lowered = name.lower()
        if lowered in new:
            replaced.setdefault(lowered, []).append(value)
        else:
            kept.append((name, value))
    old_remaining = _remaining_of(replaced)
    keep_classic = old_remaining is not None and (
        rejected
        or _remaining_of({n: [v] for n, (_, v) in new.items()}) is None
        or old_remaining < int(new["x-ratelimit-remaining"][1].strip())
    )
    for lowered, (name, value) in new.items():
        if lowered in _LISTS and lowered in replaced:
            fresh = _members(value)
            names = {_member_name(member) for member in fresh}
            old = [m for v in replaced[lowered] for m in _members(v)]
            value = ", ".join([m for m in old if _member_name(m) not in names] + fresh)
        elif keep_classic and lowered in _CLASSIC:
            value = replaced[lowered][0]
        kept.append((name, value))
    return kept


def rate_limit_fields(response: Response) -> dict[str, str]:
    """The rate-limit fields an earlier check put on ``response``, as ``merge_fields``
    would send them again: one field per name."""
    found: dict[str, str] = {}
    for name, value in response.headers.raw:
        lowered = name.decode("latin-1")
        if lowered in _LISTS or lowered in _CLASSIC:
            found = merge_headers(found, {lowered: value.decode("latin-1")})
    return found


def merge_headers(headers: Mapping[str, str], more: Mapping[str, str]) -> dict[str, str]:
    """``headers`` and ``more``, the rate-limit fields of two checks merged (``merge_fields``)."""
    if not headers:
        return dict(more)
    return dict(merge_fields(list(headers.items()), more))


@functools.lru_cache(maxsize=256)
def _field_name(name: str) -> bytes:
    return name.lower().encode("latin-1")


def put_headers(response: Response, headers: Mapping[str, str]) -> None:
    """Set ``headers`` on ``response``, merging the rate-limit fields an earlier check
    put there (``merge_fields``); see ``merge_raw``."""
    merge_raw(response.headers.raw, headers)  # the response's own list, not a copy


def merge_raw(
    raw: list[tuple[bytes, bytes]], headers: Mapping[str, str], *, rejected: bool = False
) -> None:
    """``merge_fields`` on a list of raw ASGI header fields, in place, in one pass.

    Starlette's ``MutableHeaders`` sets a field by scanning and editing its list once
    per field (two rate-limit fields cost as much as a decision). The common case —
    none of these fields there yet — appends them after one scan.
    """
    # By field name: names that differ only in case are one field, the last value wins.
    fields = {_field_name(name): value.encode("latin-1") for name, value in headers.items()}
    for name, _ in raw:
        if name.lower() in fields:
            merged = merge_fields(
                [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw],
                headers,
                rejected=rejected,
            )
            raw[:] = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in merged]
            return
    raw.extend(fields.items())
