"""Network round trips per decision, counted by the servers themselves.

Redis: a ``MONITOR`` connection sees every command a client sends, and marks the
commands a Lua script runs (``[0 lua]``); client commands are the round trips
(none of the libraries pipelines a decision). ``INFO commandstats`` is read too: its
call counts include the commands scripts run, so it says how much work a decision
is, not how many trips. Memcached: ``stats`` counters (``cmd_get`` counts keys, so a
multi-key ``get`` counts once per key).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from typing import Any

from adapters import STRATEGIES, Adapter, Servers
from common import Settings
from decisions import DECISION_RATE, fresh_key, make_decider

MEMCACHED_COUNTERS = (
    "cmd_get",
    "cmd_set",
    "cmd_touch",
    "cmd_flush",
    "incr_hits",
    "incr_misses",
    "decr_hits",
    "decr_misses",
    "delete_hits",
    "delete_misses",
)
# Commands of the harness's own stats connection, never counted.
_OWN_COMMANDS = {"info", "echo", "client|info", "client", "config|resetstat"}


class RedisMonitor:
    """Counts client commands (by name) and script-run commands through ``MONITOR``."""

    def __init__(self, host: str, port: int, exclude_addr: str) -> None:
        self._host, self._port, self._exclude = host, port, exclude_addr
        self.client_commands: Counter[str] = Counter()
        self.script_commands = 0
        self._sentinel = ""
        self._seen = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        reader, self._writer = await asyncio.open_connection(self._host, self._port)
        self._writer.write(b"MONITOR\r\n")
        await self._writer.drain()
        await reader.readline()  # +OK
        self._task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = (await reader.readline()).decode(errors="replace")
            if not line:
                return
            # +1700000000.123456 [0 127.0.0.1:5555] "evalsha" "..."
            _stamp, _bracket, rest = line.partition("[")
            where, _close, command = rest.partition("]")
            address = where.split(" ", 1)[-1]
            name = command.strip().split(" ", 1)[0].strip('"').lower()
            if address == "lua":
                self.script_commands += 1
            elif address == self._exclude:
                if self._sentinel and self._sentinel in command:
                    self._seen.set()
            else:
                self.client_commands[name] += 1

    def reset(self, sentinel: str) -> None:
        self.client_commands.clear()
        self.script_commands = 0
        self._sentinel = sentinel
        self._seen.clear()

    async def wait(self) -> None:
        await asyncio.wait_for(self._seen.wait(), 10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()


async def _memcached_stats(host: str, port: int) -> dict[str, int]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"stats\r\n")
        await writer.drain()
        stats: dict[str, int] = {}
        while True:
            line = (await reader.readline()).decode().strip()
            if line == "END" or not line:
                return stats
            parts = line.split()
            if len(parts) == 3 and parts[0] == "STAT" and parts[2].isdigit():
                stats[parts[1]] = int(parts[2])
    finally:
        writer.close()


def _commandstats_calls(info: dict[str, Any]) -> dict[str, int]:
    calls = {}
    for name, value in info.items():
        command = name.removeprefix("cmdstat_")
        if command not in _OWN_COMMANDS and isinstance(value, dict):
            calls[command] = int(value.get("calls", 0))
    return calls


async def round_trips(
    adapters: list[Adapter], servers: Servers, settings: Settings, stores: list[str]
) -> list[dict[str, Any]]:
    import redis.asyncio

    count = settings.roundtrip_decisions
    stats = redis.asyncio.Redis.from_url(servers.redis_url, decode_responses=True)
    me = (await stats.client_info())["addr"]
    host, port = servers.redis_host_port
    monitor = RedisMonitor(host, port, me)
    await monitor.start()
    rows: list[dict[str, Any]] = []
    try:
        for store, strategy, adapter in itertools.product(stores, STRATEGIES, adapters):
            row: dict[str, Any] = {"library": adapter.name, "store": store, "strategy": strategy}
            rows.append(row)
            decider, row["status"], row["detail"] = await make_decider(
                adapter, store, strategy, DECISION_RATE, servers
            )
            if decider is None:
                continue
            key = fresh_key(f"rt-{strategy}")
            try:
                for _ in range(5):  # connections opened, scripts loaded
                    await decider.hit(key)
                if store == "redis":
                    before = _commandstats_calls(await stats.info("commandstats"))
                    monitor.reset(sentinel=f"pb-sentinel-{key}")
                    for _ in range(count):
                        await decider.hit(key)
                    await stats.echo(f"pb-sentinel-{key}")
                    await monitor.wait()
                    after = _commandstats_calls(await stats.info("commandstats"))
                    executed = sum(after.values()) - sum(before.values())
                    row["round_trips"] = sum(monitor.client_commands.values()) / count
                    row["commands_executed"] = executed / count
                    row["by_command"] = {
                        name: calls / count
                        for name, calls in sorted(monitor.client_commands.items())
                    }
                else:
                    before_mc = await _memcached_stats(
                        servers.memcached_host, servers.memcached_port
                    )
                    for _ in range(count):
                        await decider.hit(key)
                    after_mc = await _memcached_stats(
                        servers.memcached_host, servers.memcached_port
                    )
                    deltas = {
                        name: (after_mc.get(name, 0) - before_mc.get(name, 0)) / count
                        for name in MEMCACHED_COUNTERS
                    }
                    row["round_trips"] = sum(deltas.values())
                    row["by_command"] = {name: v for name, v in deltas.items() if v}
            except Exception as exc:
                row["status"], row["detail"] = "error", f"{type(exc).__name__}: {exc}"[:300]
            finally:
                await decider.close()
        print("  round trips done", flush=True)
    finally:
        await monitor.stop()
        await stats.aclose()
    return rows
