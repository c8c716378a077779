"""Fixtures shared by the whole suite: real servers, one of each kind per session."""

from __future__ import annotations

from collections.abc import Iterator

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
