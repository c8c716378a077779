"""The machine, the date and every version a run depends on."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from typing import Any

from adapters import version_of

DISTRIBUTIONS = (
    "ratescript",
    "traffik",
    "slowapi",
    "limits",
    "fastapi-limiter",
    "pyrate-limiter",
    "fastapi",
    "starlette",
    "redis",
    "hiredis",
    "aiomcache",
    "pymemcache",
    "memcachio",
    "pottery",
    "uvicorn",
    "httpx",
    "matplotlib",
)


def _first_line(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({type(exc).__name__})"
    return (result.stdout or result.stderr).strip().splitlines()[0] if result else ""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(meminfo.readline().split()[1])
            return f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def describe() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "ram": _ram(),
        "load_at_start": _load(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "redis-server": _first_line(["redis-server", "--version"]),
        "memcached": _first_line(["memcached", "-V"]),
        "versions": {name: version_of(name) for name in DISTRIBUTIONS},
    }


def finish(info: dict[str, Any]) -> None:
    info["load_at_end"] = _load()
