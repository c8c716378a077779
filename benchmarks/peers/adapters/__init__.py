"""The libraries under comparison, each behind one ``Adapter``.

Adapters import their library lazily, so one that fails to install or import is
reported (``import_errors``) instead of stopping the run.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from pathlib import Path

from adapters.base import (
    STORES,
    STRATEGIES,
    STRATEGY_TITLES,
    Adapter,
    Decider,
    NotAvailable,
    RateSpec,
    Servers,
    version_of,
)
from adapters.fastapi_limiter_ import FastapiLimiterAdapter
from adapters.limits_aio import LimitsAioAdapter
from adapters.ratescript_ import RatescriptAdapter
from adapters.slowapi_ import SlowapiAdapter
from adapters.traffik_ import TraffikAdapter

__all__ = [
    "ADAPTERS",
    "STORES",
    "STRATEGIES",
    "STRATEGY_TITLES",
    "Adapter",
    "Decider",
    "NotAvailable",
    "RateSpec",
    "Servers",
    "by_name",
    "import_errors",
    "install_errors",
    "version_of",
]

ADAPTERS: list[Adapter] = [
    RatescriptAdapter(),
    TraffikAdapter(),
    SlowapiAdapter(),
    LimitsAioAdapter(),
    FastapiLimiterAdapter(),
]

# What each library needs to import for the measures (its stores and FastAPI layer).
_MODULES = {
    "ratescript": [
        "ratescript",
        "ratescript.stores.redis",
        "ratescript.stores.memcached",
        "ratescript.asgi",
    ],
    "traffik": [
        "traffik",
        "traffik.strategies",
        "traffik.backends.inmemory",
        "traffik.backends.redis.aioredis",
        "traffik.backends.memcached.aiomcache",
    ],
    "slowapi": ["slowapi", "limits.storage", "limits.strategies", "redis", "pymemcache"],
    "limits.aio": ["limits.aio.storage", "limits.aio.strategies", "memcachio"],
    "fastapi-limiter": ["fastapi_limiter.depends", "pyrate_limiter", "redis.asyncio"],
}


def install_errors() -> dict[str, str]:
    """Library name -> what ``pip install`` said when a peer failed (from install.py)."""
    recorded = Path(sys.prefix) / "install-errors.json"
    errors: dict[str, str] = json.loads(recorded.read_text()) if recorded.exists() else {}
    return errors


def import_errors() -> dict[str, str]:
    """Library name -> the error importing it: those libraries cannot be measured."""
    errors: dict[str, str] = {}
    for adapter in ADAPTERS:
        for module in _MODULES.get(adapter.name, []):
            try:
                importlib.import_module(module)
            except Exception as exc:
                last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                errors[adapter.name] = f"import {module}: {last}"
                break
    return errors


def by_name(name: str) -> Adapter:
    for adapter in ADAPTERS:
        if adapter.name == name:
            return adapter
    raise KeyError(name)
