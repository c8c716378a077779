"""Accuracy under contention: several OS processes hit one key of one store at once.

Why processes: coroutines of one process share one client and one event loop; a
store is only proven atomic when independent clients, each with its own
connections, race on the same key. Any store can be driven: the workers import
the store class (or factory) by its path, so nothing has to be pickled but plain
arguments.

    admitted = run_contended(
        "ratescript.stores.redis:RedisStore",
        {"url_or_client_or_factory": url, "namespace": fresh_namespace},
        "fixed_window", (100, 1e12, 1), processes=4, hits=100,
    )
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import queue
import traceback
from collections.abc import Awaitable, Callable, Sequence
from multiprocessing.synchronize import Barrier
from typing import Any

from ratescript.scriptdsl.script import Script
from ratescript.stores.base import Store

__all__ = ["CONTENDED_KEY", "SHARED_RATE", "run_contended", "run_shared_keys"]

CONTENDED_KEY = "contended"
#: The fixed-window rate of ``run_shared_keys``: a limit its hits never reach, in a window
#: (aligned to multiples of 1,000 days since the epoch) a run does not straddle.
SHARED_RATE = "1000000/1000d"
_START_TIMEOUT_S = 120.0  # spawning a process re-imports everything; CI machines are slow
_RUN_TIMEOUT_S = 120.0


def _load(path: str) -> Any:
    """``"package.module:attribute"`` → the attribute."""
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise ValueError(f"expected 'package.module:attribute', got {path!r}")
    return getattr(importlib.import_module(module_name), attribute)


async def _fire(
    start: Barrier,
    store_factory_path: str,
    store_kwargs: dict[str, Any],
    script_name: str,
    args: Sequence[float],
    hits: int,
    key: str,
) -> int:
    script: Script = getattr(importlib.import_module("ratescript.builtin_scripts"), script_name)
    store: Store = _load(store_factory_path)(**store_kwargs)
    async with store:
        start.wait(_START_TIMEOUT_S)  # every process connected: now fire together
        decisions = await asyncio.gather(*(store.run(script, [key], args) for _ in range(hits)))
    return sum(decision.allowed for decision in decisions)


async def _fire_shared(
    start: Barrier,
    store_factory_path: str,
    store_kwargs: dict[str, Any],
    keys: Sequence[str],
    hits: int,
) -> int:
    from ratescript.rates import Rate
    from ratescript.strategies import FixedWindowStrategy
    from ratescript.strategies.composition import Charge, hit_all

    window = FixedWindowStrategy()
    rate = Rate.from_value(SHARED_RATE)
    store: Store = _load(store_factory_path)(**store_kwargs)
    async with store:
        start.wait(_START_TIMEOUT_S)
        if len(keys) == 1:
            hit = lambda: window.hit(keys[0], rate, store)  # noqa: E731
        else:
            charges = [Charge(window, rate, key, 1.0, None) for key in keys]
            hit = lambda: hit_all(store, charges)  # noqa: E731
        # One after another: each hit a fresh read and write, racing the other processes.
        return sum([(await hit()).allowed for _ in range(hits)])


def _worker(
    results: multiprocessing.Queue[tuple[str, int | str]],
    start: Barrier,
    fire: Callable[..., Awaitable[int]],
    args: tuple[Any, ...],
) -> None:
    try:
        admitted = asyncio.run(fire(start, *args))
    except BaseException:
        start.abort()  # do not leave the other workers waiting
        results.put(("error", traceback.format_exc()))
        raise
    results.put(("admitted", admitted))


def run_contended(
    store_factory_path: str,
    store_kwargs: dict[str, Any],
    script_name: str,
    args: tuple[float, ...],
    processes: int,
    hits: int,
    *,
    key: str = CONTENDED_KEY,
) -> int:
    """Hit ``key`` ``hits`` times concurrently from each of ``processes`` spawned processes.

    Args:
        store_factory_path: ``"module:attribute"`` of a store class or factory; each
            process calls it with ``store_kwargs`` (give a fresh namespace per run).
        script_name: a script of ``ratescript.builtin_scripts``, run with ``args``.

    Returns the number of admitted hits over all processes. A failing worker fails
    the call with its traceback.
    """
    job = (store_factory_path, store_kwargs, script_name, args, hits, key)
    return _run_processes([(_fire, job)] * processes)


def run_shared_keys(
    store_factory_path: str,
    store_kwargs: dict[str, Any],
    jobs: Sequence[tuple[Sequence[str], int]],
) -> int:
    """One spawned process per job ``(keys, hits)``, all firing at once, each its hits one
    after another: each hit charges every one of its job's keys once, in one script
    (``hit_all``) when it has several.

    The limit (``SHARED_RATE``) is out of reach, so every hit is admitted and a key's
    count must end at the hits of the jobs that name it. Returns the admitted hits.
    """
    return _run_processes(
        [
            (_fire_shared, (store_factory_path, store_kwargs, tuple(keys), hits))
            for keys, hits in jobs
        ]
    )


def _run_processes(jobs: Sequence[tuple[Callable[..., Awaitable[int]], tuple[Any, ...]]]) -> int:
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[tuple[str, int | str]] = context.Queue()
    start = context.Barrier(len(jobs))
    workers = [
        context.Process(target=_worker, args=(results, start, fire, args), name=f"contended-{i}")
        for i, (fire, args) in enumerate(jobs)
    ]
    for worker in workers:
        worker.start()
    try:
        admitted = 0
        for _ in workers:
            try:
                kind, value = results.get(timeout=_START_TIMEOUT_S + _RUN_TIMEOUT_S)
            except queue.Empty:
                raise RuntimeError("a contended worker neither answered nor failed") from None
            if kind == "error":
                raise RuntimeError(f"a contended worker failed:\n{value}")
            assert isinstance(value, int)
            admitted += value
        return admitted
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
                worker.join()
