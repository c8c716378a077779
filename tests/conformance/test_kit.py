"""The conformance kit passes a correct store, and fails stores that are subtly wrong."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ratescript.conformance.cases import ScriptCase
from ratescript.conformance.machine import ConformanceFailure, StoreFactory, check_stores
from ratescript.conformance.suite import StoreConformance
from ratescript.exceptions import ConfigurationError
from ratescript.stores.base import Clock
from ratescript.stores.memory import InMemoryStore

from . import broken_stores

HERE = Path(__file__).parent


def test_the_in_memory_store_conforms() -> None:
    check_stores({"memory": broken_stores.memory}, max_examples=60)


@pytest.mark.parametrize(
    "factory",
    [
        broken_stores.loses_updates,
        broken_stores.prints_fourteen_digits,
        broken_stores.writes_first_key_only,
    ],
)
def test_a_broken_store_fails_the_kit(factory: StoreFactory) -> None:
    with pytest.raises(ConformanceFailure):
        check_stores({"broken": factory}, max_examples=200, shrink=False)


class TestSubclassingCertifiesAStore(StoreConformance):
    """The documented way: subclass ``StoreConformance`` and name a factory."""

    max_examples = 20

    @staticmethod
    def store_factory(*, namespace: str, clock: Clock) -> InMemoryStore:
        return InMemoryStore(namespace=namespace, clock=clock)


def test_a_case_must_draw_exactly_the_scripts_parameters() -> None:
    from hypothesis import strategies as st

    from ratescript.builtin_scripts import token_bucket

    with pytest.raises(ConfigurationError, match="must draw exactly its parameters"):
        ScriptCase(token_bucket, {"capacity": st.just(1.0)})


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(HERE))
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, env=env, timeout=600, cwd=HERE
    )


def test_the_command_line_certifies_and_rejects() -> None:
    good = _run(
        "-m", "ratescript.conformance", "--store", "broken_stores:memory", "--examples", "10"
    )
    assert good.returncode == 0, good.stderr
    assert "conforms: broken_stores:memory" in good.stdout
    bad = _run(
        "-m", "ratescript.conformance", "--store", "broken_stores:prints_fourteen_digits",
        "--examples", "200", "--no-shrink",  # shrinking takes minutes: tested in-process
    )  # fmt: skip
    assert bad.returncode == 1
    assert "FAILED" in bad.stderr and "stored state differs" in bad.stderr
    # The disagreeing run, step by step, each hit naming its script, to replay it.
    assert "state.start(" in bad.stderr, bad.stderr
    # (A label is the script's name, numbered where several cases run one script.)
    assert re.search(r"^state\.hit\(.*script='[a-z_]+(#\d+)?'", bad.stderr, re.MULTILINE), (
        bad.stderr
    )


def test_the_pytest_plugin_certifies_and_rejects(tmp_path: Path) -> None:
    common = ("-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path))
    good = _run(*common, "--ratescript-store=broken_stores:memory", "--ratescript-examples=10")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "1 passed" in good.stdout
    bad = _run(
        *common, "--ratescript-store=broken_stores:loses_updates", "--ratescript-examples=200"
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "1 failed" in bad.stdout
