"""``benchmarks/RESULTS.md`` and its charts, rendered from one run's ``results.json``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import charts
from adapters import STORES, STRATEGIES, STRATEGY_TITLES
from reasons import REASONS

LIBRARIES = ("ratescript", "traffik", "slowapi", "limits.aio", "fastapi-limiter")
STORE_TITLES = {"memory": "in process", "redis": "Redis", "memcached": "Memcached"}
ASGI_HEADER = [
    "library",
    "strategy",
    "plain median µs",
    "throttled median µs",
    "added median µs",
    "added p99 µs",
    "",
]
HTTP_HEADER = [
    "library",
    "plain p50 µs",
    "throttled p50 µs",
    "added p50 µs",
    "added p99 µs",
    "requests/s plain → throttled",
    "added service µs",
    "",
]
CONTENTION_HEADER = [
    "P×C",
    "store, strategy",
    "library",
    "admitted / exact",
    "exact",
    "errors",
    "wall s",
    "first error",
]


def _us(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _find(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def _libraries(results: dict[str, Any]) -> list[str]:
    seen = {row["library"] for row in results.get("check", [])}
    return [name for name in LIBRARIES if name in seen]


def _status_cell(row: dict[str, Any] | None) -> str | None:
    """ "n/a" or "error" for a row that has no figure, else None."""
    if row is None:
        return "–"
    if row.get("status") == "n/a":
        return "n/a"
    if row.get("status") not in ("ok", None):
        return f"**{row['status']}**"
    return None


def _header(results: dict[str, Any]) -> str:
    info = results["machine"]
    settings = results["settings"]
    draft = (
        "\n> **Draft: a `--quick` dry run** on a machine busy with other work — few rounds, "
        "small batches, one contention case. The figures show the harness works; they are "
        "not the comparison. Rerun with the command below on an idle machine.\n"
        if settings["quick"]
        else ""
    )
    versions = info["versions"]
    version_rows = [[name, versions[name]] for name in versions]
    version_rows += [
        ["python", info["python"]],
        ["redis-server", info["redis-server"]],
        ["memcached", info["memcached"]],
        ["load generator", info.get("load_generator", "")],
    ]
    return f"""# ratescript against its peers
{draft}
One run of `make bench-peers` (`benchmarks/peers/run.py`, see `benchmarks/README.md`):
ratescript, traffik, slowapi (through limits), limits' asyncio API and fastapi-limiter,
measured side by side in one process per measure, the libraries interleaved round by
round (their order rotated every round) so drift hits all alike. Loopback round trips
are slow and noisy on these machines: compare ratios within this run, not absolute
times across runs.

Command: `{results.get("command", "run.py")}` — {results.get("elapsed_s", 0):.0f} s.

## Machine

{
        _table(
            ["", ""],
            [
                ["date", info["date"]],
                ["cores (`nproc`)", str(info["nproc"])],
                ["CPU", info["cpu"]],
                ["RAM", info["ram"]],
                ["OS", info["os"]],
                [
                    "load average at start / end",
                    f"{info['load_at_start']} → {info.get('load_at_end', '?')}",
                ],
            ],
        )
    }

## Versions

{_table(["", "version"], version_rows)}
"""


def _summary(results: dict[str, Any]) -> str:
    """A few lines to quote: ratescript's median against traffik's, and the targets."""
    lines = []
    for store in STORES:
        ratios = []
        for strategy in STRATEGIES:
            ours = _find(
                results.get("decisions", []), library="ratescript", store=store, strategy=strategy
            )
            theirs = _find(
                results.get("decisions", []), library="traffik", store=store, strategy=strategy
            )
            if ours and theirs and ours.get("median_us") and theirs.get("median_us"):
                ratio = theirs["median_us"] / ours["median_us"]
                ratios.append(f"{STRATEGY_TITLES[strategy]} {ratio:.1f}×")
        if ratios:
            lines.append(
                f"- {STORE_TITLES[store]}, traffik's median over ratescript's: " + ", ".join(ratios)
            )
    asgi = {row["library"]: row for row in results.get("asgi", []) if row.get("status") == "ok"}
    if asgi:
        lines.append(
            "- FastAPI, added median µs (direct ASGI): "
            + ", ".join(f"{name} {_us(row['added_median_us'])}" for name, row in asgi.items())
        )
    contention = [r for r in results.get("contention", []) if r["library"] == "ratescript"]
    if contention:
        exact = sum(1 for r in contention if r.get("exact_admission"))
        lines.append(
            f"- Contention: ratescript exact with no errors in {exact} of {len(contention)} cases"
        )
    targets = results.get("targets", [])
    if targets:
        met = [t for t in targets if t["met"]]
        missed = [t["target"] for t in targets if t["met"] is False]
        lines.append(
            f"- Targets: {len(met)} of {len(targets)} met; missed: " + ("; ".join(missed) or "none")
        )
    return "## Summary\n\n" + "\n".join(lines) + "\n" if lines else ""


def _capabilities(results: dict[str, Any]) -> str:
    libraries = _libraries(results)
    rows = []
    for store in STORES:
        for strategy in STRATEGIES:
            cells = [STORE_TITLES[store], STRATEGY_TITLES[strategy]]
            for library in libraries:
                row = _find(results["check"], library=library, store=store, strategy=strategy)
                if row is None:
                    cells.append("–")
                elif row["status"] == "ok":
                    cells.append("✓" if row.get("independent_keys", True) else "✓ shared†")
                else:
                    cells.append("n/a" if row["status"] == "n/a" else f"**{row['status']}**")
            rows.append(cells)
    problems = [
        f"- {r['library']} / {r['store']} / {r['strategy']}: **{r['status']}** {r['detail']}"
        for r in results["check"]
        if r["status"] in ("FAIL", "error")
    ]
    errors = [
        f"- **{name}** did not install: `{error}`"
        for name, error in results.get("install_errors", {}).items()
    ] + [
        f"- **{name}** could not be measured (its import failed): `{error}`"
        for name, error in results.get("import_errors", {}).items()
    ]
    notes = [f"- {note}" for library in libraries for note in results["notes"].get(library, [])]
    everyone = f"Every peer installed and imported on Python {results['machine']['python']}."
    sanity = (
        "Every available decision passed the check."
        if not problems
        else "Checks that failed:\n\n" + "\n".join(problems)
    )
    return f"""## What each library offers, and the check

Before timing, each library, store and strategy is checked with a limit of 5 per hour:
hits 1–5 must be admitted and the 6th rejected; then a hit on a second key must be
admitted. {sanity} "n/a": the library cannot do it (the reason is in the notes);
"† shared": a second key was rejected too — one limit for every key.

{_table(["store", "strategy", *libraries], rows)}

{chr(10).join(errors) if errors else everyone}

Notes on the APIs (what is compared with what):

{chr(10).join(notes)}
- Same settings everywhere: decision cost at 1,000,000 per hour (never reached), one key
  per library and cell, a fresh namespace per run; GCRA with a burst of `limit` (its
  tolerance `period − period/limit`), token buckets of capacity `limit`.
"""


def _decisions(results: dict[str, Any], chart_dir: Path) -> str:
    if "decisions" not in results:
        return ""
    libraries = _libraries(results)
    settings = results["settings"]
    parts = [
        f"""## 1. Decision cost

`await`ing one decision, timed alone with `time.perf_counter_ns`; median and p99 µs
over {settings["rounds"]} interleaved rounds of {settings["batch_memory"]} decisions
(in process) or {settings["batch_network"]} (Redis, Memcached) per library. The sliding
log holds 1,000 live entries: a window of an hour and a clock the harness moves 3.6 s
per decision, for each library that lets its clock be set (ratescript through its
store's `clock`, traffik's strategy module clock, pyrate-limiter's bucket clock); limits
reads `time.time()` and keeps its log by count (its log holds the 1,000 prefilled
entries plus every timed hit). Cells read `median / p99`; `×` is the median's ratio to
ratescript's (above 1: slower than ratescript).
"""
    ]
    for store in STORES:
        rows = []
        for strategy in STRATEGIES:
            ours = _find(results["decisions"], library="ratescript", store=store, strategy=strategy)
            base = float(ours.get("median_us", math.nan)) if ours else math.nan
            cells = [STRATEGY_TITLES[strategy]]
            for library in libraries:
                row = _find(results["decisions"], library=library, store=store, strategy=strategy)
                status = _status_cell(row)
                if status is not None:
                    cells.append(status)
                    continue
                assert row is not None
                text = f"{_us(row['median_us'])} / {_us(row['p99_us'])}"
                if library != "ratescript" and base > 0:
                    text += f" ({row['median_us'] / base:.1f}×)"
                if row.get("errors"):
                    text += f" **{row['errors']} errors**"
                cells.append(text)
            rows.append(cells)
        floor_rows = [
            f"- floor: {f['floor']} — {_us(f['median_us'])} / {_us(f['p99_us'])} µs"
            for f in results.get("floors", [])
            if f["store"] == store
        ]
        chart = charts.decisions(results, store, libraries, chart_dir)
        parts.append(
            f"""### {STORE_TITLES[store]}

{_table(["strategy (µs)", *libraries], rows)}
{chr(10).join(floor_rows)}

![decision cost, {STORE_TITLES[store]}](charts/{chart})
"""
        )
    return "\n".join(parts)


def _roundtrips(results: dict[str, Any]) -> str:
    if "roundtrips" not in results:
        return ""
    libraries = _libraries(results)
    parts = [
        f"""## 2. Round trips per decision

Counted by the servers over {results["settings"]["roundtrip_decisions"]} decisions per
cell. Redis: commands the client sent, seen through `MONITOR` (scripts' own calls,
marked `lua`, excluded; no library pipelines a decision, so each is a round trip), and
in brackets the commands executed by the server (`INFO commandstats`, which counts the
calls made inside scripts too). Memcached: `stats` counters (`cmd_get` + `cmd_set` +
`cmd_touch` + incr/decr/delete hits and misses); `cmd_get` counts keys, not requests.
"""
    ]
    for store in ("redis", "memcached"):
        rows = []
        for strategy in STRATEGIES:
            cells = [STRATEGY_TITLES[strategy]]
            for library in libraries:
                row = _find(results["roundtrips"], library=library, store=store, strategy=strategy)
                status = _status_cell(row)
                if status is not None:
                    cells.append(status)
                    continue
                assert row is not None
                text = f"{row['round_trips']:.2f}"
                if store == "redis":
                    text += f" ({row['commands_executed']:.1f})"
                detail = ", ".join(f"{name} {n:g}" for name, n in row.get("by_command", {}).items())
                cells.append(f"{text}<br><sub>{detail}</sub>")
            rows.append(cells)
        parts.append(f"### {STORE_TITLES[store]}\n\n{_table(['strategy', *libraries], rows)}\n")
    return "\n".join(parts)


def _fastapi(results: dict[str, Any], chart_dir: Path) -> str:
    if "asgi" not in results and "http" not in results:
        return ""
    settings = results["settings"]
    parts = [
        """## 3. Latency one throttle adds to a FastAPI route

Each library's app has `GET /plain` and `GET /throttled`, identical but for one
throttle (the library's default strategy, its in-process store, 1,000,000 per hour):
ratescript `Depends(HTTPThrottle(...))`, traffik `Depends(HTTPThrottle(...))`, slowapi
`@limiter.limit(...)`, fastapi-limiter `Depends(RateLimiter(limiter=Limiter(Rate(...))))`.
`Depends(no-op)` is FastAPI's own price for a dependency taking the request: a floor
for every `Depends`-based throttle. The rows "ratescript (@throttled)" and "ratescript
(middleware)" are the same throttle put on the route by `@throttled(throttle)` (which
asks FastAPI for the request, not for a dependency) and by `ThrottleMiddleware`; the
targets judge the `Depends` row.
"""
    ]
    if "asgi" in results:
        rows = []
        for row in results["asgi"]:
            status = _status_cell(row)
            if status is not None:
                rows.append(
                    [row["library"], row.get("strategy", ""), status, "", "", "", row["detail"]]
                )
                continue
            rows.append(
                [
                    row["library"],
                    STRATEGY_TITLES.get(row["strategy"], row["strategy"]),
                    _us(row["plain"]["median_us"]),
                    _us(row["throttled"]["median_us"]),
                    f"**{_us(row['added_median_us'])}**",
                    _us(row["added_p99_us"]),
                    "",
                ]
            )
        parts.append(
            f"""### In process: direct ASGI calls

`await app(scope, receive, send)` with a scope the harness builds (no HTTP, no client),
{settings["asgi_rounds"]} rounds of {settings["asgi_batch"]} calls per route; in each
round a library's two routes run back to back (their order alternating), and the added
latency is the median over rounds of the difference of the two batches' medians.

{_table(ASGI_HEADER, rows)}
"""
        )
    if "http" in results:
        rows = []
        for row in results["http"]:
            status = _status_cell(row)
            if status is not None:
                rows.append([row["library"], status, "", "", "", "", "", row["detail"]])
                continue
            rows.append(
                [
                    row["library"],
                    _us(row["plain"]["p50_us"]),
                    _us(row["throttled"]["p50_us"]),
                    _us(row["added_p50_us"]),
                    _us(row["added_p99_us"]),
                    f"{row['plain']['rps']:,.0f} → {row['throttled']['rps']:,.0f}",
                    f"**{_us(row['added_service_us'])}**",
                    f"{row['plain']['errors'] + row['throttled']['errors']:.0f} failed",
                ]
            )
        parts.append(
            f"""### Over HTTP: uvicorn and {results["machine"].get("load_generator", "wrk")}

One uvicorn worker per library (all started together, idle but the one under load),
{settings["http_connections"]} connections, {settings["http_rounds"]} round(s) of
{settings["http_seconds"]:g} s per route, libraries rotated; medians over rounds, each
"added" figure the median over rounds of the difference between a round's two runs
(back to back). The load generator shares the two cores with the server, so latencies
include queueing; "added service µs" is the server's extra time per request, `1e6/rps`
throttled minus plain (a saturated worker's service time), the steadier figure.

{_table(HTTP_HEADER, rows)}
"""
        )
    chart = charts.fastapi(results, chart_dir)
    parts.append(f"![FastAPI added latency](charts/{chart})\n")
    return "\n".join(parts)


def _wall_cell(row: dict[str, Any]) -> str:
    """The median wall time of a contention row, and the range of its runs."""
    if "wall_s" not in row:
        return "–"
    runs = row.get("wall_runs", [])
    spread = f" ({runs[0]:.2f}–{runs[-1]:.2f})" if len(runs) > 1 else ""
    return f"{row['wall_s']:.3f}{spread}"


def _contention(results: dict[str, Any], chart_dir: Path) -> str:
    if "contention" not in results:
        return ""
    rows = []
    for row in results["contention"]:
        case = f"{row['processes']}×{row['concurrency']}"
        where = f"{STORE_TITLES[row['store']]}, {STRATEGY_TITLES[row['strategy']]}"
        status = _status_cell(row)
        if row.get("status") == "n/a":
            rows.append([case, where, row["library"], "n/a", "", "", "", ""])
            continue
        if status is not None and "admitted" not in row:
            rows.append([case, where, row["library"], status, "", "", "", row["detail"]])
            continue
        exact = "yes" if row.get("exact_admission") else "**no**"
        errors = str(row.get("errors", ""))
        detail = row.get("first_error") or row.get("detail") or ""
        if row.get("warm_up_errors"):
            detail = f"warm-up: {row['warm_up_errors']} errors ({row['warm_up_error']}); " + detail
        rows.append(
            [
                case,
                where,
                row["library"],
                f"{row.get('admitted')} / {row.get('exact')}",
                exact,
                errors,
                _wall_cell(row),
                detail[:160],
            ]
        )
    chart = charts.contention(results, chart_dir)
    return f"""## 4. Contended accuracy and time

P processes × C concurrent hits on one key (`asyncio.gather` in each process), on Redis
and Memcached. The limit is half the hits with a window of a week, so exactly that many
must be admitted. Each process first warms its library with C concurrent hits on another
key, one process at a time (a busy worker's connection pool is warm, and a cold one costs
more than the decisions; P pools opened at once overflow the server's listen backlog),
then all start together at a barrier. Wall time: first start to last end. Each library
runs each case several times, the libraries in turn (the order rotated between
repeats): the wall time is the median run, the range of the runs in brackets; a row is
exact only if every run was, and shows its worst run's admitted count and errors. A
process still running after 60 s dumps its stacks and the case is reported as hung,
with where.

{_table(CONTENTION_HEADER, rows)}

![contention wall time](charts/{chart})
"""


def _memory(results: dict[str, Any], chart_dir: Path) -> str:
    if "memory" not in results:
        return ""
    libraries = _libraries(results)
    rows = []
    for row_store in ("memory", "redis"):
        for strategy in ("fixed_window", "token_bucket", "gcra", "sliding_log"):
            cells = [STORE_TITLES[row_store], STRATEGY_TITLES[strategy]]
            for library in libraries:
                row = _find(results["memory"], library=library, store=row_store, strategy=strategy)
                status = _status_cell(row)
                if status is not None:
                    cells.append(status)
                    continue
                assert row is not None
                check = _find(
                    results.get("check", []), library=library, store=row_store, strategy=strategy
                )
                text = f"{row['bytes_per_key']:.0f}"
                if row_store == "redis":
                    text += f" ({row['redis_keys_per_key']:.2f} keys)"
                if check is not None and not check.get("independent_keys", True):
                    text += " †"
                cells.append(text)
            rows.append(cells)
    chart = charts.memory(results, libraries, chart_dir)
    keys = results["settings"]["memory_keys"]
    return f"""## 5. Memory per limited key

{keys:,} distinct keys, one hit each, at 100 per hour (so every state outlives the
measure). Redis: the sum of `MEMORY USAGE … SAMPLES 0` over every key in the library's
own namespace (state, locks, fences, indexes), divided by the keys limited; in brackets,
Redis keys per limited key. In process: the `tracemalloc` delta over the hits divided by
the keys. †: one bucket for every key — no per-key state to count.

{_table(["store", "strategy (bytes)", *libraries], rows)}

![memory per key](charts/{chart})
"""


def _targets(results: dict[str, Any]) -> str:
    lines = results.get("targets", [])
    if not lines:
        return ""
    rows = []
    for line in lines:
        verdict = {True: "met", False: "**missed**", None: "no verdict"}[line["met"]]
        value = line["value"]
        shown = "–" if value is None or math.isnan(value) else f"{value:.2f}"
        rows.append([line["target"], line["measured"], shown, verdict])
    misses = [line for line in lines if line["met"] is False]
    explained = []
    done: set[str] = set()
    for line in misses:
        key = REASONS.key_for(line)
        if key in done:
            continue
        done.add(key)
        text = REASONS.text(key, results, line)
        profile = _profile(results, line)
        explained.append(f"**{line['target']}** — {text}\n{profile}")
    met = sum(1 for line in lines if line["met"])
    return f"""## Targets (issue 6)

Ratios from this run: a peer's figure over ratescript's (for speed, above the threshold
is met). {met} of {len(lines)} met.

{_table(["target", "measured", "ratio / value", "verdict"], rows)}

### What limits the misses

{chr(10).join(explained) if explained else "Nothing missed."}
"""


def _profile(results: dict[str, Any], line: dict[str, Any]) -> str:
    subject = line.get("profile")
    if not subject:
        return ""
    store, strategy = subject
    name = f"{store}/{strategy}" if strategy else store
    profiles = results.get("profiles", {}).get(name)
    if not profiles:
        return ""
    blocks = []
    for who, profile in profiles.items():
        if "error" in profile:
            blocks.append(f"- profile of {who}: {profile['error']}")
            continue
        shares = ", ".join(
            f"{package} {share * 100:.0f}%"
            for package, share in profile["by_package"].items()
            if share >= 0.02
        )
        rows = [
            [
                f"`{row['function']}`",
                f"{row['self_share'] * 100:.0f}%",
                _us(row["self_us_per_decision"]),
                f"{row['calls_per_decision']:g}",
            ]
            for row in profile["top"][:8]
        ]
        blocks.append(
            f"- {who}: {_us(profile['profiled_us_per_call'])} µs per call under cProfile; "
            f"self time by owner: {shares}.\n\n"
            f"<details><summary>top functions by self time</summary>\n\n"
            + _table(["function", "self share", "self µs / call", "calls / call"], rows)
            + "\n\n</details>\n"
        )
    return "\n" + "\n".join(blocks) + "\n"


def write(results: dict[str, Any], path: Path, chart_dir: Path) -> None:
    chart_dir.mkdir(parents=True, exist_ok=True)
    body = [
        _header(results),
        _summary(results),
        _capabilities(results),
        _decisions(results, chart_dir),
        _roundtrips(results),
        _fastapi(results, chart_dir),
        _contention(results, chart_dir),
        _memory(results, chart_dir),
        _targets(results),
        """## Rerun

```
make bench-peers                      # the full run (~10 min, idle machine)
make bench-peers PEERS_ARGS=--quick   # the dry run (< 2 min)
benchmarks/peers/.venv/bin/python benchmarks/peers/run.py --check   # the check only
```
""",
    ]
    path.write_text("\n".join(part.rstrip() + "\n" for part in body if part))
