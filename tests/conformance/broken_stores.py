"""Stores that are wrong on purpose, to prove the conformance kit bites.

Each breaks the contract in a way a real store author could: losing an update
under load, printing numbers with too few digits (Lua's ``tostring`` does), or
handling only the first key of a script.
Every breakage is deterministic per store instance, so Hypothesis can shrink it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ratescript.decision import Decision
from ratescript.scriptdsl.script import Script
from ratescript.stores.base import Clock
from ratescript.stores.memory import InMemoryStore


class LosesUpdates(InMemoryStore):
    """Forgets every fifth write, as a store with a racy read-modify-write would."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.runs = 0

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[float]) -> Decision:
        self.runs += 1
        if self.runs % 5:
            return await super().run(script, keys, args)
        before = dict(self._data)
        decision = await super().run(script, keys, args)
        self._data.clear()
        self._data.update(before)
        return decision


class PrintsFourteenDigits(InMemoryStore):
    """Keeps every number as ``%.14g`` would print it, as Lua's ``tostring`` does."""

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[float]) -> Decision:
        decision = await super().run(script, keys, args)
        for key in self.script_keys(keys):
            entry = self._data.get(key)
            if entry is not None and entry[2] is not None:
                self._data[key] = (_rounded(entry[0]), entry[1], entry[2])
        return decision


class WritesFirstKeyOnly(InMemoryStore):
    """Keeps the writes of a script's first key only, as a store that reads ``writes``
    as if every script had one key would."""

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[float]) -> Decision:
        others = self.script_keys(keys)[1:]
        before = {key: self._data.get(key) for key in others}
        decision = await super().run(script, keys, args)
        for key, entry in before.items():
            if entry is None:
                self._data.pop(key, None)
            else:
                self._data[key] = entry
        return decision


def _fourteen(x: float) -> float:
    return float(b"%.14g" % x)


def _rounded(value: Any) -> Any:
    """A decoded value (a number, a record's fields, a log's entries and total), rounded."""
    if isinstance(value, float):
        return _fourteen(value)
    if isinstance(value[0], list):
        entries, total = value
        return [(_fourteen(t), _fourteen(a)) for t, a in entries], _fourteen(total)
    return tuple(map(_fourteen, value))


def memory(*, namespace: str, clock: Clock) -> InMemoryStore:
    return InMemoryStore(namespace=namespace, clock=clock)


def loses_updates(*, namespace: str, clock: Clock) -> InMemoryStore:
    return LosesUpdates(namespace=namespace, clock=clock)


def prints_fourteen_digits(*, namespace: str, clock: Clock) -> InMemoryStore:
    return PrintsFourteenDigits(namespace=namespace, clock=clock)


def writes_first_key_only(*, namespace: str, clock: Clock) -> InMemoryStore:
    return WritesFirstKeyOnly(namespace=namespace, clock=clock)
