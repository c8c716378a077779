"""Every store, side by side: the conformance kit on memory, Redis and Memcached at once.

One state machine drives the Python target (bytes and objects), the Lua target on
lupa, ``InMemoryStore``, ``RedisStore`` and ``MemcachedStore`` through the same runs
of every built-in script, and demands identical decisions and stored bytes after
every step.
"""

from __future__ import annotations

import pytest

from ratescript.conformance.machine import check_stores
from ratescript.stores.base import Clock
from ratescript.stores.memcached import MemcachedStore
from ratescript.stores.memory import InMemoryStore
from ratescript.stores.redis import RedisStore


@pytest.mark.redis
@pytest.mark.memcached
def test_every_store_decides_and_stores_alike(redis_url: str, memcached_url: str) -> None:
    def redis_store(*, namespace: str, clock: Clock) -> RedisStore:
        return RedisStore(redis_url, namespace=namespace, clock=clock)

    def memcached_store(*, namespace: str, clock: Clock) -> MemcachedStore:
        return MemcachedStore(memcached_url, namespace=namespace, clock=clock)

    def memory_store(*, namespace: str, clock: Clock) -> InMemoryStore:
        return InMemoryStore(namespace=namespace, clock=clock)

    check_stores(
        {"memory": memory_store, "redis": redis_store, "memcached": memcached_store},
        max_examples=25,
        steps=30,
    )
