"""The ``Store`` protocol: where scripts run and state lives.

Every store runs compiled scripts atomically (``run``) and offers the plain
key-value operations a hand-written strategy may want. Decisions depend only on
the script's clock and the stored state: key TTLs exist to reclaim memory, so a
store given a fake ``clock`` answers exactly like every other store.

Keys are namespaced here, once: ``"{namespace}:{key}"``, and nothing else: a key
is stored under the same name whatever keys a script runs it with. On Redis Cluster
the keys of one script must share a ``{hash tag}`` (``one_slot_per_script``); the
throttles' keys carry their client's identity as theirs.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import contextvars
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ratescript.clock import Clock, wall_clock_ms
from ratescript.decision import Decision
from ratescript.exceptions import ConfigurationError
from ratescript.scriptdsl.script import Script

if TYPE_CHECKING:
    from ratescript.asgi.types import OnError, ThrottledHandler

__all__ = [
    "Clock",
    "Store",
    "current_store",
    "default_store",
    "hash_tag",
    "wall_clock_ms",
]

Value = bytes | str | int | float
StoreT = TypeVar("StoreT", bound="Store")


def hash_tag(key: str) -> str | None:
    """The Redis Cluster hash tag of ``key`` (the text inside its first ``{...}``)."""
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end <= start + 1:
        return None
    return key[start + 1 : end]


def _check_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not namespace:
        raise ConfigurationError(f"a store namespace must be a non-empty string, got {namespace!r}")
    if any(c in namespace for c in "{} \t\r\n"):
        raise ConfigurationError(
            f"a store namespace cannot contain braces or whitespace, got {namespace!r} "
            "(braces would change Redis Cluster hash slots)"
        )
    if any(c in namespace for c in ":#"):
        # ':' ends the namespace in every stored name, and Memcached names its own items
        # `namespace#...`: namespace "app" with key "eu:x" would be namespace "app:eu"
        # with key "x", and Redis reset() of "app" (SCAN "app:*") would empty "app:eu".
        raise ConfigurationError(
            f"a store namespace cannot contain ':' or '#', got {namespace!r} "
            "(they separate a namespace from its keys, so one namespace could name "
            "another's keys); use '-', '_' or '.' instead"
        )
    return namespace


def check_ttl_ms(ttl_ms: float) -> float:
    """``ttl_ms`` if it is a TTL at all: every store refuses NaN and infinities alike.

    Each store rounds a TTL its own way (Memcached to whole seconds, at least one), and
    a NaN slipped through where the rounding took the larger of it and one.
    """
    if not math.isfinite(ttl_ms):
        raise ValueError(f"ttl_ms must be a finite number of milliseconds, got {ttl_ms!r}")
    return ttl_ms


#: The store of the innermost ``async with store(app):`` block of this task.
_current: contextvars.ContextVar[Store | None] = contextvars.ContextVar(
    "ratescript_current_store", default=None
)
#: The store most recently entered with ``async with store:`` (or a lifespan).
_default: list[Store] = []


def current_store() -> Store | None:
    """The store set for this request by ``async with store(app):``, if any."""
    return _current.get()


def default_store() -> Store | None:
    """The store entered with ``async with store:`` / ``lifespan=store.lifespan``, if any."""
    return _default[-1] if _default else None


class Store(abc.ABC):
    """Base of every store.

    Args:
        namespace: prefix of every key this store touches, so several apps (or
            tests) can share a server; ``reset()`` clears only this namespace. It may
            not hold ``:`` or ``#`` (which separate it from its keys), braces or
            whitespace.
        clock: milliseconds since the epoch; defaults to the wall clock. Inject a
            fake clock in tests: decisions follow it on every store.
        on_error: the failure policy of throttles on this store that set none
            (``"allow"``, ``"throttle"``, ``"raise"`` or a handler, sync or async).
        handle_throttled: the throttled handler of throttles on this store that set none.
    """

    #: A short name used in error messages ("redis", "memcached", "memory").
    kind: str = "store"

    def __init__(
        self,
        *,
        namespace: str = "ratescript",
        clock: Clock | None = None,
        on_error: OnError | None = None,
        handle_throttled: ThrottledHandler | None = None,
    ) -> None:
        self._namespace = _check_namespace(namespace)
        self._prefix = f"{namespace}:"
        self.clock: Clock = clock if clock is not None else wall_clock_ms
        policies = ("allow", "throttle", "raise")
        if on_error is not None and on_error not in policies and not callable(on_error):
            raise ConfigurationError(
                f'on_error must be "allow", "throttle", "raise" or a handler, got {on_error!r}'
            )
        self.on_error = on_error
        if handle_throttled is not None and not callable(handle_throttled):
            raise ConfigurationError(
                f"handle_throttled must be a function, got {handle_throttled!r}"
            )
        self.handle_throttled = handle_throttled
        self._ready = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} namespace={self._namespace!r}>"

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def ready(self) -> bool:
        """Whether ``initialize()`` has run (and ``close()`` has not)."""
        return self._ready

    # --- keys ------------------------------------------------------------------------

    def full_key(self, key: str) -> str:
        """The stored name of a plain key: ``namespace:key``."""
        return self._prefix + key

    def script_keys(self, keys: Sequence[str]) -> list[str]:
        """Stored names of a script's keys: each ``namespace:key``, as when used alone.

        A key's name never depends on the keys it is run with: a limit charged alone
        and in a group with other limits counts on one and the same key.
        """
        prefix = self._prefix
        return [prefix + key for key in keys]

    @property
    def one_slot_per_script(self) -> bool:
        """Whether the keys of one script must share a Redis Cluster hash slot.

        True on Redis Cluster only, where a script of keys in several slots cannot run;
        callers that compose scripts (throttles grouped on one endpoint) then compose
        only keys of one hash tag.
        """
        return False

    # --- the one that matters ------------------------------------------------------------

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[float]) -> Decision:
        """Run ``script`` atomically on ``keys`` (logical names) with numeric ``args``."""
        if len(keys) != script.key_count:
            raise ConfigurationError(
                f"script `{script.name}` declares {len(script.keys)} keys, got {len(keys)}"
            )
        script.check_args(args)
        # Doubles, as Redis reads them (`%.17g`): an int would compare exactly past 2**53
        # and have no -0.0 in the Python targets, which run it as it is given.
        args = [*map(float, args)]
        stored = self.script_keys(keys)
        if len(stored) > 1 and script.writes and len(set(stored)) < len(stored):
            # The Python targets read every key before the body runs, Lua at each `get`:
            # after a write, two key parameters on one key would see different values.
            first, second = next(
                (stored.index(name), index)
                for index, name in enumerate(stored)
                if stored.index(name) < index
            )
            raise ConfigurationError(
                f"script `{script.name}` writes, so its keys must be distinct: key "
                f"parameters `{script.keys[first].name}` and `{script.keys[second].name}` "
                f"name one key ({keys[second]!r})"
            )
        return await self.run_script(script, stored, args)

    #: True for a store whose single-key scripts finish without waiting (the in-process
    #: store): ``run_one`` then does what ``run`` does for one key, synchronously, and
    #: ``Strategy.hit`` calls it directly, one coroutine fewer per decision.
    immediate: ClassVar[bool] = False

    def run_one(self, script: Script, key: str, args: Sequence[float]) -> Decision:
        """``run`` of a one-key script, arguments checked and floats (``run`` makes them
        so; this path does not), without waiting; see ``immediate``."""
        raise NotImplementedError(f"{type(self).__name__} runs scripts only through `run`")

    def runners(
        self, script: Script
    ) -> tuple[Callable[[str, Sequence[float]], Decision], Callable[[str, Sequence[float]], float]]:
        """``run_one`` of ``script`` as a function of ``(key, args)``, and the same run
        returning only the wait (0.0 when admitted); see ``immediate``."""
        raise NotImplementedError(f"{type(self).__name__} runs scripts only through `run`")

    def check_runner(self, script: Script) -> Callable[[str, Sequence[float]], Decision | None]:
        """``run_one`` of ``script`` for a caller that reads only a rejecting decision
        (a throttle sending no rate-limit headers): it may return ``None`` when the hit
        is admitted. By default the ``run_one`` runner, a decision either way."""
        return self.runners(script)[0]

    @abc.abstractmethod
    async def run_script(
        self, script: Script, keys: Sequence[str], args: Sequence[float]
    ) -> Decision:
        """Run ``script`` on already-namespaced ``keys``; the store's own atomic path."""

    # --- plain key-value operations (keys are logical names) -------------------------------

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def set(self, key: str, value: Value, ttl_ms: float | None = None) -> None: ...

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Delete ``key``; whether it existed."""

    @abc.abstractmethod
    async def increment(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to an integer counter (a missing key counts as 0)."""

    async def decrement(self, key: str, amount: int = 1) -> int:
        return await self.increment(key, -amount)

    @abc.abstractmethod
    async def increment_with_ttl(self, key: str, amount: int, ttl_ms: float) -> int:
        """``increment``, setting ``ttl_ms`` when the increment creates the key."""

    @abc.abstractmethod
    async def expire(self, key: str, ttl_ms: float) -> bool:
        """Give an existing key a TTL; whether it existed."""

    async def multi_get(self, keys: Sequence[str]) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    @abc.abstractmethod
    def lock(
        self,
        name: str,
        ttl: float | None = None,
        blocking: bool | None = None,
        blocking_timeout: float | None = None,
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """A lock shared by every client of this store; ``ttl`` and timeouts in seconds.

        An argument left ``None`` takes the process default (``ratescript.config``:
        ``set_lock_ttl`` and friends, or their environment variables); ``math.inf``
        asks for no TTL / no time limit whatever the default. Implementations resolve
        them with ``ratescript.config.resolve_lock_options``. Raises
        ``LockTimeoutError`` when the lock cannot be had in time.
        """

    @abc.abstractmethod
    async def reset(self) -> None:
        """Delete every key of this store's namespace."""

    # --- life cycle ----------------------------------------------------------------------

    async def initialize(self) -> None:
        """Open connections; idempotent. Stores also initialise lazily on first use."""
        self._ready = True

    async def close(self) -> None:
        """Release connections; idempotent."""
        self._ready = False

    async def __aenter__(self: StoreT) -> StoreT:
        """Open the store and make it the default of throttles that name none."""
        await self.initialize()
        _default.append(self)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self in _default:
            _default.remove(self)
        await self.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """``FastAPI(lifespan=store.lifespan)``: open on start-up, close on shutdown.

        Throttles without a store of their own use this one: it is kept on
        ``app.state`` (requests of this app) and as the process default.
        """
        async with self:
            state = getattr(app, "state", None)
            if state is not None:
                state.ratescript_store = self
            try:
                yield
            finally:
                if state is not None and getattr(state, "ratescript_store", None) is self:
                    del state.ratescript_store

    @contextlib.asynccontextmanager
    async def __call__(
        self, app: Any = None, *, close_on_exit: bool = True
    ) -> AsyncIterator[Store]:
        """``async with store(app, close_on_exit=False):`` — this store for this request.

        Sets the store that ``dynamic_store=True`` throttles use in the current task
        (a multi-tenant middleware picks one per request); ``close_on_exit=False``
        keeps a shared store's connections open for the next request.
        """
        if not self._ready:
            await self.initialize()
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)
            if close_on_exit:
                await self.close()


async def with_timeout(awaitable: Awaitable[Any], seconds: float) -> Any:
    """``asyncio.wait_for`` that works the same on Python 3.10 and later."""
    return await asyncio.wait_for(awaitable, seconds)
