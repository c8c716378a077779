"""The sanity check before timing, and decision cost per strategy against the store floor."""

from __future__ import annotations

import itertools
from typing import Any

from adapters import STRATEGIES, Adapter, Decider, NotAvailable, RateSpec, Servers
from common import Samples, Settings, StepClock, nothing, rotated, timed_calls

#: Never reached in a run, so every timed decision admits and writes.
DECISION_RATE = RateSpec(1_000_000, 3600)
#: The check: hits 1..5 admitted, the 6th rejected.
CHECK_RATE = RateSpec(5, 3600)
#: Sliding log: entries live for an hour, the clock moves 3.6 s per decision.
LOG_ENTRIES = 1000
_serial = itertools.count()


def fresh_key(label: str) -> str:
    return f"k{next(_serial)}-{label}"


async def make_decider(
    adapter: Adapter,
    store: str,
    strategy: str,
    rate: RateSpec,
    servers: Servers,
    clock: StepClock | None = None,
) -> tuple[Decider | None, str, str]:
    """(decider, status, detail): status "ok", "n/a" (with why) or "error"."""
    try:
        return await adapter.decider(store, strategy, rate, servers, clock), "ok", ""
    except NotAvailable as exc:
        return None, "n/a", str(exc)
    except Exception as exc:
        return None, "error", f"{type(exc).__name__}: {exc}"[:300]


async def check(
    adapters: list[Adapter], servers: Servers, stores: list[str]
) -> list[dict[str, Any]]:
    """Before timing: the first ``limit`` hits admitted and the next one rejected,
    per library, store and strategy; and whether a second key is limited apart."""
    rows: list[dict[str, Any]] = []
    for store, strategy, adapter in itertools.product(stores, STRATEGIES, adapters):
        row: dict[str, Any] = {"library": adapter.name, "store": store, "strategy": strategy}
        rows.append(row)
        decider, row["status"], row["detail"] = await make_decider(
            adapter, store, strategy, CHECK_RATE, servers
        )
        if decider is None:
            continue
        key = fresh_key(f"check-{strategy}")
        try:
            outcomes = [await decider.hit(key) for _ in range(CHECK_RATE.limit + 1)]
            other = await decider.hit(fresh_key("check-other"))
        except Exception as exc:
            row["status"], row["detail"] = "error", f"{type(exc).__name__}: {exc}"[:300]
        else:
            expected = [True] * CHECK_RATE.limit + [False]
            row["independent_keys"] = other
            if outcomes != expected:
                row["status"] = "FAIL"
                row["detail"] = f"admitted pattern {outcomes}, expected {expected}"
            elif not other:
                row["detail"] = "a second key was rejected too: one limit shared by all keys"
        finally:
            await decider.close()
    return rows


async def _subjects(
    adapters: list[Adapter], store: str, strategy: str, servers: Servers, rows: list[dict[str, Any]]
) -> list[tuple[Decider, StepClock | None, dict[str, Any]]]:
    subjects = []
    for adapter in adapters:
        clock = (
            StepClock(DECISION_RATE.period_ms / LOG_ENTRIES) if strategy == "sliding_log" else None
        )
        decider, status, detail = await make_decider(
            adapter, store, strategy, DECISION_RATE, servers, clock
        )
        if decider is None and status == "n/a" and clock is not None:
            # The library has a log but no clock the harness can move: the real one.
            clock = None
            decider, status, detail = await make_decider(
                adapter, store, strategy, DECISION_RATE, servers
            )
        row = {
            "library": adapter.name,
            "store": store,
            "strategy": strategy,
            "status": status,
            "detail": detail,
            "step_clock": clock is not None,
        }
        rows.append(row)
        if decider is not None:
            subjects.append((decider, clock, row))
    return subjects


async def decision_costs(
    adapters: list[Adapter], servers: Servers, settings: Settings, stores: list[str]
) -> list[dict[str, Any]]:
    """Median and p99 µs of one decision, per store, strategy and library, interleaved."""
    rows: list[dict[str, Any]] = []
    for store in stores:
        batch = settings.batch_memory if store == "memory" else settings.batch_network
        for strategy in STRATEGIES:
            live = []
            for decider, clock, row in await _subjects(adapters, store, strategy, servers, rows):
                key = fresh_key(f"cost-{strategy}")
                before = clock.advance if clock is not None else nothing

                async def hit(decider: Decider = decider, key: str = key) -> bool:
                    return await decider.hit(key)

                # Warm up; a sliding log fills to its steady 1,000 live entries.
                warm = Samples()
                await timed_calls(
                    hit, LOG_ENTRIES if strategy == "sliding_log" else 50, warm, before
                )
                if warm.errors:
                    row["status"], row["detail"] = "error", warm.first_error
                    await decider.close()
                    continue
                live.append((hit, before, row, decider, Samples()))
            for round_index in range(settings.rounds):
                for hit, before, _row, _decider, samples in rotated(live, round_index):
                    await timed_calls(hit, batch, samples, before)
            for _hit, _before, row, decider, samples in live:
                row.update(samples.summary())
                await decider.close()
            print(f"  decisions {store:<9} {strategy:<16} done", flush=True)
    return rows


async def floors(servers: Servers, settings: Settings) -> list[dict[str, Any]]:
    """The store floor: a bare redis-py ``EVALSHA`` of ``return 1``; aiomcache ``get``,
    and ``gets`` + ``cas``, interleaved round by round."""
    import aiomcache
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(servers.redis_url)
    empty = await client.script_load("return 1")
    mc = aiomcache.Client(servers.memcached_host, servers.memcached_port)
    await mc.set(b"pb:floor", b"1")

    async def evalsha() -> bool:
        await client.evalsha(empty, 1, "pb:floor")
        return True

    async def get() -> bool:
        await mc.get(b"pb:floor")
        return True

    async def gets_cas() -> bool:
        value, token = await mc.gets(b"pb:floor")
        await mc.cas(b"pb:floor", value, token)
        return True

    subjects = [
        ("redis", "EVALSHA `return 1` (redis-py)", evalsha, Samples()),
        ("memcached", "get (aiomcache)", get, Samples()),
        ("memcached", "gets + cas (aiomcache)", gets_cas, Samples()),
    ]
    try:
        for _store, _name, call, _samples in subjects:
            await timed_calls(call, 50, Samples(), nothing)
        for round_index in range(settings.rounds):
            for _store, _name, call, samples in rotated(subjects, round_index):
                await timed_calls(call, settings.batch_network, samples, nothing)
    finally:
        await client.aclose()
        await mc.close()
    return [
        {"store": store, "floor": name, **samples.summary()}
        for store, name, _call, samples in subjects
    ]


__all__ = ["CHECK_RATE", "DECISION_RATE", "check", "decision_costs", "floors", "make_decider"]
