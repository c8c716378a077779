"""The Lua target's group form (``Script.lua_batch_source``) decides as its hits one by one.

``RedisStore`` sends the hits that queued on one key as one call of the group form
(``stores.grouping``). Here, on lupa's Lua 5.1 against the emulated Redis, Hypothesis
demands that a group gives every hit the decision (bit for bit) and leaves the stored
bytes that the same hits give sent one call each; a hit that fails fails alone, with
the error, DSL line included, that it has alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ranged_logs import by_range

from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.conformance.executors import LuaExecutor
from ratescript.decision import Decision
from ratescript.exceptions import CorruptStateError, ScriptRuntimeError
from ratescript.scriptdsl import Key, allow, script
from ratescript.scriptdsl.compose import compose_all
from ratescript.scriptdsl.script import Script

from .test_differential import EVERY_LIMITER, clock_start, clock_step, exact, non_negative, positive

Hit = tuple[float, Sequence[float]]


def one_by_one(
    compiled: Script, keys: list[str], hits: Sequence[Hit]
) -> tuple[list[object], LuaExecutor]:
    executor = LuaExecutor()
    outcomes: list[object] = []
    for now, args in hits:
        try:
            outcomes.append(exact(executor.run(compiled, keys, args, now)))
        except ScriptRuntimeError as exc:
            outcomes.append(str(exc))
    return outcomes, executor


def as_group(
    compiled: Script, keys: list[str], hits: Sequence[Hit], alone: int
) -> tuple[list[object], LuaExecutor]:
    """The first ``alone`` hits one call each (as the hits before a queue), then the rest
    as one group."""
    head, rest = one_by_one(compiled, keys, hits[:alone])
    outcomes: list[object] = list(head)
    for outcome in rest.run_group(compiled, keys, hits[alone:]):
        outcomes.append(exact(outcome) if isinstance(outcome, Decision) else str(outcome))
    return outcomes, rest


@st.composite
def limiter_hits(draw: st.DrawFn) -> tuple[list[Hit], int]:
    """Hits one call each at clocks that step about, then a group, whose hits read the
    clock together when it is sent (the server's clock then)."""
    limit, period, now = draw(positive), draw(positive), draw(clock_start)
    hits: list[Hit] = []
    for _ in range(draw(st.integers(0, 15))):
        now += draw(clock_step)
        hits.append((now, (limit, period, draw(non_negative))))
    alone = len(hits)
    now += draw(clock_step)
    for _ in range(draw(st.integers(1, 20))):
        hits.append((now, (limit, period, draw(non_negative))))
    return hits, alone


@EVERY_LIMITER
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=limiter_hits())
def test_a_group_decides_and_stores_as_its_hits_one_by_one(
    limiter: Script, drawn: tuple[list[Hit], int]
) -> None:
    hits, alone = drawn
    expected, single = one_by_one(limiter, ["k"], hits)
    got, grouped = as_group(limiter, ["k"], hits, alone)
    assert got == expected
    # Byte for byte: the same commands ran (a log written in place, not rewritten).
    assert grouped.emulator.get("k") == single.emulator.get("k")


COMPOSED = compose_all(token_bucket, sliding_log)


@pytest.mark.parametrize("composed", [COMPOSED, by_range(COMPOSED)], ids=["whole", "by_range"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=limiter_hits())
def test_a_group_of_a_composed_script_over_several_keys(
    composed: Script, drawn: tuple[list[Hit], int]
) -> None:
    hits = [(now, (*args, *args)) for now, args in drawn[0]]
    keys = ["{t}:a", "{t}:b"]
    expected, single = one_by_one(composed, keys, hits)
    got, grouped = as_group(composed, keys, hits, drawn[1])
    assert got == expected
    assert [grouped.emulator.get(k) for k in keys] == [single.emulator.get(k) for k in keys]


@script
def divide(k: Key[float], a: float, b: float):  # type: ignore[no-untyped-def]
    v = k.get(default=0)
    k.set(v + a / b)
    return allow(remaining=v)


def test_a_hit_that_fails_fails_alone_with_its_own_error_and_line() -> None:
    hits: list[Hit] = [(0.0, (1.0, b)) for b in (1.0, 1.0, 0.0, 1.0)]
    alone = LuaExecutor()
    with pytest.raises(ScriptRuntimeError, match="division by zero") as caught:
        alone.run(divide, ["k"], (1.0, 0.0), 0.0)
    outcomes = LuaExecutor().run_group(divide, ["k"], hits)
    assert [o.remaining for o in outcomes if isinstance(o, Decision)] == [0.0, 1.0, 2.0]
    assert isinstance(outcomes[2], ScriptRuntimeError)
    assert str(outcomes[2]) == str(caught.value)  # the same DSL file and line


@script
def counts_then_fails(k: Key[float], y: float):  # type: ignore[no-untyped-def]
    n = k.get(default=0)
    k.set(n + 1)
    return allow(remaining=n / y)  # fails for y == 0, after the write


def test_a_hit_that_fails_after_writing_puts_back_only_its_own_write() -> None:
    executor = LuaExecutor()
    outcomes = executor.run_group(counts_then_fails, ["k"], [(0.0, (y,)) for y in (1, 1, 0, 1)])
    assert isinstance(outcomes[2], ScriptRuntimeError)
    assert [o.remaining for o in outcomes if isinstance(o, Decision)] == [0.0, 1.0, 2.0]
    assert executor.emulator.get("k") == b"3"


def test_a_corrupt_value_fails_each_hit_of_the_group_naming_the_key() -> None:
    executor = LuaExecutor()
    executor.emulator.set("k", b"garbage")
    outcomes = executor.run_group(token_bucket, ["k"], [(0.0, (5.0, 1000.0, 1.0))] * 3)
    assert all(isinstance(o, CorruptStateError) and o.key == "k" for o in outcomes)
    assert executor.emulator.get("k") == b"garbage"


def test_the_group_form_keeps_every_line_of_the_script() -> None:
    """So errors name the same DSL lines through the same line map."""
    prefix = "local function _rs_hit(KEYS, ARGV) "
    for compiled in (token_bucket, fixed_window, sliding_log, divide, token_bucket.readonly):
        mapped = len(compiled.lua_line_map)  # the lines generated from the DSL
        single = [line.removeprefix(prefix) for line in compiled.lua_source.split("\n")]
        grouped = compiled.lua_batch_source.split("\n")
        body = [i for i, line in enumerate(grouped) if line.startswith(prefix)]
        assert len(body) == 1
        assert [line.removeprefix(prefix) for line in grouped[:mapped]] == single[:mapped]
