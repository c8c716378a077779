"""A strategy of your own on a route: the cooldown written in the DSL in ``cooldown.py``.

Run from the repository root::

    uvicorn examples.custom_strategy:app

``POST /doorbell`` rings at most 3 times a minute, and never twice within 2 s. The
strategy is the tutorial's (docs/strategies.md), used like any built-in one.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from examples.cooldown import CooldownStrategy
from ratescript import HTTPThrottle
from ratescript.stores import InMemoryStore

store = InMemoryStore(namespace="custom-strategy-example")
app = FastAPI(lifespan=store.lifespan)

doorbell = HTTPThrottle("doorbell", "3/minute", strategy=CooldownStrategy(cooldown_ms=2000))


@app.post("/doorbell", dependencies=[Depends(doorbell)])
async def ring() -> dict[str, str]:
    return {"status": "ding dong"}
