"""WebSockets: a limit on connections and a limit on every message.

Run from the repository root::

    uvicorn examples.websocket:app

(uvicorn needs ``wsproto`` or ``websockets`` installed to serve WebSockets.) Each
client may open 3 connections a minute — the fourth handshake is refused with close
code 1008 — and send 5 messages per 10 s; a message over the limit is answered with
``{"type": "rate_limit", "retry_after_ms": ..., "detail": ...}`` and the connection
stays open.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, WebSocket, WebSocketDisconnect

from ratescript import WebSocketThrottle, is_throttled
from ratescript.stores import InMemoryStore
from ratescript.strategies import TokenBucketStrategy

store = InMemoryStore(namespace="websocket-example")
app = FastAPI(lifespan=store.lifespan)

connections = WebSocketThrottle("ws-connections", "3/minute")
messages = WebSocketThrottle("ws-messages", "5/10s", strategy=TokenBucketStrategy())


@app.websocket("/ws")
async def chat(websocket: WebSocket = Depends(connections)) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await messages(websocket)  # over the limit: sends the rate_limit message
            if is_throttled(websocket):
                continue
            await websocket.send_json({"type": "echo", "text": text})
    except WebSocketDisconnect:
        pass
