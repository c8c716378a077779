"""Latency one throttle adds to a FastAPI route: direct ASGI calls, then real HTTP.

Each library's app has ``/plain`` and ``/throttled`` (identical but for the library's
throttle, default strategy, in-process store, a limit never reached). In process, the
harness builds the ASGI scope itself and awaits ``app(scope, receive, send)`` — no
client library. Over HTTP, uvicorn serves each app and ``wrk`` (or, without it, a
small asyncio httpx client) drives it with fixed concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apps
from adapters import Adapter, RateSpec, Servers
from common import Samples, Settings, nothing, percentile, rotated, timed_calls
from starlette.requests import Request

RATE = RateSpec(1_000_000, 3600)
PEERS_DIR = Path(__file__).resolve().parent
#: The baseline row: what FastAPI itself charges for a dependency taking the request.
NOOP = "Depends(no-op)"


async def _noop(request: Request) -> None:
    return None


def noop_app() -> Any:
    """The same two routes, the throttle replaced by a dependency doing nothing."""
    from fastapi import Depends, FastAPI

    app = FastAPI()

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/throttled", dependencies=[Depends(_noop)])
    async def throttled() -> dict[str, bool]:
        return {"ok": True}

    return app


def asgi_call(app: Any, path: str) -> Any:
    """One GET of ``path`` straight through the ASGI interface; True on 200."""
    scope_template = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"user-agent", b"peerbench")],
        "client": ("10.0.0.1", 1234),
        "server": ("bench", 80),
    }
    request = {"type": "http.request", "body": b"", "more_body": False}
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    async def call() -> bool:
        status.clear()
        # A fresh ``state`` per request, as a server gives (slowapi marks it checked).
        await app({**scope_template, "state": {}}, receive, send)
        if status != [200]:
            raise RuntimeError(f"{path} answered {status}")
        return True

    return call


async def asgi_latency(
    adapters: list[Adapter], servers: Servers, settings: Settings
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    subjects = []
    async with contextlib.AsyncExitStack() as stack:
        # ratescript's other integrations ride along as extra rows (not judged).
        variants: list[tuple[Adapter | None, str]] = [(adapter, "depends") for adapter in adapters]
        variants += [
            (adapter, style)
            for adapter in adapters
            if adapter.name == "ratescript"
            for style in getattr(adapter, "STYLES", ())[1:]
        ]
        for adapter, style in [*variants, (None, "depends")]:
            name = adapter.name if adapter is not None else NOOP
            if style != "depends":
                name = f"{name} ({'@throttled' if style == 'decorator' else 'middleware'})"
            strategy = adapter.fastapi_strategy() if adapter is not None else ""
            row: dict[str, Any] = {"library": name, "strategy": strategy}
            rows.append(row)
            if adapter is not None and not adapter.has_fastapi:
                row["strategy"] = ""
                row["status"], row["detail"] = "n/a", "no FastAPI integration"
                continue
            try:
                if adapter is None:
                    app = noop_app()
                elif style != "depends":
                    app = adapter.fastapi_app("memory", servers, RATE, style)  # type: ignore[call-arg]
                else:
                    app = adapter.fastapi_app("memory", servers, RATE)
                await stack.enter_async_context(app.router.lifespan_context(app))
                plain, throttled = asgi_call(app, "/plain"), asgi_call(app, "/throttled")
                warm = Samples()
                await timed_calls(plain, 200, warm, nothing)
                await timed_calls(throttled, 200, warm, nothing)
                if warm.errors:
                    raise RuntimeError(warm.first_error)
            except Exception as exc:
                row["status"], row["detail"] = "error", f"{type(exc).__name__}: {exc}"[:300]
                continue
            row["status"], row["detail"] = "ok", ""
            subjects.append((row, plain, throttled, Samples(), Samples(), []))
        for round_index in range(settings.asgi_rounds):
            for _row, plain, throttled, plain_s, throttled_s, added in rotated(
                subjects, round_index
            ):
                # Adjacent batches, their order alternating: the difference of their
                # medians is one round's added latency, drift cancelled.
                plain_round, throttled_round = Samples(), Samples()
                pair = [(plain, plain_round), (throttled, throttled_round)]
                for call, samples in pair if round_index % 2 else pair[::-1]:
                    await timed_calls(call, settings.asgi_batch, samples, nothing)
                added.append(throttled_round.median - plain_round.median)
                plain_s.values += plain_round.values
                throttled_s.values += throttled_round.values
                plain_s.errors += plain_round.errors
                throttled_s.errors += throttled_round.errors
        for row, _plain, _throttled, plain_s, throttled_s, added in subjects:
            row["plain"] = plain_s.summary()
            row["throttled"] = throttled_s.summary()
            row["added_median_us"] = statistics.median(added)
            row["added_p99_us"] = throttled_s.p99 - plain_s.p99
            row["added_by_round_us"] = added
    print("  FastAPI (ASGI) done", flush=True)
    return rows


# --- over HTTP ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def uvicorn_server(library: str, servers: Servers) -> Iterator[str]:
    """uvicorn serving one library's app on a free port; yields its base URL."""
    port = _free_port()
    env = dict(os.environ, **{apps.ENV: apps.describe(library, "memory", servers, RATE)})
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "apps:make_app",
        "--app-dir", str(PEERS_DIR), "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn for {library} did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def _wrk_us(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, connections: int, seconds: float) -> dict[str, float]:
    """One ``wrk --latency`` run: p50 and p99 µs, requests/s and non-2xx responses."""
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = {"errors": 0.0}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            result["p50_us" if parts[0] == "50%" else "p99_us"] = _wrk_us(parts[1])
        elif line.startswith("Requests/sec:"):
            result["rps"] = float(parts[1])
        elif line.strip().startswith("Non-2xx"):
            result["errors"] += float(parts[-1])
        elif line.strip().startswith("Socket errors"):
            result["errors"] += sum(float(n.rstrip(",")) for n in parts[3::2])
    return result


async def _httpx_load(url: str, connections: int, seconds: float) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter_ns()
                response = await client.get(url)
                latencies.append((time.perf_counter_ns() - start) / 1000)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {
        "p50_us": percentile(latencies, 0.5),
        "p99_us": percentile(latencies, 0.99),
        "rps": len(latencies) / elapsed,
        "errors": float(errors),
    }


def load(url: str, connections: int, seconds: float) -> dict[str, float]:
    if shutil.which("wrk"):
        return run_wrk(url, connections, seconds)
    return asyncio.run(_httpx_load(url, connections, seconds))


def load_generator() -> str:
    if shutil.which("wrk"):
        version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
        return version.splitlines()[0].split(" [")[0] if version else "wrk"
    return "asyncio httpx client (wrk not installed)"


def http_latency(
    adapters: list[Adapter], servers: Servers, settings: Settings
) -> list[dict[str, Any]]:
    """Interleaved rounds of wrk runs against each library's plain and throttled route."""
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        subjects = []
        for adapter in adapters:
            row: dict[str, Any] = {"library": adapter.name, "strategy": adapter.fastapi_strategy()}
            rows.append(row)
            if not adapter.has_fastapi:
                row["status"], row["detail"] = "n/a", "no FastAPI integration"
                continue
            try:
                base = stack.enter_context(uvicorn_server(adapter.name, servers))
                for path in ("/plain", "/throttled"):  # warm up, and fail early
                    warm = load(base + path, settings.http_connections, 1)
                    if warm["errors"]:
                        raise RuntimeError(f"{path}: {warm['errors']:.0f} failed requests")
            except Exception as exc:
                row["status"], row["detail"] = "error", f"{type(exc).__name__}: {exc}"[:300]
                continue
            row["status"], row["detail"] = "ok", ""
            subjects.append((row, base, {"/plain": [], "/throttled": []}))
        for round_index in range(settings.http_rounds):
            for _row, base, runs in rotated(subjects, round_index):
                paths = (
                    ["/plain", "/throttled"] if round_index % 2 == 0 else ["/throttled", "/plain"]
                )
                for path in paths:
                    runs[path].append(
                        load(base + path, settings.http_connections, settings.http_seconds)
                    )
        for row, _base, runs in subjects:
            for path, label in (("/plain", "plain"), ("/throttled", "throttled")):
                measured = runs[path]
                row[label] = {
                    name: sorted(run[name] for run in measured)[len(measured) // 2]
                    for name in ("p50_us", "p99_us", "rps")
                }
                row[label]["errors"] = sum(run["errors"] for run in measured)
            # Each figure added is the median over rounds of the difference within a
            # round (its two runs back to back), so drift between rounds cancels out.
            pairs = list(zip(runs["/plain"], runs["/throttled"], strict=True))
            row["added_p50_us"] = statistics.median(
                [mine["p50_us"] - base["p50_us"] for base, mine in pairs]
            )
            # The server's extra time per request: 1/throughput of a saturated worker is
            # its service time, which queueing does not blur as it blurs the latencies.
            row["added_service_us"] = statistics.median(
                [1e6 / mine["rps"] - 1e6 / base["rps"] for base, mine in pairs]
            )
            row["added_p99_us"] = statistics.median(
                [mine["p99_us"] - base["p99_us"] for base, mine in pairs]
            )
    print("  FastAPI (HTTP) done", flush=True)
    return rows
