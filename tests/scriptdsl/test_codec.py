"""A stored log: its binary layout, and writing it back re-uses the bytes of unchanged entries."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratescript.exceptions import CorruptStateError
from ratescript.scriptdsl.codec import (
    LOG_MAGIC,
    DecodedLog,
    canonical,
    codec_for,
    write_log,
)
from ratescript.scriptdsl.nodes import KeyKind, KeySpec
from ratescript.scriptdsl.runtime import log_append, log_copy, log_trim

LOG = codec_for(KeySpec("log", KeyKind.LOG, ()))
NUMBERS = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False, allow_infinity=False)


@st.composite
def logs(draw: st.DrawFn) -> tuple[list[tuple[float, float]], float]:
    times = sorted(set(draw(st.lists(NUMBERS, max_size=30))))
    entries = [(time, draw(NUMBERS)) for time in times]
    return entries, draw(NUMBERS)


def test_layout_is_magic_total_dropped_then_pairs_of_little_endian_doubles() -> None:
    raw = LOG.encode(([(1.0, 2.0), (3.5, -0.0)], 2.0))
    assert raw == LOG_MAGIC + struct.pack("<6d", 2.0, 0.0, 1.0, 2.0, 3.5, -0.0)
    assert LOG.encode(([], 0.0)) == LOG_MAGIC + struct.pack("<2d", 0.0, 0.0)
    entries, total = LOG.decode("k", raw)
    assert entries == [(1.0, 2.0), (3.5, -0.0)]
    assert struct.pack("<d", entries[1][1]) == struct.pack("<d", -0.0)  # the sign survives
    assert total == 2.0


@given(logs(), st.integers(0, 40), st.lists(st.tuples(NUMBERS, NUMBERS), max_size=4))
def test_a_written_log_is_byte_for_byte_its_full_encoding(
    log: tuple[list[tuple[float, float]], float],
    trimmed: int,
    appended: list[tuple[float, float]],
) -> None:
    read = LOG.decode("k", LOG.encode(log))
    assert type(read[0]) is DecodedLog
    written, total = log_copy(read)
    if written and trimmed:
        total = log_trim(written, total, written[min(trimmed, len(written)) - 1][0])
    for time, amount in appended:  # appends after the last, or merges into it
        total = log_append(written, total, time, amount, 1)
    assert write_log((written, total), read)[0].raw == LOG.encode((written, total))


ZEROS_AND_NUMBERS = st.sampled_from((0.0, -0.0, 5e-324)) | NUMBERS


@given(
    logs(),
    st.lists(
        st.tuples(
            st.integers(0, 5),
            st.lists(st.tuples(ZEROS_AND_NUMBERS, ZEROS_AND_NUMBERS), max_size=3),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_a_log_written_again_and_again_is_each_time_its_full_encoding(
    log: tuple[list[tuple[float, float]], float],
    steps: list[tuple[int, list[tuple[float, float]], bool]],
) -> None:
    """As on Memcached: each write's result is the next read, zeros of both signs come
    and go, and what a written log knows of its zeros is true."""
    read = LOG.decode("k", LOG.encode(log))
    for trimmed, appended, flip_sign in steps:
        entries, total = log_copy(read)
        if entries and trimmed:
            total = log_trim(entries, total, entries[min(trimmed, len(entries)) - 1][0])
        for time, amount in appended:
            total = log_append(entries, total, time, amount, 1)
        if flip_sign and entries and entries[-1][1] == 0.0:
            entries[-1] = (entries[-1][0], -entries[-1][1])  # equal, other bytes
        written = write_log((entries, total), read)
        assert written[0].raw == LOG.encode((entries, total))
        assert written == (entries, total)
        if written[0].zero_free:
            assert all(time != 0.0 and amount != 0.0 for time, amount in entries)
        read = written


def test_entries_changed_in_place_are_packed_again() -> None:
    read = LOG.decode("k", LOG.encode(([(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)], 3.0)))
    written, _total = log_copy(read)
    written[1] = (2.0, 5.0)  # not a DSL operation, but never re-use bytes it changed
    expected = LOG.encode(([(1.0, 1.0), (2.0, 5.0), (3.0, 1.0)], 7.0))
    assert write_log((written, 7.0), read)[0].raw == expected
    assert write_log(([(9.0, 9.0)], 9.0), read)[0].raw == LOG.encode(([(9.0, 9.0)], 9.0))
    assert write_log(([], 0.0), read)[0].raw == LOG_MAGIC + struct.pack("<2d", 0.0, 0.0)


@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_an_entry_equal_to_the_one_read_but_for_the_sign_of_zero_is_packed_again(
    zero: float,
) -> None:
    read = LOG.decode("k", LOG.encode(([(1.0, 1.0), (2.0, zero), (3.0, 1.0)], 2.0)))
    written, total = log_copy(read)
    written[1] = (2.0, -zero)  # equal (0.0 == -0.0), yet other bytes
    assert write_log((written, total), read)[0].raw == LOG.encode((written, total))
    assert LOG.encode((written, total)) != LOG.encode(read)


def test_an_unchanged_run_is_re_used_with_or_without_its_last_entry() -> None:
    entries = [(1.7e12 + i, 1.0) for i in range(1000)]
    read = LOG.decode("k", LOG.encode((entries, 1000.0)))
    for merged in (False, True):
        written, total = log_copy(read)
        total = log_trim(written, total, 1.7e12)  # drops the first
        total = log_append(written, total, 1.7e12 + (999 if merged else 1000), 2.0, 1)
        assert write_log((written, total), read)[0].raw == LOG.encode((written, total))


def test_entries_a_redis_script_dropped_are_skipped_and_canonical_drops_them() -> None:
    # What a Redis script leaves after dropping two entries in place: counted, not removed.
    raw = LOG_MAGIC + struct.pack("<8d", 1.0, 2.0, 1.0, 1.0, 2.0, 1.0, 3.0, 1.0)
    entries, total = LOG.decode("k", raw)
    assert (entries, total) == ([(3.0, 1.0)], 1.0)
    assert canonical(raw) == LOG.encode(([(3.0, 1.0)], 1.0))
    written = write_log(([*entries, (4.0, 1.0)], 2.0), (entries, total))[0].raw
    assert written == LOG.encode(([(3.0, 1.0), (4.0, 1.0)], 2.0))
    assert canonical(b"12.5") == b"12.5"  # not a log: as it is


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"RSL1",
        b"1:1,2:3",  # the text layout of earlier versions
        LOG_MAGIC + struct.pack("<2d", 0.0, 0.0) + b"x",  # not a whole entry
        b"XXXX" + struct.pack("<4d", 0.0, 0.0, 1.0, 1.0),  # wrong magic
        LOG_MAGIC + struct.pack("<4d", 0.0, 2.0, 1.0, 1.0),  # drops more than it holds
        LOG_MAGIC + struct.pack("<4d", 0.0, 0.5, 1.0, 1.0),  # drops half an entry
        LOG_MAGIC + struct.pack("<4d", 0.0, float("nan"), 1.0, 1.0),
    ],
)
def test_a_value_that_is_not_a_log_is_corrupt(raw: bytes) -> None:
    with pytest.raises(CorruptStateError, match="expected a log"):
        LOG.decode("rl:{u}:log", raw)
