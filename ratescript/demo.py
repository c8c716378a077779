"""The main job of ``make demo``: a real server, real traffic, every strategy side by side.

``run_demo`` starts uvicorn on a free port of 127.0.0.1, serving a small FastAPI app
on the in-process store (``InMemoryStore``, entered by the app's lifespan):

* ``GET /http/<strategy>`` — one route per strategy, each ``Depends(throttle)``;
* ``WS /ws`` — a ``WebSocketThrottle`` checked on every message;
* ``GET /api/items`` — limited by a ``ThrottleMiddleware`` rule (``path="/api/"``).

It then drives the same traffic at every row — real HTTP requests through httpx, real
WebSocket frames through a minimal client below — prints how many requests each
strategy admitted and throttled per time slice, and shuts the server down. Time is
real wall time: the counts move a little from run to run.

``run_script_demo`` (``python -m ratescript demo --scripts``) is the older, lower-level
tour: three built-in scripts on a simulated clock, and — where ``lupa`` is installed —
the same hits on the Lua target to show both decide and store identically.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the annotations of the
# endpoints defined in ``build_app`` at run time, and they name local imports.

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import socket
import statistics
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from ratescript.builtin_scripts import fixed_window, sliding_log, token_bucket
from ratescript.conformance.executors import Executor, PythonExecutor
from ratescript.exceptions import RatescriptError
from ratescript.scriptdsl.nodes import KeyKind
from ratescript.scriptdsl.script import Script

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI

    from ratescript.strategies import Strategy

__all__ = [
    "DemoApp",
    "DemoError",
    "DemoResult",
    "Row",
    "Traffic",
    "WebSocketClient",
    "build_app",
    "format_table",
    "run_demo",
    "run_script_demo",
]

#: What the demo imports beyond ratescript; all are in the ``dev`` extra (``make venv``).
_NEEDS = ("fastapi", "uvicorn", "httpx", "wsproto")
_RATE = "5/s"
_SECTIONS = (
    ("http", "HTTP route, Depends(throttle)"),
    ("websocket", "WebSocket, WebSocketThrottle per message"),
    ("middleware", "ThrottleMiddleware rule, path /api/"),
)


class DemoError(RatescriptError):
    """The demo could not run: a missing package, or the server misbehaved."""


# --- the traffic and the table --------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """When requests are sent: ``per_second`` evenly while a burst lasts, then a pause.

    ``bursts`` are ``(start_ms, end_ms)`` intervals; the table has one column per
    ``slice_ms`` up to ``duration_ms``.
    """

    per_second: float = 20.0
    bursts: tuple[tuple[int, int], ...] = ((0, 2000), (3000, 4000))
    slice_ms: int = 250
    duration_ms: int = 4000

    def schedule(self) -> list[float]:
        """The send times, in ms from the start."""
        step = 1000.0 / self.per_second
        times: list[float] = []
        for start, end in self.bursts:
            at = float(start)
            while at < end:
                times.append(at)
                at += step
        return times

    @property
    def slices(self) -> int:
        return -(-self.duration_ms // self.slice_ms)

    def slice_of(self, at_ms: float) -> int:
        return min(int(at_ms // self.slice_ms), self.slices - 1)

    def sent_per_slice(self) -> list[int]:
        sent = [0] * self.slices
        for at in self.schedule():
            sent[self.slice_of(at)] += 1
        return sent

    def describe(self) -> str:
        bursts = ", then ".join(f"{start / 1000:g}-{end / 1000:g} s" for start, end in self.bursts)
        return f"{self.per_second:g} requests/s per row during {bursts}"


@dataclass
class Row:
    """One line of the table: what one throttle admitted and throttled per slice."""

    label: str
    section: str
    admitted: list[int]
    throttled: list[int]

    @classmethod
    def empty(cls, label: str, section: str, slices: int) -> "Row":
        return cls(label, section, [0] * slices, [0] * slices)

    @property
    def sent(self) -> int:
        return sum(self.admitted) + sum(self.throttled)


def _cell(count: int) -> str:
    return f"{count:>3}" if count else "  ·"


def format_table(rows: Sequence[Row], traffic: Traffic) -> str:
    """The table: one row per throttle, one column per time slice, admitted hits in each.

    Rows are grouped by ``section`` (in ``_SECTIONS`` order, then any other); a first
    line shows what was sent per slice, the last columns each row's totals.
    """
    labels = [row.label for row in rows]
    width = max([len("sent per slice"), *(len(label) + 2 for label in labels)])
    ticks = "".join(
        f"{t // 1000:>3}" if t % 1000 == 0 else "   "
        for t in range(0, traffic.slices * traffic.slice_ms, traffic.slice_ms)
    )
    lines = [
        f"admitted requests per {traffic.slice_ms} ms slice (· = none)",
        f"{'time (s)':<{width}}{ticks}   admitted  throttled",
        f"{'sent per slice':<{width}}"
        + "".join(_cell(n) for n in traffic.sent_per_slice())
        + f"   {sum(traffic.sent_per_slice()):>8}",
    ]
    known = [key for key, _ in _SECTIONS]
    sections = known + sorted({row.section for row in rows} - set(known))
    titles = dict(_SECTIONS)
    for section in sections:
        members = [row for row in rows if row.section == section]
        if not members:
            continue
        lines.append(titles.get(section, section))
        for row in members:
            cells = "".join(_cell(n) for n in row.admitted)
            lines.append(
                f"  {row.label:<{width - 2}}{cells}   "
                f"{sum(row.admitted):>8}  {sum(row.throttled):>9}"
            )
    return "\n".join(lines) + "\n"


# --- the app --------------------------------------------------------------------------------


def _strategies() -> "list[tuple[str, Strategy[Any]]]":
    from ratescript.strategies import (
        FixedWindowStrategy,
        GCRAStrategy,
        LeakyBucketStrategy,
        LeakyBucketWithQueueStrategy,
        SlidingWindowCounterStrategy,
        SlidingWindowLogStrategy,
        TokenBucketStrategy,
        TokenBucketWithDebtStrategy,
    )

    return [
        ("FixedWindow", FixedWindowStrategy()),
        ("SlidingWindowCounter", SlidingWindowCounterStrategy()),
        ("SlidingWindowLog", SlidingWindowLogStrategy()),
        ("TokenBucket", TokenBucketStrategy()),
        ("TokenBucketWithDebt", TokenBucketWithDebtStrategy()),
        ("LeakyBucket", LeakyBucketStrategy()),
        ("LeakyBucketWithQueue", LeakyBucketWithQueueStrategy()),
        ("GCRA", GCRAStrategy()),
        ("GCRA(burst_tolerance_ms=400)", GCRAStrategy(burst_tolerance_ms=400)),
    ]


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")


@dataclass
class DemoApp:
    """The example app and the paths the traffic goes to, one per row."""

    app: "FastAPI"
    http_paths: dict[str, str]  # row label -> path
    websocket_path: str
    websocket_label: str
    middleware_path: str
    middleware_label: str


def build_app() -> DemoApp:
    """The FastAPI app the demo serves, on a fresh ``InMemoryStore``."""
    from fastapi import Depends, FastAPI, WebSocket, WebSocketDisconnect

    from ratescript import HTTPThrottle, WebSocketThrottle, is_throttled
    from ratescript.asgi import MiddlewareThrottle, ThrottleMiddleware
    from ratescript.stores import InMemoryStore
    from ratescript.strategies import FixedWindowStrategy, TokenBucketStrategy

    store = InMemoryStore(namespace="demo")
    app = FastAPI(lifespan=store.lifespan)
    paths: dict[str, str] = {}

    for label, strategy in _strategies():
        path = f"/http/{_slug(label)}"
        throttle = HTTPThrottle(_slug(label), _RATE, strategy=strategy, rate_limit_headers="ietf")

        async def endpoint() -> dict[str, str]:
            return {"status": "ok"}

        app.add_api_route(
            path, endpoint, methods=["GET"], dependencies=[Depends(throttle)], name=label
        )
        paths[label] = path

    messages = WebSocketThrottle("ws-messages", _RATE, strategy=TokenBucketStrategy())

    @app.websocket("/ws")
    async def chat(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                text = await websocket.receive_text()
                await messages(websocket)  # throttled: the client got a rate_limit message
                if not is_throttled(websocket):
                    await websocket.send_json({"type": "echo", "text": text})
        except WebSocketDisconnect:
            pass

    @app.get("/api/items")
    async def items() -> dict[str, list[int]]:
        return {"items": [1, 2, 3]}

    app.add_middleware(
        ThrottleMiddleware,
        middleware_throttles=[
            MiddlewareThrottle(
                HTTPThrottle("api", _RATE, strategy=FixedWindowStrategy()), path="/api/"
            )
        ],
    )
    return DemoApp(app, paths, "/ws", "TokenBucket", "/api/items", "FixedWindow")


# --- a minimal WebSocket client (RFC 6455), over asyncio streams ------------------------------


class WebSocketClient:
    """Just enough of a WebSocket client for the demo: text frames, ping, close."""

    _GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, path: str) -> "WebSocketClient":
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16))
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status, *header_lines = head.split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines if line)
        }
        expected = base64.b64encode(hashlib.sha1(key + cls._GUID).digest()).decode()
        if " 101 " not in f"{status} " or headers.get("sec-websocket-accept") != expected:
            writer.close()
            raise DemoError(f"WebSocket handshake refused: {status!r}")
        return cls(reader, writer)

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)  # a client masks every frame
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._writer.write(header + mask + masked)

    async def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode())
        await self._writer.drain()

    async def _frame(self) -> tuple[int, bool, bytes]:
        first, second = await self._reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self._reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self._reader.readexactly(8))
        mask = await self._reader.readexactly(4) if second & 0x80 else b""
        payload = await self._reader.readexactly(length)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return first & 0x0F, bool(first & 0x80), payload

    async def receive_text(self) -> str:
        """The next text message (fragments joined); answers pings on the way."""
        parts: list[bytes] = []
        while True:
            opcode, fin, payload = await self._frame()
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                await self._writer.drain()
            elif opcode == 0x8:
                raise DemoError("the server closed the WebSocket")
            elif opcode in (0x0, 0x1):
                parts.append(payload)
                if fin:
                    return b"".join(parts).decode()

    async def close(self) -> None:
        """Send a close frame (1000), wait for the server's, and close the socket."""
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
            await self._writer.drain()
            while (await self._frame())[0] != 0x8:
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()


# --- driving it -----------------------------------------------------------------------------


@dataclass
class DemoResult:
    """What a run saw: the server's address, every row, and what a throttled client got."""

    url: str
    traffic: Traffic
    rows: list[Row]
    #: Requests (or messages) each row sent.
    sent_per_row: int
    http_throttled_example: dict[str, Any] = field(default_factory=dict)
    websocket_throttled_example: dict[str, Any] = field(default_factory=dict)
    round_trip_ms: list[float] = field(default_factory=list)
    #: How long after its planned moment each request or message left.
    late_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _check_imports() -> None:
    import importlib.util

    missing = [name for name in _NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise DemoError(
            f"the demo needs {', '.join(missing)}: run `make demo` (it installs the dev "
            f"extra), or pip install {' '.join(missing)}"
        )


def _free_socket() -> socket.socket:
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _wait_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _http_row(
    client: "httpx.AsyncClient",
    path: str,
    row: Row,
    start: float,
    result: DemoResult,
) -> None:
    loop = asyncio.get_running_loop()
    traffic = result.traffic
    for at in traffic.schedule():
        await _wait_until(loop, start + at / 1000)
        sent = loop.time()
        result.late_ms.append((sent - start) * 1000 - at)
        response = await client.get(path)
        result.round_trip_ms.append((loop.time() - sent) * 1000)
        slot = traffic.slice_of(at)
        if response.status_code == 200:
            row.admitted[slot] += 1
        elif response.status_code == 429:
            row.throttled[slot] += 1
            if not result.http_throttled_example:
                result.http_throttled_example = {
                    "path": path,
                    "status": response.status_code,
                    "headers": {
                        name: value
                        for name, value in response.headers.items()
                        if name.lower().startswith(("retry-after", "ratelimit"))
                    },
                    "body": response.json(),
                }
        else:
            raise DemoError(f"GET {path} answered {response.status_code}: {response.text}")


async def _websocket_row(
    host: str, port: int, path: str, row: Row, start: float, result: DemoResult
) -> None:
    loop = asyncio.get_running_loop()
    traffic = result.traffic
    client = await WebSocketClient.connect(host, port, path)
    try:
        for n, at in enumerate(traffic.schedule()):
            await _wait_until(loop, start + at / 1000)
            result.late_ms.append((loop.time() - start) * 1000 - at)
            await client.send_text(f"message {n}")
            reply = json.loads(await client.receive_text())
            slot = traffic.slice_of(at)
            if reply.get("type") == "rate_limit":
                row.throttled[slot] += 1
                result.websocket_throttled_example = result.websocket_throttled_example or reply
            elif reply.get("type") == "echo":
                row.admitted[slot] += 1
            else:
                raise DemoError(f"unexpected WebSocket message: {reply!r}")
    finally:
        await client.close()


def _aligned_start(loop: asyncio.AbstractEventLoop) -> float:
    """The loop time of the next whole wall-clock second, at least 0.1 s away.

    The store's clock is the wall clock, so fixed windows start on whole seconds:
    starting there lines the table's columns up with them.
    """
    delay = 1.0 - time.time() % 1.0
    return loop.time() + (delay if delay >= 0.1 else delay + 1.0)


async def _drive(demo: DemoApp, url: str, result: DemoResult) -> None:
    """Send the traffic of every row at once: HTTP through httpx, one WebSocket."""
    import httpx

    traffic = result.traffic
    http_rows = [row for row in result.rows if row.section == "http"]
    (middleware,) = (row for row in result.rows if row.section == "middleware")
    (websocket,) = (row for row in result.rows if row.section == "websocket")
    host, _, port = url.removeprefix("http://").rpartition(":")
    connections = len(http_rows) + 2
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0) as client:
        await client.get("/openapi.json")  # a warm-up request: FastAPI builds it once
        start = _aligned_start(asyncio.get_running_loop())
        # Rows are staggered over one step of the schedule, so they do not all arrive
        # at the same instant and queue behind each other.
        stagger = 1.0 / traffic.per_second / (len(http_rows) + 2)
        await asyncio.gather(
            *(
                _http_row(client, demo.http_paths[row.label], row, start + i * stagger, result)
                for i, row in enumerate(http_rows)
            ),
            _http_row(
                client, demo.middleware_path, middleware, start + len(http_rows) * stagger, result
            ),
            _websocket_row(
                host,
                int(port),
                demo.websocket_path,
                websocket,
                start + (len(http_rows) + 1) * stagger,
                result,
            ),
        )


async def _serve_and_drive(traffic: Traffic, out: TextIO) -> DemoResult:
    """Start uvicorn on a free port, drive the traffic, stop uvicorn; what was seen."""
    import uvicorn

    demo = build_app()
    sock = _free_socket()
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    config = uvicorn.Config(
        demo.app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        ws="wsproto",
        proxy_headers=False,  # the demo's client is the peer; no proxy in between
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    began = time.monotonic()
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if serving.done():
                serving.result()  # raises what stopped it
                raise DemoError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        out.write(f"uvicorn is serving it on {url}; sending traffic ...\n")
        out.flush()
        rows = [Row.empty(label, "http", traffic.slices) for label in demo.http_paths]
        rows.append(Row.empty(demo.websocket_label, "websocket", traffic.slices))
        rows.append(Row.empty(demo.middleware_label, "middleware", traffic.slices))
        result = DemoResult(url, traffic, rows, len(traffic.schedule()))
        driving = asyncio.create_task(_drive(demo, url, result))
        await asyncio.wait({driving, serving}, return_when=asyncio.FIRST_COMPLETED)
        if server.should_exit or not driving.done():  # Ctrl-C: uvicorn caught it
            driving.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await driving
            raise DemoError("the server stopped before the traffic ended (interrupted?)")
        driving.result()
    finally:
        server.should_exit = True
        await serving
        sock.close()
    result.seconds = time.monotonic() - began
    return result


def _sample_lines(result: DemoResult) -> Iterator[str]:
    http = result.http_throttled_example
    if http:
        headers = "  ".join(f"{name}: {value}" for name, value in http["headers"].items())
        yield f"  HTTP  GET {http['path']} -> {http['status']}  {headers}"
        yield f"        body {json.dumps(http['body'])}"
    ws = result.websocket_throttled_example
    if ws:
        yield f"  WS    {json.dumps(ws)}"


def run_demo(out: TextIO, traffic: Traffic | None = None) -> DemoResult:
    """Serve the example app with uvicorn, drive ``traffic`` at it, print the table."""
    _check_imports()
    traffic = traffic or Traffic()
    out.write(
        "ratescript demo: a real server, real HTTP and WebSocket traffic, every strategy "
        "under the same load\n\n"
    )
    http_paths = "/http/<strategy>"
    out.write(
        "the example app (FastAPI, InMemoryStore entered by its lifespan):\n"
        f"  GET {http_paths:<18} one route per strategy, Depends(HTTPThrottle(..., "
        f'"{_RATE}", strategy=...))\n'
        f'  WS  {"/ws":<18} WebSocketThrottle(..., "{_RATE}") checked on every message\n'
        f"  GET {'/api/items':<18} ThrottleMiddleware rule MiddlewareThrottle(..., "
        'path="/api/")\n'
        f"every row is limited to {_RATE}; traffic: {traffic.describe()}\n\n"
    )
    out.flush()
    result = asyncio.run(_serve_and_drive(traffic, out))
    out.write("\n")
    out.write(format_table(result.rows, result.traffic))
    out.write("\nwhat a throttled client got\n")
    for line in _sample_lines(result):
        out.write(line + "\n")
    total = sum(row.sent for row in result.rows)
    median = statistics.median(result.round_trip_ms) if result.round_trip_ms else 0.0
    out.write(
        f"\n{total} requests and messages over real sockets (median HTTP round trip "
        f"{median:.1f} ms); server stopped cleanly, {result.seconds:.1f} s in all.\n"
    )
    late = sorted(result.late_ms)
    if late and late[len(late) * 9 // 10] > traffic.slice_ms / 5:
        out.write(
            f"The machine was busy: a tenth of the requests left over "
            f"{late[len(late) * 9 // 10]:.0f} ms after their planned moment,\n"
            "so some are counted in an earlier slice than the one they reached the server in.\n"
        )
    out.write(
        "Same rate, same traffic, different shapes: docs/strategies.md explains each.\n"
        "Each strategy is one DSL script; see what it compiles to with\n"
        "  python -m ratescript compile ratescript.strategies.gcra:gcra --target lua\n"
        "  python -m ratescript demo --scripts   # scripts step by step, Python vs Lua\n"
    )
    return result


# --- the scripts, step by step (python -m ratescript demo --scripts) -------------------------

# (script, arguments, label): each admits 3 hits per second.
_SCENARIOS: tuple[tuple[Script, tuple[float, ...], str], ...] = (
    (token_bucket, (3.0, 1000.0, 1.0), "token bucket: capacity 3, refill 3 per 1000 ms"),
    (fixed_window, (3.0, 1000.0, 1.0), "fixed window: 3 per 1000 ms window"),
    (sliding_log, (3.0, 1000.0, 1.0), "sliding log: 3 in any 1000 ms"),
)
# Hit times in ms: a burst, a pause, another burst.
_HITS = (0.0, 100.0, 200.0, 300.0, 400.0, 1150.0, 1200.0, 1250.0, 2500.0)
_START_MS = 1_700_000_000_000.0


def _lua_executor() -> Executor | None:
    try:
        from ratescript.conformance.executors import LuaExecutor

        return LuaExecutor()
    except ImportError:
        return None


def _shown(script: Script, raw: bytes) -> str:
    """Stored bytes, readable: numbers and records are text already; a log is binary."""
    codec = script.codecs[0]
    if not raw or codec.kind is not KeyKind.LOG:
        return raw.decode()
    entries, total = codec.decode("demo", raw)
    shown = ", ".join(f"{t - _START_MS:g}:{a:g}" for t, a in entries)  # times as t(ms)
    return f"log [{shown}] sum {total:g}"


def run_script_demo(out: TextIO) -> None:
    """Built-in scripts on a simulated clock: each decision and the bytes left stored."""
    out.write("ratescript demo --scripts: built-in scripts on the in-process target\n\n")
    for script, args, label in _SCENARIOS:
        python = PythonExecutor(encoded=False)
        lua = _lua_executor()
        out.write(f"== {label}\n")
        out.write(
            f"   script `{script.name}`: {len(script.python_source.splitlines())} lines "
            f"of Python, {len(script.lua_source.splitlines())} lines of Lua "
            f"(sha {script.lua_sha[:12]})\n"
        )
        # The Lua verdict comes before the stored bytes, whose width varies (a record
        # prints up to 17 digits a field): last, they never push a column out of line.
        out.write(
            "   t(ms)  verdict  remaining  wait(ms)" + ("  lua      " if lua else "") + "  stored\n"
        )
        agreed = True
        for offset in _HITS:
            now = _START_MS + offset
            decision = python.run(script, ["demo"], args, now)
            stored = _shown(script, python.state(now, ["demo"]).get("demo", b""))
            line = (
                f"   {offset:5.0f}  {'allow' if decision.allowed else 'DENY ':5}  "
                f"{decision.remaining:9.3g}  {decision.wait_ms:8.1f}"
            )
            if lua is not None:
                same = lua.run(script, ["demo"], args, now) == decision
                same = same and lua.state(now, ["demo"]) == python.state(now, ["demo"])
                agreed = agreed and same
                line += f"  {'same' if same else 'DIFFERENT':9}"
            out.write(f"{line}  {stored}\n")
        if lua is not None:
            verdict = "identical decisions and stored bytes" if agreed else "DISAGREEMENT"
            out.write(f"   Python target vs Lua target (lupa, Lua 5.1): {verdict}\n")
        out.write("\n")
    out.write(
        "See the generated code: python -m ratescript compile "
        "ratescript.builtin_scripts:token_bucket --target lua\n"
    )
