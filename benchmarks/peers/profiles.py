"""cProfile of a measured subject, for the targets a run misses: where the time goes."""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Awaitable, Callable
from typing import Any

from adapters import Adapter, Servers
from common import StepClock, nothing
from decisions import DECISION_RATE, LOG_ENTRIES, fresh_key, make_decider

TOP = 12


def _package(filename: str) -> str:
    """Who owns a profiled function: a distribution, asyncio, the stdlib, C builtins."""
    if filename.startswith("~"):
        return "C builtins"
    if filename.startswith("<ratescript"):
        return "ratescript (generated)"
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/")[0].removesuffix(".py")
    if "/ratescript/" in filename:
        return "ratescript"
    if "/benchmarks/peers/" in filename:
        return "harness"
    if "/asyncio/" in filename:
        return "asyncio"
    return "stdlib"


def _top(profile: cProfile.Profile, calls: int) -> dict[str, Any]:
    stats = pstats.Stats(profile)
    total = stats.total_tt or 1.0  # type: ignore[attr-defined]
    rows = []
    packages: dict[str, float] = {}
    for (filename, line, function), (
        _cc,
        ncalls,
        tottime,
        cumtime,
        _callers,
    ) in stats.stats.items():  # type: ignore[attr-defined]
        where = filename.split("site-packages/")[-1].split("/work/main/")[-1]
        owner = _package(filename)
        packages[owner] = packages.get(owner, 0.0) + tottime / total
        rows.append(
            {
                "function": f"{where}:{line}({function})",
                "self_share": tottime / total,
                "self_us_per_decision": tottime / calls * 1e6,
                "cum_us_per_decision": cumtime / calls * 1e6,
                "calls_per_decision": ncalls / calls,
            }
        )
    rows.sort(key=lambda row: row["self_share"], reverse=True)
    return {
        "profiled_us_per_call": total / calls * 1e6,
        "by_package": dict(sorted(packages.items(), key=lambda item: -item[1])),
        "top": rows[:TOP],
    }


async def profile_calls(
    call: Callable[[], Awaitable[Any]], calls: int, before: Callable[[], None]
) -> dict[str, Any]:
    profile = cProfile.Profile()
    for _ in range(calls):
        before()
        profile.enable()
        await call()
        profile.disable()
    return _top(profile, calls)


async def profile_decision(
    adapter: Adapter, store: str, strategy: str, servers: Servers, calls: int
) -> dict[str, Any]:
    clock = StepClock(DECISION_RATE.period_ms / LOG_ENTRIES) if strategy == "sliding_log" else None
    decider, status, detail = await make_decider(
        adapter, store, strategy, DECISION_RATE, servers, clock
    )
    if decider is None:
        return {"error": f"{status}: {detail}"}
    key = fresh_key(f"profile-{strategy}")
    before = clock.advance if clock is not None else nothing
    try:
        for _ in range(LOG_ENTRIES if strategy == "sliding_log" else 50):
            before()
            await decider.hit(key)
        return await profile_calls(lambda: decider.hit(key), calls, before)
    finally:
        await decider.close()
