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
import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


def variables(count: int) -> str:
    lines = ["@script", "def s(k: Key[float], a: float):  # <- here"]
    lines += [f"    v{i} = a + {i}" for i in range(count)]
    lines.append(f"    return allow(remaining=v{count - 1})")
    return "\n".join(lines) + "\n"


def test_more_locals_than_lua_takes_fail_at_the_script(tmp_path: Path) -> None:
    refused(tmp_path, variables(201), "Lua 5.1's 200 locals")
    loads_in_lua(compile_source(tmp_path, variables(170)))


def metadata(count: int) -> str:
    fields = ", ".join(f"m{i}=a" for i in range(count))
    return f"@script\ndef s(k: Key[float], a: float):\n    return allow({fields})  # <- here\n"


def test_a_verdict_wider_than_lua_registers_fails_at_its_line(tmp_path: Path) -> None:
    refused(tmp_path, metadata(250), "Lua 5.1's registers")
    loads_in_lua(compile_source(tmp_path, metadata(220)))


def right_leaning(depth: int) -> str:
    expression = "a"
    for _ in range(depth):
        expression = f"a * ({expression})"
    return f"@script\ndef s(k: Key[float], a: float):\n    x = {expression}  # <- here\n" + (
        "    return allow(remaining=x)\n"
    )


def test_an_expression_deeper_than_lua_parses_fails_at_its_line(tmp_path: Path) -> None:
    refused(tmp_path, right_leaning(99), "Lua 5.1's parser")
    loads_in_lua(compile_source(tmp_path, right_leaning(90)))


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


@st.composite
def large_scripts(draw: st.DrawFn) -> str:
    """Scripts near Lua's limits: many variables and fields, wide verdicts, deep nesting
    (the sizes drawn, the expressions from a seed: Hypothesis draws little data)."""
    fields, depth, count, ifs, loops, width = (
        draw(st.integers(1, 50)),
        draw(st.integers(1, 45)),
        draw(st.integers(0, 150)),
        draw(st.integers(0, 60)),
        draw(st.integers(0, 4)),
        draw(st.integers(0, 160)),
    )
    rng = random.Random(draw(st.integers(0, 2**32)))
    names = ["a", "b", "n", "r.f0"]

    def expression(depth: int) -> str:
        if depth <= 0 or rng.random() < 0.1:
            return rng.choice([*names, "1", "-2", "0.5"])
        inner, other = expression(depth - 1), expression(rng.randint(0, 2))
        return rng.choice(
            [
                f"({inner} + {other})",
                f"({other} - ({inner}))",
                f"({other} / ({inner}))",
                f"({inner} // {other})",
                f"({other} % ({inner}))",
                f"-({inner})",
                f"max({other}, {inner}, {other})",
                f"({inner} if {other} > ({inner}) else {other})",
                f"window_index({inner}, {other})",
            ]
        )

    lines = ["class R(Record):", *(f"    f{i}: float" for i in range(fields)), ""]
    lines += ["@script", "def s(k: Key[R], c: Key[float], g: Key[Log], a: float, b: float):"]
    body = [f"r = k.get(default=R({', '.join(['a'] * fields)}))", "n = c.get(default=a)"]
    body.append("log = g.get()")
    for i in range(count):
        body.append(f"v{i} = {expression(1)}")
        names.append(f"v{i}")
    body.append(f"x = {expression(depth)}")
    for level in range(ifs):
        body.append(f"{'    ' * level}if {expression(1)} > {level}:")
    indent = "    " * ifs
    for level in range(loops):  # keys are written after the loops
        body.append(f"{indent}{'    ' * level}for t{level}, w{level} in log:")
        body.append(f"{indent}{'    ' * (level + 1)}x = x + {expression(2)}")
    body.append(f"{indent}k.set(R({', '.join(expression(1) for _ in range(fields))}), ttl_ms=x)")
    body.append(f"{indent}log.append(x, {expression(2)})")
    body.append(f"{indent}g.set(log)")
    verdict = "".join(f", m{i}={expression(1)}" for i in range(width))
    body.append(f"{indent}return allow(remaining=x{verdict})")
    if ifs:
        body.append("return deny(wait_ms=1)")
    lines += [f"    {line}" for line in body]
    return "\n".join(lines) + "\n"


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(source=large_scripts())
def test_every_script_the_compiler_takes_loads_in_lua(tmp_path: Path, source: str) -> None:
    try:
        compiled = compile_source(tmp_path, source)
    except ScriptCompileError:
        return  # refused when decorated: what a script too large must do
    loads_in_lua(compiled)
