"""The main job of ``make demo``: run built-in scripts and show what the generated code did.

It drives the token bucket, fixed window and sliding log scripts with a simulated
clock on the in-process (Python) target, printing each decision and the bytes
left stored, and — where ``lupa`` is installed — runs the same hits on the Lua
target to show both agree.
"""

from __future__ import annotations

from typing import TextIO

from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.conformance.executors import Executor, PythonExecutor
from ratescript.scriptdsl.script import Script

__all__ = ["run_demo"]

# (script, arguments, label): each admits 3 hits per second.
_SCENARIOS: tuple[tuple[Script, tuple[float, ...], str], ...] = (
    (token_bucket, (3.0, 1000.0, 1.0), "token bucket: capacity 3, refill 3 per 1000 ms"),
    (fixed_window, (3.0, 1000.0, 1.0), "fixed window: 3 per 1000 ms window"),
    (sliding_log, (3.0, 1000.0, 1.0), "sliding log: 3 in any 1000 ms"),
)
# Hit times in ms: a burst, a pause, another burst.
_HITS = (0.0, 100.0, 200.0, 300.0, 400.0, 1150.0, 1200.0, 1250.0, 2500.0)
_START_MS = 1_700_000_000_000.0


def _lua_executor() -> Executor | None:
    try:
        from ratescript.conformance.executors import LuaExecutor

        return LuaExecutor()
    except ImportError:
        return None


def run_demo(out: TextIO) -> None:
    out.write("ratescript demo: built-in scripts on the in-process target\n\n")
    for script, args, label in _SCENARIOS:
        python = PythonExecutor(encoded=False)
        lua = _lua_executor()
        out.write(f"== {label}\n")
        out.write(
            f"   script `{script.name}`: {len(script.python_source.splitlines())} lines "
            f"of Python, {len(script.lua_source.splitlines())} lines of Lua "
            f"(sha {script.lua_sha[:12]})\n"
        )
        out.write(
            "   t(ms)  verdict  remaining  wait(ms)  stored" + ("  lua" if lua else "") + "\n"
        )
        agreed = True
        for offset in _HITS:
            now = _START_MS + offset
            decision = python.run(script, ["demo"], args, now)
            stored = python.state(now, ["demo"]).get("demo", b"").decode()
            line = (
                f"   {offset:5.0f}  {'allow' if decision.allowed else 'DENY ':5}  "
                f"{decision.remaining:9.3g}  {decision.wait_ms:8.1f}  {stored:<28}"
            )
            if lua is not None:
                same = lua.run(script, ["demo"], args, now) == decision
                same = same and lua.state(now, ["demo"]) == python.state(now, ["demo"])
                agreed = agreed and same
                line += "  same" if same else "  DIFFERENT"
            out.write(line.rstrip() + "\n")
        if lua is not None:
            verdict = "identical decisions and stored bytes" if agreed else "DISAGREEMENT"
            out.write(f"   Python target vs Lua target (lupa, Lua 5.1): {verdict}\n")
        out.write("\n")
    out.write(
        "See the generated code: python -m ratescript compile "
        "ratescript.builtin_scripts:token_bucket --target lua\n"
    )
