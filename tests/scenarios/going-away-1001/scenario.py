"""A Python websockets server shuts down (a deploy) while two clients are connected: each
gets close 1001 Going Away and echoes it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from tests.scenarios import lab

PORT = 9313


async def session() -> None:
    server = await serve(lab.echo, "127.0.0.1", PORT)
    url = f"ws://127.0.0.1:{PORT}/chat"
    clients = [await connect(url, origin=f"http://127.0.0.1:{PORT}") for _ in range(2)]  # type: ignore[arg-type]
    for ws in clients:
        await ws.send("hello")
        await ws.recv()
    server.close()  # closes every connection with 1001
    for ws in clients:
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except ConnectionClosed as exc:
            print(f"  client: {exc}")
    await server.wait_closed()


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
