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
from ratescript.scriptdsl.script import Script

__all__ = ["BUILTIN_CASES", "ScriptCase", "costs", "limits", "periods_ms"]

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

    def key_names(self) -> list[tuple[str, ...]]:
        """Key tuples the run uses; several keys of one script share a hash tag."""
        count = len(self.script.keys)
        out: list[tuple[str, ...]] = []
        for index in range(self.keys):
            if count == 1:
                out.append((f"{self.script.name}:{index}",))
            else:
                tag = "{" + f"{self.script.name}:{index}" + "}"
                out.append(tuple(f"{tag}:{spec.name}" for spec in self.script.keys))
        return out


BUILTIN_CASES: tuple[ScriptCase, ...] = (
    ScriptCase(token_bucket, {"capacity": limits, "period_ms": periods_ms}, {"cost": costs}),
    ScriptCase(fixed_window, {"limit": limits, "period_ms": periods_ms}, {"cost": costs}),
    ScriptCase(sliding_log, {"limit": limits, "period_ms": periods_ms}, {"cost": costs}),
)
