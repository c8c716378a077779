"""The pytest plugin: ``pytest --ratescript-store=mypkg.mod:factory``.

Installed with ratescript (a ``pytest11`` entry point), it adds one test item that
runs the conformance machine against the store the factory builds — no test file
needed. The factory is called as ``factory(namespace=..., clock=...)`` and may be
async.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

# Nothing heavier at import time: pytest loads this plugin in every project that has
# ratescript installed, with or without the conformance extra (hypothesis, lupa).

__all__ = ["load_factory"]


def load_factory(reference: str) -> Any:
    """The callable named by ``package.module:name``."""
    module_name, _colon, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise pytest.UsageError(f"--ratescript-store expects MODULE:FACTORY, got {reference!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise pytest.UsageError(f"cannot import {module_name!r}: {exc}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise pytest.UsageError(f"{reference!r} is not a callable store factory")
    return factory


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ratescript")
    group.addoption(
        "--ratescript-store",
        action="append",
        default=[],
        metavar="MODULE:FACTORY",
        help="certify a store: run the ratescript conformance kit against it",
    )
    group.addoption(
        "--ratescript-examples",
        type=int,
        default=40,
        help="generated runs for --ratescript-store (default 40)",
    )


class ConformanceItem(pytest.Item):
    """One conformance run against one store factory."""

    def __init__(self, *, reference: str, examples: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reference = reference
        self.examples = examples

    def runtest(self) -> None:
        from ratescript.conformance.machine import check_stores

        check_stores({self.reference: load_factory(self.reference)}, max_examples=self.examples)

    def reportinfo(self) -> tuple[str, int, str]:
        return "ratescript-conformance", 0, f"conformance of {self.reference}"


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    references: list[str] = config.getoption("--ratescript-store")
    for reference in references:
        items.append(
            ConformanceItem.from_parent(
                session,
                name=f"ratescript-conformance[{reference}]",
                reference=reference,
                examples=config.getoption("--ratescript-examples"),
            )
        )
