"""``Strategy``: a frozen dataclass of parameters plus the DSL script it runs.

A strategy has no store-specific code. It names its script, says which keys the
script takes for a throttle key, and turns a ``Rate``, a cost and its own
parameters into the script's numeric arguments; the store does the rest, in one
atomic step. ``stat()`` runs the script's read-only twin, so it never consumes quota.

The contract shared by every strategy:

* ``await strategy(key, rate, store, cost=1)`` returns the wait in ms, ``0.0``
  when allowed; ``await strategy.hit(...)`` returns the whole ``Decision``;
* an unlimited rate always allows, without touching the store;
* a cost of 0 never rejects and never changes state;
* a cost the strategy can never admit is rejected at once with
  ``metadata["exceeds_capacity"] == 1`` and a finite wait (the time the strategy
  takes to refill or drain completely) — never an infinite one.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Generic, TypeVar

from ratescript.decision import NO_METADATA, Decision
from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.scriptdsl.compose import compose_all
from ratescript.scriptdsl.script import Script
from ratescript.stores.base import Store

__all__ = ["Strategy", "StrategyStat"]

MetadataT = TypeVar("MetadataT", bound=Mapping[str, Any])

_UNLIMITED = Decision(True, 0.0, math.inf, 0.0)
# Rates a strategy keeps the arguments of; past this many, it starts afresh.
_REMEMBERED_RATES = 64


@dataclass(frozen=True)
class StrategyStat(Generic[MetadataT]):
    """Where a key stands, without consuming anything.

    ``hits_remaining`` is what the strategy would still admit now; ``wait_ms`` how long
    until a hit of cost 1 would be admitted (0 if now); ``metadata`` the strategy's
    own typed figures (see each strategy's ``...StatMetadata``): the key's state as it
    stands, and the figures that describe a hit (``hit_metadata``: ``exceeds_capacity``,
    GCRA's ``conformant``, ...) for a hit of cost 1.
    """

    key: str
    rate: Rate
    hits_remaining: float
    wait_ms: float
    metadata: MetadataT


def _rate(rate: Rate | str) -> Rate:
    return rate if isinstance(rate, Rate) else Rate.from_value(rate)


@dataclass(frozen=True)
class Strategy(abc.ABC, Generic[MetadataT]):
    """Base of every strategy; subclasses are frozen dataclasses of their parameters."""

    #: The DSL script a hit runs (its read-only twin serves ``stat``).
    script: ClassVar[Script]
    #: Metadata that describes a hit rather than the key's state: ``stat`` reports it
    #: for a hit of cost 1, and everything else as the key stands.
    hit_metadata: ClassVar[frozenset[str]] = frozenset({"exceeds_capacity"})
    #: True when a hit without context runs on ``(key,)`` with arguments that depend
    #: only on the strategy's fields, the rate and the cost: ``hit`` then computes
    #: them once per rate and cost. A subclass that overrides ``arguments`` or
    #: ``keys`` gets False unless it sets it again.
    reuses_arguments: ClassVar[bool] = False

    #: True when a hit that would be admitted on an idle key stays admissible while the
    #: key stays idle (every strategy but ``TimeOfDayStrategy``, whose limit follows the
    #: hour). A composition's exact wait is then the longest of its parts' waits; for a
    #: part that is not steady it asks ``first_fit``.
    steady: ClassVar[bool] = True

    #: True when ``hit`` is this class's: ``__call__`` may then take the hit's common
    #: case itself (one coroutine fewer), as a subclass's own ``hit`` must always run.
    _base_hit: ClassVar[bool] = True

    #: The last common hit on an in-process store, ``(rate, store, cost, arguments,
    #: runner, wait runner)``: a hit with this very rate and store and an equal cost
    #: calls the store's fused runner straight away (``_fast_path``). Each instance
    #: sets its own; it holds that one store alive for as long as it is the last.
    _fast: ClassVar[tuple[Any, ...]] = (None, None, None, (), None, None)

    def __new__(cls, *args: Any, **kwargs: Any) -> Strategy[Any]:
        # Checked when a strategy is made, not at its first hit (a bare AttributeError
        # deep in `hit`): a subclass must name the DSL script its hits run.
        if not isinstance(getattr(cls, "script", None), Script):
            raise ConfigurationError(
                f"{cls.__name__} has no DSL script: set `script = <a @script function>` "
                "in its class body"
            )
        return super().__new__(cls)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = vars(cls)
        if ("arguments" in own or "keys" in own) and "reuses_arguments" not in own:
            cls.reuses_arguments = False
        cls._base_hit = cls.hit is Strategy.hit

    @cached_property
    def _known_arguments(self) -> dict[int, tuple[Rate | str, float, tuple[float, ...]]]:
        """``id(rate)`` -> (that rate, a cost, its arguments); holding the rate keeps its id."""
        return {}

    def keys(self, key: str, context: Mapping[str, Any] | None) -> Sequence[str]:
        """The script's keys for a throttle key; several keys share its hash tag."""
        return (key,)

    @abc.abstractmethod
    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        """The script's numeric arguments for this rate, cost and context."""

    async def hit(
        self,
        key: str,
        rate: Rate | str,
        store: Store,
        cost: float = 1,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Charge ``cost`` against ``key`` if the strategy admits it."""
        if context is None:
            # The common case first: the last one on an in-process store, then a rate
            # and cost seen before (limited, valid).
            fast = self._fast
            if fast[0] is rate and fast[1] is store and fast[2] == cost:
                return fast[4](key, fast[3])  # type: ignore[no-any-return]
            known = self._known_arguments.get(id(rate))
            if known is not None and known[0] is rate and known[1] == cost:
                if store.immediate:
                    return self._fast_path(known[0], store, cost, known[2])[0](key, known[2])
                return await store.run(self.script, (key,), known[2])
        given = rate
        rate = _rate(rate)
        if rate.unlimited:
            return _UNLIMITED
        if cost < 0 or cost != cost:
            raise ConfigurationError(f"a cost must be a number >= 0, got {cost!r}")
        keys = self.keys(key, context)
        if cost == 0:
            # Looks, never charges: the read-only twin, reported as admitted.
            seen = await store.run(self.script.readonly, keys, self.arguments(rate, 0, context))
            return Decision(True, 0.0, seen.remaining, seen.reset_ms, seen.metadata)
        arguments = self.arguments(rate, float(cost), context)
        if context is None and self.reuses_arguments:
            self._keep_arguments(given, cost, arguments)
        return await store.run(self.script, keys, arguments)

    def _fast_path(
        self, rate: Rate | str, store: Store, cost: float, arguments: tuple[float, ...]
    ) -> tuple[Callable[[str, Sequence[float]], Decision], Callable[[str, Sequence[float]], float]]:
        """The store's runners of this strategy's script, kept as ``_fast`` for the next
        hit when this class's ``hit`` runs (a subclass's own ``hit`` must see every one).

        ``arguments`` are kept ones (``_keep_arguments``): checked, for this rate and cost.
        """
        runners = store.runners(self.script)
        if self._base_hit:
            object.__setattr__(self, "_fast", (rate, store, cost, arguments, *runners))
        return runners

    def __getstate__(self) -> dict[str, Any]:
        """The parameters, without what hits cached (runners bound to a store)."""
        return {
            name: value
            for name, value in vars(self).items()
            if name not in ("_fast", "_known_arguments")
        }

    def _keep_arguments(self, rate: Rate | str, cost: float, arguments: Sequence[float]) -> None:
        """Keep a hit's arguments for the next hit with this very rate and an equal cost.

        Only arguments the script takes: ``Store.run_one`` does not check them again.
        """
        script = self.script
        if script.key_count != 1 or len(arguments) != script.param_count:
            return
        known = self._known_arguments
        if len(known) >= _REMEMBERED_RATES:
            known.clear()
        known[id(rate)] = (rate, cost, tuple(arguments))

    async def __call__(self, key: str, rate: Rate | str, store: Store, cost: float = 1) -> float:
        """The wait in milliseconds before ``key`` may be hit again; ``0.0`` when allowed."""
        fast = self._fast  # `hit`'s common case, inline, and only the wait computed
        if fast[0] is rate and fast[1] is store and fast[2] == cost:
            return fast[5](key, fast[3])  # type: ignore[no-any-return]
        if self._base_hit:
            known = self._known_arguments.get(id(rate))
            if known is not None and known[0] is rate and known[1] == cost and store.immediate:
                return self._fast_path(known[0], store, cost, known[2])[1](key, known[2])
        decision = await self.hit(key, rate, store, cost)
        return 0.0 if decision.allowed else decision.wait_ms

    async def stat(
        self,
        key: str,
        rate: Rate | str,
        store: Store,
        context: Mapping[str, Any] | None = None,
    ) -> StrategyStat[MetadataT]:
        """Where ``key`` stands for a hit of cost 1; never changes state."""
        rate = _rate(rate)
        if rate.unlimited:
            return StrategyStat(key, rate, math.inf, 0.0, self.stat_metadata(_UNLIMITED))
        # One script, one round trip: the read-only twin looking with cost 0 says where
        # the key stands (its remaining and metadata describe the state as it is, not
        # as a hit would leave it), the twin with cost 1 whether and when a hit fits.
        keys = list(self.keys(key, context))
        twin = self.script.readonly
        both = await store.run(
            compose_all(twin, twin),
            keys + keys,
            [*self.arguments(rate, 0.0, context), *self.arguments(rate, 1.0, context)],
        )
        numbers = both.metadata
        fits = numbers["1__allowed"] == 1.0
        wait = 0.0 if fits else numbers["1__wait"]
        # The state from the look with cost 0; what describes a hit, from the one with cost 1.
        own = {
            name: numbers[("1_" if name in self.hit_metadata else "0_") + name]
            for name in self.script.metadata_names
        }
        now = Decision(True, 0.0, numbers["0__remaining"], numbers["0__reset"], own)
        return StrategyStat(key, rate, now.remaining, wait, self.stat_metadata(now))

    def first_fit(
        self,
        metadata: Mapping[str, Any],
        rate: Rate,
        cost: float,
        allowed: bool,
        not_before_ms: float,
    ) -> float | None:
        """For a strategy that is not ``steady``: the first wait of at least
        ``not_before_ms`` after which a hit of ``cost`` fits on an otherwise idle key,
        from the ``metadata`` its script returned (``allowed``: whether the script
        admitted the hit); ``None`` when it cannot tell. A steady strategy's is its wait.
        """
        return None

    def stat_metadata(self, decision: Decision) -> MetadataT:
        """The typed metadata of a decision (by default, the script's metadata as is)."""
        metadata: Any = dict(decision.metadata) if decision.metadata is not NO_METADATA else {}
        return metadata  # type: ignore[no-any-return]
