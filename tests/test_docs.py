"""The docs' complete code blocks run as written: a reader copies them, not the examples.

Only blocks that stand alone are run (fragments such as ``@app.get(...)`` lines are
shown in context by the examples, which ``test_examples.py`` drives). Scripts are
compiled from source, so each block is written to a file and imported from there.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

from ratescript.decision import Decision
from ratescript.stores.memory import InMemoryStore

ROOT = Path(__file__).parent.parent


def python_blocks(document: str, section: str) -> list[str]:
    """The ```python blocks of ``section`` (from its heading to the next of its level)."""
    text = (ROOT / document).read_text()
    heading = re.search(rf"^(#+) {re.escape(section)}\n", text, re.M)
    assert heading is not None, f"{document} has no section {section!r}"
    rest = text[heading.end() :]
    following = re.search(rf"^#{{1,{len(heading.group(1))}}} ", rest, re.M)
    body = rest if following is None else rest[: following.start()]
    return re.findall(r"```python\n(.*?)```", body, re.S)


def import_file(path: Path, source: str) -> ModuleType:
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_strategy_tutorial_runs_as_written(tmp_path: Path) -> None:
    """docs/strategies.md: the script, its strategy, then the kit certifying it."""
    blocks = python_blocks("docs/strategies.md", "Tutorial: a strategy of your own, certified")
    assert len(blocks) == 3
    # The last block runs the conformance kit; it raises if the stores disagree.
    module = import_file(tmp_path / "tutorial_cooldown.py", "\n".join(blocks))
    store = InMemoryStore(clock=lambda: 1_700_000_000_000.0)
    strategy = module.CooldownStrategy(cooldown_ms=500.0)
    waits = asyncio.run(_waits(strategy, store, 2))
    assert waits == [0.0, 500.0]  # the second hit is inside the cooldown


async def _waits(strategy: Any, store: InMemoryStore, hits: int) -> list[float]:
    return [await strategy("user", "3/minute", store) for _ in range(hits)]


def test_the_dsl_guide_scripts_compile_and_decide(tmp_path: Path) -> None:
    """The complete scripts of docs/dsl.md and of the README compile and admit a hit."""
    sources = [
        *python_blocks("docs/dsl.md", "A complete script"),
        *python_blocks("README.md", "Writing your own strategy in the DSL"),
    ]
    assert len(sources) == 2
    for index, source in enumerate(sources):
        bucket = import_file(tmp_path / f"guide_{index}.py", source).token_bucket
        assert "redis.call" in bucket.lua_source
        allowed, wait_ms, remaining, *_ = bucket.compute(0.0, None, 10.0, 1000.0, 1.0)
        assert (allowed, wait_ms, remaining) == (True, 0.0, 9.0)


def test_the_readme_strategies_without_a_framework_run_as_written(tmp_path: Path) -> None:
    """README "Strategies": its ``await`` lines, run inside a coroutine."""
    (block,) = [b for b in python_blocks("README.md", "Strategies") if "all_of" in b]
    body = textwrap.indent(block, "    ")
    source = f"async def main():\n{body}\n    return wait_ms, decision, stat\n"
    module = import_file(tmp_path / "readme_strategies.py", source)
    wait_ms, decision, stat = asyncio.run(module.main())
    assert wait_ms == 0.0
    assert isinstance(decision, Decision) and decision.allowed  # all_of, on fresh keys
    assert stat.hits_remaining < 20  # the bucket's hits were charged; stat looks only
