"""How each kind of key value is stored as bytes — the same bytes on every target.

Numbers are printed with ``%.17g``, which round-trips every double exactly and is
byte-identical between Python's ``b"%.17g" % x`` and Lua 5.1's
``string.format("%.17g", x)`` (Lua's ``tostring`` keeps only 14 digits).

* a number: ``b"12.5"``
* a record: its fields in declaration order, joined by ``:`` — ``b"12.5:1700000000000"``
* a log: binary, so that a script can read and write one entry without touching the
  others — the magic ``b"RSL1"``, then little-endian doubles: the log's running
  total, how many entries at the front are dropped, and one ``(time, amount)`` pair
  per entry, oldest first (20 bytes of header, 16 per entry). Doubles copied as
  bytes are exact, with no printing at all. Redis scripts read a log of up to 14
  entries whole and write it back compact; of a longer one they read the entries they need
  with ``GETRANGE`` and write only what changed (``SETRANGE`` of the header,
  ``APPEND`` of new entries): dropping entries from the front just counts them, and
  the value is rewritten compact once they outnumber the live ones. Every other
  target writes logs compact (nothing dropped); ``canonical`` gives those bytes for
  any stored log, which is what comparing stores compares.

A decoded log is ``(entries, total)``: a list of ``(time, amount)`` tuples and the
total every target keeps up to date as entries come and go (see ``runtime``), so
``log.sum()`` costs nothing however long the log.

Decoding raises ``CorruptStateError`` naming the key when a value does not parse
as what the script declared (for a log: the magic or the length is wrong); the
caller's failure policy then decides.

A log written back after a script ran (``write_log``) re-uses the bytes of the
entries it kept unchanged: scripts only trim a log's head, merge into its last
entry and append, so a thousand-entry log costs one slice and a few packs.
"""

from __future__ import annotations

import functools
import itertools
import operator
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ratescript.exceptions import CorruptStateError
from ratescript.scriptdsl.nodes import KeyKind, KeySpec

__all__ = [
    "LOG_MAGIC",
    "DecodedLog",
    "KeyCodec",
    "LogValue",
    "canonical",
    "codec_for",
    "write_log",
]

#: The first bytes of every stored log (format version 1).
LOG_MAGIC = b"RSL1"
_HEADER = struct.Struct("<4sdd")  # the magic, the running total, the dropped entries
_ZERO_BYTES = bytes(7)  # in the bytes of every zero double (see _unchanged)
_ENTRY_SIZE = 16  # two little-endian doubles: time, amount
_ENTRY = struct.Struct("<dd")


@dataclass(frozen=True)
class KeyCodec:
    """Encoder and decoder for one shape of value (a number, a record of N fields, a log).

    There is one codec per shape (``codec_for`` interns them), so a store keeping
    decoded values can tell by identity whether a value fits the reading script.
    """

    kind: KeyKind
    field_count: int
    encode: Callable[[Any], bytes]
    decode_value: Callable[[bytes], Any]

    @property
    def expected(self) -> str:
        if self.kind is KeyKind.NUMBER:
            return "a number"
        if self.kind is KeyKind.RECORD:
            return f"{self.field_count} numbers"
        return "a log"

    def decode(self, key: str, raw: bytes) -> Any:
        try:
            return self.decode_value(raw)
        except (ValueError, TypeError):
            raise CorruptStateError(key, raw, self.expected) from None


# Every byte %.17g (and the separators) can produce. Rejecting all others first makes
# Python's float() and Lua's tonumber() accept exactly the same values.
_PRINTABLE = b"0123456789.e+-:"


def _printed(raw: bytes) -> bytes:
    if raw.translate(None, _PRINTABLE):
        raise ValueError("a byte %.17g never prints")
    return raw


def _encode_number(value: float) -> bytes:
    return b"%.17g" % value


def _finite(value: float) -> float:
    # Digits past a double's range ("1e400", 400 nines) read as infinity here and in
    # Lua's tonumber alike; no script wrote one (storing a non-finite number fails).
    if value - value != 0.0:
        raise ValueError("a number no double can hold")
    return value


def _decode_number(raw: bytes) -> float:
    return _finite(float(_printed(raw)))


def _record_codec(count: int) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    pattern = b":".join([b"%.17g"] * count)

    def encode(values: tuple[float, ...]) -> bytes:
        return pattern % values

    def decode(raw: bytes) -> tuple[float, ...]:
        parts = _printed(raw).split(b":")
        if len(parts) != count:
            raise ValueError("wrong number of fields")
        return tuple(map(_finite, map(float, parts)))

    return encode, decode


#: A decoded log: its ``(time, amount)`` entries, oldest first, and their running total.
LogValue = tuple[list[tuple[float, float]], float]


def _pack(total: float, entries: list[tuple[float, float]]) -> bytes:
    return _HEADER.pack(LOG_MAGIC, total, 0.0) + struct.pack(
        f"<{2 * len(entries)}d", *itertools.chain.from_iterable(entries)
    )


def _encode_log(value: LogValue) -> bytes:
    entries, total = value
    return _pack(total, entries)


class DecodedLog(list[tuple[float, float]]):
    """The entries of a decoded log, with the bytes they came from, so a write can re-use them."""

    __slots__ = ("raw", "start", "zero_free")

    raw: bytes
    start: int  # where the first entry's bytes begin in ``raw``
    zero_free: bool | None  # no entry holds a zero double (None: not looked at yet)


def _decode_log(raw: bytes) -> tuple[DecodedLog, float]:
    if len(raw) < _HEADER.size or (len(raw) - _HEADER.size) % _ENTRY_SIZE:
        raise ValueError("not a whole number of entries")
    magic, total, dropped = _HEADER.unpack_from(raw)
    count = (len(raw) - _HEADER.size) // _ENTRY_SIZE
    if magic != LOG_MAGIC or not 0 <= dropped <= count or dropped != int(dropped):
        raise ValueError("not a log")
    start = _HEADER.size + int(dropped) * _ENTRY_SIZE
    entries = DecodedLog(_ENTRY.iter_unpack(memoryview(raw)[start:]))
    entries.raw = raw
    entries.start = start
    entries.zero_free = None
    return entries, total


def canonical(raw: bytes) -> bytes:
    """A stored value as every target but Redis writes it: a log without dropped entries.

    Anything that is not a log is returned as it is.
    """
    if not raw.startswith(LOG_MAGIC):
        return raw
    try:
        entries, total = _decode_log(raw)
    except ValueError:
        return raw
    return raw if entries.start == _HEADER.size else _pack(total, entries)


def _zero_free(log: DecodedLog) -> bool:
    """Whether no entry of ``log`` holds a zero double, looked at once per log.

    The bytes of a zero double (and only of a zero or a tiny one) hold seven zero
    bytes in a row; a run found across two entries only makes the answer a cautious
    no. Scanning 16 kB costs ~4 µs, so a log written back inherits the answer.
    """
    if log.zero_free is None:
        log.zero_free = log.raw.find(_ZERO_BYTES, log.start) < 0
    return log.zero_free


def _unchanged(entries: list[tuple[float, float]], old: DecodedLog, head: int) -> int:
    """How many of ``entries``, from the first, pack to the bytes of ``old[head:]``.

    Checked entry by entry (``operator.is_``) that costs ~40 µs for 1,000 entries, so
    first by list equality, which compares by identity first, in C: equal doubles pack
    to equal bytes but for the sign of zero, which a log without zeros cannot differ
    in. The log operations drop entries from the head and change or add them at the
    tail, so the unchanged run is usually all of ``old[head:]`` or all of it but its
    last entry; a run whose last entry differs is passed over without comparing it.
    """
    kept = min(len(old) - head, len(entries))
    if _zero_free(old):
        for run in (kept, kept - 1):
            if run <= 0:
                return 0
            if entries[run - 1] == old[head + run - 1] and (
                entries[:run] == old[head : head + run]
            ):
                return run
    same = list(map(operator.is_, entries[:kept], old[head : head + kept]))
    return same.index(False) if False in same else kept


def write_log(value: LogValue, read: Any) -> tuple[DecodedLog, float]:
    """Log ``value`` written back to a key that held ``read`` (decoded, or None).

    Returns ``value`` as if decoded from its bytes, which are its ``raw``: byte for
    byte what ``encode`` gives, re-using the bytes of the run of entries unchanged
    since they were decoded (see ``_unchanged``), and ready to be the next read.
    """
    entries, total = value
    old = None if read is None else read[0]
    kept = 0
    reused = b""
    if type(old) is DecodedLog and entries:
        try:
            head = old.index(entries[0])
        except ValueError:
            head = -1
        if head >= 0:
            kept = _unchanged(entries, old, head)
            start = old.start + head * _ENTRY_SIZE
            reused = old.raw[start : start + kept * _ENTRY_SIZE]
    tail = struct.pack(
        f"<{2 * (len(entries) - kept)}d", *itertools.chain.from_iterable(entries[kept:])
    )
    written = DecodedLog(entries)
    written.raw = b"".join([_HEADER.pack(LOG_MAGIC, total, 0.0), reused, tail])
    written.start = _HEADER.size
    # What is known of the re-used entries holds for them; the new ones are looked at.
    known = not kept or old.zero_free is True  # type: ignore[union-attr]
    written.zero_free = (tail.find(_ZERO_BYTES) < 0) if known else None
    return written, total


def codec_for(spec: KeySpec) -> KeyCodec:
    """The codec of a declared key's values."""
    return _codec(spec.kind, len(spec.fields))


@functools.cache
def _codec(kind: KeyKind, field_count: int) -> KeyCodec:
    if kind is KeyKind.NUMBER:
        return KeyCodec(kind, 0, _encode_number, _decode_number)
    if kind is KeyKind.LOG:
        return KeyCodec(kind, 0, _encode_log, _decode_log)
    encode, decode = _record_codec(field_count)
    return KeyCodec(kind, field_count, encode, decode)
