"""Three browser-like clients (Chrome User-Agent, Origin http://127.0.0.1:9303) through
nginx, which rewrites Host to the upstream's name; the chat server (Python websockets)
closes each 1008 "user banned" on its first message. Both legs captured."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from tests.scenarios import lab

FRONT, BACK = 9303, 9304
PROXY = lab.WS_LOCATION.format(back=BACK, extra="").replace(
    "proxy_set_header Host $host;", "proxy_set_header Host chat-backend.internal;"
)


async def banned(ws: ServerConnection) -> None:
    await ws.recv()
    await ws.close(1008, "user banned")


async def session() -> None:
    async with serve(banned, "127.0.0.1", BACK):
        for _ in range(3):
            await lab.chat_client(f"ws://127.0.0.1:{FRONT}/chat", 2)
            await asyncio.sleep(0.1)


def record(out: Path) -> None:
    with lab.capture(out / "both-legs.pcapng", FRONT, BACK), lab.nginx(FRONT, PROXY):
        lab.run(session())
