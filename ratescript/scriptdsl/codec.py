"""How each kind of key value is stored as bytes — the same bytes on every target.

Numbers are printed with ``%.17g``, which round-trips every double exactly and is
byte-identical between Python's ``b"%.17g" % x`` and Lua 5.1's
``string.format("%.17g", x)`` (Lua's ``tostring`` keeps only 14 digits).

* a number: ``b"12.5"``
* a record: its fields in declaration order, joined by ``:`` — ``b"12.5:1700000000000"``
* a log: ``time:amount`` entries, oldest first, joined by ``,`` — ``b"1:1,2:3"``;
  the empty log is ``b""``.

Decoding raises ``CorruptStateError`` naming the key when a value does not parse
as what the script declared; the caller's failure policy then decides.

A log written back after a script ran (``encode_written``) re-uses the bytes of the
entries it kept unchanged instead of printing two numbers per entry again: scripts
only trim a log's head, merge into its last entry and append, so a thousand-entry
log costs one join and a few prints, not two thousand. The Lua target does the same.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ratescript.exceptions import CorruptStateError
from ratescript.scriptdsl.nodes import KeyKind, KeySpec

__all__ = ["DecodedLog", "KeyCodec", "codec_for", "encode_written"]


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
            if raw.translate(None, _PRINTABLE):
                raise ValueError("a byte %.17g never prints")
            return self.decode_value(raw)
        except (ValueError, TypeError):
            raise CorruptStateError(key, raw, self.expected) from None


# Every byte %.17g (and the separators) can produce. Rejecting all others first makes
# Python's float() and Lua's tonumber() accept exactly the same values.
_PRINTABLE = b"0123456789.e+-:,"


def _encode_number(value: float) -> bytes:
    return b"%.17g" % value


def _record_codec(count: int) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    pattern = b":".join([b"%.17g"] * count)

    def encode(values: tuple[float, ...]) -> bytes:
        return pattern % values

    def decode(raw: bytes) -> tuple[float, ...]:
        parts = raw.split(b":")
        if len(parts) != count:
            raise ValueError("wrong number of fields")
        return tuple(map(float, parts))

    return encode, decode


def _encode_log(entries: list[tuple[float, float]]) -> bytes:
    return b",".join([b"%.17g:%.17g" % entry for entry in entries])


class DecodedLog(list[tuple[float, float]]):
    """A decoded log that keeps the bytes of each entry, so a write can re-use them."""

    __slots__ = ("items",)

    items: list[bytes]


def _decode_log(raw: bytes) -> list[tuple[float, float]]:
    if not raw:
        return []
    entries = DecodedLog()
    entries.items = items = raw.split(b",")
    for item in items:
        time, _colon, amount = item.partition(b":")
        entries.append((float(time), float(amount)))
    return entries


def encode_written(codec: KeyCodec, value: Any, read: Any) -> bytes:
    """The bytes of ``value`` written back to a key that held ``read`` (decoded).

    Byte for byte what ``codec.encode(value)`` gives: only entries that are the very
    objects decoded (so unchanged) have their bytes re-used.
    """
    if codec.kind is not KeyKind.LOG or type(read) is not DecodedLog or not value:
        return codec.encode(value)
    try:
        head = read.index(value[0])
    except ValueError:
        return codec.encode(value)
    kept = min(len(read) - head, len(value))
    same = list(map(operator.is_, value[:kept], read[head : head + kept]))
    kept = same.index(False) if False in same else kept
    if not kept:
        return codec.encode(value)
    fresh = [b"%.17g:%.17g" % entry for entry in value[kept:]]
    return b",".join([*read.items[head : head + kept], *fresh])


def codec_for(spec: KeySpec) -> KeyCodec:
    """The codec of a declared key's values."""
    return _codec(spec.kind, len(spec.fields))


@functools.cache
def _codec(kind: KeyKind, field_count: int) -> KeyCodec:
    if kind is KeyKind.NUMBER:
        return KeyCodec(kind, 0, _encode_number, float)
    if kind is KeyKind.LOG:
        return KeyCodec(kind, 0, _encode_log, _decode_log)
    encode, decode = _record_codec(field_count)
    return KeyCodec(kind, field_count, encode, decode)
