"""The in-process target: a single-key script fused with ``InMemoryStore``.

Its body is the Python target's; what it adds is where writes are committed (at
each ``return``, only on paths that may have written) and the store's own lookup.
These tests aim at that part: scripts whose returns follow no write, a sure write,
or a write on some paths only; deletes; a failure after a write; and the store's
bookkeeping (clock, expiry, sweep). Hypothesis compares it with the other targets
(``test_differential.run_everywhere`` includes it).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.exceptions import ScriptRuntimeError
from ratescript.scriptdsl import Key, Log, allow, deny, now_ms, script
from ratescript.scriptdsl.script import Script
from ratescript.scriptdsl.targets.memory import (
    MemoryCheckGenerator,
    MemoryGenerator,
    MemoryWaitGenerator,
    expires_at,
)
from ratescript.scriptdsl.targets.python import PythonGenerator
from ratescript.stores.memory import InMemoryStore

from .test_differential import limiter_steps, run_everywhere


@script
def writes_on_some_paths(count: Key[float], limit: float, mode: float):  # type: ignore[no-untyped-def]
    """Returns after no write, a sure write, a delete, and a write on some paths only."""
    c = count.get(default=0)
    if c > limit * 3:
        return deny(wait_ms=c)  # nothing written yet
    if mode < 1:
        count.set(c + 1, ttl_ms=1000)
    elif mode < 2:
        count.delete()
    elif mode < 3:
        count.set(c + 10)  # no TTL
        if c > limit:
            return deny(wait_ms=1)  # written for sure
    if c > limit:
        return deny(wait_ms=c)  # written on some paths
    return allow(remaining=limit - c)


@script
def returns_in_a_loop(log: Key[Log], limit: float):  # type: ignore[no-untyped-def]
    now = now_ms()
    entries = log.get()
    for time, amount in entries:
        if time + limit < now:
            return deny(wait_ms=amount)  # inside a loop, before any write
        if amount > limit:
            break
    entries.append(now, 1)
    log.set(entries, ttl_ms=limit)
    return allow(remaining=limit - entries.count())


@script
def fails_after_a_write(count: Key[float], divisor: float):  # type: ignore[no-untyped-def]
    c = count.get(default=0)
    count.set(c + 1, ttl_ms=1000)
    return allow(remaining=c / divisor)


FLOW_SCRIPTS = (writes_on_some_paths, returns_in_a_loop)


def _steps(draw: st.DrawFn, script: Script) -> list[tuple[float, str, Sequence[float]]]:
    now = draw(st.sampled_from((0.0, -0.0, 1.7e12, 1 / 3)))
    steps: list[tuple[float, str, Sequence[float]]] = []
    for _ in range(draw(st.integers(1, 30))):
        now += draw(st.sampled_from((0.0, 0.5, 1.0, 7.0, 400.0, 1500.0)))
        limit = draw(st.sampled_from((0.0, 2.0, 5.0, 1000.0)))
        args = (limit,) if script.param_count == 1 else (limit, draw(st.sampled_from((0, 1, 2, 3))))
        steps.append((now, draw(st.sampled_from(("a", "b"))), args))
    return steps


@pytest.mark.parametrize("flow", FLOW_SCRIPTS, ids=lambda s: s.name)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_writes_are_committed_exactly_where_the_pure_function_writes(
    flow: Script, data: st.DataObject
) -> None:
    run_everywhere(flow, data.draw(st.composite(_steps)(flow)))


def test_returns_commit_only_on_paths_that_may_have_written() -> None:
    source = writes_on_some_paths.memory_source
    assert source is not None
    body = source.split("_w0 = _KEEP", 1)[1]
    returns = [line.strip() for line in body.splitlines() if "return _rs_new" in line]
    # Four returns: before any write (no commit), after a sure write (a commit without
    # a test), and two after the `if` chain, where a write happened on some paths only.
    assert len(returns) == 4
    assert returns[0].startswith("return _rs_new(_rs_Decision, (False, c,")
    assert returns[1:] == ["return _rs_new(_rs_Decision, _decision)"] * 3
    assert body.count("_data[_key] = (_w0, _t0, _codec)") == 3
    assert body.count("if _w0 is not _KEEP:") == 2
    assert body.count("if _w0 is _DELETE:") == 3  # the script deletes: every commit asks


def test_a_script_of_several_keys_has_no_in_process_target() -> None:
    from ratescript.scriptdsl.compose import compose_all

    both = compose_all(token_bucket, fixed_window)
    assert both.memory_binder is None
    with pytest.raises(ValueError, match="single-key"):
        MemoryGenerator(both.ir)


def test_the_generator_handles_every_node_kind() -> None:
    assert MemoryGenerator.unsupported_nodes() == PythonGenerator.unsupported_nodes() == []


@pytest.mark.asyncio
async def test_a_failure_after_a_write_writes_nothing_and_names_the_line() -> None:
    store = InMemoryStore(clock=lambda: 1000.0)
    assert (await store.run(fails_after_a_write, ["k"], (1.0,))).remaining == 0.0
    assert await store.get("k") == b"1"
    with pytest.raises(ScriptRuntimeError, match="division by zero") as caught:
        await store.run(fails_after_a_write, ["k"], (0.0,))
    line = fails_after_a_write.ir.first_line + 3  # the `return allow(...)` line
    assert f":{line}:" in str(caught.value), str(caught.value)
    assert await store.get("k") == b"1"
    # The key's lock was released on the way out: the key is usable at once.
    assert (await store.run(fails_after_a_write, ["k"], (2.0,))).remaining == 0.5


@pytest.mark.asyncio
async def test_a_new_clock_is_followed_at_once() -> None:
    store = InMemoryStore(clock=lambda: 0.0)
    args = (1.0, 1000.0, 1.0)
    assert (await store.run(token_bucket, ["k"], args)).allowed
    assert not (await store.run(token_bucket, ["k"], args)).allowed
    store.clock = lambda: 1000.0  # runners read the store's clock on every run
    assert (await store.run(token_bucket, ["k"], args)).allowed


@pytest.mark.parametrize(
    ("now", "ttl", "gone"),
    [(1000.9, 10.0, 1011), (1000.0, 0.2, 1002), (-0.5, 3.0, 3), (5.0, float("nan"), None)],
)
def test_expiry_is_whole_milliseconds_as_on_redis(now: float, ttl: float, gone: int | None) -> None:
    # Gone once floor(clock) > floor(now) + ceil(ttl), the TTL clamped to at least 1 ms.
    at = expires_at(now, ttl)
    assert isinstance(at, int)
    if gone is not None:
        assert at == gone
    else:
        assert at > now + 1e11  # NaN: clamped to the longest TTL, like every target


def test_memory_stays_bounded_when_every_hit_is_a_new_key() -> None:
    now = [0.0]
    store = InMemoryStore(clock=lambda: now[0])
    largest = 0
    for index in range(200_000):
        now[0] += 1.0  # each key lives 100 ms: about 100 live at any time
        store.run_one(fixed_window, f"ip:{index}", (5.0, 100.0, 1.0))
        largest = max(largest, len(store))
    assert largest < 1_000, largest


@script
def keeps_for(k: Key[float], ttl: float):  # type: ignore[no-untyped-def]
    k.set(1, ttl_ms=ttl)
    return allow(remaining=0)


@settings(max_examples=300, deadline=None)
@given(
    now=st.floats(-1e9, 2.0**52, allow_nan=False) | st.sampled_from((0.0, -0.0, 0.5, -0.5)),
    ttl=st.floats(1.0, 3.15e11) | st.sampled_from((1.0, 1.5, 2.0**31, 3.15e11)),
)
def test_the_inline_expiry_is_expires_at(now: float, ttl: float) -> None:
    """The runner computes the usual expiry in floats, `expires_at` in ints: the same ms."""
    store = InMemoryStore(clock=lambda: now)
    store.run_one(keeps_for, "k", (ttl,))
    assert store._data[store.full_key("k")][1] == expires_at(now, ttl)


def test_the_names_kept_for_runners_stay_bounded() -> None:
    store = InMemoryStore(clock=lambda: 0.0)
    for index in range(40_000):
        store.run_one(token_bucket, f"ip:{index}", (5.0, 1000.0, 1.0))
    assert 0 < len(store._names) <= 1 << 14


def test_runners_are_bound_once_per_script_and_store() -> None:
    store = InMemoryStore(clock=lambda: 0.0)
    for _ in range(3):
        store.run_one(token_bucket, "k", (5.0, 1000.0, 1.0))
        asyncio.run(store.run(sliding_log, ["l"], (5.0, 1000.0, 1.0)))
    assert set(store._runners) == {token_bucket, sliding_log}


# --- the runner that returns the wait alone -----------------------------------------------


@script
def divides_in_its_decision(count: Key[float], divisor: float):  # type: ignore[no-untyped-def]
    """Fields the wait leaves out, one of which may fail, one of which may not."""
    c = count.get(default=0)
    if c >= 3:
        return deny(wait_ms=c / divisor, remaining=c / 2)  # the wait may fail
    count.set(c + 1, ttl_ms=1000)
    if c >= 2:
        return deny(wait_ms=c / 2, remaining=c / divisor)  # may fail, after a write
    return allow(remaining=c / 4)  # cannot fail: left out


WAIT_SCRIPTS = (*FLOW_SCRIPTS, fails_after_a_write, divides_in_its_decision)
LIMITERS = (token_bucket, fixed_window, sliding_log)


def _outcome(run: object, key: str, args: Sequence[float]) -> tuple[str, bytes | str]:
    """What a runner gave: the wait as exact bytes (``-0.0`` is not ``0.0``), or the error."""
    try:
        result = run(key, args)  # type: ignore[operator]
    except ScriptRuntimeError as exc:
        return ("error", str(exc))
    wait = result if isinstance(result, float) else (0.0 if result.allowed else result.wait_ms)
    return ("wait", b"%.17g%+.0f" % (wait, math.copysign(1.0, wait)))


def _checked(run: object, key: str, args: Sequence[float]) -> tuple[str, str]:
    """What a runner gave as a throttle reads it: admitted (``None``, or an admitting
    decision), the rejecting decision exactly (``repr`` tells ``-0.0`` and every bit of a
    double), or the error."""
    try:
        result = run(key, args)  # type: ignore[operator]
    except ScriptRuntimeError as exc:
        return ("error", str(exc))
    if result is None or result.allowed:
        return ("admitted", "" if result is None else "a decision")
    return ("rejected", repr(result))


@pytest.mark.asyncio
@pytest.mark.parametrize("variant", ["wait", "check"])
@pytest.mark.parametrize("subject", WAIT_SCRIPTS + LIMITERS, ids=lambda s: s.name)
@settings(max_examples=120, deadline=None)
@given(data=st.data())
async def test_a_runner_that_leaves_fields_out_decides_as_the_full_one(
    variant: str, subject: Script, data: st.DataObject
) -> None:
    """Hit by hit, the wait runner returns what ``await strategy(...)`` makes of the full
    runner's decision, the check runner ``None`` exactly where it admits and its very
    decision where it rejects; both fail where it fails with the same message, and
    write the same."""
    steps = data.draw(
        st.composite(limiter_steps)() if subject in LIMITERS else st.composite(_steps)(subject)
    )
    now = [0.0]
    full, other = InMemoryStore(clock=lambda: now[0]), InMemoryStore(clock=lambda: now[0])
    run_full = full.runners(subject)[0]
    if variant == "wait":
        run_other, outcome = other.runners(subject)[1], _outcome
    else:
        run_other, outcome = other.check_runner(subject), _checked  # type: ignore[assignment]
    for now[0], key, args in steps:
        expected = outcome(run_full, key, args)
        if expected[0] == "admitted":
            expected = ("admitted", "")  # the full runner's decision, the check runner's None
        assert outcome(run_other, key, args) == expected
        for name in ("a", "b"):
            assert await other.get(name) == await full.get(name)


def test_the_wait_alone_leaves_out_only_fields_that_cannot_fail() -> None:
    source = divides_in_its_decision.memory_wait_source
    assert "            (c / divisor)\n" in source  # evaluated for its failure
    assert "_wait = (c / divisor)" in source and "return _wait" in source
    assert "(c / 4.0)" not in source and "_rs_Decision" not in source
    assert "{" not in source  # no metadata dict
    assert MemoryWaitGenerator.unsupported_nodes() == []


def test_the_check_runner_builds_only_rejecting_decisions() -> None:
    source = fixed_window.memory_check_source
    returns = [line.strip() for line in source.splitlines() if line.strip().startswith("return ")]
    returns.pop()  # `return fixed_window`: the binder's
    assert returns.count("return None") == 1  # the script's one admitting return
    assert all(r.startswith("return _rs_new(_rs_Decision, (False,") for r in returns[1:])
    assert "(True," not in source
    assert MemoryCheckGenerator.unsupported_nodes() == []


@pytest.mark.asyncio
@pytest.mark.parametrize("variant", ["wait", "check"])
async def test_a_runner_that_leaves_fields_out_names_the_line_that_failed(variant: str) -> None:
    store = InMemoryStore(clock=lambda: 1000.0)
    run = (
        store.runners(fails_after_a_write)[1]
        if variant == "wait"
        else store.check_runner(fails_after_a_write)
    )
    assert run("k", (1.0,)) in (0.0, None)
    with pytest.raises(ScriptRuntimeError, match="division by zero") as caught:
        run("k", (0.0,))
    assert f":{fails_after_a_write.ir.first_line + 3}:" in str(caught.value)
    assert await store.get("k") == b"1"  # nothing written


@pytest.mark.asyncio
async def test_runners_follow_a_new_clock_and_stay_bound() -> None:
    store = InMemoryStore(clock=lambda: 0.0)
    runners = store.runners(token_bucket)
    assert runners[1]("k", (1.0, 1000.0, 1.0)) == 0.0
    assert runners[1]("k", (1.0, 1000.0, 1.0)) == 1000.0
    store.clock = lambda: 250.0
    assert store.runners(token_bucket) == runners
    assert runners[0]("k", (1.0, 1000.0, 1.0)).wait_ms == 750.0
