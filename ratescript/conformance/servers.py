"""Real Redis and Memcached servers for tests, found or started on demand.

Shipped with the conformance kit so a store author's tests get servers the same
way ours do. Session fixtures need one server of each kind for the whole run,
while fault tests need their own server they can stop, kill and start again on the
same port; both use the functions here.

Where a server comes from, in order (see ``server_url``):

1. a URL from the environment (``RATESCRIPT_REDIS_URL``, ``RATESCRIPT_MEMCACHED_URL``);
2. a local ``redis-server`` / ``memcached`` binary, started on a free port;
3. Testcontainers, only when a Docker engine answers and the package imports.

When none is available ``ServerUnavailable`` says what to install; the fixtures turn
it into a skip, or into a failure under CI.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MEMCACHED",
    "REDIS",
    "Kind",
    "LocalServer",
    "ServerUnavailable",
    "server_url",
    "start_memcached",
    "start_redis",
]

READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class ServerUnavailable(Exception):
    """No server of this kind can be had on this machine; the message says how to get one."""


@dataclass
class Kind:
    """What differs between Redis and Memcached, for the code that runs them."""

    binary: str
    scheme: str
    env_var: str
    container_image: str
    container_port: int
    install_hint: str
    ping: bytes  # a request every live server answers ...
    pong: bytes  # ... with a reply starting like this
    argv: Callable[[int], list[str]]


def _redis_argv(port: int) -> list[str]:
    # No persistence: a test server must never write dump or AOF files.
    return [
        "redis-server",
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", tempfile.gettempdir(),
    ]  # fmt: skip


def _memcached_argv(port: int) -> list[str]:
    argv = ["memcached", "-p", str(port), "-U", "0", "-l", "127.0.0.1"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv += ["-u", "root"]  # memcached refuses to run as root without it
    return argv


REDIS = Kind(
    binary="redis-server",
    scheme="redis",
    env_var="RATESCRIPT_REDIS_URL",
    container_image="redis:7.0",
    container_port=6379,
    install_hint="install redis-server (apt-get install redis-server) or set RATESCRIPT_REDIS_URL",
    ping=b"PING\r\n",
    pong=b"+PONG",
    argv=_redis_argv,
)
MEMCACHED = Kind(
    binary="memcached",
    scheme="memcached",
    env_var="RATESCRIPT_MEMCACHED_URL",
    container_image="memcached:1.6",
    container_port=11211,
    install_hint="install memcached (apt-get install memcached) or set RATESCRIPT_MEMCACHED_URL",
    ping=b"version\r\n",
    pong=b"VERSION",
    argv=_memcached_argv,
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(kind: Kind, host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(kind.ping)
            return sock.recv(64).startswith(kind.pong)
    except OSError:
        return False


def _url(kind: Kind, host: str, port: int) -> str:
    suffix = "/0" if kind is REDIS else ""
    return f"{kind.scheme}://{host}:{port}{suffix}"


@dataclass
class LocalServer:
    """A server process of ours on 127.0.0.1, which a test may stop and start again.

    ``start()`` reuses the same port, so clients holding ``url`` reconnect to the
    restarted server; ``kill()`` is the abrupt variant of ``stop()`` (SIGKILL).
    """

    kind: Kind
    port: int
    process: subprocess.Popen[bytes] | None = None
    _log_path: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        return _url(self.kind, "127.0.0.1", self.port)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server (no-op if running) and wait until it answers."""
        if self.running:
            return
        fd, self._log_path = tempfile.mkstemp(prefix=f"ratescript-{self.kind.binary}-")
        with os.fdopen(fd, "wb") as log:
            self.process = subprocess.Popen(
                self.kind.argv(self.port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _answers(self.kind, "127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                what = "exited" if self.process.poll() is not None else "did not answer"
                self.stop()
                raise RuntimeError(
                    f"{self.kind.binary} on port {self.port} {what} within "
                    f"{READY_TIMEOUT_S:.0f} s; its output:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM, then SIGKILL after a grace period)."""
        self._end(kill=False)

    def kill(self) -> None:
        """Kill the server at once, as a crash would."""
        self._end(kill=True)

    def _end(self, *, kill: bool) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            if kill:
                process.kill()
            else:
                process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_path:
            with contextlib.suppress(OSError):
                os.unlink(self._log_path)
            self._log_path = ""

    def _log_tail(self) -> str:
        try:
            with open(self._log_path, "rb") as log:
                return log.read()[-2000:].decode(errors="replace")
        except OSError:
            return "(no output captured)"


def _start_local(kind: Kind) -> LocalServer:
    if shutil.which(kind.binary) is None:
        raise ServerUnavailable(f"{kind.binary} is not on PATH: {kind.install_hint}")
    server = LocalServer(kind, _free_port())
    atexit.register(server.stop)  # even if the session is interrupted
    server.start()
    return server


def start_redis() -> LocalServer:
    """A fresh ``redis-server`` on a free port (raises ``ServerUnavailable`` if absent)."""
    return _start_local(REDIS)


def start_memcached() -> LocalServer:
    """A fresh ``memcached`` on a free port (raises ``ServerUnavailable`` if absent)."""
    return _start_local(MEMCACHED)


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@contextlib.contextmanager
def _container(kind: Kind) -> Iterator[str]:
    # Imported by name: testcontainers is optional and has no type information.
    containers: Any = importlib.import_module("testcontainers.core.container")
    container: Any = containers.DockerContainer(kind.container_image)
    container = container.with_exposed_ports(kind.container_port)
    container.start()
    try:
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(kind.container_port))
        deadline = time.monotonic() + READY_TIMEOUT_S * 3  # image start can be slow
        while not _answers(kind, host, port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind.container_image} container did not answer")
            time.sleep(0.1)
        yield _url(kind, host, port)
    finally:
        container.stop()


@contextlib.contextmanager
def server_url(kind: Kind) -> Iterator[str]:
    """Yield a URL for a server of ``kind`` (``REDIS`` or ``MEMCACHED``) for the
    duration of the block, trying the environment, a local binary, then Docker."""
    from_env = os.environ.get(kind.env_var)
    if from_env:
        yield from_env
        return
    if shutil.which(kind.binary) is not None:
        server = _start_local(kind)
        try:
            yield server.url
        finally:
            server.stop()
        return
    if importlib.util.find_spec("testcontainers") is not None and _docker_answers():
        with _container(kind) as url:
            yield url
        return
    raise ServerUnavailable(
        f"no {kind.binary} available: {kind.install_hint} "
        "(or run a Docker engine with the testcontainers package installed)"
    )
