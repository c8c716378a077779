"""Issue 6's targets, judged on one run's figures; misses are profiled."""

from __future__ import annotations

import contextlib
import math
from typing import Any

from adapters import STRATEGY_TITLES, Servers, by_name
from common import Settings

FAST = ("token_bucket", "gcra", "sliding_log")
PEERS_FASTAPI = ("traffik", "slowapi")


def _median(results: dict[str, Any], library: str, store: str, strategy: str) -> float:
    for row in results.get("decisions", []):
        if (row["library"], row["store"], row["strategy"]) == (library, store, strategy):
            return float(row.get("median_us", math.nan))
    return math.nan


def _line(
    target: str, measured: str, value: float, threshold: float, met: bool | None, **extra: Any
) -> dict[str, Any]:
    return {
        "target": target,
        "measured": measured,
        "value": value,
        "threshold": threshold,
        "met": met,
        **extra,
    }


def _speed(results: dict[str, Any], store: str, strategy: str, times: float) -> dict[str, Any]:
    ours = _median(results, "ratescript", store, strategy)
    theirs = _median(results, "traffik", store, strategy)
    ratio = theirs / ours if ours > 0 else math.nan
    met = None if math.isnan(ratio) else ratio >= times
    title = STRATEGY_TITLES[strategy] + (" (1,000 entries)" if strategy == "sliding_log" else "")
    return _line(
        f"{store}: {title} ≥ {times:g}× faster than traffik",
        f"traffik {theirs:.1f} µs / ratescript {ours:.1f} µs",
        ratio,
        times,
        met,
        profile=(store, strategy),
    )


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    if "roundtrips" in results:
        for row in results["roundtrips"]:
            if (row["library"], row["store"]) != ("ratescript", "redis"):
                continue
            trips = float(row.get("round_trips", math.nan))
            lines.append(
                _line(
                    f"redis: one round trip per decision ({STRATEGY_TITLES[row['strategy']]})",
                    f"{trips:.2f} client commands per decision (MONITOR)",
                    trips,
                    1.0,
                    None if math.isnan(trips) else abs(trips - 1.0) < 0.005,
                )
            )
    if "decisions" in results:
        lines += [_speed(results, "redis", s, 3.0) for s in FAST]
        lines += [_speed(results, "memcached", s, 2.0) for s in FAST]
        lines += [_speed(results, "memory", s, 5.0) for s in ("token_bucket", "gcra")]
        lines.append(_speed(results, "memory", "sliding_log", 20.0))
    for measure, field, label in (
        ("asgi", "added_median_us", "ASGI"),
        ("http", "added_service_us", "HTTP service time"),
    ):
        rows = {row["library"]: row for row in results.get(measure, [])}
        ours = float(rows.get("ratescript", {}).get(field, math.nan))
        for peer in PEERS_FASTAPI:
            theirs = float(rows.get(peer, {}).get(field, math.nan))
            # A difference at or below zero is noise (two runs of one route differ by
            # more than the throttle costs): no verdict from it.
            ratio = theirs / ours if ours > 0 and theirs > 0 else math.nan
            lines.append(
                _line(
                    f"FastAPI added latency ({label}) ≤ ⅓ of {peer}'s",
                    f"{peer} {theirs:.1f} µs / ratescript {ours:.1f} µs"
                    + ("" if ours > 0 and theirs > 0 else " (≤ 0: within the noise)"),
                    ratio,
                    3.0,
                    None if math.isnan(ratio) else ratio >= 3.0,
                    profile=("fastapi", "") if label == "ASGI" else None,
                )
            )
    # Like for like: slowapi's throttle is a decorator, so is ``@throttled``.
    rows = {row["library"]: row for row in results.get("asgi", [])}
    decorated = float(rows.get("ratescript (@throttled)", {}).get("added_median_us", math.nan))
    slowapi = float(rows.get("slowapi", {}).get("added_median_us", math.nan))
    if not (math.isnan(decorated) or math.isnan(slowapi)):
        ratio = slowapi / decorated if decorated > 0 and slowapi > 0 else math.nan
        lines.append(
            _line(
                "FastAPI added latency (ASGI, decorator against decorator) ≤ ⅓ of slowapi's",
                f"slowapi {slowapi:.1f} µs / ratescript @throttled {decorated:.1f} µs",
                ratio,
                3.0,
                None if math.isnan(ratio) else ratio >= 3.0,
            )
        )
    cases: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in results.get("contention", []):
        case = (row["processes"], row["concurrency"], row["store"], row["strategy"])
        cases.setdefault(case, []).append(row)
    for (processes, hits, store, strategy), rows in cases.items():
        ours = next((r for r in rows if r["library"] == "ratescript"), None)
        if ours is None:
            continue
        # Against the fastest peer that got the burst right: a peer that fails requests
        # or admits the wrong count can finish sooner without doing the job.
        peers = [r for r in rows if r["library"] != "ratescript" and "wall_s" in r]
        correct = [r for r in peers if r.get("exact_admission") and not r.get("errors")]
        fastest = min(correct, key=lambda r: r["wall_s"], default=None)
        exact = bool(ours.get("exact_admission")) and not ours.get("errors")
        wall = float(ours.get("wall_s", math.nan))
        quick = fastest is None or wall <= fastest["wall_s"]
        versus = (
            f"fastest exact peer {fastest['library']} {fastest['wall_s']:.2f} s"
            if fastest
            else "no peer was exact"
        )
        faster_wrong = [r for r in peers if r not in correct and r["wall_s"] < wall]
        if faster_wrong:
            versus += "; faster but not exact: " + ", ".join(
                f"{r['library']} {r['wall_s']:.2f} s" for r in faster_wrong
            )
        lines.append(
            _line(
                f"contended {processes}×{hits} on {store} ({STRATEGY_TITLES[strategy]}): exact, "
                "no errors, wall time ≤ fastest peer's",
                f"admitted {ours.get('admitted')} of exact {ours.get('exact')}, "
                f"{ours.get('errors')} errors, {wall:.2f} s; {versus}",
                wall,
                fastest["wall_s"] if fastest else math.nan,
                exact and quick if not math.isnan(wall) else None,
            )
        )
    return lines


async def profile_misses(
    results: dict[str, Any], servers: Servers, settings: Settings
) -> dict[str, Any]:
    """cProfile of ratescript (and traffik) on every missed decision target."""
    from fastapi_latency import RATE, asgi_call
    from profiles import profile_calls, profile_decision

    profiles: dict[str, Any] = {}
    for line in results.get("targets", []):
        subject = line.get("profile")
        if line["met"] is not False or not subject:
            continue
        store, strategy = subject
        name = f"{store}/{strategy}" if strategy else store
        if name in profiles:
            continue
        if store == "fastapi":
            app = by_name("ratescript").fastapi_app("memory", servers, RATE)
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(app.router.lifespan_context(app))
                calls = 300 if settings.quick else 3000
                profiles[name] = {
                    "ratescript /throttled": await profile_calls(
                        asgi_call(app, "/throttled"), calls, lambda: None
                    ),
                    "ratescript /plain": await profile_calls(
                        asgi_call(app, "/plain"), calls, lambda: None
                    ),
                }
            continue
        calls = (300 if settings.quick else 3000) if store == "memory" else 100
        profiles[name] = {
            library: await profile_decision(by_name(library), store, strategy, servers, calls)
            for library in ("ratescript", "traffik")
        }
    return profiles
