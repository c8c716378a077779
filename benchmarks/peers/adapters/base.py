"""What the harness asks of each library, and the vocabulary shared by the adapters.

An adapter turns (store, strategy, rate) into a ``Decider``: ``await hit(key)``, one
decision returning whether it was admitted, made the way the library's users make it.
What a library cannot do raises ``NotAvailable`` with the reason, which the report
prints as "n/a".
"""

from __future__ import annotations

import abc
import importlib.metadata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from common import StepClock

STORES = ("memory", "redis", "memcached")
STRATEGIES = ("token_bucket", "gcra", "sliding_log", "fixed_window", "sliding_counter")
STRATEGY_TITLES = {
    "token_bucket": "token bucket",
    "gcra": "GCRA",
    "sliding_log": "sliding log",
    "fixed_window": "fixed window",
    "sliding_counter": "sliding window counter",
}


class NotAvailable(Exception):
    """The library cannot do this; the message says why (printed as "n/a")."""


@dataclass(frozen=True)
class Servers:
    """Where the servers of this run listen, and the run's namespace seed."""

    redis_url: str
    memcached_url: str
    run_id: str

    @property
    def memcached_host(self) -> str:
        return self.memcached_url.removeprefix("memcached://").partition(":")[0]

    @property
    def memcached_port(self) -> int:
        return int(self.memcached_url.removeprefix("memcached://").partition(":")[2])

    @property
    def redis_host_port(self) -> tuple[str, int]:
        netloc = self.redis_url.removeprefix("redis://").partition("/")[0]
        host, _colon, port = netloc.partition(":")
        return host, int(port)


@dataclass(frozen=True)
class RateSpec:
    """``limit`` hits per ``period_s`` seconds, given to every library alike."""

    limit: int
    period_s: int

    @property
    def period_ms(self) -> int:
        return self.period_s * 1000

    @property
    def burst_tolerance_ms(self) -> float:
        """GCRA slack admitting a burst of exactly ``limit`` (like a full token bucket)."""
        return self.period_ms - self.period_ms / self.limit


@dataclass
class Decider:
    """One library configured for one rate: ``await hit(key)`` is True when admitted."""

    hit: Callable[[str], Awaitable[bool]]
    close: Callable[[], Awaitable[None]]


def version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


class Adapter(abc.ABC):
    """One library as the harness drives it."""

    #: The column title.
    name: str
    #: The distribution whose version the report prints.
    distribution: str
    #: Whether the library has a FastAPI integration to measure.
    has_fastapi = True
    #: Whether every key is charged to one limit (a hit on any key spends the same quota).
    keys_share_limit = False

    def namespace(self, servers: Servers) -> str:
        """A namespace (key prefix) of this library for this run only."""
        return f"pb-{self.name.replace(' ', '').replace('.', '')}-{servers.run_id}"

    @abc.abstractmethod
    async def decider(
        self,
        store: str,
        strategy: str,
        rate: RateSpec,
        servers: Servers,
        clock: StepClock | None = None,
    ) -> Decider:
        """Configure the library; raise ``NotAvailable`` when it cannot.

        With a ``clock``, the library reads that clock (where it lets one do so).
        """

    def fastapi_app(self, store: str, servers: Servers, rate: RateSpec) -> Any:
        """A FastAPI app: ``GET /plain``, and ``GET /throttled`` behind one throttle.

        Stores are opened by the app's lifespan; the default strategy of each library.
        """
        raise NotAvailable(f"{self.name} has no FastAPI integration")

    def redis_key_pattern(self, servers: Servers) -> str:
        """A ``SCAN MATCH`` pattern finding every Redis key this library wrote in this run."""
        return f"*{self.namespace(servers)}*"

    def fastapi_strategy(self) -> str:
        """The strategy ``fastapi_app`` uses (each library's default)."""
        return "fixed_window"

    def notes(self) -> list[str]:
        """API mismatches worth saying next to the figures."""
        return []
