"""A strategy of your own, from the tutorial in docs/strategies.md: a cooldown.

At most ``rate.limit`` hits per ``rate.expire`` ms, and after each admitted hit
the key cools down for ``cooldown_ms`` before the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ratescript.rates import Rate
from ratescript.scriptdsl import Key, Record, allow, deny, now_ms, script, window_index
from ratescript.strategies import Strategy


class Cooling(Record):
    window: float  # start of the current fixed window
    count: float  # hits admitted in it
    ready_at: float  # when the cooldown after the last hit ends


@script
def cooldown(state: Key[Cooling], limit: float, period_ms: float, cooldown_ms: float, cost: float):  # type: ignore[no-untyped-def]
    now = now_ms()
    window = window_index(now, period_ms) * period_ms
    s = state.get(default=Cooling(window, 0, now))
    used = s.count if s.window == window else 0
    if cost > limit:
        return deny(wait_ms=period_ms, remaining=limit - used, exceeds_capacity=1)
    if now < s.ready_at:
        return deny(wait_ms=s.ready_at - now, remaining=limit - used, exceeds_capacity=0)
    if used + cost > limit:
        return deny(wait_ms=window + period_ms - now, remaining=0, exceeds_capacity=0)
    ready = now + cooldown_ms
    state.set(Cooling(window, used + cost, ready), ttl_ms=max(window + period_ms, ready) - now + 1)
    return allow(
        remaining=limit - used - cost, reset_ms=window + period_ms - now, exceeds_capacity=0
    )


@dataclass(frozen=True)
class CooldownStrategy(Strategy[Mapping[str, float]]):
    cooldown_ms: float = 1000.0
    script = cooldown

    def arguments(
        self, rate: Rate, cost: float, context: Mapping[str, Any] | None
    ) -> tuple[float, ...]:
        return (float(rate.limit), float(rate.expire), self.cooldown_ms, cost)
