"""The conformance state machine: every executor must decide and store alike.

Hypothesis generates runs — a start time, the parameters of each script, then a
sequence of hits (script, key, cost) and clock advances — and performs every step
on every executor: the Python target (on bytes, the reference, and on objects),
the Lua target on lupa, and each store under test. After every hit it demands
bit-identical decisions (``-0.0`` is not ``0.0``) and identical stored bytes.

Stored state is compared on the keys that are live in the reference. A server's
own TTLs run on its wall clock, not the kit's logical clock, so a store may still
hold a key the reference has let expire; it must then decide exactly as if the key
were gone — which is what makes expiry a pure memory matter.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky, FlakyFailure
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from ratescript.conformance.cases import BUILTIN_CASES, ScriptCase
from ratescript.conformance.executors import (
    Executor,
    LuaExecutor,
    PythonExecutor,
    StoreExecutor,
)
from ratescript.decision import Decision
from ratescript.exceptions import ScriptError, StoreConnectionError, StoreError
from ratescript.stores.base import Clock, Store

__all__ = [
    "ConformanceFailure",
    "StoreFactory",
    "build_machine",
    "check_stores",
    "store_factory",
]

#: Called as ``factory(namespace=..., clock=...)``; may return an awaitable.
StoreFactory = Callable[..., "Store | Awaitable[Store]"]

start_times = st.sampled_from((1.7e12, 0.0, 1 / 3, 2.0**52))
clock_steps = st.sampled_from(
    (0.0, 0.1, 1 / 3, 1.0, 999.0, 1000.0, 60_000.0, 600_000.0, -0.5, 86_400_000.0)
) | st.floats(0, 4_000_000, allow_nan=False)


#: Keys whose logical TTL is shorter than this may expire on a real server, which
#: counts its own wall-clock time, during a run; a run lasts far less than this.
REAL_TIME_MARGIN_MS = 5_000.0


class ConformanceFailure(AssertionError):
    """Executors disagreed: a decision or the stored bytes differ."""


def _outcome(executor: Executor, *call: Any) -> object:
    """A decision as exact bytes, or the kind of script error it raised."""
    try:
        decision: Decision = executor.run(*call)
    except (ScriptError, StoreError) as exc:
        if isinstance(exc, StoreConnectionError):
            raise
        return ("error", type(exc).__name__)
    numbers = (decision.wait_ms, decision.remaining, decision.reset_ms)
    return (
        "allow" if decision.allowed else "deny",
        *(b"%.17g" % x for x in numbers),
        tuple((name, b"%.17g" % value) for name, value in decision.metadata.items()),
    )


def _open_store(factory: StoreFactory, executor: StoreExecutor, namespace: str) -> Store:
    made = factory(namespace=namespace, clock=executor.clock)
    store = executor.loop.run_until_complete(made) if inspect.isawaitable(made) else made
    if not isinstance(store, Store):
        raise TypeError(f"store factory for {executor.name!r} returned {store!r}, not a Store")
    executor.loop.run_until_complete(store.initialize())
    return store


def build_machine(
    stores: Mapping[str, StoreFactory],
    cases: Sequence[ScriptCase] = BUILTIN_CASES,
    *,
    lua: bool = True,
) -> type[RuleBasedStateMachine]:
    """A state machine class running ``cases`` on the references and ``stores``."""
    if not cases:
        raise ValueError("give at least one script case")
    # Hits name their case by its script, so a failing run reads `hit(script='gcra', ...)`.
    labels = _labels(cases)

    class StoreConformance(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.now = 0.0
            self.reference = PythonExecutor(encoded=True)
            self.executors: list[Executor] = [self.reference, PythonExecutor(encoded=False)]
            if lua:
                self.executors.append(LuaExecutor())
            self.stores: list[Store] = []
            namespace = f"rsconf{uuid.uuid4().hex[:12]}"
            try:
                for name, factory in stores.items():
                    executor = StoreExecutor(name, self.loop)
                    store = _open_store(factory, executor, namespace)
                    executor.attach(store)
                    self.stores.append(store)
                    self.executors.append(executor)
            except BaseException:
                self.teardown()
                raise
            self.parameters: list[dict[str, float]] = []
            self.touched: dict[str, None] = {}

        @initialize(start=start_times, data=st.data())
        def start(self, start: float, data: st.DataObject) -> None:
            self.now = start
            for case in cases:
                self.parameters.append(
                    {
                        name: data.draw(strategy, label=f"{case.script.name}.{name}")
                        for name, strategy in case.parameters.items()
                    }
                )

        @rule(ms=clock_steps)
        def advance(self, ms: float) -> None:
            self.now += ms

        @rule(script=st.sampled_from(labels), key_index=st.integers(0, 7), data=st.data())
        def hit(self, script: str, key_index: int, data: st.DataObject) -> None:
            case_index = labels.index(script)
            case = cases[case_index]
            key_options = case.key_names(f"{case_index}:")
            keys = key_options[key_index % len(key_options)]
            drawn = dict(self.parameters[case_index])
            for name, strategy in case.per_hit.items():
                drawn[name] = data.draw(strategy, label=name)
            args = tuple(drawn[name] for name in case.script.params)
            self.expire_like_real_servers(keys)
            outcomes = {
                executor.name: _outcome(executor, case.script, list(keys), args, self.now)
                for executor in self.executors
            }
            expected = outcomes[self.reference.name]
            if any(outcome != expected for outcome in outcomes.values()):
                lines = "\n".join(f"  {name:>16}: {outcome}" for name, outcome in outcomes.items())
                raise ConformanceFailure(
                    f"decisions differ for {case.script.name}{keys} args={args} "
                    f"at t={self.now!r}:\n{lines}"
                )
            self.touched.update(dict.fromkeys(keys))
            self.check_state()

        def expire_like_real_servers(self, keys: Sequence[str]) -> None:
            """Expire, on every executor at once, keys a real server may expire any moment.

            A server expires keys by its own wall clock, not the kit's logical clock,
            so a key with a short TTL could vanish there mid-step. Dropping such keys
            everywhere first keeps the executors comparable and the run reproducible;
            keys with a TTL longer than any run are left to the scripts.
            """
            for key in keys:
                ttl = self.reference.ttl_left(self.now, key)
                if ttl is not None and ttl < REAL_TIME_MARGIN_MS:
                    for executor in self.executors:
                        executor.forget(key)

        def check_state(self) -> None:
            touched = list(self.touched)
            reference = self.reference.state(self.now, touched)
            live = list(reference)
            for executor in self.executors[1:]:
                # The emulated targets follow the logical clock exactly. A store must hold
                # every key the reference holds, byte for byte — except that a key with a
                # short TTL may already be gone from a server counting real time.
                exact = not isinstance(executor, StoreExecutor)
                state = executor.state(self.now, touched if exact else live)
                if not exact:
                    for key in live:
                        ttl = self.reference.ttl_left(self.now, key)
                        if key not in state and ttl is not None and ttl < REAL_TIME_MARGIN_MS:
                            state[key] = reference[key]  # expired on the server already
                if state != reference:
                    raise ConformanceFailure(
                        f"stored state differs at t={self.now!r}:\n"
                        f"  {self.reference.name:>16}: {reference}\n"
                        f"  {executor.name:>16}: {state}"
                    )

        def teardown(self) -> None:
            try:
                for store in self.stores:
                    self.loop.run_until_complete(store.close())
            finally:
                self.loop.close()

    return StoreConformance


def _labels(cases: Sequence[ScriptCase]) -> list[str]:
    """A name per case: its script's, numbered where several cases run one script."""
    names = [case.script.name for case in cases]
    return [
        name if names.count(name) == 1 else f"{name}#{names[:at].count(name) + 1}"
        for at, name in enumerate(names)
    ]


def check_stores(
    stores: Mapping[str, StoreFactory],
    cases: Sequence[ScriptCase] = BUILTIN_CASES,
    *,
    max_examples: int = 40,
    steps: int = 30,
    lua: bool = True,
    derandomize: bool = False,
    shrink: bool = True,
) -> None:
    """Run the conformance machine; raises ``ConformanceFailure`` with a minimal example."""
    machine = build_machine(stores, cases, lua=lua)
    options = settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=derandomize,
        phases=list(Phase) if shrink else [p for p in Phase if p is not Phase.shrink],
    )
    try:
        run_state_machine_as_test(machine, settings=options)
    except (Flaky, FlakyFailure) as exc:
        # A store that fails only sometimes (say, loses an occasional update) makes
        # Hypothesis' replay diverge; that is a failure too, not a test-harness error.
        raise ConformanceFailure(
            f"the stores disagreed, but not reproducibly (a store that fails only "
            f"sometimes?): {exc}"
        ) from exc


def store_factory(cls: type[Store], **options: Any) -> StoreFactory:
    """A factory for ``cls`` with fixed ``options``, taking the kit's namespace and clock."""

    def factory(*, namespace: str, clock: Clock) -> Store:
        return cls(namespace=namespace, clock=clock, **options)

    return factory
