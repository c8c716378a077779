"""Which writes the Lua target saves first, so that a script failing after them writes nothing.

Redis keeps the writes of a script that fails; the Lua target saves a key before a
write only where the script may still fail after it (``_failing_after``), since the
save costs a ``PTTL`` (and a ``GET``) per decision. These tests pin which scripts pay
it, and that those which do not pay it cannot fail after a write.
"""

from __future__ import annotations

import pytest

import ratescript.strategies as strategies
from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.conformance.executors import LuaExecutor
from ratescript.exceptions import CorruptStateError, ScriptRuntimeError
from ratescript.scriptdsl import Key, allow, script
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
