"""The FastAPI app of one library, for uvicorn (``--factory apps:make_app``).

The run passes the library, store and servers in ``PEERBENCH_APP`` (JSON).
"""

from __future__ import annotations

import json
import os
from typing import Any

from adapters import RateSpec, Servers, by_name

ENV = "PEERBENCH_APP"


def describe(library: str, store: str, servers: Servers, rate: RateSpec) -> str:
    return json.dumps(
        {
            "library": library,
            "store": store,
            "servers": [servers.redis_url, servers.memcached_url, servers.run_id],
            "rate": [rate.limit, rate.period_s],
        }
    )


def make_app() -> Any:
    spec = json.loads(os.environ[ENV])
    servers = Servers(*spec["servers"])
    return by_name(spec["library"]).fastapi_app(spec["store"], servers, RateSpec(*spec["rate"]))
