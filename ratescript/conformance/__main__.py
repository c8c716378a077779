"""``python -m ratescript.conformance --store mypkg.mod:factory``: certify a store.

Runs the conformance machine against the store (next to the Python target and the
Lua target on lupa) and exits 0 when every decision and stored value agree, 1 with
the smallest disagreeing run printed otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pytest

from ratescript.conformance.machine import ConformanceFailure, check_stores
from ratescript.conformance.plugin import load_factory

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ratescript.conformance")
    parser.add_argument(
        "--store",
        action="append",
        required=True,
        metavar="MODULE:FACTORY",
        help="factory(namespace=..., clock=...) returning the store to certify (repeatable)",
    )
    parser.add_argument("--examples", type=int, default=40, help="generated runs (default 40)")
    parser.add_argument("--steps", type=int, default=30, help="steps per run (default 30)")
    parser.add_argument(
        "--no-shrink",
        action="store_true",
        help="report the first disagreeing run as found, not shrunk to the smallest "
        "(shrinking can take minutes)",
    )
    options = parser.parse_args(argv)
    try:
        factories = {reference: load_factory(reference) for reference in options.store}
    except pytest.UsageError as exc:
        parser.error(str(exc))
    names = ", ".join(options.store)
    print(
        f"certifying {names}: {options.examples} runs of up to {options.steps} steps"
        + ("" if options.no_shrink else "; a disagreement is shrunk to its smallest run"),
        file=sys.stderr,
        flush=True,
    )
    try:
        check_stores(
            factories,
            max_examples=options.examples,
            steps=options.steps,
            shrink=not options.no_shrink,
        )
    except ConformanceFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        # Hypothesis attaches the smallest disagreeing run (parameters drawn, then each
        # hit and clock step) as notes on the exception; ``str`` leaves them out.
        for note in getattr(exc, "__notes__", ()):
            print(note, file=sys.stderr)
        return 1
    print(f"conforms: {names} ({options.examples} runs of up to {options.steps} steps)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
