"""Fixtures shared by the whole suite: real servers, one of each kind per session."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import servers


def _serve(kind: servers.Kind) -> Iterator[str]:
    """Yield a server URL; skip when none can be had, except under CI, where a
    skipped backend would let a broken store pass unnoticed."""
    try:
        with servers.server_url(kind) as url:
            yield url
    except servers.ServerUnavailable as exc:
        servers.unavailable(f"this server: {exc}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``redis://host:port/0`` of a Redis 7 server that lives for the session."""
    yield from _serve(servers.REDIS)


@pytest.fixture(scope="session")
def memcached_url() -> Iterator[str]:
    """``memcached://host:port`` of a memcached server that lives for the session."""
    yield from _serve(servers.MEMCACHED)


def _own(start: Callable[[], servers.LocalServer]) -> Iterator[servers.LocalServer]:
    """A private server the test may kill and start again; stopped after it."""
    try:
        server = start()
    except servers.ServerUnavailable as exc:
        servers.unavailable(f"this server: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_redis() -> Iterator[servers.LocalServer]:
    """A redis-server of the test's own, on a port of its own."""
    yield from _own(servers.start_redis)


@pytest.fixture
def own_memcached() -> Iterator[servers.LocalServer]:
    """A memcached of the test's own, on a port of its own."""
    yield from _own(servers.start_memcached)
