"""Built-in transaction scripts: the core strategies, written once in the DSL.

The strategy classes (and the demo, benchmarks and conformance kit) run these;
each compiles at import to Python, Lua and a Memcached plan.
"""

from __future__ import annotations

from ratescript.scriptdsl import Key, Log, Record, allow, deny, floor, now_ms, script

__all__ = ["Bucket", "Window", "fixed_window", "sliding_log", "token_bucket"]


class Bucket(Record):
    tokens: float
    stamp: float


class Window(Record):
    start: float
    count: float


@script
def token_bucket(bucket: Key[Bucket], capacity: float, period_ms: float, cost: float):  # type: ignore[no-untyped-def]
    """Refill ``capacity`` tokens per ``period_ms``; a hit takes ``cost`` tokens.

    The key expires once the bucket would be full again, and a missing key reads as
    a full bucket, so expiry never changes a decision.
    """
    now = now_ms()
    rate = capacity / period_ms
    b = bucket.get(default=Bucket(capacity, now))
    elapsed = max(0, now - b.stamp)
    tokens = min(capacity, b.tokens + elapsed * rate)
    if cost > capacity:
        return deny(wait_ms=0, remaining=tokens, reset_ms=0, exceeds_capacity=1)
    if tokens >= cost:
        left = tokens - cost
        bucket.set(Bucket(left, now), ttl_ms=(capacity - left) / rate + 1)
        return allow(remaining=left, reset_ms=(capacity - left) / rate, exceeds_capacity=0)
    wait = (cost - tokens) / rate
    return deny(
        wait_ms=wait, remaining=tokens, reset_ms=(capacity - tokens) / rate, exceeds_capacity=0
    )


@script
def fixed_window(window: Key[Window], limit: float, period_ms: float, cost: float):  # type: ignore[no-untyped-def]
    """Count hits in windows aligned to multiples of ``period_ms`` since the epoch.

    A rejected hit does not count. The stored window carries its start, so a key that
    outlives its window (or comes back after a clock step) is recognised as stale.
    """
    now = now_ms()
    start = floor(now / period_ms) * period_ms
    w = window.get(default=Window(start, 0))
    used = w.count if w.start == start else 0
    reset = start + period_ms - now
    if used + cost <= limit:
        window.set(Window(start, used + cost), ttl_ms=reset + 1)
        return allow(remaining=limit - used - cost, reset_ms=reset)
    if cost > limit:
        return deny(wait_ms=0, remaining=limit - used, reset_ms=reset)
    return deny(wait_ms=reset, remaining=limit - used, reset_ms=reset)


@script
def sliding_log(log: Key[Log], limit: float, period_ms: float, cost: float):  # type: ignore[no-untyped-def]
    """An exact log of ``(time, cost)``: admit while the last ``period_ms`` holds room.

    Entries of one millisecond merge, so the log never holds more than ``limit``
    entries for unit costs.
    """
    now = now_ms()
    entries = log.get()
    entries.trim(now - period_ms)
    used = entries.sum()
    if cost > limit:
        return deny(wait_ms=0, remaining=limit - used, reset_ms=0)
    if used + cost <= limit:
        entries.append(now, cost)
        log.set(entries, ttl_ms=period_ms + 1)
        return allow(
            remaining=limit - used - cost, reset_ms=entries.oldest(default=now) + period_ms - now
        )
    # Wait until enough of the oldest entries have left the window.
    need = used + cost - limit
    freed = 0
    wait = 0
    for time, amount in entries:
        freed += amount
        if freed >= need:
            wait = time + period_ms - now
            break
    return deny(
        wait_ms=wait, remaining=limit - used, reset_ms=entries.oldest(default=now) + period_ms - now
    )
