"""Lock defaults: read from the environment at import, validated, honoured by every store."""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType

import pytest
import pytest_asyncio

import ratescript
from ratescript import config
from ratescript.exceptions import ConfigurationError, LockTimeoutError
from ratescript.stores.base import Store
from ratescript.stores.memory import InMemoryStore

ENV_VARS = (config.LOCK_TTL_ENV, config.BLOCKING_ENV, config.BLOCKING_TIMEOUT_ENV)


class FakeClock:
    """Milliseconds since the epoch, moved by the test."""

    def __init__(self) -> None:
        self.now = 1.7e12 + 0.25

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def restored() -> Iterator[None]:
    """Every test leaves the process defaults as it found them."""
    saved = (config.get_lock_ttl(), config.get_lock_blocking(), config.get_lock_blocking_timeout())
    yield
    config.set_lock_ttl(saved[0])
    config.set_lock_blocking(saved[1])
    config.set_lock_blocking_timeout(saved[2])


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """``load(VAR=value, ...)``: import a fresh copy of ``ratescript.config`` under that
    environment; the process's own module, and its defaults, stay as they are."""

    def fresh_import(**env: str) -> ModuleType:
        for name in ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        spec = importlib.util.spec_from_file_location("ratescript_config_copy", config.__file__)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return fresh_import


def test_without_the_environment_locks_wait_for_ever_and_never_expire(
    load: Callable[..., ModuleType],
) -> None:
    module = load()
    assert module.get_lock_ttl() is None
    assert module.get_lock_blocking() is True
    assert module.get_lock_blocking_timeout() is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RATESCRIPT_DEFAULT_LOCK_TTL": "5.0"}, (5.0, True, None)),
        ({"RATESCRIPT_DEFAULT_LOCK_TTL": " 0.25 "}, (0.25, True, None)),
        ({"RATESCRIPT_DEFAULT_LOCK_TTL": ""}, (None, True, None)),  # empty: unset
        ({"RATESCRIPT_DEFAULT_BLOCKING": "false"}, (None, False, None)),
        ({"RATESCRIPT_DEFAULT_BLOCKING": "FALSE"}, (None, False, None)),
        ({"RATESCRIPT_DEFAULT_BLOCKING": "0"}, (None, False, None)),
        ({"RATESCRIPT_DEFAULT_BLOCKING": "No"}, (None, False, None)),
        ({"RATESCRIPT_DEFAULT_BLOCKING": "True"}, (None, True, None)),
        ({"RATESCRIPT_DEFAULT_BLOCKING": "1"}, (None, True, None)),
        ({"RATESCRIPT_DEFAULT_BLOCKING": "yes"}, (None, True, None)),
        ({"RATESCRIPT_DEFAULT_BLOCKING_TIMEOUT": "2"}, (None, True, 2.0)),
        ({"RATESCRIPT_DEFAULT_BLOCKING_TIMEOUT": "0"}, (None, True, 0.0)),  # try once
        (
            {
                "RATESCRIPT_DEFAULT_LOCK_TTL": "5",
                "RATESCRIPT_DEFAULT_BLOCKING": "yes",
                "RATESCRIPT_DEFAULT_BLOCKING_TIMEOUT": "1.5e-1",
            },
            (5.0, True, 0.15),
        ),
    ],
)
def test_the_environment_is_read_at_import(
    load: Callable[..., ModuleType],
    env: dict[str, str],
    expected: tuple[float | None, bool, float | None],
) -> None:
    module = load(**env)
    found = (module.get_lock_ttl(), module.get_lock_blocking(), module.get_lock_blocking_timeout())
    assert found == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RATESCRIPT_DEFAULT_LOCK_TTL", "-1"),
        ("RATESCRIPT_DEFAULT_LOCK_TTL", "0"),  # a lock that is gone as it is taken
        ("RATESCRIPT_DEFAULT_LOCK_TTL", "nan"),
        ("RATESCRIPT_DEFAULT_LOCK_TTL", "inf"),
        ("RATESCRIPT_DEFAULT_LOCK_TTL", "1e400"),  # overflows to inf
        ("RATESCRIPT_DEFAULT_LOCK_TTL", "5s"),
        ("RATESCRIPT_DEFAULT_BLOCKING", "maybe"),
        ("RATESCRIPT_DEFAULT_BLOCKING", "on"),
        ("RATESCRIPT_DEFAULT_BLOCKING", "2"),
        ("RATESCRIPT_DEFAULT_BLOCKING_TIMEOUT", "-0.5"),
        ("RATESCRIPT_DEFAULT_BLOCKING_TIMEOUT", "NaN"),
        ("RATESCRIPT_DEFAULT_BLOCKING_TIMEOUT", "-Infinity"),
        ("RATESCRIPT_DEFAULT_BLOCKING_TIMEOUT", "two"),
    ],
)
def test_a_bad_environment_fails_the_import(
    load: Callable[..., ModuleType], name: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(name)):
        load(**{name: value})


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_import_ratescript_reads_the_environment_and_stops_on_a_bad_value() -> None:
    good = _python(
        "import ratescript as r\n"
        "print(r.get_lock_ttl(), r.get_lock_blocking(), r.get_lock_blocking_timeout())",
        RATESCRIPT_DEFAULT_LOCK_TTL="5.0",
        RATESCRIPT_DEFAULT_BLOCKING="No",
        RATESCRIPT_DEFAULT_BLOCKING_TIMEOUT="2",
    )
    assert (good.returncode, good.stdout) == (0, "5.0 False 2.0\n"), good.stderr
    bad = _python("import ratescript", RATESCRIPT_DEFAULT_BLOCKING_TIMEOUT="-1")
    assert bad.returncode == 1
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("ratescript.exceptions.ConfigurationError: ")
    assert "RATESCRIPT_DEFAULT_BLOCKING_TIMEOUT" in last


def test_the_package_exports_the_config_functions() -> None:
    for name in config.__all__:
        if name.startswith(("get_", "set_")):
            assert getattr(ratescript, name) is getattr(config, name)
    assert config.__all__ == sorted(config.__all__)


def test_setters_change_the_defaults() -> None:
    config.set_lock_ttl(2)
    config.set_lock_blocking(False)
    config.set_lock_blocking_timeout(0)
    assert (config.get_lock_ttl(), config.get_lock_blocking()) == (2.0, False)
    assert config.get_lock_blocking_timeout() == 0.0
    assert isinstance(config.get_lock_ttl(), float)
    config.set_lock_ttl(None)
    config.set_lock_blocking_timeout(None)
    assert (config.get_lock_ttl(), config.get_lock_blocking_timeout()) == (None, None)


@pytest.mark.parametrize(
    ("setter", "value"),
    [
        (config.set_lock_ttl, 0),
        (config.set_lock_ttl, -1.0),
        (config.set_lock_ttl, math.nan),
        (config.set_lock_ttl, math.inf),
        (config.set_lock_ttl, "5"),
        (config.set_lock_ttl, True),
        (config.set_lock_blocking, "false"),
        (config.set_lock_blocking, 0),
        (config.set_lock_blocking, None),
        (config.set_lock_blocking_timeout, -0.001),
        (config.set_lock_blocking_timeout, math.inf),
        (config.set_lock_blocking_timeout, math.nan),
        (config.set_lock_blocking_timeout, "1"),
        pytest.param(config.set_lock_ttl, 2**1100, id="set_lock_ttl-2**1100"),  # no double
        pytest.param(config.set_lock_blocking_timeout, 2**1100, id="blocking_timeout-2**1100"),
    ],
)
def test_setters_refuse_bad_values_and_keep_the_old_one(
    setter: Callable[[object], None], value: object
) -> None:
    config.set_lock_ttl(3)
    config.set_lock_blocking(True)
    config.set_lock_blocking_timeout(1)
    with pytest.raises(ConfigurationError):
        setter(value)
    assert (config.get_lock_ttl(), config.get_lock_blocking()) == (3.0, True)
    assert config.get_lock_blocking_timeout() == 1.0


def test_a_lock_call_resolves_what_it_was_not_given() -> None:
    config.set_lock_ttl(5)
    config.set_lock_blocking(False)
    config.set_lock_blocking_timeout(2)
    resolve = config.resolve_lock_options
    assert resolve(None, None, None) == (5.0, False, 2.0)
    assert resolve(1, True, 0) == (1.0, True, 0.0)  # given arguments win
    assert resolve(math.inf, None, math.inf) == (None, False, None)  # inf: none, explicitly
    bad_ones = [(0, None, None), (-1, None, None), (None, None, -1), (None, None, math.nan)]
    for bad in [*bad_ones, (2**1100, None, None), (None, None, 2**1100)]:
        with pytest.raises(ConfigurationError):
            resolve(*bad)


# --- every store's lock() honours the defaults ------------------------------------------------


def _namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("memcached", marks=pytest.mark.memcached),
    ]
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A store of each kind, in a namespace of its own."""
    if request.param == "memory":
        yield InMemoryStore(namespace=_namespace(), clock=FakeClock())
        return
    if request.param == "redis":
        from ratescript.stores.redis import RedisStore

        made: Store = RedisStore(request.getfixturevalue("redis_url"), namespace=_namespace())
    else:
        from ratescript.stores.memcached import MemcachedStore

        made = MemcachedStore(request.getfixturevalue("memcached_url"), namespace=_namespace())
    async with made:
        yield made


async def _second_acquisition(store: Store, **arguments: float | bool) -> float:
    """Try the held lock ``"l"`` again (locks are not re-entrant); seconds until it fails.

    Bounded by ``wait_for``: a store ignoring the defaults would wait for ever, and
    the test fails with ``TimeoutError`` instead of ``LockTimeoutError``.
    """

    async def acquire() -> None:
        async with store.lock("l", **arguments):  # type: ignore[arg-type]
            pass

    started = time.monotonic()
    with pytest.raises(LockTimeoutError, match="lock 'l' is held"):
        await asyncio.wait_for(acquire(), 5)
    return time.monotonic() - started


@pytest.mark.asyncio
async def test_default_blocking_false_fails_a_held_lock_at_once(store: Store) -> None:
    config.set_lock_blocking(False)
    async with store.lock("l", ttl=30):
        assert await _second_acquisition(store) < 0.5
        # A given argument wins over the default: this one waits, then gives up.
        assert await _second_acquisition(store, blocking=True, blocking_timeout=0.2) >= 0.15
    async with store.lock("l"):  # released on exit
        pass


@pytest.mark.asyncio
async def test_default_blocking_timeout_bounds_the_wait(store: Store) -> None:
    config.set_lock_blocking_timeout(0.2)
    async with store.lock("l", ttl=30):
        assert 0.15 <= await _second_acquisition(store) < 2.0


@pytest.mark.asyncio
async def test_default_ttl_is_given_to_the_lock() -> None:
    clock = FakeClock()
    memory = InMemoryStore(namespace=_namespace(), clock=clock)
    config.set_lock_ttl(7)
    config.set_lock_blocking(False)
    async with memory.lock("l"):
        clock.now += 6_000
        await _second_acquisition(memory)
        clock.now += 1_001  # past the default TTL: the holder's lock has expired
        async with memory.lock("l"):
            pass


@pytest.mark.asyncio
@pytest.mark.redis
async def test_default_ttl_is_given_to_a_redis_lock(redis_url: str) -> None:
    from redis.asyncio import Redis

    from ratescript.stores.redis import RedisStore

    config.set_lock_ttl(7)
    raw = Redis.from_url(redis_url)
    async with RedisStore(redis_url, namespace=_namespace()) as store:
        async with store.lock("l"):
            assert 6_000 < await raw.pttl(store.full_key("lock:l")) <= 7_000
        async with store.lock("l", ttl=math.inf):  # no TTL, whatever the default
            assert await raw.pttl(store.full_key("lock:l")) == -1
    await raw.aclose()


@pytest.mark.asyncio
@pytest.mark.memcached
async def test_default_ttl_is_given_to_a_memcached_lock(memcached_url: str) -> None:
    from ratescript.stores.memcached import MemcachedStore, memcached_key

    async def seconds_left(key: bytes) -> int:
        host, port = memcached_url.removeprefix("memcached://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(b"mg %s t\r\n" % key)
            reply = await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)
        finally:
            writer.close()
            await writer.wait_closed()
        found = re.fullmatch(rb"HD t(-?\d+)\r\n", reply)
        assert found, reply
        return int(found.group(1))

    config.set_lock_ttl(7)
    async with MemcachedStore(memcached_url, namespace=_namespace()) as store:
        key = memcached_key(f"{store.namespace}#lock:l")
        async with store.lock("l"):
            assert 7 <= await seconds_left(key) <= 8
        async with store.lock("l", ttl=math.inf):
            assert await seconds_left(key) == -1
