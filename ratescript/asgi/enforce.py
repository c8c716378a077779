"""The engine behind throttles, groups, ``@throttled`` and the middleware.

Charges resolved for one connection are grouped by store (on Redis Cluster, by store
and client identity); each group is decided by one composed script (``hit_all``), or,
for a single throttle, its strategy. Then the outcome is acted on: a rejection runs
the throttled handler, an admission yields the rate-limit headers, and a store failure
goes to the failure policy — behind a circuit breaker when the policy has one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from starlette.exceptions import HTTPException, WebSocketException
from starlette.responses import Response

from ratescript.asgi.headers import (
    HeaderStyle,
    limit_headers,
    merge_fields,
    merge_headers,
    put_headers,
    rate_limit_fields,
)
from ratescript.asgi.types import Context, ExceptionInfo, maybe_await
from ratescript.decision import Decision
from ratescript.exceptions import ConfigurationError, StoreConnectionError
from ratescript.stores.base import Store, hash_tag
from ratescript.strategies.composition import Charge, hit_all, part_decision

if TYPE_CHECKING:
    from ratescript.asgi.throttles import Throttle

__all__ = [
    "DEFAULT_ERROR_WAIT_MS",
    "THROTTLED_FLAG",
    "Charged",
    "act",
    "breaker_of",
    "check_circuit",
    "enforce",
    "on_failure",
]

#: The wait of ``on_error="throttle"`` when the throttle sets no ``min_wait_period``.
DEFAULT_ERROR_WAIT_MS: Final = 1000.0
#: Where the outcome of a connection's last check is kept (``is_throttled``).
THROTTLED_FLAG: Final = "ratescript.throttled"


class Charged:
    """One throttle's part of a check, resolved for one connection."""

    __slots__ = ("charge", "store", "throttle")

    def __init__(self, throttle: Throttle, store: Store, charge: Charge) -> None:
        self.throttle = throttle
        self.store = store
        self.charge = charge


async def enforce(
    throttles: Sequence[Throttle],
    connection: Any,
    cost: float | None,
    context: Context | None,
    response: Response | None,
) -> dict[str, str]:
    """Charge ``throttles`` for one hit and act on the outcome; returns headers to send.

    When a hit is rejected the throttled handler runs (it usually raises). The
    returned headers (also set on ``response`` when given) are the rate-limit headers
    of the throttles that ask for them.
    """
    one = throttles[0]
    if len(throttles) == 1 and one._prepared is not None and cost is None and context is None:
        done = one._fast(connection, response)
        return done if isinstance(done, dict) else await done
    found = [await t._charged(connection, cost, context) for t in throttles]
    by_store: list[tuple[Store, list[Charged], list[Decision] | None]] = []
    for store, charged in _group_by_store([c for c in found if c is not None]):
        decisions = await _decide(connection, store, charged)
        by_store.append((store, charged, decisions))
        if decisions is not None and not all(d.allowed for d in decisions):
            break  # rejected: the stores after this one are not charged at all
    return await act(connection, by_store, context, response)


async def act(
    connection: Any,
    by_store: list[tuple[Store, list[Charged], list[Decision] | None]],
    context: Context | None,
    response: Response | None,
) -> dict[str, str]:
    """Act on the decisions: run the throttled handler of a rejection, else gather headers."""
    scope = connection.scope
    if THROTTLED_FLAG in scope:
        scope[THROTTLED_FLAG] = False
    headers: dict[str, str] = {}
    for store, charged, decisions in by_store:
        if decisions is None:
            continue  # a failure policy admitted the hit
        denied = next((i for i, d in enumerate(decisions) if not d.allowed), None)
        if denied is None:
            headers = merge_headers(headers, _headers(charged, decisions))
            continue
        throttle = charged[denied].throttle
        wait_ms = max(d.wait_ms for d in decisions if not d.allowed)
        # Limits checked before this one (an earlier store, an earlier Depends that
        # put its fields on the response) admitted and were charged: the 429 lists them.
        if response is not None:
            headers = merge_headers(rate_limit_fields(response), headers)
        await _throttled(connection, throttle, store, wait_ms, context, charged, decisions, headers)
        return headers
    if headers and response is not None:
        put_headers(response, headers)
    return headers


def _group_by_store(charged: list[Charged]) -> list[tuple[Store, list[Charged]]]:
    """The charges each script decides: one per store, or on a Redis Cluster one per
    client identity (the key's hash tag), since a script's keys share one slot there."""
    groups: dict[tuple[int, str | None], tuple[Store, list[Charged]]] = {}
    for one in charged:
        store = one.store
        tag = hash_tag(one.charge.key) if store.one_slot_per_script else None
        groups.setdefault((id(store), tag), (store, []))[1].append(one)
    return list(groups.values())


async def _run(store: Store, charged: list[Charged]) -> list[Decision]:
    if len(charged) == 1:
        charge = charged[0].charge
        decision = await charge.strategy.hit(
            charge.key, charge.rate, store, charge.cost, charge.context
        )
        return [decision]
    decision = await hit_all(store, [one.charge for one in charged])
    return [part_decision(decision, i) for i in range(len(charged))]


async def _decide(connection: Any, store: Store, charged: list[Charged]) -> list[Decision] | None:
    """Every part's decision, or — when the store fails — what the failure policy says."""
    breaker = breaker_of(charged[0].throttle, store)
    try:
        if breaker is not None:
            check_circuit(breaker, store)
        decisions = await _run(store, charged)
        if breaker is not None:
            breaker.record_success()
        return decisions
    except Exception as exc:
        return await on_failure(exc, connection, store, charged)


def breaker_of(throttle: Throttle, store: Store) -> Any:
    """The circuit breaker of the failure policy in force, if it has one (``failover``)."""
    return getattr(throttle.on_error or store.on_error, "breaker", None)


def check_circuit(breaker: Any, store: Store) -> None:
    """While the breaker is open, the store is not called at all: it is known to be down."""
    if not breaker.allows_request():
        raise StoreConnectionError(
            "circuit open: not calling the store", store=store.kind, operation="run"
        )


async def on_failure(
    exc: Exception, connection: Any, store: Store, charged: list[Charged]
) -> list[Decision] | None:
    """Apply the failure policy of the first throttle to a failed check.

    Returns rejections carrying the policy's wait, or ``None`` when it admits the hit.
    Configuration mistakes and throttled outcomes are never a store failure: re-raised.
    """
    if isinstance(exc, ConfigurationError | HTTPException | WebSocketException):
        raise exc
    first = charged[0]
    policy = first.throttle._policy(store)
    if policy == "raise":
        raise exc
    if policy == "allow":
        return None
    if policy == "throttle":
        wait_ms = first.throttle.min_wait_period or DEFAULT_ERROR_WAIT_MS
    else:

        async def attempt(other: Store | None = None) -> float:
            # Not `other or store`: an empty InMemoryStore is falsy (it has __len__).
            decisions = await _run(store if other is None else other, charged)
            waits = [d.wait_ms for d in decisions if not d.allowed]
            return max(waits) if waits else 0.0

        info = ExceptionInfo(
            exception=exc,
            connection=connection,
            cost=first.charge.cost,
            rate=first.charge.rate,
            context=first.charge.context,
            store=store,
            throttle=first.throttle,
            attempt=attempt,
        )
        wait_ms = await maybe_await(policy(connection, info))
        # A negative wait admits like 0; NaN, infinity or a non-number is a bug in the handler.
        if (
            isinstance(wait_ms, bool)
            or not isinstance(wait_ms, int | float)
            or not wait_ms < math.inf
        ):
            raise ConfigurationError(
                f"on_error handler {policy!r} returned {wait_ms!r}, not a wait in ms"
            ) from exc
    if wait_ms <= 0:
        return None
    return [Decision(False, wait_ms, 0.0, wait_ms)] * len(charged)


def _headers(charged: list[Charged], decisions: list[Decision]) -> dict[str, str]:
    styles = {one.throttle.rate_limit_headers for one in charged} - {None}
    if not styles:
        return {}
    style: HeaderStyle = "all" if len(styles) > 1 else styles.pop()  # type: ignore[assignment]
    limits = [
        (one.throttle.uid, one.charge.rate, decision)
        for one, decision in zip(charged, decisions, strict=True)
        if one.throttle.rate_limit_headers
    ]
    return limit_headers(style, limits)


async def _throttled(
    connection: Any,
    throttle: Throttle,
    store: Store,
    wait_ms: float,
    context: Context | None,
    charged: list[Charged],
    decisions: list[Decision],
    earlier: dict[str, str],
) -> None:
    wait_ms = max(wait_ms, throttle.min_wait_period)
    connection.scope[THROTTLED_FLAG] = True
    headers = dict(throttle.headers)
    # The rejected hit charged none of the parts: one that would have admitted it
    # reported what would remain *after* it, so its cost is still there. A part that
    # rejected it reports as its reset the wait the client is told — Retry-After, with
    # min_wait_period — where its own reset may be sooner (a sliding window's boundary)
    # or later (a bucket's time to fill): the ratelimit-headers draft asks that the
    # reset of a response with Retry-After name the same instant.
    shown = [
        decision._replace(remaining=decision.remaining + one.charge.cost)
        if decision.allowed
        else decision._replace(reset_ms=wait_ms)
        for one, decision in zip(charged, decisions, strict=True)
    ]
    own = _headers(charged, shown)
    if earlier:
        # Listed too; the classic fields keep naming a limit that rejected.
        own = dict(merge_fields(list(own.items()), earlier, rejected=True))
    headers.update(own)
    details: dict[str, Any] = dict(context or {})
    details["headers"] = headers
    details["decisions"] = decisions
    handler = throttle._handler(store)
    if handler is not None:
        await maybe_await(handler(connection, wait_ms, throttle, details))
    else:
        await throttle.default_throttled(connection, wait_ms, details)
