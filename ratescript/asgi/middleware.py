"""``ThrottleMiddleware``: throttles applied to every matching HTTP request.

Pure ASGI (no ``BaseHTTPMiddleware``): the throttles that match a request — by
method, then path, then predicate, cheapest test first — are charged together,
atomically, before the app runs; a rejected request gets the 429 here, and the
rate-limit headers of an admitted one are added to the app's response. Other scope
types (WebSocket, lifespan) pass through unthrottled. ``store=`` serves every throttle
without a store of its own on HTTP and WebSocket requests — the rules' and the
endpoints' alike, whether a rule matched the request or not.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Sequence

from starlette import routing
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ratescript.asgi.enforce import enforce
from ratescript.asgi.headers import merge_raw
from ratescript.asgi.throttles import MIDDLEWARE_STORE, Throttle
from ratescript.asgi.types import maybe_await
from ratescript.exceptions import ConfigurationError
from ratescript.stores.base import Store

__all__ = ["MiddlewareThrottle", "ThrottleMiddleware"]


def _scope_path(scope: Scope) -> str:
    return str(scope["path"])


#: The path Starlette's router matches routes against: since Starlette 0.35 the scope's
#: ``path`` keeps the ``root_path`` (a Mount's prefix, ``--root-path``) and the router
#: strips it with ``get_route_path``; before, ``path`` was already stripped.
_route_path: Callable[[Scope], str] = getattr(routing, "get_route_path", _scope_path)

#: ``connection -> bool`` (or an awaitable of it).
Predicate = Callable[[HTTPConnection], bool | Awaitable[bool]]


class MiddlewareThrottle:
    """A throttle and the requests it applies to.

    Args:
        throttle: an ``HTTPThrottle``.
        path: a regular expression (string or compiled) matched at the start of the
            route path — the path the app routes on, without its ``root_path`` (a
            Mount's prefix, ``--root-path``): ``"/api/"`` covers ``/api/...``; ``None``
            matches every path.
        methods: HTTP methods it applies to (any case); ``None`` for all. ``GET``
            covers ``HEAD`` too, as it does on Starlette's routes.
        predicate: ``(connection) -> bool``, sync or async, tested last (it is the
            dearest).
    """

    def __init__(
        self,
        throttle: Throttle,
        path: str | re.Pattern[str] | None = None,
        methods: Collection[str] | None = None,
        predicate: Predicate | None = None,
    ) -> None:
        if not isinstance(throttle, Throttle):
            raise ConfigurationError(f"MiddlewareThrottle needs a throttle, got {throttle!r}")
        self.throttle = throttle
        try:
            self.path = re.compile(path) if isinstance(path, str) else path
        except re.error as exc:
            raise ConfigurationError(f"invalid path pattern {path!r}: {exc}") from exc
        if isinstance(methods, str):
            methods = {methods}
        self.methods = frozenset(m.upper() for m in methods) if methods is not None else None
        if self.methods is not None and "GET" in self.methods:
            # Starlette's routes answer HEAD with their GET endpoint: a GET limit that let
            # HEAD through would let a client run the endpoint without limit.
            self.methods |= {"HEAD"}
        if predicate is not None and not callable(predicate):
            raise ConfigurationError(f"predicate must be a function, got {predicate!r}")
        self.predicate = predicate

    async def applies(self, connection: HTTPConnection, method: str, path: str) -> bool:
        """Whether this request is subject to the throttle: method, path, predicate."""
        if self.methods is not None and method not in self.methods:
            return False
        if self.path is not None and self.path.match(path) is None:
            return False
        return self.predicate is None or bool(await maybe_await(self.predicate(connection)))


class ThrottleMiddleware:
    """Apply ``middleware_throttles`` to HTTP requests; ``store`` serves throttles without one."""

    def __init__(
        self,
        app: ASGIApp,
        middleware_throttles: Sequence[MiddlewareThrottle],
        store: Store | None = None,
    ) -> None:
        self.app = app
        self.middleware_throttles = tuple(middleware_throttles)
        for rule in self.middleware_throttles:
            if not isinstance(rule, MiddlewareThrottle):
                raise ConfigurationError(f"expected MiddlewareThrottle, got {rule!r}")
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.store is not None and scope["type"] in ("http", "websocket"):
            # Every request's throttles without a store use it, whether a rule matched or not.
            scope[MIDDLEWARE_STORE] = self.store
        if scope["type"] != "http" or not self.middleware_throttles:
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope, receive)
        # The path the app routes on: without the root_path of `--root-path` or of the
        # Mount the app sits under (scope["path"] includes it), so a rule's "/items"
        # matches where the app's own route "/items" does.
        method, path = scope["method"], _route_path(scope)
        throttles = [
            rule.throttle
            for rule in self.middleware_throttles
            if await rule.applies(connection, method, path)
        ]
        if not throttles:
            await self.app(scope, receive, send)
            return
        try:
            headers = await enforce(throttles, connection, None, None, None)
        except HTTPException as exc:
            response = JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
            await response(scope, receive, send)
            return
        if not headers:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Merged with any the app set (a route's own throttle, say), as one
                # check of every limit would report them.
                fields = list(message.get("headers", ()))
                merge_raw(fields, headers, rejected=message["status"] == 429)
                message = {**message, "headers": fields}
            await send(message)

        await self.app(scope, receive, send_with_headers)
