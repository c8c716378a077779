"""``RedisStore``: scripts run as Lua inside Redis, one ``EVALSHA`` per decision.

Why Lua: Redis runs a script alone, so the read, the decision and the write of a
strategy happen atomically in one round trip, with no lock. Each script's SHA is
computed at compile time; the store sends ``EVALSHA`` and, only when the server
answers ``NOSCRIPT`` (a ``SCRIPT FLUSH``, a restart, a failover), sends the source
once with ``EVAL``, which both runs it and caches it again.

The hits one process sends to the same keys while one is at the server go together
when it is back (``grouping.Groups``): one ``EVALSHA`` of the script's group form
(``Script.lua_batch_source``: the same Lua run once per hit, in arrival order, each
with its own reply), at most ``_GROUP_MOST`` hits a call. Redis runs hits on one key
one after another anyway; a burst on a hot key then costs a few round trips and
replies instead of one each (measured: ``benchmarks/peers``, contention).

Works unchanged with ``redis.asyncio.cluster.RedisCluster``: a script runs on the
node that owns its keys' slot. The keys of one script must then share a hash tag
(``one_slot_per_script``); keys of several slots are refused with
``ConfigurationError`` before anything is sent, never taken for a store failure.

Every network call has a deadline (``timeout``), kept by one timer for all calls
(``_Deadline``), and every error of redis-py is translated at this boundary, in
``_translation``, into the exceptions of ``ratescript.exceptions``.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import functools
import hashlib
import inspect
import math
import re
import secrets
import sys
from asyncio import get_running_loop
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Sequence,
)
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection, ConnectionPool, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ratescript.config import resolve_lock_options
from ratescript.decision import Decision
from ratescript.exceptions import (
    ConfigurationError,
    LockTimeoutError,
    StoreConnectionError,
    StoreError,
)
from ratescript.scriptdsl.script import LUA_SCRIPT_ERROR, Script
from ratescript.stores.base import Clock, Store, Value, check_ttl_ms
from ratescript.stores.grouping import Groups, Outcome

if TYPE_CHECKING:
    from ratescript.asgi.types import OnError, ThrottledHandler

__all__ = ["RedisStore"]

T = TypeVar("T")
RedisClient = Redis | RedisCluster
ClientFactory = Callable[[], RedisClient]

_URL_EXAMPLES = (
    "redis://localhost:6379/0, rediss://user:password@host:6380/0 or unix:///run/redis.sock"
)
# Errors meaning "the server could not be reached or did not answer in time".
_UNREACHABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    asyncio.TimeoutError,
    ClusterDownError,
    SlotNotCoveredError,
)
# Every error of redis-py that the store translates (see ``_translation``); a key a given
# client cannot encode too.
_TRANSLATED = (*_UNREACHABLE, RedisError, RedisClusterException, UnicodeEncodeError)
_MAX_CONNECTIONS = 100
# The pool itself never refuses a connection: the store's own slots bound them.
_POOL_UNBOUNDED = 2**31 - 1
# The most queued hits one EVALSHA runs: Redis serves nobody else meanwhile.
_GROUP_MOST = 100
_SCAN_COUNT = 1000
_UNLINK_BATCH = 500
_LOCK_POLL_FIRST_S = 0.001
_LOCK_POLL_MAX_S = 0.05


class _Lua(NamedTuple):
    source: str
    sha: str


def _lua(source: str) -> _Lua:
    return _Lua(source, hashlib.sha1(source.encode()).hexdigest())


# INCRBY, and a TTL only on the key it creates, atomically.
_INCREMENT_WITH_TTL = _lua(
    "local created = redis.call('EXISTS', KEYS[1]) == 0\n"
    "local value = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
    "if created then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n"
    "return value\n"
)
# Release a lock only if it still holds our token (it may have expired and been retaken).
_RELEASE_LOCK = _lua(
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n"
)


class _Deadline:
    """``with deadline:`` bounds an await in time like ``asyncio.timeout``, with one timer
    for every call.

    ``asyncio.timeout`` costs a ``Timeout``, a ``TimerHandle`` and a heap push and cancel
    per call: about half of the store's own client-side work. Here a call costs two dict
    operations. Every call gets the same number of seconds, so calls start in deadline
    order: the timer only waits for the oldest pending call, and when it fires it cancels
    the calls that are late and waits again for the oldest left. A late call ends in
    ``asyncio.TimeoutError``, exactly as under ``asyncio.timeout`` (and a cancellation
    from elsewhere still ends in ``CancelledError``). A task runs one call at a time.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        # task -> (deadline, its cancellation count at the start), oldest first.
        self._pending: dict[asyncio.Task[Any], tuple[float, int]] = {}
        self._late: dict[asyncio.Task[Any], int] = {}  # cancelled by us; same counts
        self._timer: asyncio.TimerHandle | None = None

    def __enter__(self) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None or task in self._pending:
            raise RuntimeError("a store call must run in a task, one at a time")
        if loop is not self._loop:
            self._restart(loop)
        deadline = loop.time() + self.seconds
        self._pending[task] = (deadline, _cancelling(task))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        task = asyncio.current_task()
        if task is None or self._pending.pop(task, None) is not None:
            return  # in time
        cancelling = self._late.pop(task, None)
        if cancelling is None:
            return  # the loop changed under the call
        if sys.version_info >= (3, 11) and task.uncancel() > cancelling:
            return  # cancelled from elsewhere too: that cancellation wins
        if exc_type is asyncio.CancelledError:
            raise asyncio.TimeoutError from exc
        # Late but finished anyway (or failed otherwise): that outcome stands.

    def _expire(self) -> None:
        self._timer = None
        assert self._loop is not None
        now = self._loop.time()
        pending = self._pending
        while pending:
            task = next(iter(pending))
            deadline, cancelling = pending[task]
            if deadline > now:
                self._timer = self._loop.call_at(deadline, self._expire)
                return
            del pending[task]
            self._late[task] = cancelling
            task.cancel()

    def _restart(self, loop: asyncio.AbstractEventLoop) -> None:
        """Forget the calls of a previous event loop: they can never resume."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()
        self._late.clear()
        self._loop = loop


def _cancelling(task: asyncio.Task[Any]) -> int:
    if sys.version_info >= (3, 11):
        return task.cancelling()
    return 0  # Python 3.10 does not count cancellations


def _check_timeout(timeout: object) -> float:
    """``timeout`` as positive finite seconds (an int past a double's range too)."""
    try:
        seconds = float(timeout) if isinstance(timeout, int | float) else math.nan
    except OverflowError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return seconds


def _redacted(url: str) -> str:
    """``url`` with its password hidden, for error messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()
    except ValueError:
        return "<unparsable URL>"


def _check_url(url: str) -> dict[str, Any]:
    """redis-py's reading of ``url``: host, port, database, credentials and the query's
    options; ``ConfigurationError`` when it is malformed."""
    problem = ""
    options: dict[str, Any] = {}
    try:
        options = dict(parse_url(url))  # redis-py's own parser: scheme, port, query options
        parts = urlsplit(url)
        if parts.scheme == "unix" and not parts.path:
            problem = "a unix:// URL needs a socket path"
        elif parts.scheme != "unix" and parts.port == 0:
            # redis-py reads port 0 as no port at all and connects to 6379.
            problem = "port 0 is not a server's port (leave the port out for 6379)"
        elif (
            parts.scheme != "unix" and parts.path.strip("/") and not parts.path.strip("/").isdigit()
        ):
            problem = f"the database {parts.path.strip('/')!r} is not a number"
    except ValueError as exc:
        problem = str(exc)
    if problem:
        raise ConfigurationError(
            f"invalid Redis URL {_redacted(url)!r}: {problem}; expected e.g. {_URL_EXAMPLES}"
        )
    return options


@functools.cache
def _option_names(connection_class: type) -> frozenset[str]:
    """The options ``Redis.from_url`` can use with ``connection_class``: its own, the
    pool's, and the connection's (every ``__init__`` up the class tree), as redis-py's
    signatures name them."""
    inits = [
        vars(cls)["__init__"] for cls in connection_class.__mro__[:-1] if "__init__" in vars(cls)
    ]
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(
        parameter.name
        for function in (Redis.from_url, ConnectionPool.__init__, *inits)
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind in named and parameter.name not in ("self", "url")
    )


def _client_options(url: str, keywords: dict[str, Any]) -> int:
    """Check the client options of a store built from ``url``; its ``max_connections``.

    redis-py's ``from_url`` lets the URL's query options win over keyword ones, and hands
    an option it does not know to the connection, which fails only when it connects (a
    ``TypeError`` on the first call). So both kinds are checked here, together, as
    redis-py will see them.
    """
    in_query = parse_qs(urlsplit(url).query)
    options = {**keywords, **_check_url(url)}

    def given(name: str) -> str:
        return f"in the URL {_redacted(url)!r}" if name in in_query else "given to RedisStore"

    connection_class = options.get("connection_class", Connection)
    if not isinstance(connection_class, type):
        raise ConfigurationError(f"connection_class must be a class, got {connection_class!r}")
    known = _option_names(connection_class)
    unknown = sorted(set(options) - known)
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigurationError(f"unknown Redis client option {name!r} {given(name)}{hint}")
    if options.get("decode_responses"):
        # A query value reaches redis-py as text, so even "false" would decode replies.
        raise ConfigurationError(
            f"RedisStore needs decode_responses=False, got {options['decode_responses']!r} "
            f"{given('decode_responses')}; leave the option out"
        )
    most = options.get("max_connections", _MAX_CONNECTIONS)
    if not (isinstance(most, int) and most > 0):
        raise ConfigurationError(
            f"max_connections must be a positive integer, got {most!r} {given('max_connections')}"
        )
    return most


@functools.cache
def _driver_options() -> dict[str, Any]:
    """Client identification computed once: redis-py otherwise reads its package
    metadata for every new connection, a third of the cost of a cold burst."""
    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # redis-py before 7.1 names the library per connection itself
        return {}
    from ratescript import __version__

    return {"driver_info": DriverInfo().add_upstream_driver("ratescript", __version__)}


def _describe(client: RedisClient) -> str:
    """Where a given client points, for error messages."""
    if isinstance(client, RedisCluster):
        return "Redis Cluster"
    options = client.connection_pool.connection_kwargs
    if options.get("path"):
        return f"unix://{options['path']}"
    host, port = options.get("host", "localhost"), options.get("port", 6379)
    return f"redis://{host}:{port}/{options.get('db', 0)}"


def _encode(value: Value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        raise TypeError("booleans are not store values")
    if isinstance(value, int):
        return b"%d" % value
    return b"%.17g" % value  # exact, like every other store


def _ttl_ms(ttl_ms: float) -> int:
    return max(1, math.ceil(check_ttl_ms(ttl_ms)))


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _check_one_slot(script: Script, keys: Sequence[str]) -> None:
    """Refuse a script whose keys lie in several Cluster slots, naming them.

    redis-py would refuse it too, as a ``RedisClusterException`` that reads like the
    cluster failing; a failure policy of "allow" would then admit every such hit.
    """
    if len({key_slot(key.encode()) for key in keys}) > 1:
        raise ConfigurationError(
            f"script `{script.name}` runs on keys of several Redis Cluster hash slots "
            f"({', '.join(map(repr, keys))}): on a cluster the keys of one script must "
            "share a hash tag, e.g. '{user-1}:minute' and '{user-1}:hour'"
        )


class RedisStore(Store):
    """A store on Redis or Valkey, standalone or Cluster.

    Args:
        url_or_client_or_factory: a ``redis://``, ``rediss://`` or ``unix://`` URL (the
            store builds and owns a pooled client); an existing ``redis.asyncio.Redis`` or
            ``RedisCluster`` (used as is, never closed by the store; it must not decode
            responses); or a zero-argument callable returning one, called at
            ``initialize()`` (the store owns and closes what it returns).
        namespace: prefix of every key; ``reset()`` clears only this namespace.
        clock: ``"client"`` (the default: this process's wall clock, sent with each
            call), ``"server"`` (Redis ``TIME``, one clock for every client), or a
            callable returning milliseconds (a fake clock in tests).
        timeout: seconds allowed for each network call; past it the call fails with
            ``StoreConnectionError``, so a dead server never hangs a request.
        client_options: ``redis.asyncio.Redis.from_url`` options, URL only. With
            ``max_connections`` (default 100) the store's calls use at most that many
            connections at once; a burst beyond it waits for a free one (within
            ``timeout``) instead of failing. Options in the URL's query
            (``?max_connections=20``) mean the same and win over these, as in redis-py;
            both are checked here: an option redis-py does not know, or
            ``decode_responses``, is a ``ConfigurationError``.
    """

    kind = "redis"

    def __init__(
        self,
        url_or_client_or_factory: str | RedisClient | ClientFactory,
        *,
        namespace: str = "ratescript",
        clock: Literal["client", "server"] | Clock = "client",
        timeout: float = 1.0,
        on_error: OnError | None = None,
        handle_throttled: ThrottledHandler | None = None,
        **client_options: Any,
    ) -> None:
        if clock not in ("client", "server") and not callable(clock):
            raise ConfigurationError(
                f'clock must be "client", "server" or a callable, got {clock!r}'
            )
        super().__init__(
            namespace=namespace,
            clock=clock if callable(clock) else None,
            on_error=on_error,
            handle_throttled=handle_throttled,
        )
        self._timeout = _check_timeout(timeout)
        self._server_clock = clock == "server"
        self._deadline = _Deadline(self._timeout)
        self._url: str | None = None
        self._factory: ClientFactory | None = None
        self._client: RedisClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop _client serves
        # Connection slots, for clients the store builds (a given client's pool is its own).
        self._slots: asyncio.Semaphore | None = None
        self._max_connections = 0
        self._groups = Groups(self._run_one, self._run_many, self._predecessor_failed, _GROUP_MOST)
        target = url_or_client_or_factory
        if isinstance(target, str):
            self._max_connections = _client_options(target, client_options)
            self._url = target
            self._where = _redacted(target)
            self._client_options: dict[str, Any] = {
                # The store's deadline bounds every call. redis-py's socket_timeout (5 s
                # by default) adds its own to every read and an asyncio.wait_for (a new
                # task) to every write: more than all the rest of the store's work.
                "socket_timeout": None,
                "socket_connect_timeout": self._timeout,
                # One immediate retry replaces a pooled connection a restart has broken;
                # the deadline bounds the whole call anyway.
                "retry": Retry(NoBackoff(), 1),
                # A key is any str, as on the other stores: one with a lone surrogate
                # (which UTF-8 cannot encode strictly) too, stored as its surrogatepass
                # bytes, which no other str encodes to. Replies are not decoded.
                "encoding_errors": "surrogatepass",
                **_driver_options(),
                **client_options,
            }
            return
        if client_options:
            raise ConfigurationError(
                f"client options {sorted(client_options)} apply only when RedisStore is given "
                "a URL; configure the client itself instead"
            )
        if isinstance(target, Redis | RedisCluster):
            self._client = self._checked(target)
            self._where = _describe(target)
        elif callable(target):
            self._factory = target
            self._where = "the factory's Redis client"
        else:
            raise ConfigurationError(
                "RedisStore takes a Redis URL, a redis.asyncio client or a factory of one, "
                f"got {target!r}; e.g. RedisStore('redis://localhost:6379/0')"
            )

    def __repr__(self) -> str:
        return f"<RedisStore {self._where} namespace={self.namespace!r}>"

    @property
    def client(self) -> RedisClient | None:
        """The redis-py client in use (``None`` before the store has connected).

        Calls made on it directly are not bounded by ``timeout``: a client the store
        built has no socket read timeout, since the store bounds its own calls.
        """
        return self._client

    # --- connections and errors ------------------------------------------------------

    def _checked(self, client: object) -> RedisClient:
        if inspect.iscoroutine(client):
            # An `async def` factory (Traffik's documented form): the store connects
            # from synchronous code, so it cannot await it. Close the coroutine so the
            # user sees this error, not a "never awaited" warning as well.
            client.close()
            raise ConfigurationError(
                "the RedisStore client factory is async (it returned a coroutine); give "
                "a plain function returning the client instead, e.g. "
                "RedisStore(lambda: redis.asyncio.from_url(url)) — building a redis-py "
                "client does no I/O, so it needs no await"
            )
        if not isinstance(client, Redis | RedisCluster):
            raise ConfigurationError(
                f"the RedisStore client factory returned {client!r}, "
                "not a redis.asyncio Redis or RedisCluster"
            )
        if client.get_encoder().decode_responses:
            raise ConfigurationError(
                "RedisStore needs a client built with decode_responses=False "
                "(scripts reply with bytes)"
            )
        return client

    def _connect(self) -> RedisClient:
        """The client of the running event loop: built on first use from the URL or the
        factory (no I/O yet), and again on each new loop.

        redis-py's connections belong to the loop that opened them. Used on another loop
        (``asyncio.run`` called again), a call writes its request on a connection of the
        old loop, which the server runs, then fails reading the reply with a bare
        ``RuntimeError``. So the client the store built is dropped, not closed: closing
        needs the old loop, which ``asyncio.run`` has closed (the garbage collector
        reclaims its sockets, with a ``ResourceWarning``; ``close()`` the store before its
        loop ends to avoid that). A given client is the caller's, and is used as is.
        """
        loop = get_running_loop()
        if self._client is not None and (self._loop is loop or not self._owns_client):
            self._loop = loop
            return self._client
        self._loop = loop
        client: RedisClient
        if self._url is not None:
            client = Redis.from_url(self._url, **self._client_options)
            # Calls beyond max_connections wait for a slot (within their deadline)
            # rather than fail; a BlockingConnectionPool would cost ~40 µs a call.
            # So the pool itself never refuses a connection, whatever max_connections
            # the URL's query gave it (redis-py lets the query win over keywords).
            client.connection_pool.max_connections = _POOL_UNBOUNDED
            self._slots = asyncio.Semaphore(self._max_connections)  # a waiter binds its loop
        else:
            assert self._factory is not None
            client = self._checked(self._factory())
            self._where = _describe(client)
        self._client = client
        return client

    @property
    def _owns_client(self) -> bool:
        return self._url is not None or self._factory is not None

    def _translation(
        self, exc: BaseException, operation: str, script: Script | None = None
    ) -> BaseException:
        """ratescript's exception for one of redis-py's, naming the store and operation."""
        if isinstance(exc, _UNREACHABLE):
            reason = str(exc) or f"no reply within {self._timeout:g} s"
            return StoreConnectionError(
                f"cannot reach {self._where}: {reason}", store=self.kind, operation=operation
            )
        if isinstance(exc, UnicodeEncodeError):
            return StoreError(
                f"a key the Redis client cannot encode ({exc}); the clients RedisStore "
                "builds take any str, as the other stores do: give a client built with "
                "encoding_errors='surrogatepass' to do the same",
                store=self.kind,
                operation=operation,
            )
        message = str(exc)
        if (
            isinstance(exc, ResponseError)
            and script is not None
            and LUA_SCRIPT_ERROR.match(message)
        ):
            return script.lua_error(message)
        return StoreError(message, store=self.kind, operation=operation)

    @contextlib.contextmanager
    def _translated(self, operation: str) -> Iterator[None]:
        """Turn redis-py's exceptions into ratescript's, naming the store and operation."""
        try:
            yield
        except _TRANSLATED as exc:
            raise self._translation(exc, operation) from exc

    async def _eval(
        self, sha: str, source: str, keys: Sequence[str], argv: Sequence[bytes], operation: str
    ) -> Any:
        """Run Lua by its SHA; on ``NOSCRIPT`` send the source once (``EVAL`` caches it)."""
        client = self._connect()
        with self._translated(operation):
            try:
                return await self._bounded(client.evalsha(sha, len(keys), *keys, *argv))
            except NoScriptError:
                return await self._bounded(client.eval(source, len(keys), *keys, *argv))

    async def _bounded(self, awaitable: Awaitable[T]) -> T:
        """Await one network call with a free connection slot, all within the deadline."""
        with self._deadline:
            slots = self._slots
            if slots is None:
                return await awaitable
            try:
                await slots.acquire()
            except BaseException:
                if isinstance(awaitable, Coroutine):
                    awaitable.close()  # never started: no "never awaited" warning
                raise
            try:
                return await awaitable
            finally:
                slots.release()

    async def _call(self, operation: str, awaitable: Awaitable[T]) -> T:
        with self._translated(operation):
            return await self._bounded(awaitable)

    # --- scripts -------------------------------------------------------------------------

    @property
    def one_slot_per_script(self) -> bool:
        return isinstance(self._client or self._connect(), RedisCluster)

    async def run_script(
        self, script: Script, keys: Sequence[str], args: Sequence[float]
    ) -> Decision:
        if len(keys) > 1 and self.one_slot_per_script:
            _check_one_slot(script, keys)
        return await self._groups.run(script, tuple(keys), args)

    async def _run_one(
        self, script: Script, keys: tuple[str, ...], args: Sequence[float]
    ) -> Decision:
        """One hit: one ``EVALSHA`` of the script (``Groups`` sends those queued behind it)."""
        # An empty clock makes the script call Redis TIME (when it reads the clock at all).
        server_time = self._server_clock or not script.uses_now
        now = b"" if server_time else b"%.17g" % self.clock()
        argv = [now, *[b"%.17g" % arg for arg in args]]
        # _eval() and _bounded() written out: on the hot path, a coroutine, a generator
        # context manager or an `async with` of ours is each a few % of a decision.
        client = self._client
        if client is None or self._loop is not get_running_loop():
            client = self._connect()
        slots = self._slots
        try:
            try:
                with self._deadline:
                    if slots is None:
                        reply = await client.evalsha(script.lua_sha, len(keys), *keys, *argv)
                    else:
                        await slots.acquire()
                        try:
                            reply = await client.evalsha(script.lua_sha, len(keys), *keys, *argv)
                        finally:
                            slots.release()
            except NoScriptError:
                reply = await self._bounded(client.eval(script.lua_source, len(keys), *keys, *argv))
        except _TRANSLATED as exc:
            raise self._translation(exc, f"run {script.name}", script) from exc
        return script.decision_from_reply(reply)

    async def _run_many(
        self, script: Script, keys: tuple[str, ...], arg_list: Sequence[Sequence[float]]
    ) -> list[Outcome]:
        """Hits that queued on the same keys: one ``EVALSHA`` of the script's group form
        (``Script.lua_batch_source``), which runs each in turn and replies for each.
        """
        server_time = self._server_clock or not script.uses_now
        argv: list[bytes] = []
        for args in arg_list:
            argv.append(b"" if server_time else b"%.17g" % self.clock())
            argv.extend([b"%.17g" % arg for arg in args])
        operation = f"run {script.name}"
        replies = await self._eval(
            script.lua_batch_sha, script.lua_batch_source, keys, argv, operation
        )
        return script.group_outcomes(
            replies, lambda message: StoreError(message, store=self.kind, operation=operation)
        )

    def _predecessor_failed(self, operation: str) -> StoreConnectionError:
        return StoreConnectionError(
            f"cannot reach {self._where} (the call before this one on its keys failed)",
            store=self.kind,
            operation=operation,
        )

    # --- plain key-value operations ------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        client = self._connect()
        value = await self._call("get", client.get(self.full_key(key)))
        return cast("bytes | None", value)  # decode_responses=False: bytes, never str

    async def multi_get(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        client = self._connect()
        names = [self.full_key(key) for key in keys]
        if isinstance(client, RedisCluster):
            # Keys of several slots: redis-py splits the MGET by slot (not atomic).
            values = await self._call("multi_get", client.mget_nonatomic(names))
        else:
            values = await self._call("multi_get", client.mget(names))
        return cast("list[bytes | None]", values)

    async def set(self, key: str, value: Value, ttl_ms: float | None = None) -> None:
        client = self._connect()
        px = None if ttl_ms is None else _ttl_ms(ttl_ms)
        await self._call("set", client.set(self.full_key(key), _encode(value), px=px))

    async def delete(self, key: str) -> bool:
        client = self._connect()
        deleted: int = await self._call("delete", client.delete(self.full_key(key)))
        return deleted > 0

    async def increment(self, key: str, amount: int = 1) -> int:
        client = self._connect()
        value: int = await self._call("increment", client.incrby(self.full_key(key), amount))
        return value

    async def increment_with_ttl(self, key: str, amount: int, ttl_ms: float) -> int:
        lua = _INCREMENT_WITH_TTL
        argv = [b"%d" % amount, b"%d" % _ttl_ms(ttl_ms)]
        value = await self._eval(lua.sha, lua.source, [self.full_key(key)], argv, "increment")
        return int(value)

    async def expire(self, key: str, ttl_ms: float) -> bool:
        client = self._connect()
        found = await self._call("expire", client.pexpire(self.full_key(key), _ttl_ms(ttl_ms)))
        return bool(found)

    async def reset(self) -> None:
        """Delete this namespace's keys: ``SCAN`` (every primary of a Cluster) + ``UNLINK``.

        ``namespace:*`` matches this namespace's keys only: no namespace holds ``:``.
        """
        client = self._connect()
        pattern = _glob_escape(self.namespace) + ":*"
        keys = cast(
            "AsyncGenerator[bytes, None]", client.scan_iter(match=pattern, count=_SCAN_COUNT)
        )
        batch: list[bytes] = []
        try:
            while True:
                try:
                    batch.append(await self._call("reset", keys.__anext__()))
                except StopAsyncIteration:
                    break
                if len(batch) >= _UNLINK_BATCH:
                    await self._call("reset", client.unlink(*batch))
                    batch = []
            if batch:
                await self._call("reset", client.unlink(*batch))
        finally:
            await keys.aclose()

    # --- locks ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lock(
        self,
        name: str,
        ttl: float | None = None,
        blocking: bool | None = None,
        blocking_timeout: float | None = None,
    ) -> AsyncIterator[None]:
        """``SET NX PX`` with a random token; released only by the holder of the token."""
        ttl, blocking, blocking_timeout = resolve_lock_options(ttl, blocking, blocking_timeout)
        client = self._connect()
        key = self.full_key(f"lock:{name}")
        token = secrets.token_hex(16).encode()
        px = None if ttl is None else _ttl_ms(ttl * 1000)
        loop = asyncio.get_running_loop()
        deadline = None if blocking_timeout is None else loop.time() + blocking_timeout
        pause = _LOCK_POLL_FIRST_S
        while not await self._call("lock", client.set(key, token, px=px, nx=True)):
            left = math.inf if deadline is None else deadline - loop.time()
            if not blocking or left <= 0:
                raise LockTimeoutError(
                    f"lock {name!r} is held elsewhere", store=self.kind, operation="lock"
                )
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, _LOCK_POLL_MAX_S)
        try:
            yield
        finally:
            lua = _RELEASE_LOCK
            await self._eval(lua.sha, lua.source, [key], [token], "unlock")

    # --- life cycle ----------------------------------------------------------------------

    async def initialize(self) -> None:
        """Connect and ``PING``; idempotent. Scripts are loaded on first use."""
        if self.ready:
            return
        client = self._connect()
        await self._call("initialize", client.ping())
        await super().initialize()

    async def close(self) -> None:
        """Close the client if the store made it (from a URL or the factory).

        A client of another event loop is only dropped: it cannot be closed without its
        loop (see ``_connect``).
        """
        client = self._client
        if self._owns_client:
            self._client = None
        await super().close()
        if self._owns_client and client is not None and self._loop is get_running_loop():
            with self._translated("close"):
                await client.aclose()
