"""``python -m ratescript compile`` shows any script's generated code (demo: test_demo.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ratescript.__main__ import main
from ratescript.builtin_scripts import fixed_window, token_bucket
from ratescript.scriptdsl.compose import compose_all

two_keys = compose_all(token_bucket, fixed_window)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("python", token_bucket.python_source),
        ("lua", token_bucket.lua_source),
        ("memcached", token_bucket.memcached_plan.describe()),
        ("memory", token_bucket.memory_source),
        ("memory-wait", token_bucket.memory_wait_source),
        ("memory-check", token_bucket.memory_check_source),
    ],
)
def test_compile_prints_each_target(
    target: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compile", "ratescript.builtin_scripts:token_bucket", "--target", target]) == 0
    assert capsys.readouterr().out == expected


def test_compile_prints_the_read_only_twin(capsys: pytest.CaptureFixture[str]) -> None:
    main(["compile", "ratescript.builtin_scripts:token_bucket", "--target", "lua", "--readonly"])
    printed = capsys.readouterr().out
    assert printed == token_bucket.readonly.lua_source
    assert "'SET'" not in printed


def test_compile_works_for_a_users_script_in_a_fresh_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ratescript", "compile", "ratescript.strategies.gcra:gcra",
         "--target", "lua"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("-- ratescript script `gcra`")


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("no_colon", "expected MODULE:NAME"),
        ("no.such.module:x", "cannot import"),
        ("ratescript.rates:Rate", "is not a script"),
    ],
)
def test_compile_rejects_bad_references(reference: str, message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        main(["compile", reference])


def test_a_script_of_several_keys_has_no_in_process_target_to_print(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `tests` is importable under `python -m pytest` (the working directory is on the
    # path), not under the bare `pytest` command: put the checkout there either way.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    with pytest.raises(SystemExit, match="takes 2 keys"):
        main(["compile", "tests.test_cli:two_keys", "--target", "memory"])
