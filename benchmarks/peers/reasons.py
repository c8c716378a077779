"""Why a missed target is missed: the analysis of the profiles, kept with the harness.

The report prints this text under each missed target, then the cProfile summary of
the run itself. Each text is written from the profiles of the dry runs of 2026-11-29
(see the report's profile tables) and fills in the run's own figures; where a later
profile disagrees with the text, the profile is right.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Text = Callable[[dict[str, Any], dict[str, Any]], str]


def _median(results: dict[str, Any], library: str, store: str, strategy: str) -> float:
    for row in results.get("decisions", []):
        if (row["library"], row["store"], row["strategy"]) == (library, store, strategy):
            return float(row.get("median_us", math.nan))
    return math.nan


def _floor(results: dict[str, Any], store: str, name: str) -> float:
    for row in results.get("floors", []):
        if row["store"] == store and row["floor"].startswith(name):
            return float(row["median_us"])
    return math.nan


def _share(results: dict[str, Any], profile: str, who: str, owner: str) -> float:
    found = results.get("profiles", {}).get(profile, {}).get(who, {})
    return 100 * float(found.get("by_package", {}).get(owner, 0.0))


def _redis_bucket(results: dict[str, Any], line: dict[str, Any]) -> str:
    store, strategy = line["profile"]
    ours = _median(results, "ratescript", store, strategy)
    floor = _floor(results, "redis", "EVALSHA")
    waiting = _share(results, f"{store}/{strategy}", "ratescript", "C builtins")
    return (
        f"ratescript decides in one `EVALSHA` ({ours:.0f} µs, against {floor:.0f} µs for a "
        "bare `EVALSHA` of `return 1`), traffik in four round trips (lock script, `GET`, "
        "`SET`, unlock script). So the ratio is bounded by round trips: about "
        "(4 × floor + traffik's Python) / (floor + ratescript's Python), near 4 on an idle "
        "loopback. On a loaded machine a loopback round trip varies by more than "
        "ratescript's own cost per decision, and one run can land under 3. The profile shows "
        f"no ratescript work to remove: C-level socket waits and sends take {waiting:.0f}% "
        "of self time, and redis-py's command packing and reply handling lead the Python "
        "time. What limits the ratio is the round trip itself, which a decision cannot "
        "go below."
    )


def _memcached_bucket(results: dict[str, Any], line: dict[str, Any]) -> str:
    store, strategy = line["profile"]
    ours = _median(results, "ratescript", store, strategy)
    floor = _floor(results, "memcached", "gets + cas")
    return (
        "ratescript's plan is a `gets` and a `cas`, and on a key the process wrote last "
        f"the `cas` alone (one round trip): {ours:.0f} µs, against {floor:.0f} µs for a "
        "bare aiomcache `gets` + `cas`. traffik sends 5 commands (lock `add`, `get`, "
        "`set`, then `get` + `delete` to unlock). The profile shows socket waits and "
        "sends leading; there is no round trip left to save."
    )


def _redis_log(results: dict[str, Any], line: dict[str, Any]) -> str:
    ours = _median(results, "ratescript", "redis", "sliding_log")
    floor = _floor(results, "redis", "EVALSHA")
    return (
        "On Redis a log is a binary string, read by range and written in place: the "
        "header, the entries needed (`GETRANGE`), the new entry (`APPEND`), the header "
        f"again (`SETRANGE`) and the TTL — {ours:.0f} µs against a {floor:.0f} µs "
        "`EVALSHA` floor. The script's server time (Redis's `INFO commandstats`) is what "
        "separates it from the floor: seven calls from Lua into Redis at ~2.5 µs each and "
        f"the log's bookkeeping in Lua, against ~5 µs for `return 1` "
        f"({line['value']:.1f}× here)."
    )


def _memcached_log(results: dict[str, Any], line: dict[str, Any]) -> str:
    decode = _share(results, "memcached/sliding_log", "ratescript", "ratescript")
    return (
        "Memcached runs no code, so a plan moves the whole log both ways: a `gets` of "
        "~16 kB (1,000 binary entries) and a `cas` of as much. The store keeps the last log "
        "it wrote decoded, and writing one back re-uses the bytes of its unchanged "
        f"entries; ratescript's own modules take {decode:.0f}% of self time. What remains "
        "is the transfer of the value and the copy of the entry list a script makes, "
        f"O(entries) work that bounds the ratio ({line['value']:.1f}× here). Memcached's "
        "text protocol has no compare-and-swap `append`, so a log cannot be changed in place."
    )


def _memory_bucket(results: dict[str, Any], line: dict[str, Any]) -> str:
    store, strategy = line["profile"]
    ours = _median(results, "ratescript", store, strategy)
    theirs = _median(results, "traffik", store, strategy)
    name = f"{store}/{strategy}"
    generated = _share(results, name, "ratescript", "ratescript (generated)")
    own = _share(results, name, "ratescript", "ratescript")
    return (
        f"A ratescript decision in process takes {ours:.1f} µs. That covers the generated "
        f"function ({generated:.0f}% of profiled self time) and ratescript's Python around it "
        f"({own:.0f}%): `Strategy.hit` (the arguments of a rate it has seen are kept), "
        "`InMemoryStore.run_one` (striped lock, clock, dict read and write, `Decision`) "
        "and the coroutine frames of `strategy(...)` → `hit`. traffik "
        f"1.2.2 is not slow here: {theirs:.1f} µs for an asyncio lock, a dict `get` and a "
        f"`set`. Reaching 5× would take ratescript under {theirs / 5:.1f} µs per decision, "
        "which is about what the bare generated function and one `Decision` cost "
        "(`bench_dsl.py`'s python compute). Closing that gap means fusing strategy, store "
        "and script into one generated function per strategy and store: the store's "
        "`run` and the strategy's argument building would go, not the script."
    )


def _memory_log(results: dict[str, Any], line: dict[str, Any]) -> str:
    ours = _median(results, "ratescript", "memory", "sliding_log")
    return (
        "In process the log stays decoded (a list) and its sum is a running total, so a "
        "decision trims and appends in O(1) amortised; what stays O(entries) is the copy "
        f"of the 1,000-entry list a script takes before changing it ({ours:.0f} µs in all). "
        "traffik decodes and re-encodes its binary string each time."
    )


def _fastapi(results: dict[str, Any], line: dict[str, Any]) -> str:
    rows = {row["library"]: row for row in results.get("asgi", [])}
    noop = float(rows.get("Depends(no-op)", {}).get("added_median_us", math.nan))
    ours = float(rows.get("ratescript", {}).get("added_median_us", math.nan))
    traffik = float(rows.get("traffik", {}).get("added_median_us", math.nan))
    slowapi = float(rows.get("slowapi", {}).get("added_median_us", math.nan))
    return (
        f"FastAPI charges {noop:.0f} µs for a dependency that takes the request and does "
        "nothing (the `Depends(no-op)` row: `solve_dependencies`, the `Request`, the "
        "dependency call). Every `Depends` throttle pays that floor. ratescript adds "
        f"{ours:.0f} µs, so about {ours - noop:.0f} µs are its own (identifier, key, one "
        f"decision). traffik adds {traffik:.0f} µs and slowapi {slowapi:.0f} µs: a third "
        f"of theirs is {traffik / 3:.0f} and {slowapi / 3:.0f} µs, against a floor of "
        f"{noop:.0f} µs that FastAPI charges before any throttle runs. The profile of "
        "`/throttled` against `/plain` puts the extra self time "
        "mostly in FastAPI (`solve_dependencies` runs twice) and Starlette, not in "
        "ratescript. While the throttle is a FastAPI dependency, the floor plus even a "
        "free decision stays above a third of the peers' figures (which include the same "
        "floor). A throttle outside FastAPI's dependency system avoids that floor: "
        "ratescript's pure-ASGI `ThrottleMiddleware` (`benchmarks/bench_asgi.py "
        "--middleware`)."
    )


def _http(results: dict[str, Any], line: dict[str, Any]) -> str:
    rows = {row["library"]: row for row in results.get("http", [])}
    ratescript = rows.get("ratescript", {})
    plain = 1e6 / float(ratescript.get("plain", {}).get("rps", math.nan))
    return (
        "Over HTTP the service time is the extra server time per request, from requests/s "
        f"of a saturated uvicorn worker. The plain route already costs {plain:.0f} µs per "
        "request (uvicorn, h11, Starlette, FastAPI), and wrk shares the two cores, so a few "
        "percent of throughput is the whole difference between libraries. The "
        "same floor as in process applies, FastAPI's own `Depends` price (see the ASGI "
        "miss above), and the latency p50s, dominated by queueing, confirm no more than "
        "the order."
    )


def _contention(results: dict[str, Any], line: dict[str, Any]) -> str:
    store = "Memcached" if "memcached" in line["target"] else "Redis"
    parts = [
        "The burst is exact with no errors; what misses is the wall time against the "
        + line["measured"].split("; ")[1]
        + "."
    ]
    if "slowapi" in line["measured"].split("; ")[1]:
        parts.append(
            "slowapi runs limits synchronously: each process sends its hits one after "
            "another on one connection, with no event-loop work between them. That is fast "
            "in this harness, but it blocks the event loop for every decision, so a real "
            "server stalls all its other requests meanwhile."
        )
    if store == "Memcached":
        parts.append(
            "On Memcached a ratescript decision is the generic plan: `gets`, compute, `cas` "
            "(2 round trips; the `cas` alone on a key the process wrote last), retried "
            "after a lost race; a process's hits that queue on the key meanwhile run as "
            "one group (one read, one write). What remains is the processes racing each "
            "other's groups, and each process's first hits. The peers' fixed window is "
            "one atomic `incr` (1 round trip, no conflicts)."
        )
    else:
        parts.append(
            "On Redis every library here decides a fixed window in one script call. The "
            "tens of milliseconds of a burst are client CPU: P processes on two cores, each "
            "running its C hits as coroutines through redis-py. Per-call Python overhead "
            "decides the "
            "order, and it varies from run to run on a loaded machine."
        )
    return " ".join(parts)


_TEXTS: dict[str, Text] = {
    "redis/token_bucket": _redis_bucket,
    "redis/gcra": _redis_bucket,
    "redis/sliding_log": _redis_log,
    "memcached/token_bucket": _memcached_bucket,
    "memcached/gcra": _memcached_bucket,
    "memcached/sliding_log": _memcached_log,
    "memory/token_bucket": _memory_bucket,
    "memory/gcra": _memory_bucket,
    "memory/sliding_log": _memory_log,
    "fastapi": _fastapi,
    "http": _http,
    "contention": _contention,
}


def _unexplained(results: dict[str, Any], line: dict[str, Any]) -> str:
    return "No analysis is written for this miss yet: see the run's profile below."


class _Reasons:
    def key_for(self, line: dict[str, Any]) -> str:
        subject = line.get("profile")
        if subject:
            store, strategy = subject
            return f"{store}/{strategy}" if strategy else store
        if line["target"].startswith("contended"):
            return "contention:" + line["target"]
        if "(HTTP" in line["target"]:
            return "http"
        return line["target"]

    def text(self, key: str, results: dict[str, Any], line: dict[str, Any]) -> str:
        write = _TEXTS.get(key.partition(":")[0], _unexplained)
        return write(results, line)


REASONS = _Reasons()
