"""Instructions per in-process decision, counted by valgrind: a figure that noise spares.

Run with ``.venv/bin/python benchmarks/count_instructions.py`` (needs ``valgrind``;
``apt-get install valgrind``). Wall-clock times on a shared two-core machine move by 2x
from one minute to the next; the instructions a decision executes do not. For each
strategy this runs ``await strategy(key, rate, store)`` (the wait alone) and ``await
strategy.hit(key, rate, store)`` (the whole ``Decision``) on an ``InMemoryStore``
``SMALL`` and ``LARGE`` times, each under callgrind, and reports the difference per
decision, so start-up and imports cancel out. The store keeps its default wall clock,
as an app runs it: a test clock written in Python costs ~500 instructions a decision
(the figures of the first six sessions include one). ``--requests`` counts whole
FastAPI requests instead (the apps of ``bench_asgi.py``, driven by direct ASGI calls):
a bare route, the route with a ``Depends`` that only takes the request (what FastAPI
itself charges for one), with ``Depends(throttle)``, and with the throttle's rate-limit
headers; and ``await throttle(request)`` alone, ratescript's part without FastAPI.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys

from starlette.requests import Request

from ratescript.rates import Rate
from ratescript.stores.memory import InMemoryStore
from ratescript.strategies import FixedWindowStrategy, GCRAStrategy, TokenBucketStrategy

STRATEGIES = {
    "token bucket": TokenBucketStrategy(),
    "fixed window": FixedWindowStrategy(),
    "GCRA": GCRAStrategy(burst_tolerance_ms=10**9),
}
SMALL, LARGE = 2_000, 12_000
_COLLECTED = re.compile(rb"Collected : (\d+)")


REQUESTS = (
    "route",
    "Depends(no-op)",
    "Depends(throttle)",
    "Depends(throttle) + headers",
    "await throttle(request)",
)


async def takes_the_request(request: Request) -> Request:
    """A dependency that only takes the request, as a throttle does: FastAPI's own price."""
    return request


async def request(name: str, count: int) -> None:
    from bench_asgi import asgi_call, route_app, throttle
    from fastapi import Depends

    store = InMemoryStore()
    if name == "await throttle(request)":  # ratescript's part alone, without FastAPI
        limited = throttle(store, "direct")
        scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
        connection = Request({**scope, "client": ("10.0.0.1", 1234)})
        for _ in range(count):
            await limited(connection)
        return
    dependencies = {
        "route": [],
        "Depends(no-op)": [Depends(takes_the_request)],
        "Depends(throttle)": [Depends(throttle(store, "plain"))],
        "Depends(throttle) + headers": [Depends(throttle(store, "ietf", headers=True))],
    }[name]
    call = asgi_call(route_app(dependencies), "/")
    for _ in range(count):
        await call()


async def decide(name: str, count: int) -> None:
    if name in REQUESTS:
        await request(name, count)
        return
    strategy_name, _, how = name.partition(":")
    strategy = STRATEGIES[strategy_name]
    store = InMemoryStore()  # the wall clock, as an app runs it (see the module's doc)
    rate = Rate(10**8, hours=1)  # never runs dry: every hit writes (GCRA: interval >= 2**-8 ms)
    if how == "hit":
        for _ in range(count):
            await strategy.hit("k", rate, store)
    else:
        for _ in range(count):
            await strategy("k", rate, store)


def instructions(name: str, count: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--run", name, str(count)]
    found = _COLLECTED.search(subprocess.run(command, capture_output=True, check=True).stderr)
    if found is None:
        raise SystemExit("callgrind printed no count: is valgrind installed?")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs=2, metavar=("STRATEGY", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--requests", action="store_true", help="count FastAPI requests")
    options = parser.parse_args()
    if options.run:
        asyncio.run(decide(options.run[0], int(options.run[1])))
        return
    if options.requests:
        print("FastAPI, in-process store: instructions per request (direct ASGI calls)")
        for name in REQUESTS:  # fewer: a request is ~20 decisions' worth
            per_request = (instructions(name, 3_000) - instructions(name, 1_000)) / 2_000
            print(f"  {name:<28} {per_request:9,.0f}")
        return
    print("in process (InMemoryStore), instructions per decision")
    print(f"  {'':<14} {'strategy(...)':>13} {'.hit(...)':>10}")
    for name in STRATEGIES:
        figures = []
        for how in ("call", "hit"):
            run = f"{name}:{how}"
            figures.append((instructions(run, LARGE) - instructions(run, SMALL)) / (LARGE - SMALL))
        print(f"  {name:<14} {figures[0]:13,.0f} {figures[1]:10,.0f}")


if __name__ == "__main__":
    main()
