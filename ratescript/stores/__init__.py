"""Stores: where scripts run and state lives.

``InMemoryStore`` needs nothing else; ``RedisStore`` needs the ``redis`` extra and
``MemcachedStore`` the ``memcached`` extra, so those two are imported on first use.
``store_from_url`` builds a store from ``memory://``, ``redis://``, ``rediss://``,
``unix://`` or ``memcached://`` URLs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ratescript.exceptions import ConfigurationError
from ratescript.stores.base import Store
from ratescript.stores.memory import InMemoryStore

if TYPE_CHECKING:
    from ratescript.stores.memcached import MemcachedStore
    from ratescript.stores.redis import RedisStore

__all__ = ["InMemoryStore", "MemcachedStore", "RedisStore", "Store", "store_from_url"]

_LAZY = {"RedisStore": "ratescript.stores.redis", "MemcachedStore": "ratescript.stores.memcached"}
_SCHEMES = {
    "redis": "RedisStore",
    "rediss": "RedisStore",
    "unix": "RedisStore",
    "memcached": "MemcachedStore",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        try:
            module = importlib.import_module(_LAZY[name])
        except ImportError as exc:
            extra = "redis" if name == "RedisStore" else "memcached"
            raise ImportError(
                f"{name} needs the {extra!r} extra: pip install 'ratescript[{extra}]' ({exc})"
            ) from exc
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def store_from_url(url: str, **options: Any) -> Store:
    """A store for ``url``: ``memory://``, ``redis://host:6379/0``, ``memcached://host:11211``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(
            f"store URL {url!r} has no scheme; expected e.g. 'redis://localhost:6379/0', "
            "'memcached://localhost:11211' or 'memory://'"
        )
    if scheme == "memory":
        if rest:  # "memory://x?namespace=y" would be a store whose namespace is not y
            raise ConfigurationError(
                f"store URL {url!r}: 'memory://' takes nothing after it; pass options as "
                "keywords, e.g. store_from_url('memory://', namespace='app')"
            )
        return InMemoryStore(**options)
    if scheme not in _SCHEMES:
        raise ConfigurationError(
            f"unknown store URL scheme {scheme!r} in {url!r}; known: memory, "
            f"{', '.join(sorted(_SCHEMES))}"
        )
    store: Store = __getattr__(_SCHEMES[scheme])(url, **options)
    return store
