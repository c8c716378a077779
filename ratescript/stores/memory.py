"""``InMemoryStore``: the embedded store, running the Python target on a dict.

Values written by scripts are kept decoded (a float, a tuple of record fields, a
log's entries and total), so a decision costs no parsing or printing; they are
encoded only when read through ``get`` or when a script of another shape reads
them (which then fails exactly as the Lua target would). A script runs with no
``await`` between its read and its write, under a striped ``threading.Lock``, so
it is atomic across coroutines, event loops and threads.

Expiry follows Redis: whole milliseconds of the store's clock; a key set with a
TTL of ``t`` at ``now`` is gone once ``floor(clock) > floor(now) + t``. Expired
keys are reclaimed lazily on access and by an incremental sweep that checks a
few keys for every new one, so memory stays bounded under millions of distinct
keys without ever pausing for a full scan.

A single-key script runs as its in-process target (``scriptdsl.targets.memory``):
the script's body fused with this store's lookup and write, bound once per store.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ratescript.config import resolve_lock_options
from ratescript.decision import Decision
from ratescript.exceptions import LockTimeoutError, StoreError
from ratescript.scriptdsl.codec import KeyCodec
from ratescript.scriptdsl.runtime import DELETE, KEEP
from ratescript.scriptdsl.script import Script
from ratescript.scriptdsl.targets.memory import SWEEP_EVERY
from ratescript.stores.base import Clock, Store, Value, check_ttl_ms

if TYPE_CHECKING:
    from ratescript.asgi.types import OnError, ThrottledHandler

__all__ = ["InMemoryStore"]

# Keys checked for expiry per sweep. A single-key script sweeps once per 32 lookups of
# a missing key (`targets.memory.SWEEP_EVERY`), which is how the dict grows: 4 keys
# checked per new key on average, so a pass over the keys takes a quarter as many new
# keys as there are keys, and the dict stays within about 4/3 of the live keys.
# Multi-key scripts sweep once per 32 keys they add, `set` on every call.
_NAMES_KEPT = 1 << 14  # logical keys whose stored name and lock are kept (see _named)
_SWEEP_KEYS = 128
_LOCK_POLL_SECONDS = 0.002
# Scripts whose bound runner a store keeps; past this many, it binds afresh.
_RUNNERS_KEPT = 256

Runner = Callable[[str, Sequence[float]], Decision]
WaitRunner = Callable[[str, Sequence[float]], float]
CheckRunner = Callable[[str, Sequence[float]], Decision | None]

# An entry: (value, the first whole ms at which it is gone or None, the codec of a
# decoded value or None for bytes)
Entry = tuple[Any, "int | None", "KeyCodec | None"]


def _gone_at(now_ms: int, ttl_ms: float) -> int:
    """The first whole millisecond at which a key set at ``now_ms`` has expired.

    Redis expires a key set at ``t`` with TTL ``d`` once its clock is past ``t + d``;
    keeping ``t + d + 1`` lets the per-hit check be one comparison with the raw clock.
    """
    return now_ms + max(1, math.ceil(ttl_ms)) + 1


def _as_bytes(value: Value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        raise TypeError("booleans are not store values")
    if isinstance(value, int):
        return b"%d" % value
    return b"%.17g" % value


class InMemoryStore(Store):
    """The in-process store: fast, exact, for one process.

    Args:
        namespace: prefix of every key.
        clock: milliseconds since the epoch; defaults to the wall clock.
        stripes: number of locks keys are spread over (a power of two).
    """

    kind = "memory"
    immediate = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that changes what `run` does must see every run: strategies then call
        # `run` itself, never the runners a store hands out (`runners`, `check_runner`,
        # `run_one`).
        own = vars(cls)
        runs = ("run", "run_one", "runners", "check_runner")
        if any(name in own for name in runs) and "immediate" not in own:
            cls.immediate = False

    def __init__(
        self,
        *,
        namespace: str = "ratescript",
        clock: Clock | None = None,
        stripes: int = 64,
        on_error: OnError | None = None,
        handle_throttled: ThrottledHandler | None = None,
    ) -> None:
        super().__init__(
            namespace=namespace, clock=clock, on_error=on_error, handle_throttled=handle_throttled
        )
        if stripes < 1 or stripes & (stripes - 1):
            raise ValueError("stripes must be a power of two")
        self._data: dict[str, Entry] = {}
        self._locks = [threading.Lock() for _ in range(stripes)]
        self._mask = stripes - 1
        self._sweep_keys: list[str] = []
        self._sweep_at = 0
        self._sweep_lock = threading.Lock()
        self._added = 0  # keys multi-key scripts added since their last sweep
        self._runners: dict[Script, Runner] = {}
        self._wait_runners: dict[Script, WaitRunner] = {}
        self._check_runners: dict[Script, CheckRunner] = {}
        self._names: dict[str, tuple[str, threading.Lock]] = {}

    def __len__(self) -> int:
        """Keys held, live or not yet reclaimed."""
        return len(self._data)

    def _lock_for(self, key: str) -> threading.Lock:
        return self._locks[hash(key) & self._mask]

    def _named(self, key: str) -> tuple[str, threading.Lock]:
        """A logical key's stored name and lock, kept for the runners (``_bind``): a key
        seen again costs one lookup, and its name is the very string the dict holds, so
        the dict compares it by identity and its hash is not computed again."""
        if len(self._names) >= _NAMES_KEPT:
            self._names.clear()  # keys made on the fly must not pile up
        name = self._prefix + key
        named = self._names[key] = (name, self._lock_for(name))
        return named

    # --- reading and writing entries (callers hold the key's lock) ---------------------

    def _live(self, key: str, now_ms: int) -> Entry | None:
        entry = self._data.get(key)
        if entry is not None and entry[1] is not None and now_ms >= entry[1]:
            del self._data[key]
            return None
        return entry

    def _decoded(self, key: str, entry: Entry | None, codec: KeyCodec) -> Any:
        if entry is None:
            return None
        value, _expires, held = entry
        if held is codec:
            return value
        raw = value if held is None else held.encode(value)
        return codec.decode(key, raw)

    # --- scripts -------------------------------------------------------------------------

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[float]) -> Decision:
        # Inline, not through `run_one`: a call less per hit. Only single-key scripts
        # have runners. The arguments made doubles as `Store.run` makes them (the
        # runners take them as they are).
        args = [*map(float, args)]
        runner = self._runners.get(script)
        if runner is not None and len(keys) == 1 and len(args) == script.param_count:
            return runner(keys[0], args)
        if len(keys) != 1 or script.key_count != 1 or len(args) != script.param_count:
            return await super().run(script, keys, args)
        return self._bind(script)(keys[0], args)

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._clock = clock  # runners read it on every run

    async def run_script(
        self, script: Script, keys: Sequence[str], args: Sequence[float]
    ) -> Decision:
        return self.run_now(script, keys, args)

    def run_one(self, script: Script, key: str, args: Sequence[float]) -> Decision:
        """The single-key path: the script's in-process target, bound to this store.

        ``run`` of ``script`` on the logical ``key``, whose key and argument counts the
        caller has checked (``run`` does, and ``Strategy.hit`` before reusing arguments).
        """
        runner = self._runners.get(script)
        if runner is None:
            runner = self._bind(script)
        return runner(key, args)

    def runners(self, script: Script) -> tuple[Runner, WaitRunner]:
        """The fused runners of a one-key script on this store: ``run_one`` without its
        call, and the one that returns the wait alone (``await strategy(...)``).

        Valid for the store's life (they read its clock on every run); the caller
        checks the key and argument counts, as for ``run_one``.
        """
        runner = self._runners.get(script) or self._bind(script)
        wait: WaitRunner = self._variant(script, "wait", self._wait_runners)
        return runner, wait

    def check_runner(self, script: Script) -> CheckRunner:
        """The fused runner of a one-key script returning ``None`` when it admits (the
        ``Decision`` when it rejects): what a throttle sending no headers reads."""
        runner: CheckRunner = self._variant(script, "check", self._check_runners)
        return runner

    def _variant(self, script: Script, variant: str, bound: dict[Script, Any]) -> Any:
        """The runner ``variant`` of ``script`` bound to this store, kept in ``bound``."""
        runner = bound.get(script)
        if runner is None:
            if len(bound) >= _RUNNERS_KEPT:
                bound.clear()  # scripts made on the fly must not pile up
            bind = script.memory_variant(variant)[2]
            runner = bound[script] = bind(
                self, script.codecs[0], self._decoded, script.python_error
            )
        return runner

    def _bind(self, script: Script) -> Runner:
        """The fused runner of ``script`` on this store (see ``scriptdsl.targets.memory``)."""
        if len(self._runners) >= _RUNNERS_KEPT:
            self._runners.clear()  # scripts made on the fly must not pile up
        binder = script.memory_binder
        if binder is None:
            raise ValueError(f"script `{script.name}` takes {script.key_count} keys, not one")
        runner = binder(self, script.codecs[0], self._decoded, script.python_error)
        self._runners[script] = runner
        return runner

    def run_now(self, script: Script, keys: Sequence[str], args: Sequence[float]) -> Decision:
        """Run a script synchronously (it never waits) on namespaced ``keys``."""
        now = self.clock()
        locks = sorted({self._lock_for(key) for key in keys}, key=id)  # one order: no deadlock
        for lock in locks:
            lock.acquire()
        try:
            result = self._apply(script, keys, args, now)
        finally:
            for lock in reversed(locks):
                lock.release()
        return script.decision(result)

    def _apply(
        self, script: Script, keys: Sequence[str], args: Sequence[float], now: float
    ) -> tuple[Any, ...]:
        now_ms = math.floor(now)
        codecs = script.codecs
        data = self._data
        values = [
            self._decoded(key, self._live(key, now_ms), codec)
            for key, codec in zip(keys, codecs, strict=True)
        ]
        try:
            result = script.compute(now, *values, *args)
        except (ArithmeticError, ValueError) as exc:
            raise script.python_error(exc) from exc
        writes = result[5]
        added = 0
        for index, key in enumerate(keys):
            value = writes[2 * index]
            if value is KEEP:
                continue
            if value is DELETE:
                data.pop(key, None)
                continue
            ttl = writes[2 * index + 1]
            added += values[index] is None
            data[key] = (value, None if ttl is None else _gone_at(now_ms, ttl), codecs[index])
        if added:  # the dict grows only with new keys: as the fused runners do, see _SWEEP_KEYS
            self._added += added
            if self._added >= SWEEP_EVERY:
                self._added = 0
                self._sweep(now_ms)
        return result

    def _sweep(self, now_ms: int) -> None:
        """Check a few keys for expiry; take a fresh snapshot of the keys when done."""
        if not self._sweep_lock.acquire(blocking=False):
            return
        try:
            keys = self._sweep_keys
            at = self._sweep_at
            if at >= len(keys):
                keys = self._sweep_keys = list(self._data)
                at = 0
            stop = min(at + _SWEEP_KEYS, len(keys))
            data = self._data
            for key in keys[at:stop]:
                entry = data.get(key)
                if entry is None or entry[1] is None or now_ms < entry[1]:
                    continue
                lock = self._lock_for(key)
                if lock.acquire(blocking=False):  # a busy key is checked on the next pass
                    try:
                        self._live(key, now_ms)
                    finally:
                        lock.release()
            self._sweep_at = stop
        finally:
            self._sweep_lock.release()

    # --- plain key-value operations ------------------------------------------------------

    def _now_ms(self) -> int:
        return math.floor(self.clock())

    async def get(self, key: str) -> bytes | None:
        key = self.full_key(key)
        with self._lock_for(key):
            entry = self._live(key, self._now_ms())
        if entry is None:
            return None
        value, _expires, codec = entry
        return value if codec is None else codec.encode(value)

    async def multi_get(self, keys: Sequence[str]) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def set(self, key: str, value: Value, ttl_ms: float | None = None) -> None:
        key = self.full_key(key)
        raw = _as_bytes(value)
        now_ms = self._now_ms()
        expires = None if ttl_ms is None else _gone_at(now_ms, check_ttl_ms(ttl_ms))
        with self._lock_for(key):
            self._data[key] = (raw, expires, None)
        self._sweep(now_ms)

    async def delete(self, key: str) -> bool:
        key = self.full_key(key)
        with self._lock_for(key):
            return self._live(key, self._now_ms()) is not None and (
                self._data.pop(key, None) is not None
            )

    async def increment(self, key: str, amount: int = 1) -> int:
        return self._increment(self.full_key(key), amount, None)

    async def increment_with_ttl(self, key: str, amount: int, ttl_ms: float) -> int:
        return self._increment(self.full_key(key), amount, check_ttl_ms(ttl_ms))

    def _increment(self, key: str, amount: int, ttl_ms: float | None) -> int:
        now_ms = self._now_ms()
        with self._lock_for(key):
            entry = self._live(key, now_ms)
            if entry is None:
                current, expires = (
                    0,
                    (None if ttl_ms is None else _gone_at(now_ms, ttl_ms)),
                )
            else:
                raw = entry[0] if entry[2] is None else entry[2].encode(entry[0])
                try:
                    current = int(raw)
                except ValueError:
                    raise StoreError(
                        f"value at {key!r} is not an integer",
                        store=self.kind,
                        operation="increment",
                    ) from None
                expires = entry[1]
            current += amount
            self._data[key] = (b"%d" % current, expires, None)
        return current

    async def expire(self, key: str, ttl_ms: float) -> bool:
        key = self.full_key(key)
        now_ms = self._now_ms()
        with self._lock_for(key):
            entry = self._live(key, now_ms)
            if entry is None:
                return False
            self._data[key] = (entry[0], _gone_at(now_ms, check_ttl_ms(ttl_ms)), entry[2])
            return True

    async def reset(self) -> None:
        for lock in self._locks:
            lock.acquire()
        try:
            self._data.clear()
            self._sweep_keys = []
            self._sweep_at = 0
        finally:
            for lock in self._locks:
                lock.release()

    # --- locks ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lock(
        self,
        name: str,
        ttl: float | None = None,
        blocking: bool | None = None,
        blocking_timeout: float | None = None,
    ) -> AsyncIterator[None]:
        ttl, blocking, blocking_timeout = resolve_lock_options(ttl, blocking, blocking_timeout)
        key = self.full_key(f"lock:{name}")
        token = uuid.uuid4().bytes
        loop = asyncio.get_running_loop()
        deadline = None if blocking_timeout is None else loop.time() + blocking_timeout
        while not self._try_lock(key, token, ttl):
            if not blocking or (deadline is not None and loop.time() >= deadline):
                raise LockTimeoutError(
                    f"lock {name!r} is held elsewhere", store=self.kind, operation="lock"
                )
            await asyncio.sleep(_LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            with self._lock_for(key):
                entry = self._live(key, self._now_ms())
                if entry is not None and entry[0] == token:
                    del self._data[key]

    def _try_lock(self, key: str, token: bytes, ttl: float | None) -> bool:
        now_ms = self._now_ms()
        with self._lock_for(key):
            if self._live(key, now_ms) is not None:
                return False
            expires = None if ttl is None else _gone_at(now_ms, ttl * 1000)
            self._data[key] = (token, expires, None)
            return True
