"""The PNG charts of the report (matplotlib, no display)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from adapters import STRATEGIES, STRATEGY_TITLES

COLOURS = {
    "ratescript": "#1b9e77",
    "traffik": "#d95f02",
    "slowapi": "#7570b3",
    "limits.aio": "#e7298a",
    "fastapi-limiter": "#66a61e",
    "Depends(no-op)": "#999999",
}
STORE_TITLES = {"memory": "in process", "redis": "Redis", "memcached": "Memcached"}


def _value(row: dict[str, Any] | None, field: str) -> float:
    if row is None or row.get("status") != "ok" or field not in row:
        return math.nan
    return float(row[field])


def _grouped(
    groups: list[str],
    series: dict[str, list[float]],
    title: str,
    ylabel: str,
    path: Path,
    log: bool = False,
) -> None:
    figure, axes = plt.subplots(figsize=(10, 4.8))
    names = [name for name, values in series.items() if any(not math.isnan(v) for v in values)]
    width = 0.8 / max(1, len(names))
    for index, name in enumerate(names):
        positions = [g + (index - (len(names) - 1) / 2) * width for g in range(len(groups))]
        values = [0.0 if math.isnan(v) else v for v in series[name]]
        bars = axes.bar(positions, values, width, label=name, color=COLOURS.get(name))
        for bar, value in zip(bars, series[name], strict=True):
            if math.isnan(value):
                axes.annotate("n/a", (bar.get_x() + bar.get_width() / 2, 0), ha="center",
                              va="bottom", fontsize=6, color="#777777", rotation=90)  # fmt: skip
    axes.set_xticks(range(len(groups)), groups, fontsize=9)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if log:
        axes.set_yscale("log")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _find(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def decisions(results: dict[str, Any], store: str, libraries: list[str], directory: Path) -> str:
    name = f"peers-decisions-{store}.png"
    rows = results["decisions"]
    series = {
        library: [
            _value(_find(rows, library=library, store=store, strategy=s), "median_us")
            for s in STRATEGIES
        ]
        for library in libraries
    }
    _grouped(
        [STRATEGY_TITLES[s] for s in STRATEGIES],
        series,
        f"Decision cost, {STORE_TITLES[store]} (median µs, log scale; lower is better)",
        "µs per decision",
        directory / name,
        log=True,
    )
    return name


def fastapi(results: dict[str, Any], directory: Path) -> str:
    name = "peers-fastapi.png"
    panels = [
        ("asgi", "added_median_us", "in process (direct ASGI): added median µs"),
        ("http", "added_service_us", "HTTP (uvicorn + wrk): added service µs"),
    ]
    panels = [panel for panel in panels if panel[0] in results]
    figure, axes_list = plt.subplots(1, len(panels), figsize=(10, 4.2), squeeze=False)
    for axes, (measure, field, title) in zip(axes_list[0], panels, strict=True):
        rows = [row for row in results[measure] if row.get("status") == "ok"]
        names = [row["library"] for row in rows]
        values = [float(row[field]) for row in rows]
        axes.bar(names, values, color=[COLOURS.get(n, "#444444") for n in names])
        axes.set_title(title, fontsize=10)
        axes.tick_params(axis="x", labelrotation=30, labelsize=8)
        axes.grid(axis="y", alpha=0.3)
        axes.axhline(0, color="#333333", linewidth=0.6)
    figure.suptitle("Latency one throttle adds to a FastAPI route (µs; lower is better)")
    figure.tight_layout()
    figure.savefig(directory / name, dpi=110)
    plt.close(figure)
    return name


def contention(results: dict[str, Any], directory: Path) -> str:
    name = "peers-contention.png"
    cases: list[tuple[Any, ...]] = []
    for row in results["contention"]:
        case = (row["processes"], row["concurrency"], row["store"], row["strategy"])
        if case not in cases:
            cases.append(case)
    libraries = []
    for row in results["contention"]:
        if row["library"] not in libraries:
            libraries.append(row["library"])
    series = {
        library: [
            _value(
                _find(results["contention"], library=library, processes=p, concurrency=c,
                      store=store, strategy=strategy),
                "wall_s",
            )
            for p, c, store, strategy in cases
        ]
        for library in libraries
    }  # fmt: skip
    groups = [f"{p}×{c}\n{STORE_TITLES[s]}\n{STRATEGY_TITLES[t]}" for p, c, s, t in cases]
    _grouped(groups, series, "Contended burst, wall time (s; lower is better)", "seconds",
             directory / name, log=True)  # fmt: skip
    return name


def memory(results: dict[str, Any], libraries: list[str], directory: Path) -> str:
    """Bytes per key; a library keeping one bucket for every key has none to show."""
    name = "peers-memory.png"
    strategies = ("fixed_window", "token_bucket", "gcra", "sliding_log")
    cells = [(store, s) for store in ("memory", "redis") for s in strategies]
    shared = {
        (row["library"], row["store"], row["strategy"])
        for row in results.get("check", [])
        if row.get("independent_keys") is False
    }
    series = {
        library: [
            math.nan
            if (library, store, s) in shared
            else _value(
                _find(results["memory"], library=library, store=store, strategy=s),
                "bytes_per_key",
            )
            for store, s in cells
        ]
        for library in libraries
    }
    groups = [f"{STORE_TITLES[store]}\n{STRATEGY_TITLES[s]}" for store, s in cells]
    title = "Memory per limited key (bytes; lower is better; n/a: none, or one bucket for all)"
    _grouped(groups, series, title, "bytes", directory / name)
    return name
