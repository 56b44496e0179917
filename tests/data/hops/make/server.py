"""The chat server behind the proxies: a Python `websockets` server with an origin
allow-list checked when the first message arrives (the first message of a chat session is
its "join"). A missing or foreign Origin gets close code 1008 "origin not allowed";
an allowed one gets each message echoed back.

Usage: python server.py PORT ALLOWED_ORIGIN
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.server import ServerConnection, serve


async def handler(ws: ServerConnection, allowed: str) -> None:
    origin = ws.request.headers.get("Origin") if ws.request else None
    async for message in ws:
        if origin != allowed:
            await ws.close(1008, "origin not allowed")
            return
        text = json.loads(message).get("text")
        await ws.send(json.dumps({"type": "echo", "text": text}))


async def main(port: int, allowed: str) -> None:
    async with serve(lambda ws: handler(ws, allowed), "127.0.0.1", port) as server:
        print("server ready", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
