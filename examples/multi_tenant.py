"""Multi-tenant: each tenant's limits kept in its own store, chosen per request.

Run from the repository root::

    uvicorn examples.multi_tenant:app

and send ``X-Tenant: acme`` or ``X-Tenant: globex``. A throttle with
``dynamic_store=True`` takes the store that a middleware entered for this request
with ``async with store(app, close_on_exit=False):``; ``close_on_exit=False`` keeps the
store's connections open for the next request. Here the stores are in-process; in
production each would be, say, ``RedisStore(tenant_redis_url)``, built once and kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, Request
from starlette.responses import Response

from ratescript import HTTPThrottle
from ratescript.stores import InMemoryStore, Store

shared = InMemoryStore(namespace="tenants-shared")
TENANT_STORES: dict[str, Store] = {
    "acme": InMemoryStore(namespace="tenant-acme"),
    "globex": InMemoryStore(namespace="tenant-globex"),
}
app = FastAPI(lifespan=shared.lifespan)

# No store named: per request, the store the middleware entered (else the lifespan's).
api = HTTPThrottle("api", "3/minute", dynamic_store=True)


@app.middleware("http")
async def tenant_store(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    store = TENANT_STORES.get(request.headers.get("x-tenant", ""), shared)
    async with store(request.app, close_on_exit=False):
        return await call_next(request)


@app.get("/data", dependencies=[Depends(api)])
async def data(request: Request) -> dict[str, str]:
    return {"tenant": request.headers.get("x-tenant", "shared")}
