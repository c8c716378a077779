"""``MemcachedStore``: scripts run as read → compute → write plans over compare-and-swap.

Why a plan: Memcached runs no scripts. A script's Memcached plan reads every declared
key with one ``gets`` (values and CAS tokens), runs the script's Python target on the
decoded values, and writes each changed key back only if nobody wrote it in between:
``ms <key> ... C<token>`` (a ``cas`` that also names the new token), ``ms ... ME`` (an
``add``) when it was missing, and ``md <key> C<token>`` (a compare-and-delete) when the
script deletes it. A lost race runs the whole plan again, after a short jittered pause.
Several keys are not atomic under CAS alone, so a plan writing several keys holds a
lock meanwhile: ``ms ... ME`` with a random token and a TTL, released by ``md ...
C<token>`` so only its holder can release it. There is one lock per hash tag; a plan
takes the lock of every tag among its keys, in sorted order, so plans sharing a key
share a lock and never wait for each other in a circle. Single-key plans run lock-
free, but read their tag's lock item with their key (one ``gets`` of both): while it
is held they wait for the lock, as they do after a lost race. Every write is a CAS;
should a lock-free plan that read before the lock was taken still land on one of the
keys, the locked plan undoes its landed writes and runs again, so a key charged alone
and in a group with others keeps every hit. The hits one process sends to one key
while another is at the server run together when it is back: one read, each computed
in turn, one write (``grouping.Groups``; measured: see ``MemcachedStore``). Other
writing plans of one process on one hash tag take turns in the process (``_Queue``).

A key this process wrote last is not read again: the plan computes from the value it
wrote and writes with the token that write returned, which lands only if the key is
still that value — one round trip instead of two (a check of the token, ``mg <key> c``,
when the hits write nothing). Anyone else's write sends the plan back to reading
first; ``_Known`` says why a server restart cannot fool it.

The protocol itself — calls under deadlines over aiomcache's pool, and why not its
``Client`` — is ``memcached_wire``'s.

TTLs: Memcached counts whole seconds and its clock ticks once a second, so an item
given N seconds lives between N-1 and N seconds (1 s lived 0.43-0.63 s when measured).
A TTL of ``t`` ms is therefore sent as ``ceil(t / 1000) + 1`` seconds: never shorter
than asked, since an early expiry would reset a limit early. 0 means "never", and
values above 30 days are read as UNIX timestamps, so longer TTLs are sent as one. A
timestamp is a signed 32-bit number to memcached (1.6.18, measured: 2**31 and above
read as negative, the item gone at once; 2**32 and above wrap round), so a TTL ending
after 2038-01-19 03:14:07 UTC (2**31 - 1) ends then instead, and past that second
(when no timestamp is left to name) never.

Keys: at most 250 bytes of printable ASCII other than space. A name that is longer,
holds any other byte, or holds ``#`` is stored as a readable prefix, ``#`` and the
SHA-256 of the whole name; ``#`` marks hashed names, so a hashed name never equals a
name stored as is. SHA-256, not SHA-1, because keys may come from clients (an address,
a header) and SHA-1 collisions can be manufactured.

``reset()``: Memcached cannot list keys. With ``track_keys=True`` every key the store
creates is appended (``append`` is atomic) to one of 64 index items, which ``reset()``
reads and deletes; the index lives in Memcached, so it can be evicted like anything else.
Only a write that may create its key lists it (one of a key found missing, or a plain
``set``): a key a plan read with a CAS token was listed when it was created. A key
created again after it expired is appended again, so each process compacts an
index item (``_compact``: repeated entries and keys gone are dropped) once it has
appended ``index_compact_after`` entries to it, or as many as the item kept at its last
compaction if more: a compaction costs a read of the item and a check of each key it
lists, so this costs a constant amount per key created. It runs in a task of its own,
never in a hit's time. An item that cannot take one more entry (Memcached's item size,
``-I``, 1 MB by default: about 20,000 keys per item, 1.3 million in all) is compacted
at once (then, if every key it lists is live, only after ``index_compact_after`` more),
and the key goes unlisted, as if its entry had been evicted: the index never fails a hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import random
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple
from urllib.parse import urlsplit

from ratescript.config import resolve_lock_options
from ratescript.decision import Decision
from ratescript.exceptions import (
    ConfigurationError,
    LockTimeoutError,
    ScriptError,
    StoreConnectionError,
    StoreError,
)
from ratescript.scriptdsl.codec import KeyCodec, write_log
from ratescript.scriptdsl.nodes import KeyKind
from ratescript.scriptdsl.runtime import DELETE, KEEP
from ratescript.scriptdsl.script import Script
from ratescript.stores.base import Clock, Store, Value, check_ttl_ms, hash_tag
from ratescript.stores.grouping import Groups, Outcome, decided
from ratescript.stores.memcached_wire import (
    FAILURES,
    ReplyError,
    Translated,
    Untrusted,
    Wire,
    either,
    read_cas,
    read_items,
    read_keys_found,
    read_line,
    read_meta_item,
    read_stored,
    read_until_no_op,
    store_error,
)

if TYPE_CHECKING:
    from ratescript.asgi.types import OnError, ThrottledHandler

__all__ = ["MemcachedStore", "memcached_exptime", "memcached_key"]

_EXAMPLE_URL = "memcached://127.0.0.1:11211"
_DEFAULT_PORT = 11211
_SAFE_BYTES = bytes([*range(0x21, 0x23), *range(0x24, 0x7F)])  # printable ASCII but space, '#'
_TO_READABLE = bytes(c if 0x21 <= c <= 0x7E and c != 0x23 else 0x5F for c in range(256))
_READABLE_PREFIX = 180  # + '#' + 64 hex digits stays under 250 bytes
_MAX_RELATIVE_S = 2_592_000  # 30 days: larger exptimes are read as UNIX timestamps
_MAX_TIMESTAMP_S = 2**31 - 1  # the latest a (signed 32-bit) exptime can name: see above
_INDEX_SHARDS = 64  # an item holds at most 1 MB: ~20,000 keys per index item
_COMPACTION_TRIES = 3  # CAS attempts of a compaction that keys appended meanwhile defeat
_BACKOFF_FIRST_S = 0.0005
_BACKOFF_MAX_S = 0.02
_KNOWN_KEPT = 1024  # keys whose last written state a store remembers (see _Known)
_LOG = KeyKind.LOG  # a global: an Enum member looked up on its class costs ~0.2 µs


def memcached_key(name: str) -> bytes:
    """The Memcached key of a stored name: the name itself when safe, else a hashed form."""
    raw = name.encode("utf-8", "surrogatepass")
    if 0 < len(raw) <= 250 and not raw.translate(None, _SAFE_BYTES):  # twice a regex's speed
        return raw
    digest = hashlib.sha256(raw).hexdigest().encode()
    return raw[:_READABLE_PREFIX].translate(_TO_READABLE) + b"#" + digest


def memcached_exptime(ttl_ms: float | None, now_s: float) -> int:
    """Memcached's exptime for a TTL of ``ttl_ms`` (``None``: never) set at ``now_s``."""
    if ttl_ms is None:
        return 0
    seconds = max(1, math.ceil(ttl_ms / 1000)) + 1  # N seconds live between N-1 and N
    return seconds if seconds <= _MAX_RELATIVE_S else _timestamp(now_s, seconds)


def _timestamp(now_s: float, seconds: int) -> int:
    """The exptime of ``seconds`` from ``now_s`` as a UNIX timestamp memcached can read.

    A later one would read as negative (the item dropped at once, silently) or wrap
    round, so it is cut to the latest memcached can name, and to "never" once that
    has passed.
    """
    at = math.ceil(now_s) + seconds
    if at <= _MAX_TIMESTAMP_S:
        return at
    return _MAX_TIMESTAMP_S if math.ceil(now_s) < _MAX_TIMESTAMP_S else 0


def _exptime_left(ttl_s: int) -> int:
    """The exptime that keeps an item's remaining TTL (``mg ... t``: -1 means never)."""
    if ttl_s < 0:
        return 0
    seconds = max(1, ttl_s)
    return seconds if seconds <= _MAX_RELATIVE_S else _timestamp(time.time(), seconds)


def _as_bytes(value: Value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        raise TypeError("booleans are not store values")
    return b"%d" % value if isinstance(value, int) else b"%.17g" % value


def _parse_url(url: object) -> tuple[str, int]:
    if not isinstance(url, str):
        raise ConfigurationError(f"MemcachedStore takes a URL like {_EXAMPLE_URL!r}, got {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(
            f"malformed Memcached URL {url!r} ({exc}); expected one like {_EXAMPLE_URL!r}"
        ) from None
    if parts.scheme != "memcached":
        raise ConfigurationError(
            f"Memcached URL {url!r} has scheme {parts.scheme!r}, not 'memcached'; "
            f"expected one like {_EXAMPLE_URL!r}"
        )
    extra = parts.path not in ("", "/") or parts.query or parts.fragment or parts.username
    if not parts.hostname or extra:
        raise ConfigurationError(
            f"malformed Memcached URL {url!r}: expected only a host and a port, "
            f"like {_EXAMPLE_URL!r}"
        )
    if port == 0:  # not "no port": the default would connect to another server
        raise ConfigurationError(
            f"Memcached URL {url!r} names port 0; give the server's port, or none for "
            f"{_DEFAULT_PORT}, like {_EXAMPLE_URL!r}"
        )
    return parts.hostname, _DEFAULT_PORT if port is None else port


# --- the wire: the text protocol on aiomcache's connection pool ------------------------------


class _Landed(NamedTuple):
    """A write of a plan of several keys that landed: what undoing it needs."""

    key: bytes
    token: int | None  # its new CAS token; None for a delete
    item: tuple[bytes, int] | None  # what it replaced (bytes, token); None if missing
    ttl: float | None


class _Known(NamedTuple):
    """A key as this process last wrote it, so the next hit can skip reading it.

    A script's write is a CAS (``ms ... C<token>``): it lands only if the key is still
    exactly ``value`` (its token ``cas``), so computing from this copy instead of a
    fresh read decides exactly as a read would — one round trip, not two, and a log's
    bytes travel once. Anyone else's write, an expiry or an eviction changes or drops
    the token, and the hit is run again from a fresh read.

    A restarted server numbers its CAS tokens afresh, so a token learned before a
    restart could match another value after it. The copy is used only over a
    connection no newer than the one it was learned on (``epoch``): such a connection,
    still open, proves the server has not restarted since. ``trusted`` turns false
    once another writer is seen; the key is read first again until a read shows our
    own last write still in place (no one else writing it any more).
    """

    value: Any  # decoded, as a script receives it
    cas: int
    epoch: int
    trusted: bool
    codec: KeyCodec  # the shape ``value`` was decoded as: only a script of it may use it


async def _back_off(lost: int) -> None:
    """A jittered pause after ``lost`` lost races, growing with each."""
    await asyncio.sleep(random.uniform(0, min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2**lost)))


class _Queue:
    """This process's writing plans of several keys (or locked ones) on one hash tag, and
    its increments of one key, run one at a time (``async with``).

    Coroutines of one process then never race each other at the server, where a lost
    race costs two round trips. Entering yields whether a plan that ran while this one
    waited failed to reach the server: the waiters then fail at once rather than each
    waiting out its own deadline.

    A plan alone on its tag (the usual case) enters without a lock; the first plan to
    queue behind it makes the lock and takes it on the first one's behalf, so the first
    one's exit hands the turn on like any holder's.
    """

    __slots__ = ("_lock", "_queues", "_tag", "failures", "users")

    def __init__(self, queues: dict[str, _Queue], tag: str) -> None:
        self._lock: asyncio.Lock | None = None
        self._queues = queues
        self._tag = tag
        self.failures = 0
        self.users = 0

    @classmethod
    def join(cls, queues: dict[str, _Queue], tag: str) -> _Queue:
        queue = queues.get(tag)
        if queue is None:
            queue = queues[tag] = cls(queues, tag)
        queue.users += 1
        return queue

    def _leave(self) -> None:
        self.users -= 1
        if not self.users:
            del self._queues[self._tag]

    async def __aenter__(self) -> bool:
        if self.users == 1:  # alone: a queue lives only while it has users
            return False
        seen = self.failures
        try:
            if self._lock is None:  # the one plan ahead entered alone
                self._lock = asyncio.Lock()
                await self._lock.acquire()  # free: taken at once, on its behalf
            await self._lock.acquire()
        except BaseException:
            self._leave()
            raise
        return self.failures != seen

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None and issubclass(exc_type, StoreConnectionError):
            self.failures += 1
        if self._lock is not None:
            self._lock.release()
        self._leave()


def _tags(keys: Sequence[str]) -> list[str]:
    """The hash tags of ``keys`` (a key without one is its own), sorted: the order in
    which a plan takes their turns and locks."""
    return sorted({hash_tag(key) or key for key in keys})


class MemcachedStore(Store):
    """Scripts and plain operations on one Memcached server (1.6, for its meta commands).

    Args:
        url: ``memcached://host:port`` (11211 when no port is given).
        namespace: prefix of every key.
        pool_size: most connections open at once.
        clock: milliseconds since the epoch; defaults to the wall clock.
        timeout: seconds a network call may take (the read and the writes of one plan
            attempt share one deadline); past it the call fails with
            ``StoreConnectionError``, so a dead server never hangs a request.
        track_keys: record every key the store creates in an index kept in Memcached
            (one more round trip per key created), so that ``reset()`` can delete them.
            The index is compacted as it goes (see the module's documentation); a key
            it has no room for goes unlisted rather than fail its hit.
        max_retries: how many times a plan that lost a race runs again before
            ``StoreError``.

    Plans writing several keys hold the server lock of their hash tag. A single-key
    plan runs lock-free and retries under that lock once it has lost a race. One
    process's hits on one key never race each other: those that arrive while one is at
    the server run as one group when it is back (``Groups``: one read and one write
    for all, each hit its own decision), so a burst costs a few round trips, not two
    per hit (10 coroutines × 20 writes of one key lost 300-370 races when they
    raced). Measured, before groups, with N processes writing one key (5 runs each, lost
    races in total): 10 × 20 hits: 269-307 retrying lock-free, 57-66 locking after one
    lost race; 20 × 10: 350-563 against 71-93; 4 × 100 concurrent: 103-260 against
    41-56, in comparable times. Locking from the start loses no race but costs two more
    round trips: 390-490 µs per uncontended hit instead of 176-200 µs, and no faster
    under contention. A key this process wrote last costs one round trip, not two (see
    ``_Known``): 103-128 µs per decision against 159-196 µs for a bare ``gets`` + ``cas``
    (``benchmarks/bench_strategies.py``), and 8 × 500 concurrent hits on one key took
    as long as before (0.23-0.30 s against 0.27-0.31 s, three runs each).
    """

    kind = "memcached"
    #: Races a single-key plan may lose before it retries under the server lock
    #: (0: always lock; a large number: never); see the measurements above.
    lock_after_lost_races: ClassVar[int] = 1
    #: Entries this process appends to one index item (``track_keys``) before it compacts
    #: the item, at the least: as many as the item kept at its last compaction if more.
    index_compact_after: ClassVar[int] = 1024

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "ratescript",
        pool_size: int = 10,
        clock: Clock | None = None,
        timeout: float = 1.0,
        track_keys: bool = False,
        max_retries: int = 20,
        on_error: OnError | None = None,
        handle_throttled: ThrottledHandler | None = None,
    ) -> None:
        super().__init__(
            namespace=namespace, clock=clock, on_error=on_error, handle_throttled=handle_throttled
        )
        host, port = _parse_url(url)
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigurationError(f"pool_size must be a positive integer, got {pool_size!r}")
        try:
            seconds = float(timeout) if isinstance(timeout, (int, float)) else math.nan
        except OverflowError:  # an int no double holds
            seconds = math.nan
        if not 0 < seconds < math.inf:
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, got {timeout!r}"
            )
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        try:
            from aiomcache.pool import MemcachePool
        except ImportError:
            raise ConfigurationError(
                "MemcachedStore needs aiomcache: pip install 'ratescript[memcached]'"
            ) from None
        self._wire = Wire(
            lambda: MemcachePool(host, port, minsize=1, maxsize=pool_size),
            f"{host}:{port}",
            seconds,
        )
        self._track_keys = track_keys
        self._max_retries = max_retries
        self._queues: dict[str, _Queue] = {}
        self._groups = Groups(self._run_one, self._run_many, self._predecessor_failed)
        self._known: dict[bytes, _Known] = {}  # what this process last wrote, by key
        self._plan_lock_keys: dict[str, bytes] = {}  # the lock item of each hash tag
        self._index_keys = [
            memcached_key(f"{namespace}#index:{shard}") for shard in range(_INDEX_SHARDS)
        ]
        # Per index item: keys this process listed (or failed to) since it last compacted
        # the item, the entries that compaction kept, whether it dropped none, and the
        # compaction running (see _register and _compact).
        self._index_appended = [0] * _INDEX_SHARDS
        self._index_kept = [0] * _INDEX_SHARDS
        self._index_stuck = [False] * _INDEX_SHARDS
        self._compacting: dict[int, asyncio.Task[None]] = {}

    def __repr__(self) -> str:
        return f"<MemcachedStore {self._wire.address} namespace={self.namespace!r}>"

    def _translated(self, operation: str) -> Translated:
        return Translated(self.kind, self._wire, operation)

    def _predecessor_failed(self, operation: str) -> StoreConnectionError:
        return StoreConnectionError(
            f"cannot reach {self._wire.address} (the call before this one on its key failed)",
            store=self.kind,
            operation=operation,
        )

    def _cas_disabled(self, operation: str) -> StoreError:
        return StoreError(
            f"{self._wire.address} runs with CAS disabled (memcached -C); "
            "MemcachedStore needs CAS tokens",
            store=self.kind,
            operation=operation,
        )

    # --- scripts ---------------------------------------------------------------------------

    async def run_script(
        self, script: Script, keys: Sequence[str], args: Sequence[float]
    ) -> Decision:
        plan = script.memcached_plan
        wire_keys = [memcached_key(key) for key in keys]
        if not plan.writes:
            try:
                outcomes = await self._wire.within(self._attempt(script, keys, wire_keys, [args]))
            except FAILURES as exc:
                raise store_error(exc, self._wire, self.kind, f"run {script.name}") from exc
            assert outcomes is not None, "a plan that writes nothing cannot lose a race"
            return decided(outcomes[0])
        if len(keys) == 1 and not plan.locked:
            return await self._groups.run(script, (keys[0], wire_keys[0]), args)
        async with contextlib.AsyncExitStack() as turns:
            predecessor_failed = False
            for tag in _tags(keys):  # sorted: plans sharing tags queue in one order
                joined = _Queue.join(self._queues, tag)
                predecessor_failed |= await turns.enter_async_context(joined)
            if predecessor_failed:
                raise self._predecessor_failed(f"run {script.name}")
            outcomes = await self._run_plan(script, keys, wire_keys, [args])
        return decided(outcomes[0])

    async def _run_one(
        self, script: Script, key: tuple[str, bytes], args: Sequence[float]
    ) -> Decision:
        """One hit of a single-key plan (``Groups`` sends the ones queued behind it)."""
        return decided((await self._run_plan(script, [key[0]], [key[1]], [args]))[0])

    async def _run_many(
        self, script: Script, key: tuple[str, bytes], arg_list: Sequence[Sequence[float]]
    ) -> list[Outcome]:
        """A group of hits of a single-key plan: one ``gets``, each computed, one ``cas``."""
        return [*await self._run_plan(script, [key[0]], [key[1]], arg_list)]

    async def _run_plan(
        self,
        script: Script,
        keys: Sequence[str],
        wire_keys: list[bytes],
        arg_list: Sequence[Sequence[float]],
    ) -> list[Decision | ScriptError]:
        """Each hit's outcome, landed together: retried on lost races, locked after some."""
        retries = self._max_retries
        plan = script.memcached_plan
        unlocked = 0 if plan.locked else min(self.lock_after_lost_races, retries + 1)
        # Translated here, inside the queue or group, which fail their waiters on a failure
        # to reach the server.
        try:
            # Lock-free, a single-key plan reads the plan lock of its key's tag too: while
            # a plan of several keys holds it, the key is that plan's, and this one waits
            # for the lock instead (see `_attempt`).
            watch = self._plan_lock_key(keys[0]) if unlocked else None
            outcomes, lost = await self._attempts(
                script, keys, wire_keys, arg_list, 0, unlocked, watch
            )
            if outcomes is None and lost <= retries:
                async with self._plan_locks(keys):
                    outcomes, lost = await self._attempts(
                        script, keys, wire_keys, arg_list, lost, retries + 1, None
                    )
        except FAILURES as exc:
            raise store_error(exc, self._wire, self.kind, f"run {script.name}") from exc
        if outcomes is None:
            raise StoreError(
                f"{keys[0]!r} changed under each of {lost} attempts (max_retries={retries})",
                store=self.kind,
                operation=f"run {script.name}",
            )
        return outcomes

    async def _attempts(
        self,
        script: Script,
        keys: Sequence[str],
        wire_keys: list[bytes],
        arg_list: Sequence[Sequence[float]],
        lost: int,
        stop: int,
        watch: bytes | None,
    ) -> tuple[list[Decision | ScriptError] | None, int]:
        """Run the plan until it lands or ``stop`` attempts in all have lost a race."""
        while lost < stop:
            if lost:
                await _back_off(lost)
            attempt = self._attempt(script, keys, wire_keys, arg_list, watch)
            outcomes = await self._wire.within(attempt)  # its read and writes share a deadline
            if outcomes is not None:
                return outcomes, lost
            lost += 1
        return None, lost

    async def _attempt(
        self,
        script: Script,
        keys: Sequence[str],
        wire_keys: list[bytes],
        arg_list: Sequence[Sequence[float]],
        watch: bytes | None = None,
    ) -> list[Decision | ScriptError] | None:
        """Read once, compute each hit in turn, write the final state once.

        Each hit's outcome (a script that fails has its error as its outcome, and
        changes nothing), or None when a write lost a race — or when the lock item
        ``watch`` was read too and found held: a plan of several keys owns them now. A
        single key this process last wrote is not read at all (see ``_Known``), unless
        that turns out stale.
        """
        if len(wire_keys) == 1:
            known = self._known.get(wire_keys[0])
            if known is not None and known.trusted and known.codec is script.codecs[0]:
                outcomes = await self._attempt_known(script, wire_keys[0], known, arg_list)
                if outcomes is not None:
                    return outcomes
        names = b" ".join(wire_keys) if watch is None else b" ".join([*wire_keys, watch])
        found = await self._wire.send(b"gets %s\r\n" % names, read_items)
        if watch is not None and watch in found:
            return None
        values: list[Any] = []
        # As many of each: Store.run checked (and strict=True costs ~0.2 µs).
        for name, key, codec in zip(keys, wire_keys, script.codecs, strict=False):
            item = found.get(key)
            if item is None:
                values.append(None)
                continue
            raw, token = item
            if not token:
                raise self._cas_disabled(f"run {script.name}")
            known = self._known.get(key)
            if known is not None and known.cas == token and known.codec is codec:
                values.append(known.value)  # our own last write: no need to decode it
            else:
                values.append(codec.decode(name, raw))
        read = list(values)
        outcomes, written = self._compute(script, values, arg_list)
        # Every write is a CAS. Several keys are written under the plan lock, which
        # lock-free plans read and wait for; but one that read before the lock was taken
        # may still land on a key between our read and our write. That write then loses,
        # and the ones already landed are undone before the plan runs again.
        landed: list[_Landed] = []
        for index in script.memcached_plan.writes:
            if index not in written:
                continue
            value, ttl = written[index]
            key = wire_keys[index]
            item = found.get(key)
            cas = None if item is None else item[1]
            if value is DELETE:
                if item is None:
                    continue
                new_token: int | None = 0 if await self._delete(key, cas) else None
                self._known.pop(key, None)
            else:
                known = self._known.get(key)
                # Trusted again once a read shows our last write still in place.
                trusted = known is None or known.trusted or known.cas == cas
                new_token = await self._write(
                    script.codecs[index], key, value, ttl, read[index], cas, trusted
                )
            if new_token is None:
                if landed:
                    await self._undo(landed, script)
                return None
            landed.append(_Landed(key, None if value is DELETE else new_token, item, ttl))
        return outcomes

    async def _undo(self, landed: list[_Landed], script: Script) -> None:
        """Put back what a plan's landed writes replaced, newest first.

        We hold the plan lock, which every other plan of these keys reads or takes, and
        each landed write changed its key's token, so no plan that read before can write
        since: each undo is a CAS that lands. Only an expiry or an eviction meanwhile
        defeats it, and then the plan fails rather than leave one key charged alone.
        """
        for key, token, item, ttl in reversed(landed):
            self._known.pop(key, None)
            exptime = memcached_exptime(ttl, time.time())
            if item is None:  # it was missing: delete what we added
                done = await self._delete(key, token)
            else:  # replaced or deleted: back to its bytes (`ms ... ME` re-adds a deleted one)
                done = await self._store(key, item[0], exptime, token) is not None
            if not done:
                raise StoreError(
                    f"{key.decode(errors='replace')!r} changed while a plan of several keys "
                    "held its lock (expired or evicted?); the plan's other writes stand",
                    store=self.kind,
                    operation=f"run {script.name}",
                )

    async def _attempt_known(
        self, script: Script, key: bytes, known: _Known, arg_list: Sequence[Sequence[float]]
    ) -> list[Decision | ScriptError] | None:
        """``_attempt`` from the state this process last wrote: one round trip.

        The outcomes if the key is still as written; otherwise None, and the key is
        read before its next hits.
        """
        outcomes, written = self._compute(script, [known.value], arg_list)
        try:
            if not written:  # the decisions stand if the key is still as known
                done = await self._wire.send(b"mg %s c\r\n" % key, read_cas, known.epoch)
                done = done == known.cas
            else:
                value, ttl = written[0]
                if value is DELETE:
                    done = await self._delete(key, known.cas, known.epoch)
                    self._known.pop(key, None)
                else:
                    done = None is not await self._write(
                        script.codecs[0], key, value, ttl, known.value, known.cas, True,
                        newest=known.epoch,
                    )  # fmt: skip
        except Untrusted:  # the connection is newer than what we know: read again
            self._known.pop(key, None)
            return None
        if done:
            return outcomes
        self._known[key] = known._replace(trusted=False)  # someone else writes it too
        return None

    def _compute(
        self, script: Script, values: list[Any], arg_list: Sequence[Sequence[float]]
    ) -> tuple[list[Decision | ScriptError], dict[int, tuple[Any, float | None]]]:
        """Each hit's outcome, in turn from ``values``, and each key's last write and TTL."""
        written: dict[int, tuple[Any, float | None]] = {}
        outcomes: list[Decision | ScriptError] = []
        write_indexes = script.memcached_plan.writes
        for args in arg_list:
            try:
                result = script.compute(self.clock(), *values, *args)
            except ScriptError as exc:  # a value it may not store: this hit's own failure
                outcomes.append(exc)
                continue
            except (ArithmeticError, ValueError) as exc:
                error = script.python_error(exc)
                error.__cause__ = exc
                outcomes.append(error)
                continue
            writes = result[5]
            for index in write_indexes:
                value = writes[2 * index]
                if value is not KEEP:
                    written[index] = (value, writes[2 * index + 1])
                    values[index] = None if value is DELETE else value
            outcomes.append(script.decision(result))
        return outcomes, written

    async def _write(
        self,
        codec: KeyCodec,
        key: bytes,
        value: Any,
        ttl: float | None,
        read: Any,
        cas: int | None,
        trusted: bool,
        newest: int | None = None,
    ) -> int | None:
        """Store a script's ``value`` (read as ``read``, token ``cas``) and remember it.

        Its new CAS token, or None when the key changed since ``cas`` (a lost race).
        """
        if codec.kind is _LOG:
            value = write_log(value, read)
            data = value[0].raw
        else:
            data = codec.encode(value)
        exptime = memcached_exptime(ttl, time.time())
        stored = await self._store(key, data, exptime, cas, newest=newest)
        if stored:  # 0: the server keeps no CAS tokens (-C), so nothing can be known
            if len(self._known) >= _KNOWN_KEPT:
                self._known.clear()
            self._known[key] = _Known(value, stored, self._wire.epoch, trusted, codec)
        return stored

    async def _store(
        self,
        key: bytes,
        data: bytes,
        exptime: int,
        cas: int | None,
        *,
        force: bool = False,
        newest: int | None = None,
    ) -> int | None:
        """Set when forced, else a CAS with the token or an add: the new token, or None
        if not stored (``ms``, which unlike ``set``/``cas``/``add`` names the new token).
        """
        if force:
            mode = b""
        elif cas is None:
            mode = b" ME"
        else:
            mode = b" C%d" % cas
        request = b"ms %s %d c T%d%s\r\n%s\r\n" % (key, len(data), exptime, mode, data)
        stored = await self._wire.send(request, read_stored, newest)
        # A key read with a token (cas) existed: it was listed when it was created.
        if stored is not None and self._track_keys and cas is None:
            epoch = self._wire.epoch
            await self._register(key)
            self._wire.epoch = epoch  # the write's connection, which _Known relies on
        return stored

    async def _delete(self, key: bytes, cas: int | None, newest: int | None = None) -> bool:
        """Delete ``key`` if its CAS token is still ``cas`` (any version when None)."""
        request = b"md %s\r\n" % key if cas is None else b"md %s C%d\r\n" % (key, cas)
        reply = await self._wire.send(request, read_line, newest)
        if reply in (b"HD", b"NF", b"EX"):
            return reply == b"HD" or (reply == b"NF" and cas is None)
        raise ReplyError(reply)

    def _plan_lock_key(self, name: str) -> bytes:
        """The lock item of the hash tag of the stored key ``name``."""
        tag = hash_tag(name) or name
        return self._plan_lock_keys.get(tag) or self._plan_lock_key_of(tag)

    def _plan_lock_key_of(self, tag: str) -> bytes:
        if len(self._plan_lock_keys) >= _KNOWN_KEPT:
            self._plan_lock_keys.clear()
        key = self._plan_lock_keys[tag] = memcached_key(f"{self.namespace}#plan:{tag}")
        return key

    @contextlib.asynccontextmanager
    async def _plan_locks(self, keys: Sequence[str]) -> AsyncIterator[None]:
        """The plan locks of every hash tag among ``keys``, taken in sorted order so two
        plans sharing some tags never wait for each other in a circle."""
        async with contextlib.AsyncExitStack() as locks:
            for tag in _tags(keys):
                await locks.enter_async_context(self._plan_lock(tag, len(keys)))
            yield

    @contextlib.asynccontextmanager
    async def _plan_lock(self, tag: str, key_count: int) -> AsyncIterator[None]:
        """The server lock of the plans on one hash tag (plans sharing a key share it).

        Not ``lock()``, and deliberately deaf to the ``ratescript.config`` lock
        defaults: it is part of running one script atomically, not a lock a caller
        asked for. A default ``blocking=False`` would fail ordinary hits whenever two
        plans meet on a tag, and a default without TTL would let a crashed holder block
        the tag for ever; its TTL and wait follow the store's own network timeout.
        """
        key = self._plan_lock_keys.get(tag) or self._plan_lock_key_of(tag)
        # Long enough for a plan's calls to run out their deadlines; a crashed holder's
        # lock is gone by the time waiters give up.
        ttl_s = max(2.0, self._wire.timeout * (2 * key_count + 2))
        deadline = asyncio.get_running_loop().time() + ttl_s
        cas = await self._acquire(
            key, ttl_s * 1000, deadline=deadline, what=f"plan lock of {tag!r}"
        )
        try:
            yield
        finally:
            await self._release(key, cas)

    async def _acquire(
        self, key: bytes, ttl_ms: float | None, *, deadline: float | None, what: str
    ) -> int:
        """Take a lock item (``deadline=None``: wait forever); its CAS token, to release it."""
        token = secrets.token_hex(8).encode()
        exptime = memcached_exptime(ttl_ms, time.time())
        request = b"ms %s %d T%d ME c\r\n%s\r\n" % (key, len(token), exptime, token)
        loop = asyncio.get_running_loop()
        pause = _BACKOFF_FIRST_S
        while True:
            reply = await self._wire.call(request, read_line)
            if reply.startswith(b"HD "):
                cas = int(reply.split(b" c", 1)[1].split()[0])
                if cas == 0:
                    raise self._cas_disabled("lock")
                return cas
            if not reply.startswith(b"NS"):
                raise ReplyError(reply)
            if deadline is not None and loop.time() + pause > deadline:
                raise LockTimeoutError(
                    f"{what} is held elsewhere", store=self.kind, operation="lock"
                )
            await asyncio.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, _BACKOFF_MAX_S)

    async def _release(self, key: bytes, cas: int) -> None:
        """Delete a lock item only if it is still ours; a failure leaves it to its TTL."""
        with contextlib.suppress(OSError, EOFError, asyncio.TimeoutError, ReplyError):
            await self._wire.call(b"md %s C%d\r\n" % (key, cas), read_line)

    # --- plain key-value operations ----------------------------------------------------------

    def _key(self, key: str) -> bytes:
        return memcached_key(self.full_key(key))

    async def get(self, key: str) -> bytes | None:
        wire_key = self._key(key)
        with self._translated("get"):
            item = (await self._wire.call(b"get %s\r\n" % wire_key, read_items)).get(wire_key)
        return None if item is None else item[0]

    async def multi_get(self, keys: Sequence[str]) -> list[bytes | None]:
        wire_keys = [self._key(key) for key in keys]
        if not wire_keys:
            return []
        with self._translated("multi_get"):
            request = b"get " + b" ".join(dict.fromkeys(wire_keys)) + b"\r\n"
            found = await self._wire.call(request, read_items)
        return [found[key][0] if key in found else None for key in wire_keys]

    async def set(self, key: str, value: Value, ttl_ms: float | None = None) -> None:
        data = _as_bytes(value)
        ttl = None if ttl_ms is None else max(1.0, check_ttl_ms(ttl_ms))
        with self._translated("set"):
            exptime = memcached_exptime(ttl, time.time())
            await self._wire.within(self._store(self._key(key), data, exptime, None, force=True))

    async def delete(self, key: str) -> bool:
        with self._translated("delete"):
            reply = await self._wire.call(b"delete %s\r\n" % self._key(key), read_line)
            return either(reply, b"DELETED", b"NOT_FOUND")

    async def increment(self, key: str, amount: int = 1) -> int:
        return await self._increment(key, amount, None, "increment")

    async def decrement(self, key: str, amount: int = 1) -> int:
        return await self._increment(key, -amount, None, "decrement")

    async def increment_with_ttl(self, key: str, amount: int, ttl_ms: float) -> int:
        return await self._increment(key, amount, check_ttl_ms(ttl_ms), "increment_with_ttl")

    async def _increment(self, key: str, amount: int, ttl_ms: float | None, operation: str) -> int:
        """``incr`` when it can, else a CAS loop.

        Memcached's ``incr`` fails on a missing key (we ``add`` the amount) and counts
        unsigned 64-bit: ``decr`` stops at 0 and a value below zero cannot be
        incremented. So a negative amount, or a counter below zero, goes through
        ``mg`` + ``cas``, keeping the key's TTL: counters go below zero as on every
        other store.
        """
        name = self.full_key(key)
        wire_key = memcached_key(name)
        exptime = memcached_exptime(ttl_ms, time.time())
        with self._translated(operation):
            for _ in range(self._max_retries + 1 if amount >= 0 else 0):
                reply = await self._wire.call(b"incr %s %d\r\n" % (wire_key, amount), read_line)
                if reply.isdigit():
                    return int(reply)
                if reply.startswith(b"CLIENT_ERROR"):  # below zero, or not a number
                    break
                if reply != b"NOT_FOUND":
                    raise ReplyError(reply)
                if await self._wire.within(self._store(wire_key, b"%d" % amount, exptime, None)):
                    return amount
            async with _Queue.join(self._queues, name) as predecessor_failed:
                if predecessor_failed:
                    raise self._predecessor_failed(operation)
                for lost in range(self._max_retries + 1):
                    if lost:
                        await _back_off(lost)
                    added = self._add_by_cas(name, wire_key, amount, exptime, operation)
                    total = await self._wire.within(added)
                    if total is not None:
                        return total
        raise StoreError(
            f"{name!r} changed under each of {self._max_retries + 1} attempts",
            store=self.kind,
            operation=operation,
        )

    async def _add_by_cas(
        self, name: str, wire_key: bytes, amount: int, exptime: int, operation: str
    ) -> int | None:
        """Add ``amount`` with ``mg`` + ``cas`` (``add`` if missing); None on a lost race."""
        found = await self._wire.send(b"mg %s v c t\r\n" % wire_key, read_meta_item)
        if found is None:
            stored = await self._store(wire_key, b"%d" % amount, exptime, None)
            return None if stored is None else amount
        data, cas, ttl_left = found
        if cas == 0:
            raise self._cas_disabled(operation)
        try:
            total = int(data) + amount
        except ValueError:
            raise StoreError(
                f"value at {name!r} is not an integer", store=self.kind, operation=operation
            ) from None
        stored = await self._store(wire_key, b"%d" % total, _exptime_left(ttl_left), cas)
        return None if stored is None else total

    async def expire(self, key: str, ttl_ms: float) -> bool:
        exptime = memcached_exptime(max(1.0, check_ttl_ms(ttl_ms)), time.time())
        with self._translated("expire"):
            reply = await self._wire.call(b"touch %s %d\r\n" % (self._key(key), exptime), read_line)
            return either(reply, b"TOUCHED", b"NOT_FOUND")

    @contextlib.asynccontextmanager
    async def lock(
        self,
        name: str,
        ttl: float | None = None,
        blocking: bool | None = None,
        blocking_timeout: float | None = None,
    ) -> AsyncIterator[None]:
        ttl, blocking, blocking_timeout = resolve_lock_options(ttl, blocking, blocking_timeout)
        key = memcached_key(f"{self.namespace}#lock:{name}")
        now = asyncio.get_running_loop().time()
        deadline = (
            now if not blocking else None if blocking_timeout is None else now + blocking_timeout
        )
        with self._translated("lock"):
            cas = await self._acquire(
                key, None if ttl is None else ttl * 1000, deadline=deadline, what=f"lock {name!r}"
            )
        try:
            yield
        finally:
            await self._release(key, cas)

    # --- reset ------------------------------------------------------------------------------

    async def _register(self, key: bytes) -> None:
        """Add a key the store created to the index ``reset()`` reads.

        Never fails the write that created the key (it has landed): an index item that
        takes no more entries is compacted, and the key goes unlisted meanwhile.
        """
        number = zlib.crc32(key) % _INDEX_SHARDS
        shard = self._index_keys[number]
        entry = key + b" "
        full = True
        # append needs the item, add makes it: both refuse a full item (NOT_STORED, or a
        # SERVER_ERROR when memory is short); append again, as add loses to another's.
        for verb in (b"append", b"add", b"append"):
            request = b"%s %s 0 0 %d\r\n%s\r\n" % (verb, shard, len(entry), entry)
            reply = await self._wire.send(request, read_line)
            if reply == b"STORED":
                full = False
                break
            if reply.startswith(b"SERVER_ERROR"):
                break
            if reply != b"NOT_STORED":
                raise ReplyError(reply)
        # Compacted once this process has listed as many keys in the item as its last
        # compaction here kept (index_compact_after at least): a constant cost per key.
        # A full item at once; if that compaction dropped nothing (every key live), again
        # only after index_compact_after more keys, rather than for every key.
        self._index_appended[number] += 1
        appended = self._index_appended[number]
        if full:
            due = not self._index_stuck[number] or appended >= self.index_compact_after
        else:
            due = appended >= max(self.index_compact_after, self._index_kept[number])
        if due:
            self._compact_later(number)

    def _compact_later(self, number: int) -> None:
        """Compact index item ``number`` in a task of its own: no hit waits for it."""
        loop = asyncio.get_running_loop()
        running = self._compacting.get(number)
        if running is not None and not running.done() and running.get_loop() is loop:
            return
        self._index_appended[number] = 0
        self._compacting[number] = loop.create_task(self._compact(number))

    async def _compact(self, number: int) -> None:
        """Rewrite index item ``number`` without repeated entries or keys that are gone.

        ``append`` only adds at the end: entries appended while this runs are the bytes
        past those it read, kept as they are. The item is written back with a CAS, so a
        ``reset()`` or another process's compaction meanwhile wins. A failure leaves the
        item as it was, for the next compaction.
        """
        shard = self._index_keys[number]
        get = b"gets %s\r\n" % shard
        try:
            found = (await self._wire.call(get, read_items)).get(shard)
            if found is None:
                return
            listed, cas = found
            keys = list(dict.fromkeys(listed.split()))
            if keys:
                checks = b"".join(b"mg %s k q\r\n" % key for key in keys)
                live = await self._wire.call(checks + b"mn\r\n", read_keys_found)
            else:
                live = set()
            kept = [key for key in keys if key in live]
            compacted = b"".join(key + b" " for key in kept)
            now = listed
            for _ in range(_COMPACTION_TRIES):
                data = compacted + now[len(listed) :]
                request = b"cas %s 0 0 %d %d\r\n%s\r\n" % (shard, len(data), cas, data)
                reply = await self._wire.call(request, read_line)
                if reply == b"STORED":
                    self._index_kept[number] = len(kept)
                    self._index_stuck[number] = len(compacted) == len(listed)
                    return
                if reply != b"EXISTS":  # NOT_FOUND: reset() deleted it meanwhile
                    return
                found = (await self._wire.call(get, read_items)).get(shard)
                if found is None or not found[0].startswith(listed):
                    return  # deleted, or rewritten by another compaction
                now, cas = found
        except FAILURES:
            return

    async def reset(self) -> None:
        """Delete every key this store created (needs ``track_keys=True``)."""
        if not self._track_keys:
            raise StoreError(
                "Memcached cannot list its keys, so reset() works only on a store made "
                "with track_keys=True, which records the keys it creates",
                store=self.kind,
                operation="reset",
            )
        with self._translated("reset"):
            self._index_appended = [0] * _INDEX_SHARDS
            self._index_kept = [0] * _INDEX_SHARDS
            self._index_stuck = [False] * _INDEX_SHARDS
            request = b"gets " + b" ".join(self._index_keys) + b"\r\n"
            for shard, (listed, cas) in (await self._wire.call(request, read_items)).items():
                keys = set(listed.split())
                if keys:
                    quiet = b"".join(b"md %s q\r\n" % key for key in keys)
                    await self._wire.call(quiet + b"mn\r\n", read_until_no_op)
                # Not deleted if keys were added meanwhile (EX): they stay listed.
                await self._wire.within(self._delete(shard, cas))

    # --- life cycle ---------------------------------------------------------------------------

    async def initialize(self) -> None:
        with self._translated("initialize"):
            reply = await self._wire.call(b"version\r\n", read_line)
        if not reply.startswith(b"VERSION "):
            raise StoreError(
                f"{self._wire.address} is not a Memcached server (it answered {reply!r})",
                store=self.kind,
                operation="initialize",
            )
        await super().initialize()

    async def close(self) -> None:
        """Close the connections, once the index compactions in flight have finished
        (each of their calls within ``timeout``)."""
        loop = asyncio.get_running_loop()
        compacting = [
            task
            for task in self._compacting.values()
            if task.get_loop() is loop and not task.done()
        ]
        self._compacting.clear()
        if compacting:
            await asyncio.wait(compacting)
        await self._wire.close()
        self._known.clear()
        await super().close()
