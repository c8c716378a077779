"""Checks of the plain key-value operations, shared by every store's tests.

What the stores must agree on is checked by one piece of code, run against each
store (and each store's real server).
"""

from __future__ import annotations

import math

import pytest

from ratescript.stores.base import Store


async def check_a_ttl_must_be_a_finite_number(store: Store) -> None:
    """NaN and infinite TTLs are refused alike (Memcached took NaN for its 1 s least)."""
    await store.set("kept", b"v")
    for ttl_ms in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="ttl_ms must be a finite number of milliseconds"):
            await store.set("never", b"v", ttl_ms=ttl_ms)
        with pytest.raises(ValueError, match="ttl_ms must be a finite number of milliseconds"):
            await store.increment_with_ttl("never", 1, ttl_ms)
        with pytest.raises(ValueError, match="ttl_ms must be a finite number of milliseconds"):
            await store.expire("kept", ttl_ms)
    assert await store.multi_get(["never", "kept"]) == [None, b"v"]
