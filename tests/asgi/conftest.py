"""Fixtures of the ASGI tests: fresh stores of every kind on a fake clock (helpers.py: the rest).

Each test gets fresh stores (a unique namespace on the shared servers) whose clock is
``now[0]``: time moves only when a test advances it, so nothing sleeps. Async tests
use ``store`` / ``new_store`` (closed in the test's loop); WebSocket tests are sync
(Starlette's ``TestClient`` runs the app in its own loop) and use ``make_store``,
letting the app's lifespan open and close the store in that loop.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from ratescript.stores.base import Store, default_store
from ratescript.stores.memcached import MemcachedStore
from ratescript.stores.memory import InMemoryStore
from ratescript.stores.redis import RedisStore

from .helpers import START_MS, StoreFactory


@pytest.fixture
def now() -> list[float]:
    """The fake clock of every store of the test, in ms since the epoch."""
    return [START_MS]


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("memcached", marks=pytest.mark.memcached),
    ]
)
def make_store(request: pytest.FixtureRequest, now: list[float]) -> StoreFactory:
    """Builds fresh stores of this test's kind on the fake clock (no I/O until used)."""
    kind: str = request.param
    url = request.getfixturevalue(f"{kind}_url") if kind != "memory" else ""
    base = f"asgi-{uuid.uuid4().hex[:12]}"
    counter = itertools.count()

    def clock() -> float:
        return now[0]

    def make(**options: Any) -> Store:
        options.setdefault("namespace", f"{base}-{next(counter)}")
        if kind == "redis":
            return RedisStore(url, clock=clock, **options)
        if kind == "memcached":
            return MemcachedStore(url, clock=clock, **options)
        return InMemoryStore(clock=clock, **options)

    return make


@pytest_asyncio.fixture
async def new_store(make_store: StoreFactory) -> AsyncIterator[StoreFactory]:
    """``make_store`` for async tests: every store made is closed after the test."""
    made: list[Store] = []

    def make(**options: Any) -> Store:
        store = make_store(**options)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


@pytest_asyncio.fixture
async def store(new_store: StoreFactory) -> Store:
    """A fresh store of each kind, on the fake clock."""
    return new_store()


@pytest.fixture(autouse=True)
def no_default_store_leaks() -> Iterator[None]:
    """A store entered with ``async with store:`` is process-wide: none may outlive a test."""
    assert default_store() is None, "a previous test left a default store behind"
    yield
    assert default_store() is None, "this test left a default store behind"
