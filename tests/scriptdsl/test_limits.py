"""A script too large for a target fails when decorated, with the DSL line, never later.

The front end bounds how deep blocks and expressions nest (the compiler walks both
recursively); the Lua target checks Lua 5.1's own limits on what it writes (200
locals, 200 parser levels, 250 registers), which Redis would otherwise report only
when it first loads the script; the generated Python is compiled once, and Python's
limits (indentation, parentheses, nested loops) are reported at the DSL line. Scripts
within the limits load in Lua 5.1 (lupa's, which is as strict as Redis's or more).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import sys
from pathlib import Path

import pytest
from lupa import lua51

from ratescript.exceptions import ScriptCompileError
from ratescript.scriptdsl import Key, allow, script
from ratescript.scriptdsl.script import Script

HEADER = (
    "from ratescript.scriptdsl import Key, Log, Record, allow, deny, script, window_index\n\n\n"
)
_modules = itertools.count()


def compile_source(directory: Path, source: str) -> Script:
    """Decorate the script ``s`` of ``source``, written to a module file of its own."""
    name = f"limits_{next(_modules)}"
    path = directory / f"{name}.py"
    path.write_text(HEADER + source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    compiled = module.s
    assert isinstance(compiled, Script)
    return compiled


def refused(directory: Path, source: str, fragment: str) -> ScriptCompileError:
    """The error of ``source``, at its line marked ``# <- here``."""
    with pytest.raises(ScriptCompileError) as caught:
        compile_source(directory, source)
    exc = caught.value
    assert fragment in exc.message, exc.message
    assert "(in script `s`)" in exc.message
    lines = (HEADER + source).splitlines()
    marked = [number for number, text in enumerate(lines, 1) if text.endswith("# <- here")]
    assert marked == [exc.lineno], (exc.lineno, exc.message)
    assert str(exc).splitlines()[-1].strip() == lines[exc.lineno - 1].strip()
    return exc


def loads_in_lua(compiled: Script) -> None:
    """Every Lua of the script and of its read-only twin loads in Lua 5.1."""
    lua = lua51.LuaRuntime(encoding=None)
    for each in (compiled, compiled.readonly):
        for source in (each.lua_source, each.lua_batch_source):
            loaded = lua.execute(b"return loadstring(...)", source.encode(), b"@user_script")
            assert callable(loaded), loaded


def nested_ifs(depth: int) -> str:
    lines = ["@script", "def s(k: Key[float], a: float):"]
    lines += ["    " * (level + 1) + f"if a > {level}:" for level in range(depth)]
    lines.append("    " * (depth + 1) + "return allow(remaining=a)  # <- here")
    lines.append("    return allow()")
    return "\n".join(lines) + "\n"


def test_blocks_nested_too_deep_fail_at_the_block(tmp_path: Path) -> None:
    """In the 65th block; generated Python would be past 100 levels of indentation at 97."""
    refused(tmp_path, nested_ifs(65), "blocks nest more than 64 deep")
    loads_in_lua(compile_source(tmp_path, nested_ifs(64)))


def test_a_long_elif_chain_fails_at_the_block_not_with_a_recursion_error(tmp_path: Path) -> None:
    lines = ["@script", "def s(k: Key[float], a: float):"]
    for branch in range(500):
        lines.append(f"    {'elif' if branch else 'if'} a < {branch}:")
        end = "  # <- here" if branch == 64 else ""  # the 65th block: its body
        lines.append(f"        return allow(remaining={branch}){end}")
    lines.append("    return allow()")
    refused(tmp_path, "\n".join(lines) + "\n", "(each `elif` counts as one more)")


def test_an_expression_nested_too_deep_fails_at_its_line(tmp_path: Path) -> None:
    total = " + ".join(["a"] * 102)  # a left-leaning tree of 101 sums
    source = f"@script\ndef s(k: Key[float], a: float):\n    x = {total}  # <- here\n"
    refused(tmp_path, source + "    return allow(remaining=x)\n", "nests more than 100 deep")
    tests = " and ".join(["a > 0"] * 101)  # one `and` of 101, as deep in the IR
    source = f"@script\ndef s(k: Key[float], a: float):\n    if {tests}:  # <- here\n"
    source += "        return allow()\n    return deny(wait_ms=1)\n"
    refused(tmp_path, source, "nests more than 100 deep")


def test_python_limits_are_compile_errors_at_the_dsl_line(tmp_path: Path) -> None:
    # `window_index` is five parentheses deep in generated Python: 45 of them, 225.
    expression = "a"
    for _ in range(45):
        expression = f"window_index({expression}, a)"
    source = f"@script\ndef s(k: Key[float], a: float):\n    x = {expression}  # <- here\n"
    refused(tmp_path, source + "    return allow(remaining=x)\n", "Python (too many nested paren")
    # Python nests at most 20 loops (and `try`s) in one function: the author's 20 loops
    # are Python, but the in-process runner holds its body in a `try`.
    lines = ["@script", "def s(k: Key[Log], a: float):", "    log = k.get()"]
    for level in range(20):
        end = "  # <- here" if level == 18 else ""
        lines.append("    " * (level + 1) + f"for t{level}, n{level} in log:{end}")
    lines += ["    " * 21 + "break", "    return allow()"]
    refused(tmp_path, "\n".join(lines) + "\n", "Python (too many statically nested blocks)")


def test_a_recursion_error_while_compiling_is_a_compile_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The limits keep the compiler's recursion shallow; should Python's own limit be
    near anyway (a caller deep in recursion), the script still fails as a script."""

    def fine(k: Key[float], a: float):  # type: ignore[no-untyped-def]
        return allow(remaining=a)

    def too_deep(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    # The module, not the decorator `ratescript.scriptdsl.script` names.
    monkeypatch.setattr(importlib.import_module(Script.__module__), "lower_function", too_deep)
    with pytest.raises(ScriptCompileError, match="nests too deeply to compile") as caught:
        script(fine)
    assert caught.value.lineno == fine.__code__.co_firstlineno
    assert "(in script `fine`)" in caught.value.message
