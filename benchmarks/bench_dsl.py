"""Benchmark: the cost of one decision on the Python target and on the lupa Lua runner.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_dsl.py``). Prints
the median and p99 of per-decision time over many batches, for the token bucket,
fixed window and sliding log (with 1,000 live entries). The issue's targets: a
token-bucket decision on the Python target at most 3 µs median, on the lupa
runner at most 15 µs.

What is timed:
* "python compute": the generated function alone, given the decoded state (what
  the in-process store calls);
* "python bytes": decode + compute + encode of the state (what a Memcached plan does);
* "lupa runner": one EVALSHA on the Lua emulator, state kept inside Lua.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.conformance.executors import LuaExecutor, PythonExecutor, encode_args
from ratescript.scriptdsl.runtime import KEEP
from ratescript.scriptdsl.script import Script

BATCH = 200


def measure(call: Callable[[], object], batches: int) -> tuple[float, float]:
    """Median and p99 of the mean per-call time (µs) over ``batches`` batches."""
    for _ in range(BATCH * 5):  # warm up
        call()
    samples = []
    for _ in range(batches):
        start = time.perf_counter_ns()
        for _ in range(BATCH):
            call()
        samples.append((time.perf_counter_ns() - start) / BATCH / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def python_compute(script: Script, args: tuple[float, ...], warm: int) -> Callable[[], object]:
    """The compute step alone, on state that evolves like a busy key's."""
    state: list[object] = [None]
    clock = [1.7e12]
    compute = script.compute
    for _ in range(warm):
        clock[0] += 1.0
        result = compute(clock[0], state[0], *args)
        if result[5][0] is not KEEP:
            state[0] = result[5][0]
    frozen = state[0]

    def call() -> object:
        clock[0] += 0.001
        return compute(clock[0], frozen, *args)

    return call


def python_bytes(script: Script, args: tuple[float, ...], warm: int) -> Callable[[], object]:
    executor = PythonExecutor(encoded=True)
    clock = [1.7e12]
    for _ in range(warm):
        clock[0] += 1.0
        executor.run(script, ["k"], args, clock[0])

    def call() -> object:
        clock[0] += 0.001
        return executor.run(script, ["k"], args, clock[0])

    return call


def lupa_runner(script: Script, args: tuple[float, ...], warm: int) -> Callable[[], object]:
    executor = LuaExecutor()
    clock = [1.7e12]
    for _ in range(warm):
        clock[0] += 1.0
        executor.run(script, ["k"], args, clock[0])
    emulator = executor.emulator
    sha = script.lua_sha
    keys = ["k"]

    def call() -> object:
        clock[0] += 0.001
        executor.now = clock[0]
        return emulator.evalsha(sha, keys, encode_args(clock[0], args))

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300)
    options = parser.parse_args()
    # (script, args, warm-up hits that shape the state)
    cases = (
        (token_bucket, (1e9, 1000.0, 1.0), 10),
        (fixed_window, (1e9, 1e12, 1.0), 10),
        # a limit high enough to keep admitting, 1,000 live entries 1 ms apart
        (sliding_log, (1e9, 1e12, 1.0), 1000),
    )
    print(
        f"# ratescript DSL benchmark — {time.strftime('%Y-%m-%d')}, Python "
        f"{platform.python_version()}, {platform.machine()}"
    )
    print(f"{'script':<14} {'executor':<16} {'median µs':>10} {'p99 µs':>10}")
    for script, args, warm in cases:
        for label, build in (
            ("python compute", python_compute),
            ("python bytes", python_bytes),
            ("lupa runner", lupa_runner),
        ):
            median, p99 = measure(build(script, args, warm), options.batches)
            print(f"{script.name:<14} {label:<16} {median:10.2f} {p99:10.2f}")


if __name__ == "__main__":
    main()
