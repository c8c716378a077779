"""Script cases: a script plus how to draw its arguments, for the conformance kit.

Parameters (limits, periods) are drawn once per generated run; per-hit arguments
(costs) on every hit. Periods are long (one minute to a day) on purpose: a real
server expires keys by its own wall clock, so a TTL must outlast the test while
the kit's logical clock moves through many periods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hypothesis import strategies as st

from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.exceptions import ConfigurationError
from ratescript.scriptdsl.compose import compose_all
from ratescript.scriptdsl.script import Script

__all__ = [
    "BUILTIN_CASES",
    "COMPOSED_CASE",
    "MORE_CASES",
    "ScriptCase",
    "costs",
    "limits",
    "periods_ms",
]

#: Costs, leaning on FACTS.md's traps: 0, -0.0, fractions, a cost above any limit.
costs = st.sampled_from((0.0, -0.0, 0.1, 1 / 3, 1.0, 1.0, 1.0, 2.0, 2.5, 7.0, 1e6)) | st.floats(
    0, 20, allow_nan=False
)
limits = st.sampled_from((1.0, 3.0, 10.0, 0.1, 1 / 3, 2.0**53)) | st.integers(1, 50).map(float)
periods_ms = st.sampled_from((60_000.0, 86_400_000.0, 60_000.0 / 3, 100_000.1)) | st.floats(
    60_000, 3_600_000, allow_nan=False
)


@dataclass(frozen=True)
class ScriptCase:
    """A script under test and strategies for its parameters.

    ``parameters`` maps each parameter name drawn once per run to a strategy;
    ``per_hit`` each drawn on every hit. Together they cover every parameter.
    ``keys`` is how many keys of the script's kind the run spreads its hits over.
    """

    script: Script
    parameters: Mapping[str, st.SearchStrategy[float]]
    per_hit: Mapping[str, st.SearchStrategy[float]] = field(default_factory=dict)
    keys: int = 2
    #: Cases of one group share their keys (a concurrency limit's acquire and release).
    group: str = ""

    def __post_init__(self) -> None:
        given = set(self.parameters) | set(self.per_hit)
        if given != set(self.script.params):
            raise ConfigurationError(
                f"case for `{self.script.name}` must draw exactly its parameters "
                f"{sorted(self.script.params)}, got {sorted(given)}"
            )

    @classmethod
    def default(cls, script: Script) -> ScriptCase:
        """Every parameter drawn once per run from 1..1000 (long enough TTLs are the
        author's business: pass explicit strategies for periods)."""
        numbers = st.floats(1, 1000, allow_nan=False)
        return cls(script, {name: numbers for name in script.params})

    def key_names(self, prefix: str = "") -> list[tuple[str, ...]]:
        """Key tuples the run uses; several keys of one script share a hash tag."""
        count = len(self.script.keys)
        if self.group and count == 1:
            return [(f"{self.group}:{index}",) for index in range(self.keys)]
        out: list[tuple[str, ...]] = []
        for index in range(self.keys):
            if count == 1:
                out.append((f"{prefix}{self.script.name}:{index}",))
            else:
                tag = "{" + f"{prefix}{self.script.name}:{index}" + "}"
                out.append(tuple(f"{tag}:{spec.name}" for spec in self.script.keys))
        return out


#: Refill or leak rates per ms, slow enough that a real server's TTLs outlast a run.
rates_per_ms = st.sampled_from((1 / 60_000, 0.1 / 3_600, 3 / 86_400_000)) | st.floats(
    1e-7, 1e-4, allow_nan=False
)
intervals_ms = st.sampled_from((60_000.0, 1 / 3 * 100_000, 600_000.0)) | st.floats(
    10_000, 3_600_000, allow_nan=False
)


def _strategy_cases() -> tuple[ScriptCase, ...]:
    # Imported here: the strategies import the stores, which this module must not need
    # at import time.
    return (*_core_cases(), *_more_cases())


def _core_cases() -> tuple[ScriptCase, ...]:
    from ratescript.strategies.fixed_window import fixed_window as strategy_fixed_window
    from ratescript.strategies.gcra import gcra
    from ratescript.strategies.leaky_bucket import leaky_bucket, leaky_bucket_queue
    from ratescript.strategies.sliding_window import sliding_window_counter, sliding_window_log
    from ratescript.strategies.token_bucket import token_bucket as strategy_token_bucket
    from ratescript.strategies.token_bucket import token_bucket_with_debt

    window = {"limit": limits, "period_ms": periods_ms}
    bucket = {"capacity": limits, "rate": rates_per_ms}
    cost = {"cost": costs}
    return (
        ScriptCase(strategy_fixed_window, window, cost),
        ScriptCase(sliding_window_log, window, cost),
        ScriptCase(sliding_window_counter, window, cost),
        ScriptCase(strategy_token_bucket, bucket, cost),
        ScriptCase(token_bucket_with_debt, {**bucket, "max_debt": limits}, cost),
        ScriptCase(leaky_bucket, {"capacity": limits, "leak": rates_per_ms}, cost),
        ScriptCase(leaky_bucket_queue, {"interval": intervals_ms, "max_queue": limits}, cost),
        ScriptCase(gcra, {"interval": intervals_ms, "room": intervals_ms}, cost),
    )


def _more_cases() -> tuple[ScriptCase, ...]:
    from ratescript.strategies.adaptive import adaptive_throttle
    from ratescript.strategies.concurrency import concurrency_acquire, concurrency_release
    from ratescript.strategies.cost_based import cost_based_token_bucket
    from ratescript.strategies.priority import priority_bucket
    from ratescript.strategies.quota_rollover import quota_with_rollover
    from ratescript.strategies.tiered import tiered_window
    from ratescript.strategies.time_of_day import time_of_day

    fractions = st.sampled_from((0.8, 0.5, 1.0, 1 / 3, 0.1))
    # The adaptive throttle takes its recovery and floor in units of 1e-12.
    factor_units = st.sampled_from((8e11, 5e11, 1e12, 333_333_333_333.0, 1e11, 1.0))
    cost = {"cost": costs}
    return (
        ScriptCase(
            tiered_window,
            {
                "limit": limits,
                "multiplier": st.sampled_from((1.0, 2.5, 0.5)),
                "period_ms": periods_ms,
            },
            cost,
        ),
        ScriptCase(
            adaptive_throttle,
            {
                "limit": limits,
                "period_ms": periods_ms,
                "threshold": fractions,
                "reduction": fractions,
                "recovery": factor_units,
                "floor_ratio": factor_units,
            },
            cost,
        ),
        ScriptCase(
            priority_bucket,
            {
                "capacity": limits,
                "rate": rates_per_ms,
                "reserve": st.sampled_from((0.0, 0.2, 1.0, 1 / 3)),
                "priority": st.sampled_from((0.0, 1.0, 2.0)),
            },
            cost,
        ),
        ScriptCase(
            quota_with_rollover,
            {
                "limit": limits,
                "period_ms": periods_ms,
                "percentage": st.sampled_from((0.0, 0.5, 1.0, 1 / 3)),
                "cap": st.sampled_from((0.0, 1.0, 2.5, 1e9)),
            },
            cost,
        ),
        ScriptCase(
            time_of_day,
            {
                "period_ms": periods_ms,
                "offset_ms": st.sampled_from((0.0, 19_800_000.0, -18_000_000.0, 50_400_000.0)),
                "peak": limits,
                **{f"limit_{hour}": limits for hour in range(24)},
            },
            cost,
        ),
        ScriptCase(
            cost_based_token_bucket,
            {
                "capacity": limits,
                "base_rate": rates_per_ms,
                "min_factor": st.sampled_from((0.5, 0.25, 1.0, 1 / 3)),
                "window": st.sampled_from((1.0, 2.0, 3.0, 100.0)),
            },
            cost,
        ),
        ScriptCase(
            concurrency_acquire,
            {"max_in_flight": limits, "lease_ms": periods_ms},
            cost,
            group="leases",
        ),
        ScriptCase(
            concurrency_release,
            {"max_in_flight": limits},
            # 0 releases the oldest leases; an id names one (few drawn ones match).
            {"cost": costs, "lease": st.sampled_from((0.0, 0.0, 60_000.0)) | st.floats(0, 2e12)},
            group="leases",
        ),
    )


#: The cases of the tiered, adaptive, priority, rollover, time-of-day, cost-based and
#: concurrency strategies' scripts.
MORE_CASES: tuple[ScriptCase, ...] = _more_cases()

#: A script of two keys (a record and a log), as ``all_of``, grouped throttles and
#: ``stat()`` run: every strategy's own script has one key, and a store that reads,
#: decodes or writes only the first key of a script must not pass.
COMPOSED_CASE = ScriptCase(
    compose_all(token_bucket, sliding_log),
    {
        "_p0_capacity": limits,
        "_p0_period_ms": periods_ms,
        "_p1_limit": limits,
        "_p1_period_ms": periods_ms,
    },
    {"_p0_cost": costs, "_p1_cost": costs},
)

#: Every built-in script: the DSL examples, a composition of two, and every strategy's
#: script.
BUILTIN_CASES: tuple[ScriptCase, ...] = (
    ScriptCase(token_bucket, {"capacity": limits, "period_ms": periods_ms}, {"cost": costs}),
    ScriptCase(fixed_window, {"limit": limits, "period_ms": periods_ms}, {"cost": costs}),
    ScriptCase(sliding_log, {"limit": limits, "period_ms": periods_ms}, {"cost": costs}),
    COMPOSED_CASE,
    *_strategy_cases(),
)
