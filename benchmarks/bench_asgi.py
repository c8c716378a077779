"""Benchmark: the latency one ``Depends(throttle)`` adds to a FastAPI route.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_asgi.py``). Each
variant is a FastAPI app of one route, ``GET /``, identical but for how a throttle is
applied (in-process store, fixed window, a limit never reached), so none pays for
matching the routes of the others. The apps are driven by direct ASGI calls — no
HTTP, no client library — round by round, every variant in each round, so the
machine's drift hits all alike; a variant's added latency is its median request time
minus the bare route's in the same round, and the figure is the median over rounds.
Target (issue 5): at most 25 µs median added per request.

A route with a no-op dependency is measured too: what FastAPI itself charges for
any ``Depends`` (it solves a sub-dependency as a dependant of its own), which no
limiter can avoid; the rest of the added time is ratescript's.

``@throttled(throttle)`` on the route asks FastAPI for the request, not for a
dependency; ``--headers`` also measures a throttle sending the rate-limit headers on
every response, and ``--middleware`` the throttle applied by ``ThrottleMiddleware``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
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


def route_app(dependencies: Sequence[Any] = (), decorate: Any = None) -> FastAPI:
    """An app of one route, ``GET /``, with ``dependencies`` and ``decorate`` applied."""
    app = FastAPI()

    async def endpoint() -> dict[str, bool]:
        return {"ok": True}

    app.get("/", dependencies=list(dependencies))(decorate(endpoint) if decorate else endpoint)
    return app


def throttle(store: InMemoryStore, uid: str, headers: bool = False) -> HTTPThrottle:
    return HTTPThrottle(
        uid, "1000000000/h", store=store, rate_limit_headers="ietf" if headers else None
    )


async def nothing() -> None:
    """A dependency doing nothing: what FastAPI itself charges for one ``Depends``."""


def variants(store: InMemoryStore, headers: bool, middleware: bool) -> dict[str, Any]:
    """The apps measured, by name; ``route`` is the bare route the others add to."""
    apps: dict[str, Any] = {
        "route": route_app(),
        "Depends(a no-op) [FastAPI]": route_app([Depends(nothing)]),
        "Depends(throttle)": route_app([Depends(throttle(store, "depends"))]),
        "@throttled(throttle)": route_app(decorate=throttled(throttle(store, "decorated"))),
    }
    if headers:
        limited = throttle(store, "headers", headers=True)
        apps["Depends(throttle) + headers"] = route_app([Depends(limited)])
    if middleware:
        limited = throttle(store, "middleware")
        apps["ThrottleMiddleware"] = ThrottleMiddleware(
            route_app(), [MiddlewareThrottle(limited, path="/")]
        )
    return apps


async def timed(call: Call, count: int) -> float:
    """The median µs of ``count`` requests, each timed alone: a request's median, as the
    target reads, which a garbage collection or a neighbour's burst does not move."""
    clock = time.perf_counter_ns
    taken = []
    for _ in range(count):
        start = clock()
        await call()
        taken.append(clock() - start)
    return statistics.median(taken) / 1000


async def main(rounds: int, count: int, headers: bool, middleware: bool) -> None:
    calls = {
        name: asgi_call(app, "/")
        for name, app in variants(InMemoryStore(), headers, middleware).items()
    }
    for call in calls.values():  # warm up: first requests build FastAPI's caches
        await timed(call, count)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            times[name].append(await timed(call, count))
    bare = times.pop("route")
    print(f"FastAPI route without a throttle: {statistics.median(bare):7.1f} µs median")
    for name, taken in times.items():
        added = sorted(mine - base for mine, base in zip(taken, bare, strict=True))
        median = statistics.median(added)
        verdict = "meets" if median <= 25 else "MISSES"
        print(
            f"{name:<28} added {median:6.1f} µs median"
            f" (p90 of rounds {added[int(len(added) * 0.9)]:5.1f})   {verdict} ≤ 25 µs"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--headers", action="store_true")
    parser.add_argument("--middleware", action="store_true")
    options = parser.parse_args()
    asyncio.run(main(options.rounds, options.count, options.headers, options.middleware))
