"""ratescript against its peers — traffik, slowapi (limits), fastapi-limiter — in one run.

``make bench-peers`` builds ``benchmarks/peers/.venv`` and runs this file there; it
starts redis-server and memcached on free ports (``ratescript.conformance.servers``),
checks every library's decisions, then measures, libraries interleaved round by round
(their order rotated every round) so drift hits all alike:

1. decision cost per strategy and store (median, p99 µs) and the store floors;
2. round trips per decision, counted by Redis (``MONITOR``, ``INFO commandstats``) and
   Memcached (``stats``);
3. the latency one throttle adds to a FastAPI route: direct ASGI calls, then HTTP
   (uvicorn and wrk);
4. contended accuracy and wall time: P processes × C concurrent hits on one key;
5. memory per limited key, on Redis (``MEMORY USAGE``) and in process (tracemalloc).

It writes ``benchmarks/peers/results.json``, ``benchmarks/RESULTS.md`` and
``benchmarks/charts/*.png``. ``--quick`` is a dry run (under two minutes); ``--check``
only checks the decisions; ``--report-only`` renders the report from the last results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import machine
from adapters import ADAPTERS, STORES, Servers, import_errors, install_errors
from common import Settings

PEERS = Path(__file__).resolve().parent
BENCHMARKS = PEERS.parent
RESULTS_JSON = PEERS / "results.json"
MEASURES = ("decisions", "roundtrips", "asgi", "http", "contention", "memory")


def _servers(stack: contextlib.ExitStack) -> Servers:
    from ratescript.conformance import servers

    redis_url = stack.enter_context(servers.server_url(servers.REDIS))
    memcached_url = stack.enter_context(servers.server_url(servers.MEMCACHED))
    return Servers(redis_url, memcached_url, time.strftime("%m%d%H%M%S"))


def _print_check(rows: list[dict[str, Any]]) -> bool:
    bad = False
    for row in rows:
        if row["status"] in ("FAIL", "error"):
            bad = True
        if row["status"] != "ok" or row.get("detail"):
            print(
                f"  check {row['library']:<16} {row['store']:<9} {row['strategy']:<16}"
                f" {row['status']:<5} {row.get('detail', '')}"
            )
    print(f"  check: {'some FAILED' if bad else 'every available decision is sane'}", flush=True)
    return not bad


def run(options: argparse.Namespace) -> dict[str, Any]:
    import contention
    import decisions
    import fastapi_latency
    import memory
    import roundtrips
    import targets

    settings = Settings.make(options.quick)
    info = machine.describe()
    info["load_generator"] = fastapi_latency.load_generator()
    errors = import_errors()
    adapters = [a for a in ADAPTERS if a.name not in errors]
    results: dict[str, Any] = {
        "machine": info,
        "settings": settings.__dict__,
        "import_errors": errors,
        "install_errors": install_errors(),
        "notes": {a.name: a.notes() for a in ADAPTERS},
        "command": " ".join(["run.py", *sys.argv[1:]]),
    }
    for name, error in results["install_errors"].items():
        print(f"  {name} did not install: {error}", flush=True)
    for name, error in errors.items():
        print(f"  {name} cannot be measured: {error}", flush=True)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        servers = _servers(stack)
        stores = list(STORES)
        results["check"] = asyncio.run(decisions.check(adapters, servers, stores))
        results["check_passed"] = _print_check(results["check"])
        if options.check:
            return results
        wanted = set(options.only or MEASURES)
        if "decisions" in wanted:
            results["decisions"] = asyncio.run(
                decisions.decision_costs(adapters, servers, settings, stores)
            )
            results["floors"] = asyncio.run(decisions.floors(servers, settings))
        if "roundtrips" in wanted:
            results["roundtrips"] = asyncio.run(
                roundtrips.round_trips(adapters, servers, settings, ["redis", "memcached"])
            )
        if "asgi" in wanted:
            results["asgi"] = asyncio.run(fastapi_latency.asgi_latency(adapters, servers, settings))
        if "http" in wanted:
            results["http"] = fastapi_latency.http_latency(adapters, servers, settings)
        if "contention" in wanted:
            results["contention"] = contention.contention(adapters, servers, settings)
        if "memory" in wanted:
            results["memory"] = asyncio.run(
                memory.memory_per_key(adapters, servers, settings.memory_keys, ["memory", "redis"])
            )
        results["targets"] = targets.evaluate(results)
        results["profiles"] = asyncio.run(targets.profile_misses(results, servers, settings))
    results["elapsed_s"] = time.monotonic() - started
    machine.finish(info)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a dry run: few rounds (< 2 min)")
    parser.add_argument("--check", action="store_true", help="only check every decision")
    parser.add_argument("--only", nargs="+", choices=MEASURES, help="run only these measures")
    parser.add_argument(
        "--report-only", action="store_true", help="render the report from results.json"
    )
    parser.add_argument("--results", type=Path, default=RESULTS_JSON)
    parser.add_argument(
        "--report",
        type=Path,
        default=BENCHMARKS / "RESULTS.md",
        help="where the report goes (its charts: charts/ beside it)",
    )
    options = parser.parse_args()
    import report

    if options.report_only:
        import targets

        results = json.loads(options.results.read_text())
        results["targets"] = targets.evaluate(results)  # judged again by this code
    else:
        results = run(options)
        if options.check:
            sys.exit(0 if results["check_passed"] else 1)
        options.results.write_text(json.dumps(results, indent=1, default=str) + "\n")
        print(f"  results: {options.results} ({results['elapsed_s']:.0f} s)")
    report.write(results, options.report, options.report.parent / "charts")
    print(f"  report: {options.report}")


if __name__ == "__main__":
    main()
