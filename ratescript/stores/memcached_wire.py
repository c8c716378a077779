"""The Memcached text protocol, spoken over aiomcache's connection pool.

Why not aiomcache's ``Client`` (0.8.2): a call cancelled by a timeout hands its
connection back to the pool with the reply still on its way, so the next call reads the
previous reply (a ``cas`` taken for lost although it landed counts a hit twice); a
connection closed before the reply makes ``readline`` return ``b""`` in a loop that
never yields, so the event loop hangs and no timeout can fire; and it has no meta
commands. So ``MemcachedStore`` keeps its connection pool and speaks the protocol
through ``Wire``: one call, one deadline, and a connection whose call did not complete
is closed, never reused. The ``read_*`` functions parse one reply each.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ratescript.exceptions import StoreConnectionError, StoreError

if TYPE_CHECKING:
    from aiomcache.pool import Connection

__all__ = [
    "FAILURES",
    "ReplyError",
    "Translated",
    "Untrusted",
    "Wire",
    "either",
    "read_cas",
    "read_items",
    "read_keys_found",
    "read_line",
    "read_meta_item",
    "read_stored",
    "read_until_no_op",
    "store_error",
]

T = TypeVar("T")
Reader = Callable[[asyncio.StreamReader], Awaitable[T]]


class _Pool(Protocol):
    """What we use of ``aiomcache.pool.MemcachePool``: pooled (reader, writer) pairs."""

    async def acquire(self) -> Connection: ...

    def release(self, conn: Connection) -> None: ...

    async def clear(self) -> None: ...


class _StaleConnection(ConnectionError):
    """The server closed the connection before answering (a restart): safe to resend."""


if sys.version_info >= (3, 11):
    # Python 3.11+ counts a task's cancellation requests, so a deadline tells its own
    # cancellation from someone else's (as asyncio.timeout does).
    def _cancelling(task: asyncio.Task[Any]) -> int:
        return task.cancelling()

    def _uncancel(task: asyncio.Task[Any]) -> int:
        return task.uncancel()

else:  # 3.10 cannot tell: a cancellation arriving as a deadline expires reads as the expiry

    def _cancelling(task: asyncio.Task[Any]) -> int:
        return 0

    def _uncancel(task: asyncio.Task[Any]) -> int:
        return 0


# How a pooled connection to a server that restarted fails, before any reply.
_STALE = (_StaleConnection, ConnectionResetError, BrokenPipeError)


class ReplyError(Exception):
    """The server answered something the store never expects."""


class Untrusted(Exception):
    """A request for a connection newer than the state it relies on (see ``memcached._Known``)."""


async def read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        line = await reader.readuntil(b"\r\n")
    except asyncio.IncompleteReadError as exc:
        # At EOF: where readline() returns b"", on which aiomcache loops forever.
        if exc.partial:
            raise ConnectionError("connection closed in the middle of a reply") from None
        raise _StaleConnection("connection closed by the server") from None
    except asyncio.LimitOverrunError as exc:
        raise ReplyError(f"a reply line longer than {exc.consumed} bytes") from None
    return line[:-2]


async def read_items(reader: asyncio.StreamReader) -> dict[bytes, tuple[bytes, int]]:
    """The reply to ``get``/``gets``: key → (value, CAS token, 0 for ``get``)."""
    found: dict[bytes, tuple[bytes, int]] = {}
    while (line := await read_line(reader)) != b"END":
        parts = line.split()
        if len(parts) not in (4, 5) or parts[0] != b"VALUE":
            raise ReplyError(line)
        data = await reader.readexactly(int(parts[3]) + 2)
        found[parts[1]] = (data[:-2], int(parts[4]) if len(parts) == 5 else 0)
    return found


async def read_stored(reader: asyncio.StreamReader) -> int | None:
    """The reply to ``ms <key> ... c``: the item's new CAS token, None if not stored."""
    line = await read_line(reader)
    if line.startswith(b"HD c"):
        return int(line[4:])
    if line in (b"EX c0", b"NF c0", b"NS c0"):
        return None
    raise ReplyError(line)


async def read_cas(reader: asyncio.StreamReader) -> int | None:
    """The reply to ``mg <key> c``: the item's CAS token, None if missing."""
    line = await read_line(reader)
    if line.startswith(b"HD c"):
        return int(line[4:])
    if line == b"EN":
        return None
    raise ReplyError(line)


async def read_meta_item(reader: asyncio.StreamReader) -> tuple[bytes, int, int] | None:
    """The reply to ``mg <key> v c t``: (value, CAS token, seconds left), or None if missing."""
    line = await read_line(reader)
    if line == b"EN":
        return None
    parts = line.split()
    if len(parts) != 4 or parts[0] != b"VA":
        raise ReplyError(line)
    data = await reader.readexactly(int(parts[1]) + 2)
    flags = {part[:1]: int(part[1:]) for part in parts[2:]}
    return data[:-2], flags[b"c"], flags[b"t"]


async def read_keys_found(reader: asyncio.StreamReader) -> set[bytes]:
    """The replies to quiet key checks (``mg <key> k q``) closed by a no-op (``mn``):
    the keys found (quiet mode drops the misses)."""
    found: set[bytes] = set()
    while (line := await read_line(reader)) != b"MN":
        if not line.startswith(b"HD k"):
            raise ReplyError(line)
        found.add(line[4:])
    return found


async def read_until_no_op(reader: asyncio.StreamReader) -> None:
    """The replies to quiet deletes (``md <key> q``) closed by a no-op (``mn``).

    Quiet mode drops ``HD``; memcached 1.6.18 still sends ``NF`` for a missing key.
    """
    while (line := await read_line(reader)) != b"MN":
        if line != b"NF":
            raise ReplyError(line)


def either(reply: bytes, yes: bytes, no: bytes) -> bool:
    """Whether the server answered ``yes`` rather than ``no``; anything else is an error."""
    if reply not in (yes, no):
        raise ReplyError(reply)
    return reply == yes


# What ``store_error`` translates: the network's and the server's failures.
FAILURES = (OSError, EOFError, asyncio.TimeoutError, ReplyError)


def store_error(exc: BaseException, wire: Wire, store: str, operation: str) -> StoreError:
    """One of ``FAILURES`` as the store's exception, naming the store and the operation."""
    address = wire.address
    kind: type[StoreError] = StoreConnectionError
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        message = f"no answer from {address} within {wire.timeout:g} s"
    elif isinstance(exc, ReplyError):
        kind, message = StoreError, f"unexpected reply from {address}: {exc}"
    else:
        message = f"cannot reach {address} ({exc or type(exc).__name__})"
    return kind(message, store=store, operation=operation)


class Translated:
    """``with``: every failure of the network or the server, as the store's exceptions."""

    __slots__ = ("_operation", "_store", "_wire")

    def __init__(self, store: str, wire: Wire, operation: str) -> None:
        self._store = store
        self._wire = wire
        self._operation = operation

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, FAILURES):
            raise store_error(exc, self._wire, self._store, self._operation) from exc


class Wire:
    """Calls to one server, each under a deadline, on pooled connections.

    A connection goes back to the pool only after a call that read its whole reply;
    after anything else (a timeout, a cancellation, an error) it is closed, since a
    reply may still be on its way. The calls under one deadline (``within``: a plan's
    read and its writes) keep the connection of their first call until the deadline
    ends: handed back between them, a plan's write would queue behind the reads of
    every plan waiting for the pool, and under a burst larger than the pool serves in
    one ``timeout`` every plan would read in time and then miss its deadline writing.

    Deadlines share one timer rather than one ``asyncio.timeout`` per call: scheduling
    and cancelling a timer handle per call cost 20-27 µs of a ~90 µs loopback round trip
    here (measured), as much as the rest of a decision's Python. Every call registers
    its task and deadline (``_due``, in deadline order, as every call waits as long); the
    timer is armed for the earliest and, when it fires, cancels each task past its
    deadline, as ``asyncio.timeout`` would, then re-arms for the next. So it fires about
    once per ``timeout`` under steady traffic, never while the store is idle.
    """

    def __init__(self, open_pool: Callable[[], _Pool], address: str, timeout: float) -> None:
        self._open_pool = open_pool
        self._pool: _Pool | None = None
        self.address = address
        self.timeout = timeout
        # Task → (deadline, its cancellation count on entering), in deadline order.
        self._due: dict[asyncio.Task[Any], tuple[float, int]] = {}
        self._expired: dict[asyncio.Task[Any], int] = {}  # cancelled here, not yet told
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kept: Connection | None = None  # see send()
        # Task -> the connection (and its pool) its calls under one deadline keep.
        self._held: dict[asyncio.Task[Any], tuple[Connection, _Pool]] = {}
        self._waiting = 0  # calls waiting for a connection from the pool
        # Each connection's epoch: 1, 2, ... in the order this wire first used them.
        self._epochs: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._connections_seen = 0
        self.epoch = 0  # the epoch of the connection the last completed call used

    async def within(self, work: Awaitable[T]) -> T:
        """``work`` under one deadline of ``timeout`` seconds: past it, ``TimeoutError``."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("MemcachedStore calls must run in an asyncio task")
        if task in self._due:  # within an outer call's deadline, which comes first
            return await work
        loop = asyncio.get_running_loop()
        due = loop.time() + self.timeout
        self._due[task] = (due, _cancelling(task))
        if self._timer is None or self._loop is not loop:
            self._arm(loop, due)
        try:
            return await work
        except asyncio.CancelledError:
            # Ours, unless someone else cancelled the task too (asyncio.timeout's rule).
            cancelling = self._expired.pop(task, None)
            if cancelling is not None and _uncancel(task) <= cancelling:
                raise TimeoutError from None
            raise
        finally:
            self._due.pop(task, None)
            if self._expired:
                self._expired.pop(task, None)
            if self._held:
                held = self._held.pop(task, None)
                if held is not None:
                    self._release(*held)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._loop is not loop:  # a store used on a new event loop: start afresh
            if self._timer is not None:
                self._timer.cancel()
            self._loop = loop
            self._due = {task: due for task, due in self._due.items() if task.get_loop() is loop}
            self._expired.clear()
            self._drop_connections()
        self._timer = loop.call_at(when, self._expire)

    def _drop_connections(self) -> None:
        """Forget the pool and the kept connection, which belong to another event loop.

        On a new loop a call would write its request on a connection of the old one and
        then fail reading the reply (a bare ``RuntimeError``), and closing it fails too:
        its loop is gone (``asyncio.run`` closes it). So they are dropped, not closed; the
        garbage collector reclaims their sockets, with a ``ResourceWarning`` (``close()``
        the store before its loop ends to avoid that). Connections opened afterwards
        start new epochs, so no CAS token learned on the old ones is trusted blindly.
        """
        self._pool = None
        self._kept = None

    def _expire(self) -> None:
        """The shared timer: cancel every call past its deadline, re-arm for the next."""
        assert self._loop is not None
        self._timer = None
        now = self._loop.time()
        for task, (due, cancelling) in list(self._due.items()):
            if due > now:
                self._timer = self._loop.call_at(due, self._expire)
                return
            if task not in self._expired:
                self._expired[task] = cancelling
                task.cancel()

    async def call(self, request: bytes, read: Reader[T]) -> T:
        """One request and its reply, under a deadline of its own."""
        return await self.within(self.send(request, read))

    async def send(self, request: bytes, read: Reader[T], newest: int | None = None) -> T:
        """One request and its reply, under the caller's deadline (see ``within``).

        With ``newest``, raises ``Untrusted`` rather than send on a connection of a
        later epoch. ``self.epoch`` is then the epoch of the connection used.
        """
        resend = True
        task = asyncio.current_task()
        holder = task if task is not None and task in self._due else None  # see within()
        conn: Connection | None
        pool: _Pool | None
        while True:
            held = self._held.pop(holder, None) if holder is not None and self._held else None
            if held is not None:
                conn, pool = held
            else:
                # The connection last freed, kept out of the pool: sequential calls never
                # touch the pool, whose acquire and release cost half the rest of a call.
                conn, self._kept = self._kept, None
                pool = self._pool  # the kept connection's: close() drops both
            if (
                conn is None
                or pool is None
                or conn.reader.at_eof()
                or conn.reader.exception() is not None
            ):
                conn, pool = await self._acquire(conn)
            epoch = self._epochs.get(conn.writer)
            if epoch is None:
                self._connections_seen += 1
                epoch = self._epochs[conn.writer] = self._connections_seen
            if newest is not None and epoch > newest:
                self._release(conn, pool)
                raise Untrusted
            done = False
            try:
                try:
                    conn.writer.write(request)
                    # drain() waits only above the high-water mark: a request that did
                    # not go out whole. Otherwise a closed connection shows in the read.
                    if conn.writer.transport.get_write_buffer_size():
                        await conn.writer.drain()
                except ConnectionError as exc:
                    raise _StaleConnection(str(exc)) from exc
                try:
                    reply = await read(conn.reader)
                except ValueError as exc:  # a number in the reply that does not parse
                    raise ReplyError(str(exc)) from exc
                self.epoch = epoch
                done = True
                return reply
            except BaseException as exc:
                conn.reader.set_exception(ConnectionAbortedError("call did not complete"))
                # A pooled connection the server closed (it restarted) carried nothing:
                # send once more on a new one. Memcached keeps no data across a restart,
                # so even a request the old server did run changed nothing that is left.
                if not (resend and isinstance(exc, _STALE)):
                    raise
                resend = False
            finally:
                if done and holder is not None and pool is self._pool:
                    self._held[holder] = (conn, pool)
                else:
                    self._release(conn, pool)

    async def _acquire(self, stale: Connection | None) -> tuple[Connection, _Pool]:
        """A connection and its pool (which closes ``stale``, the kept one, found dead)."""
        if self._pool is None:
            self._pool = self._open_pool()
        pool = self._pool
        if stale is not None:
            pool.release(stale)
        self._waiting += 1
        try:
            return await pool.acquire(), pool
        finally:
            self._waiting -= 1

    def _release(self, conn: Connection, pool: _Pool) -> None:
        """Keep ``conn`` for the next call, or hand it back (the pool closes a dead one)."""
        if (
            self._kept is None
            and not self._waiting  # calls waiting on the pool get it from there
            and pool is self._pool  # not closed meanwhile
            and conn.reader.exception() is None
        ):
            self._kept = conn
        else:
            pool.release(conn)

    async def close(self) -> None:
        if self._loop is not asyncio.get_running_loop():  # see _drop_connections
            self._drop_connections()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pool, self._pool = self._pool, None
        kept, self._kept = self._kept, None
        if pool is not None:
            if kept is not None:
                pool.release(kept)
            await pool.clear()


# --- the store ------------------------------------------------------------------------------
