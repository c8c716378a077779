"""The conformance kit: proves that every store decides and stores alike.

``StoreConformance`` (subclass it in a test), ``check_stores`` (call it),
``ScriptCase`` (add your own scripts), ``python -m ratescript.conformance`` and the
pytest plugin (``--ratescript-store``). Names are imported on first use, so the
submodules that need no Hypothesis (``servers``, ``luarunner``) stay light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ratescript.conformance.cases import BUILTIN_CASES, ScriptCase
    from ratescript.conformance.machine import ConformanceFailure, check_stores, store_factory
    from ratescript.conformance.suite import StoreConformance

__all__ = [
    "BUILTIN_CASES",
    "ConformanceFailure",
    "ScriptCase",
    "StoreConformance",
    "check_stores",
    "store_factory",
]

_HOMES = {
    "BUILTIN_CASES": "cases",
    "ScriptCase": "cases",
    "ConformanceFailure": "machine",
    "check_stores": "machine",
    "store_factory": "machine",
    "StoreConformance": "suite",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
