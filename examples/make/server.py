"""The chat server of the motivating case: a Python `websockets` server with an origin
allow-list that is checked when the first message arrives (as many chat back ends do, where
the first message is a "join" or auth message). A missing or foreign Origin gets
close code 1008 (Policy Violation).

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
        await ws.send(json.dumps({"type": "echo", "text": json.loads(message).get("text")}))


async def main(port: int, allowed: str) -> None:
    async with serve(lambda ws: handler(ws, allowed), "127.0.0.1", port) as server:
        print("server ready", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
