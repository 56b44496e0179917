"""A client (Python websockets) reconnects six times, one after another, to a server that
closes every connection 1011 after the first message."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from tests.scenarios import lab

PORT = 9323


async def failing(ws: ServerConnection) -> None:
    await ws.recv()
    await ws.close(1011, "backend unavailable")


async def session() -> None:
    async with serve(failing, "127.0.0.1", PORT):
        for _ in range(6):
            await lab.chat_client(f"ws://127.0.0.1:{PORT}/chat", 1)
            await asyncio.sleep(0.2)  # the client's reconnect delay


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
