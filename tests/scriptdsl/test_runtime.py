"""The Python runtime reproduces Lua 5.1's numbers, and the codec round-trips every value.

The oracle is real Lua 5.1 (lupa). lupa turns whole doubles into ``int`` and loses
``-0.0`` on the way back, so Lua returns ``string.format('%.17g', x)`` and Python's
result is printed the same way: equal bytes mean the same double, sign of zero
included. NaN prints as ``nan`` or ``-nan`` depending on the platform, so any NaN
matches any NaN.
"""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from lupa import lua51

from ratescript.exceptions import CorruptStateError
from ratescript.scriptdsl.codec import codec_for
from ratescript.scriptdsl.nodes import KeyKind, KeySpec
from ratescript.scriptdsl.runtime import (
    MAX_TTL_MS,
    lua_ceil,
    lua_floor,
    lua_mod,
    lua_window_index,
    ttl,
)
from ratescript.scriptdsl.targets.lua import _HELPERS

LUA = lua51.LuaRuntime(encoding=None)
LUA_IDENTITY = LUA.eval(b"function(x) return string.format('%.17g', x) end")
LUA_FLOOR = LUA.eval(b"function(x) return string.format('%.17g', math.floor(x)) end")
LUA_CEIL = LUA.eval(b"function(x) return string.format('%.17g', math.ceil(x)) end")
LUA_MOD = LUA.eval(
    b"function(a, b) return string.format('%.17g', a % b),"
    b" string.format('%.17g', a - math.floor(a / b) * b) end"
)
LUA_TONUMBER = LUA.eval(
    b"function(s) local v = tonumber(s); return v and string.format('%.17g', v) end"
)

SPECIALS = (
    0.0,
    -0.0,
    -0.5,
    0.5,
    -1.0,
    -1e-300,
    -5e-324,
    5e-324,
    0.49999999999999994,
    -0.49999999999999994,
    -(1 - 2**-53),
    2.0**52 + 0.5,
    -(2.0**52 + 0.5),
    2.0**53 - 1,
    2.0**53,
    2.0**53 + 2,
    -(2.0**53),
    1.7976931348623157e308,
    -1.7976931348623157e308,
    math.inf,
    -math.inf,
    math.nan,
)

# Every double, with extra weight on the traps: (-1, 0), near ±2**53, specials.
doubles = (
    st.floats()
    | st.floats(-1.0, 0.0)
    | st.floats(2.0**52, 2.0**54)
    | st.floats(-(2.0**54), -(2.0**52))
    | st.sampled_from(SPECIALS)
)


def assert_same_double(lua_text: bytes, value: float) -> None:
    assert type(value) is float
    if math.isnan(value):
        assert math.isnan(float(lua_text)), lua_text
        return
    assert lua_text == b"%.17g" % value
    assert math.copysign(1.0, float(lua_text)) == math.copysign(1.0, value)


def test_the_oracle_keeps_negative_zero() -> None:
    assert LUA_IDENTITY(-0.0) == b"-0"
    assert LUA_IDENTITY(0.0) == b"0"
    assert LUA_CEIL(-0.5) == b"-0"


def test_negative_zero_is_not_positive_zero_here() -> None:
    with pytest.raises(AssertionError):
        assert_same_double(b"0", -0.0)
    with pytest.raises(AssertionError):
        assert_same_double(b"-0", 0.0)


@given(doubles)
@example(-0.0)
@example(-0.25)
def test_lua_floor_matches_lua(x: float) -> None:
    assert_same_double(LUA_FLOOR(x), lua_floor(x))


@given(doubles)
@example(-0.0)
@example(-0.25)
@example(-(2.0**53) + 0.5)
def test_lua_ceil_matches_lua(x: float) -> None:
    assert_same_double(LUA_CEIL(x), lua_ceil(x))


@pytest.mark.parametrize("x", [-0.5, -1e-300, -5e-324, -0.0, -(1 - 2**-53)])
def test_ceil_of_small_negatives_is_negative_zero(x: float) -> None:
    result = lua_ceil(x)
    assert result == 0.0 and math.copysign(1.0, result) == -1.0


@given(doubles, doubles.filter(lambda b: b != 0.0))
@example(5.5, -2.0)
@example(-0.0, 3.0)
@example(-1e-300, 1.0)
@example(1.0, math.inf)
@example(-1.0, math.inf)
@example(math.inf, 2.0)
@example(2.0**53 + 2, 3.0)
@example(1e308, 1e-10)
def test_lua_mod_matches_lua(a: float, b: float) -> None:
    operator, formula = LUA_MOD(a, b)
    result = lua_mod(a, b)
    assert_same_double(operator, result)
    assert_same_double(formula, result)


@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_lua_mod_by_zero_is_an_error(zero: float) -> None:
    with pytest.raises(ZeroDivisionError):
        lua_mod(1.0, zero)


# The very helper the Lua target emits, with the one it depends on.
LUA_WINDOW_INDEX = LUA.execute(
    (
        _HELPERS["_rs_floor"][0]
        + "\n"
        + _HELPERS["_rs_window_index"][0]
        + "\nreturn function(t, p) return string.format('%.17g', _rs_window_index(t, p)) end"
    ).encode()
)


@given(doubles, doubles.filter(lambda p: p != 0.0))
@example(1_700_000_061_000.3, 61_000.3)
@example(200_000.0, 200_000 / 3)
@example(-0.0, 3.0)
def test_window_index_matches_lua(time: float, period: float) -> None:
    index = lua_window_index(time, period)
    assert_same_double(LUA_WINDOW_INDEX(time, period), index)


@given(
    st.floats(0.0, 2.0**50, allow_nan=False),
    st.floats(1e-3, 1e9, allow_nan=False) | st.sampled_from([1000 / 3, 61_000.3, 100_000.1]),
)
def test_window_index_holds_the_time(time: float, period: float) -> None:
    """``floor(time / period)`` alone can be one off; the index never is (while window
    numbers are whole doubles, below 2**52)."""
    assume(time / period < 2.0**52)
    index = lua_window_index(time, period)
    assert index * period <= time < (index + 1) * period


@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_window_index_of_a_zero_period_is_an_error(zero: float) -> None:
    with pytest.raises(ZeroDivisionError):
        lua_window_index(1.0, zero)
    with pytest.raises(lua51.LuaError, match="division by zero"):
        LUA_WINDOW_INDEX(1.0, zero)


# The clamp the Lua target writes around a key's TTL (``stmt_StoreKey``).
LUA_TTL = LUA.eval(
    b"function(x) return string.format('%.17g',"
    b" math.max(1, math.min(315360000000, math.ceil(x)))) end"
)


@given(doubles)
@example(1.0)
@example(0.9999999999999999)
@example(MAX_TTL_MS)
@example(MAX_TTL_MS - 0.5)
@example(MAX_TTL_MS + 1)
def test_ttl_matches_lua(x: float) -> None:
    assert_same_double(LUA_TTL(x), ttl(x))


# --- codecs -------------------------------------------------------------------------------

NUMBER = KeySpec("counter", KeyKind.NUMBER)
PAIR = KeySpec("bucket", KeyKind.RECORD, ("tokens", "stamp"), "Bucket")
LOG = KeySpec("hits", KeyKind.LOG)

finite = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    (-0.0, 0.1, 1 / 3, 2.0**53 + 2, 5e-324)
)


def bits(value: float) -> bytes:
    return struct.pack(">d", value)


@given(finite)
def test_number_codec_round_trips_every_bit(x: float) -> None:
    codec = codec_for(NUMBER)
    raw = codec.encode(x)
    assert bits(codec.decode("counter", raw)) == bits(x)


@given(finite)
def test_number_encoding_is_what_lua_writes_and_reads(x: float) -> None:
    raw = codec_for(NUMBER).encode(x)
    assert raw == LUA_IDENTITY(x)
    assert LUA_TONUMBER(raw) == raw


@given(st.integers(1, 5).flatmap(lambda k: st.tuples(*[finite] * k)))
def test_record_codec_round_trips(values: tuple[float, ...]) -> None:
    fields = tuple(f"f{i}" for i in range(len(values)))
    codec = codec_for(KeySpec("r", KeyKind.RECORD, fields, "R"))
    decoded = codec.decode("r", codec.encode(values))
    assert isinstance(decoded, tuple)
    assert [bits(v) for v in decoded] == [bits(v) for v in values]


def test_record_encoding_layout() -> None:
    assert codec_for(PAIR).encode((12.5, 1700000000000.0)) == b"12.5:1700000000000"


@given(st.lists(st.tuples(finite, finite), max_size=8), finite)
def test_log_codec_round_trips(entries: list[tuple[float, float]], total: float) -> None:
    codec = codec_for(LOG)
    decoded, decoded_total = codec.decode("hits", codec.encode((entries, total)))
    assert [(bits(t), bits(a)) for t, a in decoded] == [(bits(t), bits(a)) for t, a in entries]
    assert bits(decoded_total) == bits(total)


@pytest.mark.parametrize(
    ("spec", "raw", "expected"),
    [
        (NUMBER, b"", "a number"),
        (NUMBER, b"twelve", "a number"),
        (NUMBER, b"1:2", "a number"),
        (PAIR, b"1", "2 numbers"),
        (PAIR, b"1:2:3", "2 numbers"),
        (PAIR, b"1:x", "2 numbers"),
        (PAIR, b":", "2 numbers"),
        (LOG, b"1", "a log"),
        (LOG, b"1:2,", "a log"),
        (LOG, b"RSL1" + bytes(17), "a log"),
    ],
    ids=lambda v: v.name if isinstance(v, KeySpec) else None,
)
def test_corrupt_value_names_the_key(spec: KeySpec, raw: bytes, expected: str) -> None:
    key = "rl:{user-42}:" + spec.name
    with pytest.raises(CorruptStateError) as info:
        codec_for(spec).decode(key, raw)
    exc = info.value
    assert exc.key == key
    assert exc.value == raw
    assert repr(key) in str(exc)
    assert f"expected {expected}" in str(exc)


def test_corrupt_value_message_shortens_long_values() -> None:
    raw = b"x" * 500
    with pytest.raises(CorruptStateError) as info:
        codec_for(NUMBER).decode("k", raw)
    assert len(str(info.value)) < 200
    assert "..." in str(info.value)
