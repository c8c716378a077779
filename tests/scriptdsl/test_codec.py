"""Writing a log back re-uses the bytes of its unchanged entries — and only those."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ratescript.scriptdsl.codec import DecodedLog, codec_for, encode_written
from ratescript.scriptdsl.nodes import KeyKind, KeySpec
from ratescript.scriptdsl.runtime import log_append, log_copy, log_trim

LOG = codec_for(KeySpec("log", KeyKind.LOG, ()))
NUMBERS = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False, allow_infinity=False)


@st.composite
def logs(draw: st.DrawFn) -> list[tuple[float, float]]:
    times = sorted(set(draw(st.lists(NUMBERS, max_size=30))))
    return [(time, draw(NUMBERS)) for time in times]


@given(logs(), st.integers(0, 40), st.lists(st.tuples(NUMBERS, NUMBERS), max_size=4))
def test_a_written_log_is_byte_for_byte_its_full_encoding(
    entries: list[tuple[float, float]], trimmed: int, appended: list[tuple[float, float]]
) -> None:
    read = LOG.decode("k", LOG.encode(entries))
    assert type(read) is DecodedLog or not entries
    written = log_copy(read)
    if written:
        log_trim(written, written[min(trimmed, len(written)) - 1][0] if trimmed else -1e16)
    for time, amount in appended:  # appends after the last, or merges into it
        log_append(written, time, amount, 1)
    assert encode_written(LOG, written, read) == LOG.encode(written)


def test_entries_changed_in_place_are_printed_again() -> None:
    read = LOG.decode("k", b"1:1,2:1,3:1")
    written = log_copy(read)
    written[1] = (2.0, 5.0)  # not a DSL operation, but never re-use bytes it changed
    assert encode_written(LOG, written, read) == b"1:1,2:5,3:1"
    assert encode_written(LOG, [(9.0, 9.0)], read) == b"9:9"
    assert encode_written(LOG, [], read) == b""
