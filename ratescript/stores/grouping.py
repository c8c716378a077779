"""Groups: one process's hits on one key, sent together while one is at the server.

Why: a server runs the hits on one key one after another anyway (Redis runs one
script at a time; on Memcached one compare-and-swap wins). A burst on a hot key sent
hit by hit pays a round trip and the client's own per-call work for every hit, and on
Memcached loses races. So the first hit on a key goes at once, and the hits that
arrive while it is out wait; when it is back they go as one group, which the store
runs in arrival order, each hit on the state the one before left, each with its own
decision — exactly as if they had run one after another, for a few round trips in
all. A store supplies two coroutines: one that runs a single hit and one that runs a
group and returns each hit's outcome (a ``Decision``, or the exception of a hit that
failed alone).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from ratescript.decision import Decision
from ratescript.exceptions import StoreConnectionError
from ratescript.scriptdsl.script import Script

__all__ = ["Groups", "Outcome", "decided"]

K = TypeVar("K", bound=Hashable)
#: One hit's result in a group: its decision, or the error it failed with alone.
Outcome = Decision | Exception
RunOne = Callable[[Script, K, Sequence[float]], Awaitable[Decision]]
RunMany = Callable[[Script, K, Sequence[Sequence[float]]], Awaitable[Sequence[Outcome]]]
Unreachable = Callable[[str], StoreConnectionError]


def decided(outcome: Outcome) -> Decision:
    """The decision of one hit's outcome, or its error raised."""
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


class _Waiter:
    """A hit waiting for its key: its script, arguments and outcome."""

    __slots__ = ("args", "future", "script")

    def __init__(
        self, script: Script, args: Sequence[float], future: asyncio.Future[Decision]
    ) -> None:
        self.script = script
        self.args = args
        self.future = future


class _Group:
    """The hits waiting on one key while one of them is at the server."""

    __slots__ = ("failed", "waiting")

    def __init__(self) -> None:
        self.waiting: list[_Waiter] = []
        self.failed = False


def _settle(future: asyncio.Future[Decision], outcome: Outcome) -> None:
    """Give a waiting hit its outcome, unless it was cancelled meanwhile."""
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class Groups(Generic[K]):
    """The groups of one store, by key (whatever the store names a key by).

    ``most`` bounds a group sent at once (a longer queue goes in several), so that one
    call keeps the server busy for a bounded time. A failure to reach the server
    fails the hits waiting on that key at once (``unreachable`` names the error), rather
    than each waiting out its own deadline. A waiter cancelled before its group is sent
    is never charged.
    """

    __slots__ = ("_groups", "_most", "_run_many", "_run_one", "_serving", "_unreachable")

    def __init__(
        self,
        run_one: RunOne[K],
        run_many: RunMany[K],
        unreachable: Unreachable,
        most: int = 1 << 30,
    ) -> None:
        self._run_one = run_one
        self._run_many = run_many
        self._unreachable = unreachable
        self._most = most
        self._groups: dict[K, _Group] = {}
        self._serving: set[asyncio.Task[None]] = set()

    async def run(self, script: Script, key: K, args: Sequence[float]) -> Decision:
        """Run one hit: at once, or with the hits that queued behind the one out."""
        group = self._groups.get(key)
        if group is not None:
            if group.failed:
                raise self._unreachable(f"run {script.name}")
            future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
            group.waiting.append(_Waiter(script, args, future))
            return await future
        group = self._groups[key] = _Group()
        try:
            return await self._run_one(script, key, args)
        except StoreConnectionError:
            group.failed = True
            raise
        finally:
            if group.waiting:
                task = asyncio.get_running_loop().create_task(self._serve(key, group))
                self._serving.add(task)  # held: the loop keeps only a weak reference
                task.add_done_callback(self._serving.discard)
            else:
                del self._groups[key]

    async def _serve(self, key: K, group: _Group) -> None:
        """Run the hits that waited on ``key``, a group per script, until none wait."""
        waiting: list[_Waiter] = []
        try:
            while group.waiting and not group.failed:
                waiting, group.waiting = group.waiting, []
                while waiting and not group.failed:
                    script = waiting[0].script
                    batch = [w for w in waiting if w.script is script][: self._most]
                    taken = set(batch)
                    waiting = [w for w in waiting if w not in taken]
                    live = [w for w in batch if not w.future.done()]
                    if live:
                        await self._send(script, key, live, group)
        finally:
            for waiter in [*waiting, *group.waiting]:
                _settle(waiter.future, self._unreachable(f"run {waiter.script.name}"))
            del self._groups[key]

    async def _send(self, script: Script, key: K, batch: list[_Waiter], group: _Group) -> None:
        outcomes: Sequence[Outcome]
        try:
            if len(batch) == 1:
                outcomes = [await self._run_one(script, key, batch[0].args)]
            else:
                outcomes = await self._run_many(script, key, [w.args for w in batch])
        except Exception as exc:  # each waiter gets its own copy to raise
            group.failed = isinstance(exc, StoreConnectionError)
            outcomes = [copy.copy(exc) for _ in batch]
        except BaseException:  # this task cancelled: so are the hits it was running
            for waiter in batch:
                waiter.future.cancel()
            raise
        for waiter, outcome in zip(batch, outcomes, strict=True):
            _settle(waiter.future, outcome)
