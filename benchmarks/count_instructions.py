"""Instructions per in-process decision, counted by valgrind: a figure that noise spares.

Run with ``.venv/bin/python benchmarks/count_instructions.py`` (needs ``valgrind``;
``apt-get install valgrind``). Wall-clock times on a shared two-core machine move by 2x
from one minute to the next; the instructions a decision executes do not. For each
strategy this runs ``await strategy.hit(key, rate, store)`` on an ``InMemoryStore``
``SMALL`` and ``LARGE`` times, each under callgrind, and reports the difference per
decision, so start-up and imports cancel out. The store keeps its default wall clock,
as an app runs it: a test clock written in Python costs ~500 instructions a decision
(the figures of the first six sessions include one).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys

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


async def decide(name: str, count: int) -> None:
    strategy = STRATEGIES[name]
    store = InMemoryStore()  # the wall clock, as an app runs it (see the module's doc)
    rate = Rate(10**9, hours=1)  # never runs dry: every hit writes
    for _ in range(count):
        await strategy.hit("k", rate, store)


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
    options = parser.parse_args()
    if options.run:
        asyncio.run(decide(options.run[0], int(options.run[1])))
        return
    print("in process (InMemoryStore), instructions per `await strategy.hit(...)`")
    for name in STRATEGIES:
        per_decision = (instructions(name, LARGE) - instructions(name, SMALL)) / (LARGE - SMALL)
        print(f"  {name:<14} {per_decision:9,.0f}")


if __name__ == "__main__":
    main()
