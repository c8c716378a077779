"""Benchmark: the latency one ``Depends(throttle)`` adds to a FastAPI route.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_asgi.py``). Two
routes of one FastAPI app, identical but for ``dependencies=[Depends(throttle)]``
(in-process store, fixed window, a limit never reached), are driven by direct ASGI
calls — no HTTP, no client library — in interleaved batches so drift hits both
alike. Target (issue 5): at most 25 µs median added per request.

A route with a no-op dependency is measured too: what FastAPI itself charges for
any ``Depends`` (solving a sub-dependency re-reads the query, headers and cookies),
which no limiter can avoid; the rest of the added time is ratescript's.

``@throttled(throttle)`` on the same route is measured too (it asks FastAPI for the
request, not for a dependency); ``--headers`` also measures a throttle sending the
rate-limit headers on every response, and ``--middleware`` the same throttle applied
by ``ThrottleMiddleware``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI

from ratescript import HTTPThrottle, throttled
from ratescript.asgi import MiddlewareThrottle, ThrottleMiddleware
from ratescript.stores.memory import InMemoryStore

Call = Callable[[], Awaitable[None]]


def asgi_call(app: Any, path: str) -> Call:
    """One GET of ``path`` straight through the ASGI interface."""
    scope_template = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("10.0.0.1", 1234),
        "server": ("bench", 80),
    }
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"{path} answered {message['status']}")

    async def call() -> None:
        await app(dict(scope_template), receive, send)

    return call


def build_app(store: InMemoryStore, headers: bool) -> FastAPI:
    throttle = HTTPThrottle(
        "bench", "1000000000/h", store=store, rate_limit_headers="ietf" if headers else None
    )
    decorated_throttle = HTTPThrottle(
        "bench-decorated",
        "1000000000/h",
        store=store,
        rate_limit_headers="ietf" if headers else None,
    )
    app = FastAPI()

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/throttled", dependencies=[Depends(throttle)])
    async def depends() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/decorated")
    @throttled(decorated_throttle)
    async def decorated() -> dict[str, bool]:
        return {"ok": True}

    async def nothing() -> None:
        """A dependency doing nothing: what FastAPI itself charges for one ``Depends``."""

    @app.get("/noop", dependencies=[Depends(nothing)])
    async def noop() -> dict[str, bool]:
        return {"ok": True}

    return app


async def timed(call: Call, count: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(count):
        await call()
    return (time.perf_counter_ns() - start) / count / 1000


async def compare(name: str, subject: Call, floor: Call, rounds: int, count: int) -> float:
    await timed(subject, count)
    await timed(floor, count)
    added: list[float] = []
    bare: list[float] = []
    for _ in range(rounds):
        with_throttle = await timed(subject, count)
        without = await timed(floor, count)
        added.append(with_throttle - without)
        bare.append(without)
    median = statistics.median(added)
    verdict = "meets" if median <= 25 else "MISSES"
    print(
        f"{name:<28} route {statistics.median(bare):7.1f} µs"
        f"   added {median:6.1f} µs median"
        f" (p90 of batches {sorted(added)[int(len(added) * 0.9)]:5.1f})   {verdict} ≤ 25 µs"
    )
    return median


async def main(rounds: int, count: int, headers: bool, middleware: bool) -> None:
    store = InMemoryStore()
    app = build_app(store, headers=False)
    await compare(
        "Depends(a no-op) [FastAPI]",
        asgi_call(app, "/noop"),
        asgi_call(app, "/plain"),
        rounds,
        count,
    )
    await compare(
        "Depends(throttle)",
        asgi_call(app, "/throttled"),
        asgi_call(app, "/plain"),
        rounds,
        count,
    )
    await compare(
        "@throttled(throttle)",
        asgi_call(app, "/decorated"),
        asgi_call(app, "/plain"),
        rounds,
        count,
    )
    if headers:
        app = build_app(store, headers=True)
        await compare(
            "Depends(throttle) + headers",
            asgi_call(app, "/throttled"),
            asgi_call(app, "/plain"),
            rounds,
            count,
        )
    if middleware:
        limited = HTTPThrottle("bench-mw2", "1000000000/h", store=store)
        app = build_app(store, headers=False)
        with_mw = ThrottleMiddleware(app, [MiddlewareThrottle(limited, path="/plain")])
        await compare(
            "ThrottleMiddleware",
            asgi_call(with_mw, "/plain"),
            asgi_call(app, "/plain"),
            rounds,
            count,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--headers", action="store_true")
    parser.add_argument("--middleware", action="store_true")
    options = parser.parse_args()
    asyncio.run(main(options.rounds, options.count, options.headers, options.middleware))
