"""Every strategy, each a frozen dataclass of parameters plus a DSL script.

No strategy has store-specific code: each runs on every store through its script.
"""

from ratescript.strategies.adaptive import AdaptiveThrottleStatMetadata, AdaptiveThrottleStrategy
from ratescript.strategies.base import Strategy, StrategyStat
from ratescript.strategies.composition import AllOf, all_of
from ratescript.strategies.concurrency import (
    ConcurrencyLimitStatMetadata,
    ConcurrencyLimitStrategy,
)
from ratescript.strategies.cost_based import (
    CostBasedTokenBucketStatMetadata,
    CostBasedTokenBucketStrategy,
)
from ratescript.strategies.fixed_window import FixedWindowStatMetadata, FixedWindowStrategy
from ratescript.strategies.gcra import GCRAStatMetadata, GCRAStrategy
from ratescript.strategies.leaky_bucket import (
    LeakyBucketStatMetadata,
    LeakyBucketStrategy,
    LeakyBucketWithQueueStatMetadata,
    LeakyBucketWithQueueStrategy,
)
from ratescript.strategies.priority import PriorityQueueStatMetadata, PriorityQueueStrategy
from ratescript.strategies.quota_rollover import (
    QuotaWithRolloverStatMetadata,
    QuotaWithRolloverStrategy,
)
from ratescript.strategies.sliding_window import (
    SlidingWindowCounterStatMetadata,
    SlidingWindowCounterStrategy,
    SlidingWindowLogStatMetadata,
    SlidingWindowLogStrategy,
)
from ratescript.strategies.tiered import TieredRateStatMetadata, TieredRateStrategy
from ratescript.strategies.time_of_day import TimeOfDayStatMetadata, TimeOfDayStrategy
from ratescript.strategies.token_bucket import (
    TokenBucketStatMetadata,
    TokenBucketStrategy,
    TokenBucketWithDebtStatMetadata,
    TokenBucketWithDebtStrategy,
)

__all__ = [
    "AdaptiveThrottleStatMetadata",
    "AdaptiveThrottleStrategy",
    "AllOf",
    "ConcurrencyLimitStatMetadata",
    "ConcurrencyLimitStrategy",
    "CostBasedTokenBucketStatMetadata",
    "CostBasedTokenBucketStrategy",
    "FixedWindowStatMetadata",
    "FixedWindowStrategy",
    "GCRAStatMetadata",
    "GCRAStrategy",
    "LeakyBucketStatMetadata",
    "LeakyBucketStrategy",
    "LeakyBucketWithQueueStatMetadata",
    "LeakyBucketWithQueueStrategy",
    "PriorityQueueStatMetadata",
    "PriorityQueueStrategy",
    "QuotaWithRolloverStatMetadata",
    "QuotaWithRolloverStrategy",
    "SlidingWindowCounterStatMetadata",
    "SlidingWindowCounterStrategy",
    "SlidingWindowLogStatMetadata",
    "SlidingWindowLogStrategy",
    "Strategy",
    "StrategyStat",
    "TieredRateStatMetadata",
    "TieredRateStrategy",
    "TimeOfDayStatMetadata",
    "TimeOfDayStrategy",
    "TokenBucketStatMetadata",
    "TokenBucketStrategy",
    "TokenBucketWithDebtStatMetadata",
    "TokenBucketWithDebtStrategy",
    "all_of",
]
