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
from collections.abc import Sequence
from multiprocessing.synchronize import Barrier
from typing import Any

from ratescript.scriptdsl.script import Script
from ratescript.stores.base import Store

__all__ = ["CONTENDED_KEY", "run_contended"]

CONTENDED_KEY = "contended"
_START_TIMEOUT_S = 120.0  # spawning a process re-imports everything; CI machines are slow
_RUN_TIMEOUT_S = 120.0


def _load(path: str) -> Any:
    """``"package.module:attribute"`` → the attribute."""
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise ValueError(f"expected 'package.module:attribute', got {path!r}")
    return getattr(importlib.import_module(module_name), attribute)


async def _fire(
    store_factory_path: str,
    store_kwargs: dict[str, Any],
    script_name: str,
    args: Sequence[float],
    hits: int,
    key: str,
    start: Barrier,
) -> int:
    script: Script = getattr(importlib.import_module("ratescript.builtin_scripts"), script_name)
    store: Store = _load(store_factory_path)(**store_kwargs)
    async with store:
        start.wait(_START_TIMEOUT_S)  # every process connected: now fire together
        decisions = await asyncio.gather(*(store.run(script, [key], args) for _ in range(hits)))
    return sum(decision.allowed for decision in decisions)


def _worker(
    results: multiprocessing.Queue[tuple[str, int | str]],
    start: Barrier,
    store_factory_path: str,
    store_kwargs: dict[str, Any],
    script_name: str,
    args: Sequence[float],
    hits: int,
    key: str,
) -> None:
    try:
        admitted = asyncio.run(
            _fire(store_factory_path, store_kwargs, script_name, args, hits, key, start)
        )
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
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[tuple[str, int | str]] = context.Queue()
    start = context.Barrier(processes)
    workers = [
        context.Process(
            target=_worker,
            args=(results, start, store_factory_path, store_kwargs, script_name, args, hits, key),
            name=f"contended-{index}",
        )
        for index in range(processes)
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
