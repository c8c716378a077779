"""Contended accuracy and time: P processes × C concurrent hits on one key.

The limit is half the hits and the window a week, so exactly ``limit`` hits must be
admitted. Each process opens its library and warms it as a busy worker is warm: C
concurrent hits on another key, so its connection pool has grown (a cold pool costs
more than the decisions: connecting dominates). Processes warm one at a time: eight
pools opening together overflow the server's listen backlog, and the dropped SYNs'
1 s retransmits would be measured instead of the libraries. A library charging every key to one
limit (fastapi-limiter) warms through a second limiter sharing its Redis client.
Then each process waits at a barrier and fires its C hits at once
(``asyncio.gather``). Wall time runs from the first process's start to the last one's
end (``perf_counter``: one monotonic clock for every process on Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import faulthandler
import itertools
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from adapters import Adapter, NotAvailable, RateSpec, Servers, by_name
from common import Settings, rotated

WEEK_S = 7 * 24 * 3600
#: A worker still running after this dumps its stacks (faulthandler) and exits ...
HANG_S = 60.0
#: ... and the parent stops waiting a little later.
TIMEOUT_S = HANG_S + 15.0


async def _burst(
    library: str, store: str, strategy: str, key: str, rate: RateSpec, servers: Servers,
    hits: int, barrier: Any, warm_lock: Any,
) -> dict[str, Any]:  # fmt: skip
    adapter = by_name(library)
    decider = await adapter.decider(store, strategy, rate, servers)
    warmer = (
        await adapter.decider(store, strategy, rate, servers)
        if adapter.keys_share_limit
        else decider
    )
    try:
        # One process warms at a time: P pools opened at once would overflow the
        # server's listen backlog, and a dropped SYN costs a 1 s retransmit.
        await asyncio.to_thread(warm_lock.acquire)
        try:
            warming = await asyncio.gather(
                *(warmer.hit(key + ":warm") for _ in range(hits)), return_exceptions=True
            )
        finally:
            warm_lock.release()
        await asyncio.to_thread(barrier.wait, HANG_S / 2)
        start = time.perf_counter()
        outcomes = await asyncio.gather(
            *(decider.hit(key) for _ in range(hits)), return_exceptions=True
        )
        end = time.perf_counter()
    finally:
        if warmer is not decider:
            await warmer.close()
        await decider.close()
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    warm_errors = [o for o in warming if isinstance(o, BaseException)]
    return {
        "warm_up_errors": len(warm_errors),
        "warm_up_error": f"{type(warm_errors[0]).__name__}: {warm_errors[0]}"[:300]
        if warm_errors
        else "",
        "admitted": sum(1 for o in outcomes if o is True),
        "errors": len(errors),
        "first_error": f"{type(errors[0]).__name__}: {errors[0]}"[:300] if errors else "",
        "start": start,
        "end": end,
    }


def _worker(
    arguments: tuple[Any, ...], barrier: Any, warm_lock: Any, results: Any, dump: str
) -> None:
    with open(dump, "w") as trace:
        faulthandler.dump_traceback_later(HANG_S, exit=True, file=trace)
        try:
            results.put(asyncio.run(_burst(*arguments, barrier, warm_lock)))
        except BaseException as exc:
            results.put({"crash": f"{type(exc).__name__}: {exc}"[:300]})
        finally:
            faulthandler.cancel_dump_traceback_later()


def _where_hung(dumps: list[str]) -> str:
    """The innermost frames of the first hung worker's main thread, from its dump."""
    for dump in dumps:
        with contextlib.suppress(OSError):
            text = Path(dump).read_text()
            if "most recent call first" not in text:
                continue
            main = (
                text.split("\n\n")[-1]
                if "Current thread" not in text
                else text.split("Current thread")[1]
            )
            frames = [line.strip() for line in main.splitlines() if line.strip().startswith("File")]
            return " ← ".join(
                f.replace("File ", "").split("site-packages/")[-1] for f in frames[:4]
            )
    return ""


def _case(
    context: Any, adapter: Adapter, store: str, strategy: str, processes: int, hits: int,
    servers: Servers, serial: int,
) -> dict[str, Any]:  # fmt: skip
    # A namespace of this case only: no state left by another case or library.
    servers = dataclasses.replace(servers, run_id=f"{servers.run_id}c{serial}")
    total = processes * hits
    rate = RateSpec(total // 2, WEEK_S)
    row: dict[str, Any] = {
        "library": adapter.name,
        "store": store,
        "strategy": strategy,
        "processes": processes,
        "concurrency": hits,
        "hits": total,
        "exact": rate.limit,
    }
    key = f"contended-{serial}"
    barrier = context.Barrier(processes)
    warm_lock = context.Lock()
    results = context.Queue()
    arguments = (adapter.name, store, strategy, key, rate, servers, hits)
    folder = tempfile.mkdtemp(prefix="peerbench-")
    dumps = [os.path.join(folder, f"worker-{i}.txt") for i in range(processes)]
    workers = [
        context.Process(target=_worker, args=(arguments, barrier, warm_lock, results, dump))
        for dump in dumps
    ]
    for worker in workers:
        worker.start()
    outcomes = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(outcomes) < processes and time.monotonic() < deadline:
        try:
            outcomes.append(results.get(timeout=1.0))
        except Exception:
            if not any(worker.is_alive() for worker in workers) and results.empty():
                break
    for worker in workers:
        worker.join(timeout=5)
        if worker.is_alive():
            worker.kill()
            worker.join()
    crashes = [o["crash"] for o in outcomes if "crash" in o]
    finished = [o for o in outcomes if "crash" not in o]
    if crashes and all("NotAvailable" in c for c in crashes):
        row["status"], row["detail"] = "n/a", crashes[0].partition(": ")[2]
        return row
    row["status"] = "ok" if len(finished) == processes else "error"
    row["detail"] = crashes[0] if crashes else ("" if row["status"] == "ok" else "timed out")
    if len(outcomes) < processes:
        hung = _where_hung(dumps)
        row["detail"] = f"{processes - len(outcomes)} of {processes} processes hung" + (
            f" in {hung}" if hung else ""
        )
    shutil.rmtree(folder, ignore_errors=True)
    row["admitted"] = sum(o["admitted"] for o in finished)
    row["errors"] = sum(o["errors"] for o in finished) + (processes - len(finished)) * hits
    row["first_error"] = next((o["first_error"] for o in finished if o["first_error"]), "")
    row["warm_up_errors"] = sum(o["warm_up_errors"] for o in finished)
    row["warm_up_error"] = next((o["warm_up_error"] for o in finished if o["warm_up_error"]), "")
    if finished:
        row["wall_s"] = max(o["end"] for o in finished) - min(o["start"] for o in finished)
    row["exact_admission"] = row["admitted"] == rate.limit and row["errors"] == 0
    return row


def contention(
    adapters: list[Adapter], servers: Servers, settings: Settings
) -> list[dict[str, Any]]:
    """Every case, store and strategy; libraries rotated from case to case."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["adapters", "common", "contention"])
    rows = []
    serial = itertools.count()
    cases = list(
        itertools.product(
            settings.contention_cases, ("redis", "memcached"), settings.contention_strategies
        )
    )
    for index, ((processes, hits), store, strategy) in enumerate(cases):
        able = []
        for adapter in adapters:
            try:
                # Fail fast, in this process, for what a library cannot do at all.
                _probe(adapter, store, strategy, servers)
                able.append(adapter)
            except NotAvailable as exc:
                rows.append(
                    {
                        "library": adapter.name, "store": store, "strategy": strategy,
                        "processes": processes, "concurrency": hits, "hits": processes * hits,
                        "status": "n/a", "detail": str(exc),
                    }
                )  # fmt: skip
        # One run's wall time is a coin toss between libraries a few tens of ms apart (the
        # machine's speed moves by 2x): every library runs the case several times, in turn,
        # the order rotated from one repeat to the next, and its median run counts.
        runs: dict[str, list[dict[str, Any]]] = {adapter.name: [] for adapter in able}
        for repeat in range(settings.contention_repeats):
            for adapter in rotated(able, index + repeat):
                runs[adapter.name].append(
                    _case(
                        context, adapter, store, strategy, processes, hits, servers,
                        next(serial),
                    )
                )  # fmt: skip
        rows.extend(_merged(taken) for taken in runs.values())
        print(f"  contention {processes}x{hits} {store} {strategy} done", flush=True)
    return rows


def _merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One library's runs of a case as one row: its median wall time, its worst run.

    Exact only if every run was; the admitted count, errors and details are those of the
    worst run (the first inexact one, else the one with most errors), so a single miss
    is never averaged away. ``wall_runs`` keeps every run's wall time.
    """
    worst = next(
        (run for run in runs if not run.get("exact_admission")),
        max(runs, key=lambda run: run.get("errors", 0)),
    )
    row = dict(worst)
    walls = sorted(run["wall_s"] for run in runs if "wall_s" in run)
    if walls:
        row["wall_s"] = statistics.median(walls)
        row["wall_runs"] = walls
    row["exact_admission"] = all(run.get("exact_admission") for run in runs)
    return row


def _probe(adapter: Adapter, store: str, strategy: str, servers: Servers) -> None:
    async def probe() -> None:
        decider = await adapter.decider(store, strategy, RateSpec(10, WEEK_S), servers)
        await decider.close()

    asyncio.run(probe())
