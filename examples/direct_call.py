"""Calling a throttle yourself: ``await throttle(request, cost=...)`` and ``check``.

Run from the repository root::

    uvicorn examples.direct_call:app

Useful when the cost is only known inside the endpoint. ``/export?rows=N`` costs one
unit per started thousand rows, 10 units a minute; ``/convert/{fmt}`` takes its cost
from a function of the context; ``/suggest`` uses ``check``, which returns the
decision instead of raising, to degrade instead of refusing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from starlette.requests import HTTPConnection

from ratescript import HTTPThrottle
from ratescript.stores import InMemoryStore
from ratescript.strategies import TokenBucketStrategy

store = InMemoryStore(namespace="direct-call-example")
app = FastAPI(lifespan=store.lifespan)

exports = HTTPThrottle("exports", "10/minute")


@app.get("/export")
async def export(request: Request, rows: int = 1000) -> dict[str, int]:
    await exports(request, cost=math.ceil(rows / 1000))  # raises 429 when over
    return {"rows": rows}


COSTS = {"txt": 1, "pdf": 5}


def conversion_cost(connection: HTTPConnection, context: Mapping[str, Any] | None) -> float:
    return COSTS.get((context or {}).get("format", ""), 1)


conversions = HTTPThrottle("conversions", "10/minute", cost=conversion_cost)


@app.post("/convert/{fmt}")
async def convert(fmt: str, request: Request) -> dict[str, str]:
    await conversions.hit(request, context={"format": fmt})
    return {"converted_to": fmt}


suggestions = HTTPThrottle("suggest", "3/10s", strategy=TokenBucketStrategy())


@app.get("/suggest")
async def suggest(request: Request, q: str = "") -> dict[str, Any]:
    decision = await suggestions.check(request)  # charges, never raises
    if decision is not None and not decision.allowed:
        return {"q": q, "suggestions": [], "degraded": True, "retry_in_ms": decision.wait_ms}
    return {"q": q, "suggestions": [q + "s", q + "ing"], "degraded": False}
