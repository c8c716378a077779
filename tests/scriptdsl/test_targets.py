"""The targets: every node handled, golden output, determinism, read-only twins, plans.

Golden files live in ``tests/scriptdsl/golden``; after a deliberate compiler change,
regenerate them with ``RATESCRIPT_UPDATE_GOLDEN=1 pytest tests/scriptdsl/test_targets.py``
and review the diff: it is the review of the change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lupa import lua51

from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.scriptdsl import Key, Log, Record, allow, deny, floor, now_ms, script
from ratescript.scriptdsl import nodes as n
from ratescript.scriptdsl.runtime import KEEP
from ratescript.scriptdsl.script import Script
from ratescript.scriptdsl.targets.base import EXPR_NODES, STMT_NODES, Generator
from ratescript.scriptdsl.targets.lua import LuaBody
from ratescript.scriptdsl.targets.python import PythonGenerator

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("RATESCRIPT_UPDATE_GOLDEN") == "1"
BUILTINS = (token_bucket, fixed_window, sliding_log)
GOLDEN_SCRIPTS = (*BUILTINS, *(s.readonly for s in BUILTINS))
SUFFIXES = {
    "py.txt": "python_source",
    "lua": "lua_source",
    "memory.py.txt": "memory_source",
    "memory-wait.py.txt": "memory_wait_source",
    "memory-check.py.txt": "memory_check_source",
}


class Pair(Record):
    first: float
    second: float


@script
def every_node(pair: Key[Pair], count: Key[float], log: Key[Log], limit: float):  # type: ignore[no-untyped-def]
    """Uses every IR node kind at least once (a test checks that it does)."""
    now = now_ms()
    p = pair.get(default=Pair(0, now))
    c = count.get(default=0)
    entries = log.get()
    entries.trim(now - limit)
    entries.append(now, 1)
    if entries.count() > limit:
        entries.drop_oldest()
    total = entries.sum()
    first = entries.oldest(default=now)
    busy = (not (total > limit) and c >= 0) or False
    wait = floor(total / 2) % 3 if busy else -abs(c)
    for time, amount in entries:
        if time > first or amount < 0:
            break
    pair.set(Pair(p.first + 1, now), ttl_ms=limit)
    count.set(c + 1)
    log.set(entries, ttl_ms=limit)
    if c > 100:
        count.delete()
        return deny(wait_ms=wait, first=first)
    return allow(remaining=limit - total)


@script
def two_keys(hits: Key[float], total: Key[float], limit: float):  # type: ignore[no-untyped-def]
    h = hits.get(default=0)
    t = total.get(default=0)
    if h < limit:
        hits.set(h + 1, ttl_ms=1000)
        total.set(t + 1)
        return allow(remaining=limit - h - 1)
    return deny(wait_ms=1000, remaining=0)


def _normalized(compiled: Script, source: str) -> str:
    """Generated source without the checkout's path, should a header ever name it."""
    return source.replace(compiled.ir.filename, "<source>")


def _node_kinds(value: Any) -> set[type]:
    """Every IR node class that occurs in ``value`` (a node, tuple of nodes, ...)."""
    if isinstance(value, tuple):
        return set().union(*(_node_kinds(item) for item in value)) if value else set()
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return set()
    found = {type(value)}
    for spec in dataclasses.fields(value):
        found |= _node_kinds(getattr(value, spec.name))
    return found


# --- every generator handles every node --------------------------------------------------


def test_node_unions_name_every_node_class() -> None:
    classes = {
        obj
        for obj in vars(n).values()
        if isinstance(obj, type)
        and dataclasses.is_dataclass(obj)
        and obj.__module__ == n.__name__
        and "line" in {f.name for f in dataclasses.fields(obj)}
    }
    assert classes == set(EXPR_NODES) | set(STMT_NODES)
    assert not set(EXPR_NODES) & set(STMT_NODES)


@pytest.mark.parametrize("generator", [PythonGenerator, LuaBody], ids=lambda g: g.__name__)
def test_generator_handles_every_node_kind(generator: type[Generator]) -> None:
    assert generator.unsupported_nodes() == []


def test_unsupported_nodes_names_what_a_generator_lacks() -> None:
    class OnlyConstants(Generator):
        def expr_Const(self, node: n.Const) -> str:
            return repr(node.value)

    missing = OnlyConstants.unsupported_nodes()
    assert "Const" not in missing
    assert {"Var", "Binary", "LogEdge", "Assign", "ForLog", "DeleteKey"} <= set(missing)
    assert len(missing) == len(EXPR_NODES) + len(STMT_NODES) - 1


def test_every_node_script_uses_every_node_kind() -> None:
    used = _node_kinds(every_node.ir.body)
    assert used == set(EXPR_NODES) | set(STMT_NODES)


def test_every_node_script_generates_loadable_lua() -> None:
    lua = lua51.LuaRuntime(encoding=None)
    loaded = lua.execute(b"return loadstring(...)", every_node.lua_source.encode(), b"@user_script")
    assert callable(loaded), loaded
    assert callable(every_node.compute)


# --- golden files ---------------------------------------------------------------------------


def _golden_cases() -> list[Any]:
    return [
        pytest.param(compiled, suffix, id=f"{compiled.name}.{suffix}")
        for compiled in GOLDEN_SCRIPTS
        for suffix in SUFFIXES
    ]


@pytest.mark.parametrize(("compiled", "suffix"), _golden_cases())
def test_generated_source_matches_golden_file(compiled: Script, suffix: str) -> None:
    source = _normalized(compiled, getattr(compiled, SUFFIXES[suffix]))
    path = GOLDEN / f"{compiled.name}.{suffix}"
    if UPDATE_GOLDEN:
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(source.encode())
    assert path.exists(), f"no golden file {path.name}: run with RATESCRIPT_UPDATE_GOLDEN=1"
    expected = path.read_bytes().decode()
    assert source == expected, (
        f"{path.name} differs from the generated source; if the change is intended, "
        "regenerate with RATESCRIPT_UPDATE_GOLDEN=1 and review the diff"
    )


def test_no_stale_golden_files() -> None:
    expected = {f"{s.name}.{suffix}" for s in GOLDEN_SCRIPTS for suffix in SUFFIXES}
    assert {p.name for p in GOLDEN.iterdir()} == expected


def test_golden_sources_do_not_name_the_checkout() -> None:
    for compiled in GOLDEN_SCRIPTS:
        assert compiled.ir.filename not in compiled.lua_source
        assert compiled.ir.filename not in compiled.python_source
        assert compiled.ir.filename not in (compiled.memory_source or "")


# --- determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize("compiled", [*BUILTINS, every_node], ids=lambda s: s.name)
def test_compiling_twice_gives_identical_sources(compiled: Script) -> None:
    function = compiled.__wrapped__
    assert function is not None
    first, second = script(function), script(function)
    assert first.python_source == second.python_source == compiled.python_source
    assert first.memory_source == second.memory_source == compiled.memory_source
    assert first.lua_source == second.lua_source == compiled.lua_source
    assert first.lua_sha == second.lua_sha == compiled.lua_sha
    assert first.readonly.lua_sha == second.readonly.lua_sha
    assert first.python_line_map == second.python_line_map
    assert first.lua_line_map == second.lua_line_map


def test_sources_do_not_depend_on_the_hash_seed() -> None:
    # Redis caches scripts by SHA: generating from a set's iteration order would change it.
    program = (
        "import hashlib\n"
        "from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket\n"
        "for s in (token_bucket, fixed_window, sliding_log):\n"
        "    python_sha = hashlib.sha1(s.python_source.encode()).hexdigest()\n"
        "    print(s.lua_sha, s.readonly.lua_sha, python_sha)\n"
    )
    outputs = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)
    expected = "".join(
        f"{s.lua_sha} {s.readonly.lua_sha} {hashlib.sha1(s.python_source.encode()).hexdigest()}\n"
        for s in BUILTINS
    )
    assert outputs == {expected}


# --- read-only twins ------------------------------------------------------------------------


@pytest.mark.parametrize("compiled", [*BUILTINS, every_node], ids=lambda s: s.name)
def test_readonly_twin_lua_never_writes(compiled: Script) -> None:
    assert "redis.call('SET'" in compiled.lua_source  # so the check below can fail
    twin = compiled.readonly
    assert twin.ir.readonly and twin.name == f"{compiled.name}_readonly"
    for command in ("'SET'", "'DEL'", "_rs_put"):
        assert command not in twin.lua_source
    assert twin.readonly is twin


def test_readonly_twin_drops_deletes() -> None:
    assert "redis.call('DEL'" in every_node.lua_source
    assert "'DEL'" not in every_node.readonly.lua_source


# (script, [(now, *key values, *params), ...]): each list has a writing run.
READONLY_INPUTS: list[tuple[Script, list[tuple[Any, ...]]]] = [
    (
        token_bucket,
        [
            (1000.0, None, 10.0, 1000.0, 1.0),
            (1000.0, (0.5, 999.0), 10.0, 1000.0, 1.0),
            (1000.0, (5.0, 0.0), 10.0, 1000.0, 20.0),
            (-0.5, (10.0, 2000.0), 10.0, 1000.0, 10.0),
        ],
    ),
    (
        fixed_window,
        [
            (1500.0, None, 5.0, 1000.0, 1.0),
            (1500.0, (1000.0, 5.0), 5.0, 1000.0, 1.0),
            (1500.0, (0.0, 3.0), 5.0, 1000.0, 1.0),
            (1500.0, (1000.0, 0.0), 5.0, 1000.0, 9.0),
        ],
    ),
    (
        sliding_log,
        [
            (1000.0, None, 2.0, 1000.0, 1.0),
            (1000.0, ([(500.0, 1.0), (900.0, 1.0)], 2.0), 2.0, 1000.0, 1.0),
            (1000.0, ([(1.0, 1.0)], 1.0), 2.0, 1000.0, 1.0),
            (1000.0, ([], 0.0), 2.0, 1000.0, 3.0),
        ],
    ),
    (
        every_node,
        [
            (100.0, None, None, None, 5.0),
            (100.0, (1.0, 2.0), 200.0, ([(99.0, 1.0), (99.5, 2.0)], 3.0), 5.0),
            (100.0, (1.0, 2.0), 3.0, ([(10.0, 1.0)], 1.0), 0.5),
        ],
    ),
]


def _fresh(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """The inputs with a log's entries copied (a script copies them too; belt and braces)."""
    return tuple(
        (list(v[0]), v[1]) if isinstance(v, tuple) and v and isinstance(v[0], list) else v
        for v in values
    )


@pytest.mark.parametrize(
    ("compiled", "inputs"), READONLY_INPUTS, ids=[s.name for s, _ in READONLY_INPUTS]
)
def test_readonly_twin_decides_the_same_and_writes_nothing(
    compiled: Script, inputs: list[tuple[Any, ...]]
) -> None:
    twin = compiled.readonly
    wrote = False
    for values in inputs:
        original = compiled.compute(*_fresh(values))
        result = twin.compute(*_fresh(values))
        writes = result[5]
        assert writes[0::2] == (KEEP,) * len(compiled.keys)
        assert writes[1::2] == (None,) * len(compiled.keys)
        assert result[:5] == original[:5]
        wrote = wrote or any(w is not KEEP for w in original[5][0::2])
    assert wrote, "no input makes the original script write; the test proves nothing"


# --- Memcached plans ------------------------------------------------------------------------


@pytest.mark.parametrize("compiled", BUILTINS, ids=lambda s: s.name)
def test_single_key_plan_is_not_locked(compiled: Script) -> None:
    plan = compiled.memcached_plan
    assert not plan.locked
    assert plan.writes == (0,)
    assert not compiled.readonly.memcached_plan.locked
    assert compiled.readonly.memcached_plan.writes == ()


def test_two_key_plan_that_writes_is_locked() -> None:
    plan = two_keys.memcached_plan
    assert plan.locked
    assert plan.writes == (0, 1)
    assert plan.reads == two_keys.keys


def test_two_key_plan_that_only_reads_is_not_locked() -> None:
    twin = two_keys.readonly.memcached_plan
    assert not twin.locked
    assert twin.writes == ()
    assert "write: nothing (read-only)" in twin.describe()


def test_plan_that_writes_one_of_two_keys_is_locked() -> None:
    def one_of_two(hits: Key[float], limit: Key[float]):  # type: ignore[no-untyped-def]
        h = hits.get(default=0)
        cap = limit.get(default=10)
        if h < cap:
            hits.set(h + 1)
            return allow(remaining=cap - h - 1)
        return deny(wait_ms=1)

    plan = script(one_of_two).memcached_plan
    assert plan.writes == (0,)
    assert plan.locked  # `limit` must not change between reading it and writing `hits`


@pytest.mark.parametrize("compiled", [*BUILTINS, two_keys, every_node], ids=lambda s: s.name)
def test_plan_description_names_every_key(compiled: Script) -> None:
    description = compiled.memcached_plan.describe()
    for spec in compiled.keys:
        assert f"gets {spec.name}" in description
    for index in compiled.memcached_plan.writes:
        assert f"  {compiled.keys[index].name}: set or delete" in description
    assert compiled.python_source in description
    assert ("lock: yes" in description) == compiled.memcached_plan.locked
