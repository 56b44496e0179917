"""A hand-written WebSocket relay, of the kind teams put in front of a chat back end: it
terminates the client's WebSocket, opens its own to the upstream (a new handshake: new
Sec-WebSocket-Key, no Origin, as a `websockets` client sends by default), relays
messages both ways, and when the upstream closes, closes the client with 1011
"upstream error" whatever code the upstream gave.

Usage: python relay.py LISTEN_PORT UPSTREAM_PORT
"""

from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


async def handler(down: ServerConnection, upstream_port: int) -> None:
    path = down.request.path if down.request else "/"
    async with connect(f"ws://127.0.0.1:{upstream_port}{path}", compression=None) as up:

        async def pump_up() -> None:
            async for message in down:
                await up.send(message)

        task = asyncio.create_task(pump_up())
        try:
            async for message in up:
                await down.send(message)
        except ConnectionClosed:
            pass
        task.cancel()
        if up.close_code not in (None, 1000):
            await down.close(1011, "upstream error")
        else:
            await down.close()


async def main(port: int, upstream_port: int) -> None:
    async with serve(
        lambda ws: handler(ws, upstream_port), "127.0.0.1", port, compression=None
    ) as server:
        print("relay ready", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
