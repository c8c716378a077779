"""``StoreConformance``: subclass it in your tests to certify a store you wrote.

    from ratescript.conformance import StoreConformance

    class TestMyStore(StoreConformance):
        @staticmethod
        def store_factory(*, namespace, clock):
            return MyStore("myproto://localhost", namespace=namespace, clock=clock)

pytest collects the subclass and runs the conformance machine against your store,
next to the Python target and the Lua target on lupa, over every built-in script
(set ``cases`` to add your own scripts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, ClassVar

from ratescript.conformance.cases import BUILTIN_CASES, ScriptCase
from ratescript.conformance.machine import check_stores
from ratescript.stores.base import Store

__all__ = ["StoreConformance"]


class StoreConformance:
    """A pytest test class; set ``store_factory`` (and optionally the knobs below)."""

    #: The scripts to run; extend with ``ScriptCase(my_script, ...)``.
    cases: ClassVar[Sequence[ScriptCase]] = BUILTIN_CASES
    #: Hypothesis budget: generated runs, and steps per run.
    max_examples: ClassVar[int] = 40
    steps: ClassVar[int] = 30

    @staticmethod
    def store_factory(*, namespace: str, clock: Any) -> Store | Awaitable[Store]:
        """Build the store under test with this namespace and clock (ms callable)."""
        raise NotImplementedError("set store_factory on your StoreConformance subclass")

    def test_store_conforms(self) -> None:
        """Every decision and every stored value equal the reference targets'."""
        check_stores(
            {type(self).__name__: type(self).store_factory},
            self.cases,
            max_examples=self.max_examples,
            steps=self.steps,
        )
