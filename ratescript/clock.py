"""The wall clock every store uses unless given another: milliseconds since the epoch.

Its own module because both the stores and the in-process target need it: the
target recognises it and reads the time inline (see ``scriptdsl.targets.memory``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "wall_clock_ms"]

#: A clock: milliseconds since the epoch (any origin works, as long as it is one).
Clock = Callable[[], float]


def wall_clock_ms() -> float:
    """Milliseconds since the epoch, from the system clock."""
    return time.time() * 1000.0
