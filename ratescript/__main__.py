"""Command line: ``python -m ratescript compile MODULE:NAME`` and ``python -m ratescript demo``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ratescript.exceptions import RatescriptError
from ratescript.scriptdsl.script import Script

__all__ = ["main"]


def load_script(reference: str) -> Script:
    """The ``Script`` named by ``package.module:name``."""
    module_name, _colon, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise SystemExit(
            f"expected MODULE:NAME (e.g. ratescript.builtin_scripts:token_bucket), "
            f"got {reference!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"cannot import {module_name!r}: {exc}") from None
    found = getattr(module, attribute, None)
    if not isinstance(found, Script):
        raise SystemExit(f"{reference!r} is not a script (decorate it with @script)")
    return found


def compile_command(reference: str, target: str, readonly: bool) -> str:
    compiled = load_script(reference)
    if readonly:
        compiled = compiled.readonly
    if target == "python":
        return compiled.python_source
    if target == "lua":
        return compiled.lua_source
    if target in ("memory", "memory-wait", "memory-check"):
        if compiled.key_count != 1:
            raise SystemExit(
                f"script `{compiled.name}` takes {compiled.key_count} keys: the in-process "
                "target fuses single-key scripts only (others run the python target)"
            )
        if target == "memory-wait":
            return compiled.memory_wait_source
        if target == "memory-check":
            return compiled.memory_check_source
        return compiled.memory_source or ""  # a single-key script always has it
    return compiled.memcached_plan.describe()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ratescript")
    commands = parser.add_subparsers(dest="command", required=True)
    compile_parser = commands.add_parser("compile", help="print the generated code of a script")
    compile_parser.add_argument("script", help="MODULE:NAME of a @script function")
    compile_parser.add_argument(
        "--target",
        choices=("python", "lua", "memcached", "memory", "memory-wait", "memory-check"),
        default="python",
        help="memory: the in-process runner; memory-wait: the one `await strategy(...)` runs; "
        "memory-check: a throttle's without rate-limit headers",
    )
    compile_parser.add_argument(
        "--readonly", action="store_true", help="print the read-only twin instead"
    )
    demo_parser = commands.add_parser(
        "demo", help="serve an example app with uvicorn, drive traffic, print a table"
    )
    demo_parser.add_argument(
        "--scripts",
        action="store_true",
        help="instead: built-in scripts step by step on a simulated clock, Python vs Lua",
    )
    options = parser.parse_args(argv)
    try:
        if options.command == "compile":
            sys.stdout.write(compile_command(options.script, options.target, options.readonly))
            return 0
        from ratescript.demo import run_demo, run_script_demo

        if options.scripts:
            run_script_demo(sys.stdout)
        else:
            run_demo(sys.stdout)
        return 0
    except RatescriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
