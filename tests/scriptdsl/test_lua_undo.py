"""Which writes the Lua target saves first, so that a script failing after them writes nothing.

Redis keeps the writes of a script that fails; the Lua target saves a key before a
write only where the script may still fail after it (``_failing_after``), since the
save costs a ``PTTL`` (and a ``GET``) per decision. These tests pin which scripts pay
it, and that those which do not pay it cannot fail after a write.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ratescript.strategies as strategies
from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.conformance.executors import LuaExecutor
from ratescript.exceptions import CorruptStateError, ScriptRuntimeError
from ratescript.rates import Rate
from ratescript.scriptdsl import Key, allow, script, window_index
from ratescript.scriptdsl.script import Script


def saves(compiled: Script) -> bool:
    return "_rs_undo" in compiled.lua_source


@script
def divides_after(k: Key[float], a: float, b: float):  # type: ignore[no-untyped-def]
    k.set(a)
    return allow(remaining=a / b)


@script
def divided_before(k: Key[float], a: float, b: float):  # type: ignore[no-untyped-def]
    q = a / b
    k.set(q)
    return allow(remaining=a / b)  # b is not zero here: the division above passed


@script
def divided_before_then_changed(k: Key[float], a: float, b: float):  # type: ignore[no-untyped-def]
    q = a / b
    b = b - 1
    k.set(q)
    return allow(remaining=a / b)


@script
def divided_in_one_branch(k: Key[float], a: float, b: float):  # type: ignore[no-untyped-def]
    q = a / b if a > 0 else 0
    k.set(q)
    return allow(remaining=a / b)


@script
def windows_after(k: Key[float], a: float, b: float):  # type: ignore[no-untyped-def]
    k.set(a)
    return allow(remaining=window_index(a, b))  # divides by b


@script
def reads_after(k: Key[float], j: Key[float], a: float):  # type: ignore[no-untyped-def]
    k.set(a)
    v = j.get(default=0)  # may be corrupt
    return allow(remaining=v)


@script
def fails_only_before(k: Key[float], a: float, b: float):  # type: ignore[no-untyped-def]
    v = k.get(default=0)
    if v > a / b:
        return allow(remaining=v)
    k.set(v + 1)
    return allow(remaining=v + 1)


@pytest.mark.parametrize(
    ("compiled", "expected"),
    [
        (divides_after, True),
        (divided_before, False),
        (divided_before_then_changed, True),
        (divided_in_one_branch, True),
        (windows_after, True),
        (reads_after, True),
        (fails_only_before, False),
        (token_bucket, False),
        (fixed_window, False),
        (sliding_log, False),
    ],
    ids=lambda value: value.name if isinstance(value, Script) else str(value),
)
def test_a_write_is_saved_first_only_where_a_failure_may_follow(
    compiled: Script, expected: bool
) -> None:
    assert saves(compiled) is expected
    assert not saves(compiled.readonly)


def test_no_built_in_strategy_pays_for_saving() -> None:
    scripts = [
        strategy().script
        for name in strategies.__all__
        if name.endswith("Strategy")
        and isinstance(strategy := getattr(strategies, name), type)
        and name not in ("Strategy",)
        and _constructible(strategy)
    ]
    assert len(scripts) >= 10
    assert [s.name for s in scripts if saves(s)] == []


def _constructible(strategy: type) -> bool:
    try:
        strategy()
    except TypeError:
        return False
    return True


@pytest.mark.parametrize(
    ("compiled", "args", "error"),
    [
        (divides_after, (2.0, 0.0), ScriptRuntimeError),
        (divided_before_then_changed, (2.0, 1.0), ScriptRuntimeError),  # b - 1 == 0
        (windows_after, (2.0, 0.0), ScriptRuntimeError),
        (reads_after, (2.0,), CorruptStateError),
    ],
    ids=lambda value: value.name if isinstance(value, Script) else "",
)
def test_a_saved_write_is_put_back_when_the_script_fails(
    compiled: Script, args: tuple[float, ...], error: type[Exception]
) -> None:
    executor = LuaExecutor()
    executor.emulator.set("k", b"7")
    executor.emulator.set("j", b"not a number")
    with pytest.raises(error):
        executor.run(compiled, ["k", "j"][: compiled.key_count], args, 0.0)
    assert executor.emulator.get("k") == b"7"


ODD = st.sampled_from((0.0, -0.0, 1.0, 0.5, 3.0, 1e308, -1e308, math.inf, math.nan, 1e-300))


@pytest.mark.parametrize(
    "strategy",
    [
        getattr(strategies, name)()
        for name in strategies.__all__
        if name.endswith("Strategy")
        and name != "Strategy"
        and _constructible(getattr(strategies, name))
    ],
    ids=lambda strategy: type(strategy).__name__,
)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_built_in_script_that_fails_leaves_its_keys_as_they_were(
    strategy: strategies.Strategy,  # type: ignore[type-arg]
    data: st.DataObject,
) -> None:
    """Odd arguments after a normal hit: a failure, wherever it comes, writes nothing."""
    compiled = strategy.script
    keys = [f"{{t}}:k{i}" for i in range(compiled.key_count)]
    normal = strategy.arguments(Rate(5, seconds=1), 1.0, None)
    executor = LuaExecutor()
    executor.run(compiled, keys, normal, 1.7e12)
    before = [executor.emulator.get(key) for key in keys]
    odd = [data.draw(ODD) for _ in range(compiled.param_count)]
    try:
        executor.run(compiled, keys, odd, 1.7e12 + 1)
    except (ScriptRuntimeError, CorruptStateError):
        assert [executor.emulator.get(key) for key in keys] == before
