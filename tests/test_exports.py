"""Every public module's ``__all__`` is sorted, unique and names things that exist."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "ratescript",
    "ratescript.rates",
    "ratescript.exceptions",
    "ratescript.decision",
    "ratescript.scriptdsl",
    "ratescript.stores",
    "ratescript.conformance",
    "ratescript.strategies",
    "ratescript.config",
    "ratescript.asgi",
    "ratescript.asgi.errors",
    "ratescript.asgi.throttles",
    "ratescript.asgi.types",
    "ratescript.asgi.enforce",
]


@pytest.mark.parametrize("module_name", MODULES)
def test_all_names_exist(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize("module_name", MODULES)
def test_all_is_sorted_and_unique(module_name: str) -> None:
    names = list(importlib.import_module(module_name).__all__)
    # ruff's order (RUF022): CONSTANTS, then Classes, then functions, each alphabetical.
    assert names == sorted(set(names), key=lambda n: (not n.isupper(), not n[0].isupper(), n))


def test_package_reexports_every_exception() -> None:
    import ratescript
    import ratescript.exceptions

    assert set(ratescript.exceptions.__all__) <= set(ratescript.__all__)
    for name in ratescript.exceptions.__all__:
        assert getattr(ratescript, name) is getattr(ratescript.exceptions, name)


def test_the_issue_names_are_where_users_look() -> None:
    """The public names of the FastAPI layer, importable where its users expect them."""
    import ratescript
    import ratescript.asgi

    for name in (
        "HTTPThrottle",
        "WebSocketThrottle",
        "Rate",
        "EXEMPTED",
        "ConnectionThrottled",
        "get_remote_address",
        "is_throttled",
        "set_lock_ttl",
        "get_lock_blocking_timeout",
    ):
        assert name in ratescript.__all__
    for name in (
        "ThrottleMiddleware",
        "MiddlewareThrottle",
        "throttled",
        "retry",
        "store_fallback",
        "failover",
        "CircuitBreaker",
    ):
        assert name in ratescript.asgi.__all__


def test_version_is_a_string() -> None:
    import ratescript

    assert isinstance(ratescript.__version__, str)
    assert ratescript.__version__.count(".") == 2
