"""Strategy objects hit one key each from several processes at once, on a frozen clock.

Like ``tests/stores/concurrency.py`` (which runs scripts by name), but the workers
call ``Strategy.hit`` so the strategies' own arguments are what is raced. Each
process connects, then for each case all processes fire their hits together
(a barrier per case), so every key sees ``processes × hits`` concurrent hits.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import queue
import traceback
from collections.abc import Sequence
from multiprocessing.synchronize import Barrier
from typing import Any

from ratescript.rates import Rate
from ratescript.stores.base import Store
from ratescript.strategies import Strategy

__all__ = ["FROZEN_NOW_MS", "ContendedCase", "frozen_clock", "run_strategies_contended"]

#: One millisecond into an hour-aligned window: a window of an hour or less starts
#: here for every strategy, and nothing refills or leaks while the clock stands still.
FROZEN_NOW_MS = 472_223 * 3_600_000.0 + 1.0
_START_TIMEOUT_S = 120.0  # spawning re-imports everything; CI machines are slow
_RUN_TIMEOUT_S = 120.0

ContendedCase = tuple[Strategy[Any], Rate, str]  # strategy, rate, key


def frozen_clock() -> float:
    """The clock of every worker (a module-level function, so it pickles by name)."""
    return FROZEN_NOW_MS


def _load(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


async def _fire(
    store_factory_path: str,
    store_kwargs: dict[str, Any],
    cases: Sequence[ContendedCase],
    hits: int,
    start: Barrier,
) -> list[int]:
    store: Store = _load(store_factory_path)(**store_kwargs)
    admitted = []
    async with store:
        for strategy, rate, key in cases:
            start.wait(_START_TIMEOUT_S)  # every process ready: fire together
            decisions = await asyncio.gather(*(strategy.hit(key, rate, store) for _ in range(hits)))
            admitted.append(sum(decision.allowed for decision in decisions))
    return admitted


def _worker(
    results: multiprocessing.Queue[tuple[str, Any]],
    start: Barrier,
    store_factory_path: str,
    store_kwargs: dict[str, Any],
    cases: Sequence[ContendedCase],
    hits: int,
) -> None:
    try:
        admitted = asyncio.run(_fire(store_factory_path, store_kwargs, cases, hits, start))
    except BaseException:
        start.abort()  # do not leave the other workers waiting
        results.put(("error", traceback.format_exc()))
        raise
    results.put(("admitted", admitted))


def run_strategies_contended(
    store_factory_path: str,
    store_kwargs: dict[str, Any],
    cases: Sequence[ContendedCase],
    processes: int,
    hits: int,
) -> list[int]:
    """For each case in turn, ``hits`` concurrent hits from each of ``processes`` processes.

    Args:
        store_factory_path: ``"module:attribute"`` of a store class or factory, called
            in each process with ``store_kwargs`` (pass ``clock=frozen_clock`` and a
            fresh namespace).
        cases: (strategy, rate, key) triples; give each its own key.

    Returns the admitted hits of each case, over all processes.
    """
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[tuple[str, Any]] = context.Queue()
    start = context.Barrier(processes)
    workers = [
        context.Process(
            target=_worker,
            args=(results, start, store_factory_path, store_kwargs, list(cases), hits),
            name=f"contended-strategies-{index}",
        )
        for index in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        totals = [0] * len(cases)
        for _ in workers:
            try:
                kind, value = results.get(timeout=_START_TIMEOUT_S + _RUN_TIMEOUT_S)
            except queue.Empty:
                raise RuntimeError("a contended worker neither answered nor failed") from None
            if kind == "error":
                raise RuntimeError(f"a contended worker failed:\n{value}")
            totals = [total + count for total, count in zip(totals, value, strict=True)]
        return totals
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
                worker.join()
