"""``HTTPThrottle`` and ``WebSocketThrottle``: a rate applied to connections.

A throttle turns a connection into a *charge* — the key (store namespace, throttle
``uid`` and the client's identifier), the rate, the cost — and asks its strategy
for a decision. Several throttles on one endpoint (``@throttled(a, b)``, a
``ThrottleGroup``, the middleware) are charged by **one** composed script per store
(``strategies.composition.hit_all``): when one rejects, none is charged.

Apply a throttle with ``Depends(throttle)`` (it returns the connection), with
``@throttled(...)``, with ``await throttle(connection)`` or through
``ThrottleMiddleware``. When a hit is rejected the throttled handler runs: by default
``ConnectionThrottled`` (HTTP 429) for HTTP, a JSON message for a WebSocket.
When the store fails, the failure policy (``on_error``) decides.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Final
from urllib.parse import quote

from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketState

from ratescript.asgi.enforce import (
    THROTTLED_FLAG,
    Charged,
    act,
    check_circuit,
    enforce,
    on_failure,
)
from ratescript.asgi.headers import (
    HeaderStyle,
    check_static_headers,
    check_style,
    one_limit_headers,
    put_headers,
)
from ratescript.asgi.identifiers import ANONYMOUS, EXEMPTED, Identifier, default_identifier
from ratescript.asgi.types import (
    Context,
    CostFunc,
    ErrorHandler,
    ExceptionInfo,
    OnError,
    RateFunc,
    ThrottledHandler,
    maybe_await,
)
from ratescript.decision import Decision
from ratescript.exceptions import ConfigurationError, ConnectionThrottled
from ratescript.rates import Rate
from ratescript.scriptdsl.script import Script
from ratescript.stores.base import Store, current_store, default_store
from ratescript.stores.memory import CheckRunner
from ratescript.strategies.base import Strategy, StrategyStat
from ratescript.strategies.composition import Charge
from ratescript.strategies.fixed_window import FixedWindowStrategy

__all__ = [
    "CostFunc",
    "ErrorHandler",
    "ExceptionInfo",
    "HTTPThrottle",
    "OnError",
    "RateFunc",
    "Throttle",
    "ThrottleGroup",
    "ThrottledHandler",
    "WebSocketThrottle",
    "is_throttled",
]

_POLICIES = ("allow", "throttle", "raise")
#: Rate-limit headers to send, by name.
Headers = dict[str, str]
_IDS_CACHE: Final = "ratescript.identifiers"
#: Where ``ThrottleMiddleware(store=...)`` leaves its store in the scope.
MIDDLEWARE_STORE: Final = "ratescript.store"
# Identifier characters kept as they are in keys; anything else is percent-encoded,
# so no identifier can forge a ':' separator, a Cluster {hash tag} or whitespace.
_SAFE = "-._~!$&'()*+,;=@/[]"
_UNSAFE = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=@/\[\]]")


def _safe(text: str) -> str:
    # surrogatepass: an identity may hold lone surrogates (bytes decoded with
    # surrogateescape); their bytes are no valid UTF-8, so no other text spells them.
    return quote(text, safe=_SAFE, errors="surrogatepass") if _UNSAFE.search(text) else text


def is_throttled(connection: HTTPConnection) -> bool:
    """Whether the last check of ``connection`` (e.g. this WebSocket message) was rejected."""
    return bool(connection.scope.get(THROTTLED_FLAG, False))


def _peer(scope: Mapping[str, Any]) -> str:
    """What ``default_identifier`` returns, read straight from the scope (no coroutine)."""
    client = scope.get("client")
    return client[0] if client and client[0] else ANONYMOUS


def _dependency_signature(connection_type: type[Any], headers: bool) -> inspect.Signature:
    """What FastAPI sees of ``Depends(throttle)``: the connection, and the response when
    rate-limit headers go on every response (FastAPI merges its headers into the reply).
    """
    parameters = [
        inspect.Parameter(
            "connection", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=connection_type
        )
    ]
    if headers:
        parameters.append(
            inspect.Parameter("response", inspect.Parameter.KEYWORD_ONLY, annotation=Response)
        )
    return inspect.Signature(parameters)


class _Stat:
    """``throttle.stat``: callable directly and as ``Depends(throttle.stat)``."""

    def __init__(self, throttle: Throttle) -> None:
        self._throttle = throttle
        connection = inspect.Parameter(
            "connection", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=HTTPConnection
        )
        self.__signature__ = inspect.Signature([connection])

    async def __call__(
        self, connection: HTTPConnection, context: Context | None = None
    ) -> StrategyStat[Any]:
        """Where ``connection`` stands with this throttle; never consumes quota.

        Like ``check``, it reports what the store says: a store failure raises its
        ``StoreError`` whatever the throttle's ``on_error``.
        """
        return await self._throttle._stat(connection, context)


class Throttle:
    """A rate applied to connections; see ``HTTPThrottle`` and ``WebSocketThrottle``.

    Args:
        uid: names the limit; part of every key, so two throttles never share state.
        rate: a ``Rate``, a rate string, or ``(connection, context) -> rate``.
        identifier: ``connection -> str | EXEMPTED``; default the peer address.
        handle_throttled: ``(connection, wait_ms, throttle, context)``, run when a hit
            is rejected (default: 429 / a JSON message).
        strategy: default ``FixedWindowStrategy()``.
        store: where state lives; default the store of the app's lifespan.
        cost: each hit's cost, or ``(connection, context) -> cost``; 0 never throttles.
        dynamic_store: take the store per request from ``async with store(app):``.
        min_wait_period: the least wait, in ms, a rejected hit is told.
        headers: static headers added to throttled responses (names and values
            strings HTTP can carry: checked here, not on the first 429).
        on_error: failure policy when the store fails (default: the store's, else
            ``"throttle"``).
        cache_ids: keep a custom identifier's result for the connection's lifetime
            (a WebSocket checks every message, the identifier runs once).
        rate_limit_headers: ``"ietf"``, ``"classic"`` or ``"all"`` to send rate-limit
            headers on every response this throttle checks, not only on 429s.
    """

    #: The connection type this throttle applies to.
    connection_type: ClassVar[type[Any]] = HTTPConnection

    def __init__(
        self,
        uid: str,
        rate: Rate | str | RateFunc,
        *,
        identifier: Identifier | None = None,
        handle_throttled: ThrottledHandler | None = None,
        strategy: Strategy[Any] | None = None,
        store: Store | None = None,
        cost: float | CostFunc = 1,
        dynamic_store: bool = False,
        min_wait_period: float | None = None,
        headers: Mapping[str, str] | None = None,
        on_error: OnError | None = None,
        cache_ids: bool = True,
        rate_limit_headers: HeaderStyle | None = None,
    ) -> None:
        if not isinstance(uid, str) or not uid:
            raise ConfigurationError(f"a throttle uid must be a non-empty string, got {uid!r}")
        self.uid = uid
        self._rate: Rate | None = None
        self._rate_func: RateFunc | None = None
        if isinstance(rate, Rate | str):
            self._rate = Rate.from_value(rate)
        elif callable(rate):
            self._rate_func = rate
        else:
            raise ConfigurationError(f"rate must be a Rate, a string or a function, got {rate!r}")
        # Every function may be sync or async (see `types.maybe_await`), but it must be
        # a function: a wrong setting fails here, not on every request.
        if identifier is not None and not callable(identifier):
            raise ConfigurationError(
                f"identifier must be a function of the connection, got {identifier!r}"
            )
        self.identifier: Identifier = identifier or default_identifier
        if handle_throttled is not None and not callable(handle_throttled):
            raise ConfigurationError(
                f"handle_throttled must be a function, got {handle_throttled!r}"
            )
        self.handle_throttled = handle_throttled
        self.strategy: Strategy[Any] = strategy if strategy is not None else FixedWindowStrategy()
        if not isinstance(self.strategy, Strategy):
            # A plain `async (key, rate, store, cost) -> wait_ms` (Traffik's custom
            # strategy) cannot run atomically on Redis or Memcached, nor be grouped:
            # say where the supported way is rather than only what was wrong.
            raise ConfigurationError(
                f"strategy must be a ratescript Strategy, got {strategy!r}; a custom "
                "strategy is a DSL script in a Strategy subclass (README: 'Writing your "
                "own strategy in the DSL'), not an async callable"
            )
        if store is not None and not isinstance(store, Store):
            raise ConfigurationError(f"store must be a ratescript Store, got {store!r}")
        self.store = store
        self._cost: float | None = None
        self._cost_func: CostFunc | None = None
        if callable(cost):
            self._cost_func = cost
        else:
            self._cost = _check_cost(cost)
        self.dynamic_store = bool(dynamic_store)
        if min_wait_period is not None and _finite_ms(min_wait_period) is None:
            raise ConfigurationError(
                f"min_wait_period must be a number of ms >= 0, got {min_wait_period!r}"
            )
        self.min_wait_period = float(min_wait_period or 0.0)
        self.headers: dict[str, str] = check_static_headers(headers)
        if on_error is not None and on_error not in _POLICIES and not callable(on_error):
            raise ConfigurationError(
                f'on_error must be "allow", "throttle", "raise" or a handler, got {on_error!r}'
            )
        self.on_error = on_error
        self.cache_ids = cache_ids and identifier is not None
        self.rate_limit_headers = check_style(rate_limit_headers)
        self._key_suffix = ":" + _safe(uid)
        self._keys: dict[str, str] = {}
        self.stat = _Stat(self)
        self.__signature__ = _dependency_signature(
            self.connection_type, bool(self.rate_limit_headers)
        )
        # The common case prepared once — a fixed, limited rate and cost, the peer
        # address as identity, a strategy with one key and the usual hit — so a request
        # runs the script without re-deriving its arguments.
        self._prepared: tuple[Script, tuple[float, ...]] | None = None
        kind = type(self.strategy)
        if (
            self._rate is not None
            and not self._rate.unlimited
            and self._cost  # 0 looks only: the general path runs the read-only twin
            and identifier is None
            and not self.dynamic_store
            and kind.hit is Strategy.hit
            and kind.keys is Strategy.keys
        ):
            arguments = tuple(self.strategy.arguments(self._rate, self._cost, None))
            script = self.strategy.script
            if script.key_count == 1 and len(arguments) == script.param_count:
                self._prepared = (script, arguments)  # what `Store.run_one` may take as is
        # The last store's fused runner of the prepared script (`_runner_for`).
        self._runner: tuple[Store | None, CheckRunner | None] = (None, None)
        # A fixed rate's headers, all but where the client stands computed once.
        self._limit_headers: Callable[[Decision], dict[str, str]] | None = None
        if self._rate is not None and self.rate_limit_headers is not None:
            self._limit_headers = one_limit_headers(self.rate_limit_headers, uid, self._rate)

    def __repr__(self) -> str:
        rate = self._rate if self._rate is not None else "<per connection>"
        return f"{type(self).__name__}(uid={self.uid!r}, rate={rate!s})"

    # --- applying it -------------------------------------------------------------------

    async def __call__(
        self,
        connection: Any,
        cost: float | None = None,
        context: Context | None = None,
        *,
        response: Response | None = None,
    ) -> Any:
        """Charge a hit; when rejected, run the throttled handler. Returns ``connection``.

        ``response`` (injected by ``Depends``) receives the rate-limit headers.
        """
        if self._prepared is not None and cost is None and context is None:
            done = self._fast(connection, response)
            if not isinstance(done, dict):
                await done
        else:
            await enforce((self,), connection, cost, context, response)
        return connection

    def _fast(self, connection: Any, response: Response | None) -> Headers | Awaitable[Headers]:
        """The common case, flat: the peer's key and the prepared script and arguments.

        Returns the rate-limit headers to send, like ``enforce``; or, for a rejection, a
        failure or a store that waits, the awaitable that finishes the hit and returns
        them. A hit the in-process store admits thus runs no coroutine of its own.
        """
        prepared = self._prepared
        assert prepared is not None
        scope = connection.scope
        client = scope.get("client")  # `_peer`, inline
        identity = client[0] if client and client[0] else ANONYMOUS
        key = self._keys.get(identity) or self.key_for(identity)
        store = self.store
        if store is None:  # (not `or`: an empty InMemoryStore is falsy)
            store = self.store_for(connection)
        runner = self._runner
        if runner[0] is not store:
            runner = self._runner_for(store)
        breaker = getattr(self.on_error or store.on_error, "breaker", None)  # `breaker_of`
        try:
            if breaker is not None:
                check_circuit(breaker, store)
            if runner[1] is None:
                return self._fast_waiting(connection, response, store, key, breaker)
            decision = runner[1](key, prepared[1])
            if breaker is not None:
                breaker.record_success()
        except Exception as exc:
            return self._failed(exc, connection, store, key, response)
        if decision is None:  # admitted, and no rate-limit headers to send
            if THROTTLED_FLAG in scope:
                scope[THROTTLED_FLAG] = False
            return {}
        return self._decided(connection, response, store, key, decision)

    async def _fast_waiting(
        self, connection: Any, response: Response | None, store: Store, key: str, breaker: Any
    ) -> Headers:
        """``_fast`` on a store whose runs wait (Redis, Memcached), the circuit checked."""
        prepared = self._prepared
        assert prepared is not None
        try:
            decision = await store.run(prepared[0], (key,), prepared[1])
            if breaker is not None:
                breaker.record_success()
        except Exception as exc:
            return await self._failed(exc, connection, store, key, response)
        done = self._decided(connection, response, store, key, decision)
        return done if isinstance(done, dict) else await done

    def _decided(
        self, connection: Any, response: Response | None, store: Store, key: str, decision: Decision
    ) -> Headers | Awaitable[Headers]:
        """What ``act`` does with one throttle's decision, without its loop when admitted."""
        if decision.allowed:
            scope = connection.scope
            if THROTTLED_FLAG in scope:
                scope[THROTTLED_FLAG] = False
            if self._limit_headers is None:
                return {}
            headers = self._limit_headers(decision)
            if response is not None:
                put_headers(response, headers)
            return headers
        return act(
            connection, [(store, [self._prepared_charge(store, key)], [decision])], None, response
        )

    async def _failed(
        self, exc: Exception, connection: Any, store: Store, key: str, response: Response | None
    ) -> Headers:
        """The store failed the prepared hit: its failure policy decides."""
        charged = self._prepared_charge(store, key)
        outcome = await on_failure(exc, connection, store, [charged])
        return await act(connection, [(store, [charged], outcome)], None, response)

    hit = __call__

    def _runner_for(self, store: Store) -> tuple[Store, CheckRunner | None]:
        """``store``'s fused runner of the prepared script (``None`` when its runs wait),
        kept for the next hit: a runner is valid for its store's life. Without
        rate-limit headers to send, one that builds no decision when admitting."""
        assert self._prepared is not None
        runner: CheckRunner | None = None
        if store.immediate:
            script = self._prepared[0]
            if self._limit_headers is None:
                runner = store.check_runner(script)
            else:
                runner = store.runners(script)[0]
        self._runner = (store, runner)
        return self._runner

    def _prepared_charge(self, store: Store, key: str) -> Charged:
        assert self._rate is not None and self._cost is not None
        return Charged(self, store, Charge(self.strategy, self._rate, key, self._cost, None))

    async def check(
        self, connection: HTTPConnection, cost: float | None = None, context: Context | None = None
    ) -> Decision | None:
        """Charge a hit and return the decision, running no handler; ``None`` if exempt.

        Nor does it apply ``on_error``: a policy decides what a request gets, and
        ``check`` answers what the store decided — when the store fails, its
        ``StoreError`` is raised for the caller to handle.
        """
        charged = await self._charged(connection, cost, context)
        if charged is None:
            return None
        return await charged.throttle.strategy.hit(
            charged.charge.key, charged.charge.rate, charged.store, charged.charge.cost, context
        )

    async def _stat(self, connection: HTTPConnection, context: Context | None) -> StrategyStat[Any]:
        store = self.store_for(connection)
        identity = await self._identify(connection)
        if identity is EXEMPTED:  # never limited: reported as an unlimited rate
            return await self.strategy.stat(self.key_for(""), Rate(0), store, context)
        rate = await self.rate_for(connection, context)
        return await self.strategy.stat(self.key_for(str(identity)), rate, store, context)

    # --- resolving a connection -----------------------------------------------------------

    def key_for(self, identity: str) -> str:
        """The strategy key of a client: ``{identity}:uid``, safe whatever ``identity`` is.

        The identity is the Redis Cluster hash tag, so every throttle of one client
        lands in one slot and several can be charged by one script.
        """
        key = self._keys.get(identity)
        if key is None:
            if len(self._keys) >= 4096:
                self._keys.clear()
            key = self._keys[identity] = "{" + _safe(identity) + "}" + self._key_suffix
        return key

    async def rate_for(self, connection: HTTPConnection, context: Context | None) -> Rate:
        """This connection's rate."""
        if self._rate is not None:
            return self._rate
        assert self._rate_func is not None
        rate = await maybe_await(self._rate_func(connection, context))
        return Rate.from_value(rate)

    def store_for(self, connection: HTTPConnection) -> Store:
        """The store this connection's hits go to.

        In order: the store set for this request (``dynamic_store=True``), the
        throttle's own, the ``ThrottleMiddleware``'s, the app's lifespan store, the
        store entered for this task with ``async with store(...)``, the store last
        entered with ``async with store:``.  The task's store comes before the process
        default because it is the narrower choice, and it is how a test that enters
        ``async with store():`` around an app whose lifespan never runs (httpx's
        ``ASGITransport`` runs none) gives throttles that name no store their store.
        """
        if self.dynamic_store:
            found = current_store()
            if found is not None:
                return found
        if self.store is not None:
            return self.store
        scope = connection.scope
        found = scope.get(MIDDLEWARE_STORE)
        if found is not None:
            return found  # type: ignore[no-any-return]
        app = scope.get("app")
        found = getattr(getattr(app, "state", None), "ratescript_store", None)
        if found is None:
            found = current_store()
        if found is None:
            found = default_store()
        if found is None:
            raise ConfigurationError(
                f"throttle {self.uid!r} has no store: pass store=, run the app with "
                "lifespan=store.lifespan, or enter `async with store:`"
            )
        return found

    async def _identify(self, connection: HTTPConnection) -> Any:
        if self.identifier is default_identifier:  # the peer address, without a coroutine
            return _peer(connection.scope)
        if not self.cache_ids:
            return await maybe_await(self.identifier(connection))
        cache = connection.scope.setdefault(_IDS_CACHE, {})
        identity = cache.get(self.identifier, cache)
        if identity is cache:
            identity = cache[self.identifier] = await maybe_await(self.identifier(connection))
        return identity

    async def _charged(
        self, connection: HTTPConnection, cost: float | None, context: Context | None
    ) -> Charged | None:
        """This throttle's charge for a hit, or ``None`` when it does not apply."""
        identity = await self._identify(connection)
        if identity is EXEMPTED:
            return None
        rate = self._rate if self._rate is not None else await self.rate_for(connection, context)
        if rate.unlimited:
            return None
        if cost is None:
            cost = self._cost
            if cost is None:
                assert self._cost_func is not None
                cost = _check_cost(await maybe_await(self._cost_func(connection, context)))
        else:
            cost = _check_cost(cost)
        if not isinstance(identity, str):
            if identity is None:
                raise ConfigurationError(
                    f"the identifier of throttle {self.uid!r} returned None: return a string "
                    "naming the client, or EXEMPTED"
                )
            identity = str(identity)
        charge = Charge(self.strategy, rate, self.key_for(identity), cost, context)
        return Charged(self, self.store_for(connection), charge)

    # --- outcomes ------------------------------------------------------------------------

    async def default_throttled(
        self, connection: Any, wait_ms: float, context: dict[str, Any]
    ) -> Any:
        """What a rejected hit does when no handler is set."""
        raise NotImplementedError

    def _handler(self, store: Store) -> ThrottledHandler | None:
        return self.handle_throttled or store.handle_throttled

    def _policy(self, store: Store) -> OnError:
        return self.on_error or store.on_error or "throttle"


def _check_cost(cost: Any) -> float:
    if _finite_ms(cost) is None:
        raise ConfigurationError(f"a cost must be a finite number >= 0, got {cost!r}")
    return float(cost)


def _finite_ms(value: Any) -> float | None:
    """``value`` as a double if it is a finite number >= 0, else ``None``.

    An int past a double's range passes ``< math.inf`` (Python compares it exactly)
    and then fails ``float()`` with a bare ``OverflowError``: refused here instead.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if number < math.inf else None


class HTTPThrottle(Throttle):
    """A throttle for HTTP requests: a rejected hit raises ``ConnectionThrottled`` (429)."""

    connection_type = HTTPConnection

    async def default_throttled(
        self, connection: Any, wait_ms: float, context: dict[str, Any]
    ) -> Any:
        raise ConnectionThrottled(wait_ms, context.get("detail"), headers=context["headers"])


class WebSocketThrottle(Throttle):
    """A throttle for WebSockets, per connection or per message.

    A rejected hit on an accepted socket sends
    ``{"type": "rate_limit", "retry_after_ms": ..., "detail": ...}`` and keeps the
    connection open (``is_throttled(websocket)`` is true for that message); before
    ``accept()`` it refuses the handshake with close code 1008 (policy violation).
    """

    connection_type = WebSocket

    async def default_throttled(
        self, connection: Any, wait_ms: float, context: dict[str, Any]
    ) -> Any:
        detail = context.get("detail") or "rate limit exceeded"
        if connection.application_state != WebSocketState.CONNECTED:
            raise WebSocketException(code=1008, reason=detail)
        await connection.send_json(
            {"type": "rate_limit", "retry_after_ms": wait_ms, "detail": detail}
        )


class ThrottleGroup:
    """Several throttles checked together: all admit and are charged, or none is.

    ``Depends(ThrottleGroup(burst, sustained))``; ``@throttled(burst, sustained)``
    and the middleware build one. Throttles on one store are charged by one
    composed script (one round trip on Redis); groups spanning stores are atomic
    per store.
    """

    def __init__(self, *throttles: Throttle) -> None:
        if not throttles:
            raise ConfigurationError("a throttle group needs at least one throttle")
        for throttle in throttles:
            if not isinstance(throttle, Throttle):
                raise ConfigurationError(f"not a throttle: {throttle!r}")
        self.throttles = throttles
        self.__signature__ = _dependency_signature(
            HTTPConnection, any(throttle.rate_limit_headers for throttle in throttles)
        )

    async def __call__(
        self,
        connection: Any,
        cost: float | None = None,
        context: Context | None = None,
        *,
        response: Response | None = None,
    ) -> Any:
        """Charge every throttle atomically; returns ``connection``."""
        await enforce(self.throttles, connection, cost, context, response)
        return connection
