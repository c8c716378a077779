"""The Python, Lua (lupa, Lua 5.1) and in-process targets decide and store identically.

Hypothesis feeds the same clock steps, costs and parameters to every executor and
demands bit-identical decisions (``-0.0`` is not ``0.0`` here) and identical stored
bytes after every step. The draws lean on FACTS.md's traps: fractions like 0.1 and
1/3, values near 2**53, negative zero, clocks that step backwards (so floor/ceil
see small negatives).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ranged_logs import by_range

from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.conformance.executors import (
    Executor,
    LuaExecutor,
    PythonExecutor,
    StoreExecutor,
)
from ratescript.decision import Decision
from ratescript.exceptions import ScriptRuntimeError
from ratescript.scriptdsl import Key, Log, Record, allow, ceil, deny, floor, script, window_index
from ratescript.scriptdsl import nodes as n
from ratescript.scriptdsl.script import Script
from ratescript.stores.memory import InMemoryStore

TRAPS = (0.1, 0.2, 0.3, 1 / 3, 2 / 3, 1e-9, 0.5, 1.0, 3.0, 7.0, 2.0**53 - 1, 2.0**53, 2.0**52 + 0.5)

positive = st.sampled_from(TRAPS) | st.floats(1e-6, 1e6, allow_nan=False)
non_negative = st.sampled_from((0.0, -0.0, *TRAPS)) | st.floats(0, 1e6, allow_nan=False)
clock_start = st.sampled_from((0.0, -0.0, -1000.5, 1.7e12, 2.0**53 - 1e6, 1 / 3))
clock_step = st.sampled_from((0.0, -0.0, 0.1, 1 / 3, -0.3, -1.0, 1.0)) | st.floats(
    -10, 5000, allow_nan=False
)

#: The built-in scripts, and the sliding log compiled to take Redis's in-place path.
EVERY_LIMITER = pytest.mark.parametrize(
    "limiter",
    [token_bucket, fixed_window, sliding_log, by_range(sliding_log)],
    ids=["token_bucket", "fixed_window", "sliding_log", "sliding_log_by_range"],
)


def exact(decision: Decision) -> tuple[object, ...]:
    """A decision with every number as its exact bytes, so -0.0 differs from 0.0."""
    numbers = (decision.wait_ms, decision.remaining, decision.reset_ms, *decision.metadata.values())
    return (decision.allowed, tuple(b"%.17g" % x for x in numbers), tuple(decision.metadata))


@contextlib.contextmanager
def in_memory_store() -> Iterator[StoreExecutor]:
    """``InMemoryStore`` as an executor: the in-process target, fused with the store."""
    loop = asyncio.new_event_loop()
    try:
        executor = StoreExecutor("memory-store", loop)
        executor.attach(InMemoryStore(clock=executor.clock))
        yield executor
    finally:
        loop.close()


def run_everywhere(script: Script, steps: Sequence[tuple[float, str, Sequence[float]]]) -> None:
    with in_memory_store() as memory:
        executors = (
            PythonExecutor(encoded=True),
            PythonExecutor(encoded=False),
            LuaExecutor(),
            memory,
        )
        step_everywhere(script, steps, executors)


def step_everywhere(
    script: Script,
    steps: Sequence[tuple[float, str, Sequence[float]]],
    executors: Sequence[Executor],
) -> None:
    keys = sorted({key for _now, key, _args in steps})
    for now, key, args in steps:
        outcomes = []
        for executor in executors:
            try:
                outcomes.append(exact(executor.run(script, [key], args, now)))
            except ScriptRuntimeError as exc:
                outcomes.append(("error", type(exc)))
        assert outcomes[1:] == outcomes[:-1], (executors[0].name, now, key, args, outcomes)
        states = [executor.state(now, keys) for executor in executors]
        assert states[1:] == states[:-1], (now, key, args, states)


def limiter_steps(draw: st.DrawFn) -> list[tuple[float, str, Sequence[float]]]:
    limit = draw(positive)
    period = draw(positive)
    now = draw(clock_start)
    steps = []
    for _ in range(draw(st.integers(1, 25))):
        now += draw(clock_step)
        cost = draw(non_negative)
        key = draw(st.sampled_from(("a", "b")))
        steps.append((now, key, (limit, period, cost)))
    return steps


@st.composite
def limiter_runs(draw: st.DrawFn) -> list[tuple[float, str, Sequence[float]]]:
    return limiter_steps(draw)


@EVERY_LIMITER
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=limiter_runs())
def test_builtin_scripts_agree_on_every_target(
    limiter: Script, steps: list[tuple[float, str, Sequence[float]]]
) -> None:
    run_everywhere(limiter, steps)


class Results(Record):
    floor_a: float
    ceil_a: float
    mod: float
    floordiv: float
    negated: float
    smallest: float
    largest: float
    magnitude: float
    quotient: float
    product: float
    difference: float


@script
def arithmetic(out: Key[Results], a: float, b: float):  # type: ignore[no-untyped-def]
    r = Results(
        floor(a), ceil(a), a % b, a // b, -a, min(a, b), max(a, b), abs(a), a / b, a * b, a - b
    )
    out.set(r)
    return allow(remaining=r.mod, reset_ms=r.ceil_a, floor_a=r.floor_a, negated=r.negated)


doubles = (
    st.sampled_from((0.0, -0.0, -0.5, -1e-300, 0.5, 1 / 3, -1 / 3, 0.1, -0.1, 2.0**53, -(2.0**53)))
    | st.floats(-1e18, 1e18, allow_nan=False)
    | st.floats(-1.0, 1.0, allow_nan=False)
)


@settings(max_examples=400, deadline=None)
@given(a=doubles, b=doubles)
def test_arithmetic_is_bit_identical(a: float, b: float) -> None:
    """Lua 5.1 semantics for floor, ceil, %, //, min, max, -0.0 — and division by zero."""
    run_everywhere(arithmetic, [(0.0, "x", (a, b))])


@script
def extremes(out: Key[float], a: float, b: float, c: float):  # type: ignore[no-untyped-def]
    big = a * b  # overflows to an infinity for large a and b
    odd = big + c * b  # NaN when the two products are opposite infinities
    return allow(
        remaining=min(odd, a), reset_ms=max(odd, a), low=min(a, odd), high=max(a, odd),
        low3=min(a, big, odd), high3=max(odd, big, a), clamped=max(0, min(b, big)),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("a", "b", "c"),
    [
        (1.0, 2.0, 3.0),
        (1e200, 1e200, 0.0),  # big and odd are inf
        (-1e200, 1e200, 0.0),  # -inf
        (1e200, 1e200, -1e200),  # odd is NaN
        (-1e200, 1e200, 1e200),
        (-0.0, 0.0, 0.0),  # -0.0 against 0.0, either way round
        (0.0, -0.0, 0.0),
    ],
)
def test_min_and_max_keep_lua_order_with_nan_infinities_and_negative_zero(
    a: float, b: float, c: float
) -> None:
    run_everywhere(extremes, [(0.0, "x", (a, b, c))])


@script
def floors(out: Key[float], a: float, b: float):  # type: ignore[no-untyped-def]
    big = a * b  # an infinity for large a and b, -0.0 for tiny ones of opposite signs
    odd = big - big  # NaN when big is infinite
    return allow(remaining=floor(big), reset_ms=floor(odd), whole=big // 1, half=a // 2)


@pytest.mark.parametrize(
    ("a", "b"),
    [(1e200, 1e200), (-1e200, 1e200), (1e-200, -1e-200), (-0.5, 1.0), (2.5, 1.0), (-3.0, 1.0)],
)
def test_floor_keeps_infinities_nan_and_negative_zero_as_lua_does(a: float, b: float) -> None:
    run_everywhere(floors, [(0.0, "x", (a, b))])


@script
def windows(out: Key[float], t: float, p: float):  # type: ignore[no-untyped-def]
    return allow(remaining=window_index(t, p), reset_ms=window_index(t * 3.0, p + t))


@given(
    st.sampled_from((0.0, -0.0, 1.7e12, 1_700_000_061_000.3, 200_000.0, 2.0**53, -1000.5, 1e308))
    | st.floats(allow_nan=True),
    st.sampled_from((*TRAPS, 61_000.3, 200_000 / 3, -7.0, 1e-300, math.inf, 0.0))
    | st.floats(allow_nan=True),
)
@settings(max_examples=200)
def test_window_index_is_bit_identical(t: float, p: float) -> None:
    """The Python targets inline ``window_index``; Lua calls its helper; same doubles
    (the quotient's floor corrected by one either way), and a zero period fails alike."""
    run_everywhere(windows, [(0.0, "x", (t, p))])


@script
def signed_zeros(out: Key[float], a: float):  # type: ignore[no-untyped-def]
    if a > 0:
        return allow(remaining=-0.0, reset_ms=0.0, negative=-0.0, positive=0.0, given=a * 0.0)
    return allow(remaining=0.0, reset_ms=-0.0, negative=-0.0, positive=0.0, given=a * 0.0)


@pytest.mark.parametrize("a", [1.0, -1.0])
def test_constant_zeros_keep_their_sign_in_every_reply(a: float) -> None:
    """Lua 5.1 folds a literal ``-0`` into the chunk's constant ``0``; a reply must not."""
    run_everywhere(signed_zeros, [(0.0, "x", (a,))])


@script
def folds_to_negative_zero(out: Key[float], a: float):  # type: ignore[no-untyped-def]
    z = 0 * -1  # -0.0: folded by Lua 5.1, whose constant table then took every 0 for it
    out.set(0 / -5)
    return allow(
        remaining=z, reset_ms=a * 0, zero=0, floored=0 // -5, negated=-(0 * 1),
        tiny=-1e-300 * 1e-300, mod=-3 % 3, sum=1 + 2 * 3 - 4 / 8,
    )  # fmt: skip


@script
def zero_before_negative_zero(out: Key[float], a: float):  # type: ignore[no-untyped-def]
    y = a * 0  # the chunk's constant 0 comes first...
    z = 0 * -1  # ...and Lua 5.1 read this -0 as it
    return allow(remaining=y, reset_ms=z)


@pytest.mark.parametrize("compiled", [folds_to_negative_zero, zero_before_negative_zero])
@pytest.mark.parametrize("a", [1.0, -1.0])
def test_operations_on_constants_keep_the_sign_of_zero(compiled: Script, a: float) -> None:
    """The compiler folds them (``passes.fold_constants``), so Lua's parser never does."""
    run_everywhere(compiled, [(0.0, "x", (a,))])


def test_operations_on_constants_are_folded_before_any_target() -> None:
    stored, verdict = folds_to_negative_zero.ir.body[1:]
    assert isinstance(stored, n.StoreKey) and isinstance(verdict, n.Return)
    values = [
        *stored.values, verdict.wait_ms, verdict.remaining, verdict.reset_ms, *verdict.metadata
    ]  # fmt: skip
    shown = [b"%.17g" % v.value if isinstance(v, n.Const) else type(v).__name__ for v in values]
    # 0 / -5, then the verdict: 0, z, a * 0 and the metadata (`-3 % 3` is Lua's: +0).
    assert shown == [b"-0", b"0", "Var", "Binary", b"0", b"-0", b"-0", b"-0", b"0", b"6.5"]
    assert "_rs_negzero" in folds_to_negative_zero.lua_source


@script
def divides_constants_by_zero(out: Key[float], a: float):  # type: ignore[no-untyped-def]
    return allow(remaining=a + 1 / 0)


def test_a_constant_division_by_zero_still_fails_when_run() -> None:
    with in_memory_store() as memory:
        for executor in (PythonExecutor(), LuaExecutor(), memory):
            with pytest.raises(ScriptRuntimeError, match="division by zero"):
                executor.run(divides_constants_by_zero, ["x"], (1.0,), 0.0)


class Pair(Record):
    first: float
    second: float


@script
def keeps_a_number(kept: Key[float], a: float, b: float, c: float):  # type: ignore[no-untyped-def]
    kept.set(a * b + c * b)
    return allow(remaining=0)


@script
def keeps_a_record(kept: Key[Pair], a: float, b: float, c: float):  # type: ignore[no-untyped-def]
    kept.set(Pair(a, a * b + c * b))
    return allow(remaining=0)


@pytest.mark.parametrize("keeps", [keeps_a_number, keeps_a_record], ids=lambda s: s.name)
@pytest.mark.parametrize(
    "args", [(1e200, 1e200, 0.0), (-1e200, 1e200, 0.0), (1e200, 1e200, -1e200)]
)
def test_a_number_that_is_not_finite_is_never_stored(
    keeps: Script, args: tuple[float, float, float]
) -> None:
    with in_memory_store() as memory:
        for executor in (PythonExecutor(), LuaExecutor(), memory):
            with pytest.raises(ScriptRuntimeError, match="cannot store a number that is not fin"):
                executor.run(keeps, ["x"], args, 0.0)
            assert executor.state(0.0, ["x"]) == PythonExecutor().state(0.0, ["x"])
    run_everywhere(keeps, [(0.0, "x", (1.0, 2.0, 3.0))])


@script
def reads_a_log_after_deleting_it(log: Key[Log], t: float):  # type: ignore[no-untyped-def]
    log.delete()
    fresh = log.get()  # read after the write: empty
    fresh.append(t, 1)
    log.set(fresh)
    return allow(remaining=fresh.count(), total=fresh.sum())


@script
def reads_a_log_after_storing_it(log: Key[Log], t: float):  # type: ignore[no-untyped-def]
    first = log.get()
    first.append(t, 1)
    log.set(first)
    again = log.get()  # read after the write: what was just stored
    again.append(t + 1, 2)
    log.set(again)
    return allow(remaining=again.count(), total=again.sum())


@script
def reads_a_log_on_one_path(log: Key[Log], t: float):  # type: ignore[no-untyped-def]
    if t > 5:
        seen = log.get()  # read on this path only; the write below follows both
        if seen.count() > 3:
            log.delete()
            return deny(wait_ms=seen.sum())
    more = log.get()
    more.append(t, 1)
    log.set(more)
    return allow(remaining=more.count())


@pytest.mark.parametrize(
    "reads_after",
    [
        *(
            pytest.param(compiled, id=compiled.name)
            for compiled in (reads_a_log_after_deleting_it, reads_a_log_after_storing_it)
        ),
        pytest.param(reads_a_log_on_one_path, id="reads_a_log_on_one_path"),
        pytest.param(by_range(reads_a_log_after_storing_it), id="after_storing_by_range"),
        pytest.param(by_range(reads_a_log_on_one_path), id="on_one_path_by_range"),
    ],
)
def test_a_log_read_after_a_write_to_its_key_decides_alike(reads_after: Script) -> None:
    """Before a write, the Lua target takes the entries of the logs read from the key:
    only of those read by then, and of one read on some paths only if it was."""
    steps = [(float(t), "x", (float(t),)) for t in (1, 2, 3, 6, 7, 8, 9, 10, 4, 11, 12)]
    run_everywhere(reads_after, steps)


@script
def writes_then_fails(count: Key[float], pair: Key[Pair], log: Key[Log], x: float, y: float):  # type: ignore[no-untyped-def]
    n = count.get(default=0)
    count.set(n + 1, ttl_ms=3_600_000)
    entries = log.get()
    entries.append(n, x)
    log.set(entries, ttl_ms=3_600_000)
    p = pair.get(default=Pair(0, 0))
    pair.set(Pair(p.first + 1, p.second + x * x))  # not finite for a huge x: fails here
    return allow(remaining=n / y)  # fails here for y == 0, after every write


def test_a_script_that_fails_after_writing_writes_nothing() -> None:
    """Lua keeps what a failing script wrote unless the script puts it back (_rs_save)."""
    keys = ["{t}:count", "{t}:pair", "{t}:log"]  # one hash tag: stores keep the names
    steps = [(1.0, 1.0), (1.0, 0.0), (1e200, 1.0), (2.0, 1.0), (3.0, 0.0), (4.0, 1.0)]
    with in_memory_store() as memory:
        executors = (PythonExecutor(encoded=True), LuaExecutor(), memory)
        for now, (x, y) in enumerate(steps):
            outcomes = []
            for executor in executors:
                try:
                    outcomes.append(exact(executor.run(writes_then_fails, keys, (x, y), now)))
                except ScriptRuntimeError as exc:
                    outcomes.append(("error", str(exc)))
            assert outcomes[1:] == outcomes[:-1], (now, outcomes)
            assert (outcomes[0][0] == "error") == (y == 0 or x > 1e100)
            states = [executor.state(now, keys) for executor in executors]
            assert states[1:] == states[:-1], (now, states)
        assert exact(executors[0].run(writes_then_fails, keys, (5.0, 1.0), 9.0))[1][1] == b"3"


def test_division_by_zero_fails_alike_and_names_the_line() -> None:
    with in_memory_store() as memory:
        for executor in (PythonExecutor(), LuaExecutor(), memory):
            with pytest.raises(ScriptRuntimeError, match="division by zero") as caught:
                executor.run(arithmetic, ["x"], (1.0, 0.0), 0.0)
            line = arithmetic.ir.first_line + 2  # the line of `a % b` inside the Results(...) call
            assert f":{line}:" in str(caught.value) or f":{line - 1}:" in str(caught.value), (
                executor.name,
                str(caught.value),
            )
            assert executor.state(0.0, ["x"]) == {}  # a script that fails writes nothing


def test_nothing_is_parsed_or_compiled_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Running a script never touches the compiler: it was compiled once, at decoration."""
    import ast
    import builtins

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsing or compiling during a run")

    monkeypatch.setattr(ast, "parse", forbidden)
    monkeypatch.setattr(builtins, "compile", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    executor = PythonExecutor(encoded=False)
    decisions = [executor.run(token_bucket, ["k"], (2.0, 1000.0, 1.0), 0.0) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert math.isclose(decisions[2].wait_ms, 500.0)
