"""``make demo``: a real uvicorn server, real traffic, a table per strategy.

The table is tested on given data; the demo itself runs once end to end, and only its
structure is checked — its counts follow the wall clock and the machine's load.
"""

from __future__ import annotations

import importlib.util
import io
import re

import pytest

from ratescript.__main__ import main
from ratescript.demo import (
    DemoError,
    Row,
    Traffic,
    format_table,
    run_demo,
    run_script_demo,
)

STRATEGY_ROWS = [
    "FixedWindow",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "TokenBucket",
    "TokenBucketWithDebt",
    "LeakyBucket",
    "LeakyBucketWithQueue",
    "GCRA",
    "GCRA(burst_tolerance_ms=400)",
]


def test_the_traffic_schedule_bursts_and_pauses() -> None:
    traffic = Traffic(
        per_second=4, bursts=((0, 1000), (2000, 2500)), slice_ms=500, duration_ms=3000
    )
    assert traffic.schedule() == [0, 250, 500, 750, 2000, 2250]
    assert traffic.slices == 6
    assert traffic.sent_per_slice() == [2, 2, 0, 0, 2, 0]
    assert traffic.slice_of(2999) == 5 and traffic.slice_of(10_000) == 5
    assert traffic.describe() == "4 requests/s per row during 0-1 s, then 2-2.5 s"


def test_the_table_shows_admitted_per_slice_and_totals_per_row() -> None:
    traffic = Traffic(per_second=4, bursts=((0, 2000),), slice_ms=500, duration_ms=2000)
    rows = [
        Row("FixedWindow", "http", [2, 0, 2, 0], [0, 2, 0, 2]),
        Row("TokenBucket", "websocket", [2, 1, 0, 1], [0, 1, 2, 1]),
        Row("Other", "elsewhere", [0, 0, 0, 1], [2, 2, 2, 1]),
        Row("GCRA", "http", [1, 1, 1, 1], [1, 1, 1, 1]),
    ]
    lines = format_table(rows, traffic).splitlines()
    assert lines == [
        "admitted requests per 500 ms slice (· = none)",
        "time (s)        0     1      admitted  throttled",
        "sent per slice  2  2  2  2          8",
        "HTTP route, Depends(throttle)",
        "  FixedWindow   2  ·  2  ·          4          4",
        "  GCRA          1  1  1  1          4          4",
        "WebSocket, WebSocketThrottle per message",
        "  TokenBucket   2  1  ·  1          4          4",
        "elsewhere",
        "  Other         ·  ·  ·  1          1          7",
    ]
    assert [row.sent for row in rows] == [8, 8, 8, 8]


def test_a_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "uvicorn" else real(name, *args),
    )
    with pytest.raises(DemoError, match=r"needs uvicorn.*make demo"):
        run_demo(io.StringIO())


def test_the_demo_serves_real_traffic_and_prints_a_row_per_strategy() -> None:
    out = io.StringIO()
    result = run_demo(out)
    text = out.getvalue()

    assert re.match(r"http://127\.0\.0\.1:\d+$", result.url)
    assert f"uvicorn is serving it on {result.url}" in text
    assert "server stopped cleanly" in text
    sections: dict[str, list[str]] = {row.section: [] for row in result.rows}
    for row in result.rows:
        sections[row.section].append(row.label)
    assert sections == {
        "http": STRATEGY_ROWS,
        "websocket": ["TokenBucket"],
        "middleware": ["FixedWindow"],
    }
    slices = result.traffic.slices
    for row in result.rows:
        assert len(row.admitted) == len(row.throttled) == slices
        # Every request got an answer, 200 or 429 (a message: echo or rate_limit).
        assert row.sent == result.sent_per_row, row
        assert sum(row.admitted) >= 1, row  # a fresh key admits its first hit
        printed = [line for line in text.splitlines() if line.startswith(f"  {row.label} ")]
        assert printed, row.label
    assert text.count("\n  ") >= len(result.rows)
    # What a throttled client got is shown only when some request was throttled.
    if any(sum(row.throttled) for row in result.rows if row.section != "websocket"):
        assert result.http_throttled_example["status"] == 429
        assert "retry-after" in result.http_throttled_example["headers"]


def test_the_scripts_demo_shows_decisions_and_that_targets_agree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--scripts"]) == 0
    text = capsys.readouterr().out
    assert text.count("allow") > 10 and text.count("DENY") > 3
    assert "identical decisions and stored bytes" in text
    assert "DIFFERENT" not in text
    # Columns stay in line however long the stored bytes (a record prints 17 digits).
    rows = [line for line in text.splitlines() if line.startswith("   ") and "same" in line]
    assert len(rows) > 10 and len({row.index("same") for row in rows}) == 1, rows


def test_the_scripts_demo_writes_to_any_stream() -> None:
    out = io.StringIO()
    run_script_demo(out)
    assert out.getvalue().startswith("ratescript demo --scripts")
