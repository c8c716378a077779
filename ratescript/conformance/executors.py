"""Executors: run a compiled script on one target and expose the logical state.

The differential tests and the conformance kit drive several executors with the
same operations and compare what they decide and what they leave stored. Every
executor takes the script's clock as an argument and applies key TTLs with that
same clock, so expiry is part of what gets compared (and a script whose TTL is
too short shows up as a disagreement). As in Redis, the clock counts in whole
milliseconds for expiry: a key set at ``now`` with a TTL of ``t`` ms expires at
``floor(now) + t`` and is gone once ``floor(clock)`` is past that.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any, Protocol, cast

from ratescript.decision import Decision
from ratescript.scriptdsl.codec import KeyCodec, canonical
from ratescript.scriptdsl.runtime import DELETE, KEEP
from ratescript.scriptdsl.script import Script
from ratescript.stores.base import Store

__all__ = ["Executor", "LuaExecutor", "PythonExecutor", "StoreExecutor", "encode_args"]


def encode_args(now: float | None, args: Sequence[float]) -> list[bytes]:
    """``ARGV`` for a generated Lua script: the clock (empty: server time), then arguments."""
    clock = b"" if now is None else b"%.17g" % now
    return [clock, *(b"%.17g" % float(a) for a in args)]


class Executor(Protocol):
    """Something that runs scripts at a given clock and shows its stored bytes."""

    name: str

    def run(
        self, script: Script, keys: Sequence[str], args: Sequence[float], now: float
    ) -> Decision:
        """Run ``script`` on ``keys`` with ``args`` at time ``now`` (ms)."""

    def state(self, now: float, keys: Sequence[str]) -> dict[str, bytes]:
        """The stored bytes of those of ``keys`` that are live at time ``now``.

        Canonical bytes (``codec.canonical``): a log as written compact, whatever
        entries dropped from its front a Redis script left for later.
        """

    def forget(self, key: str) -> None:
        """Drop ``key``, as an expiry would."""


class PythonExecutor:
    """The Python target on a dict.

    With ``encoded=True`` values are kept as bytes and decoded/encoded around every
    run, as a Memcached plan does; otherwise decoded values are kept, as the
    in-process store does, and encoded only when ``state`` is asked for.
    """

    def __init__(self, *, encoded: bool = True) -> None:
        self.name = "python-bytes" if encoded else "python-objects"
        self.encoded = encoded
        # key -> (value, expiry time or None, the codec of the key that wrote it)
        self.values: dict[str, tuple[Any, float | None, KeyCodec]] = {}

    def _live(self, key: str, now: float) -> Any:
        entry = self.values.get(key)
        if entry is None:
            return None
        value, expires_at, _script = entry
        if expires_at is not None and math.floor(now) > expires_at:
            del self.values[key]
            return None
        return value

    def run(
        self, script: Script, keys: Sequence[str], args: Sequence[float], now: float
    ) -> Decision:
        script.check_args(args)
        current = []
        for key, codec in zip(keys, script.codecs, strict=True):
            value = self._live(key, now)
            if self.encoded and value is not None:
                value = codec.decode(key, value)
            current.append(value)
        try:
            result = script.compute(float(now), *current, *map(float, args))
        except (ArithmeticError, ValueError) as exc:
            raise script.python_error(exc) from exc
        writes = result[5]
        for index, key in enumerate(keys):
            value, ttl = writes[2 * index], writes[2 * index + 1]
            if value is KEEP:
                continue
            if value is DELETE:
                self.values.pop(key, None)
                continue
            if self.encoded:
                value = script.codecs[index].encode(value)
            expires_at = None if ttl is None else math.floor(now) + ttl
            self.values[key] = (value, expires_at, script.codecs[index])
        return script.decision(result)

    def forget(self, key: str) -> None:
        """Drop ``key``, as an expiry would."""
        self.values.pop(key, None)

    def ttl_left(self, now: float, key: str) -> float | None:
        """Milliseconds until ``key`` expires (``None``: never or missing)."""
        entry = self.values.get(key)
        if entry is None or entry[1] is None:
            return None
        return entry[1] - math.floor(now)

    def state(self, now: float, keys: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for key in keys:
            value = self._live(key, now)
            if value is None:
                continue
            out[key] = value if self.encoded else self.values[key][2].encode(value)
        return out


class LuaExecutor:
    """The Lua target on lupa's Lua 5.1, against the emulated ``redis.call``."""

    def __init__(self) -> None:
        from ratescript.conformance.luarunner import LuaRedisEmulator

        self.name = "lua-lupa"
        self.now = 0.0
        self.emulator = LuaRedisEmulator(clock_ms=lambda: self.now)
        self.loaded: set[str] = set()

    def run(
        self, script: Script, keys: Sequence[str], args: Sequence[float], now: float
    ) -> Decision:
        from ratescript.conformance.luarunner import LuaReplyError

        script.check_args(args)
        self.now = now
        if script.lua_sha not in self.loaded:
            self.emulator.script_load(script.lua_source)
            self.loaded.add(script.lua_sha)
        try:
            reply = self.emulator.evalsha(script.lua_sha, list(keys), encode_args(now, args))
        except LuaReplyError as exc:
            raise script.lua_error(exc.message) from exc
        assert isinstance(reply, bytes)
        return script.decision_from_reply(reply)

    def run_group(
        self, script: Script, keys: Sequence[str], hits: Sequence[tuple[float, Sequence[float]]]
    ) -> list[Decision | Exception]:
        """Hits queued on ``keys``, as ``RedisStore`` sends them: one call of the script's
        group form, each hit with its own clock; the server's clock is the last hit's.
        """
        from ratescript.conformance.luarunner import LuaReplyError

        for _now, args in hits:
            script.check_args(args)
        self.now = hits[-1][0]
        argv = [arg for now, args in hits for arg in encode_args(now, args)]
        try:
            replies = self.emulator.eval(script.lua_batch_source, list(keys), argv)
        except LuaReplyError as exc:
            raise script.lua_error(exc.message) from exc
        assert isinstance(replies, list) and all(type(r) is bytes for r in replies)
        return script.group_outcomes(cast(list[bytes], replies), RuntimeError)

    def forget(self, key: str) -> None:
        self.emulator.delete(key)

    def state(self, now: float, keys: Sequence[str]) -> dict[str, bytes]:
        self.now = now
        out: dict[str, bytes] = {}
        for key in keys:
            value = self.emulator.get(key)
            if value is not None:
                out[key] = canonical(value)
        return out


class StoreExecutor:
    """Any ``Store``, driven synchronously on an event loop of its own.

    The store must have been built with ``clock=executor.clock`` so that it follows
    the executor's logical time.
    """

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop) -> None:
        self.name = name
        self.loop = loop
        self.now = 0.0
        self.store: Store | None = None

    def clock(self) -> float:
        return self.now

    def attach(self, store: Store) -> None:
        self.store = store

    def run(
        self, script: Script, keys: Sequence[str], args: Sequence[float], now: float
    ) -> Decision:
        assert self.store is not None, "attach a store first"
        self.now = now
        return self.loop.run_until_complete(self.store.run(script, keys, args))

    def forget(self, key: str) -> None:
        assert self.store is not None, "attach a store first"
        self.loop.run_until_complete(self.store.delete(key))

    def state(self, now: float, keys: Sequence[str]) -> dict[str, bytes]:
        assert self.store is not None, "attach a store first"
        self.now = now
        values = self.loop.run_until_complete(self.store.multi_get(list(keys)))
        return {
            key: canonical(value)
            for key, value in zip(keys, values, strict=True)
            if value is not None
        }
