"""200 upgrades without Origin (a Python websockets client, origin unset) to a server
whose origin allow-list closes 1008 on the first message: the motivating case at scale."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from tests.scenarios import lab

PORT = 9328
ALLOWED = "https://chat.example"


async def chat(ws: ServerConnection) -> None:
    origin = ws.request.headers.get("Origin") if ws.request else None
    async for message in ws:
        if origin != ALLOWED:
            await ws.close(1008, "origin not allowed")
            return
        await ws.send(message)


async def session() -> None:
    url = f"ws://127.0.0.1:{PORT}/chat"
    async with serve(chat, "127.0.0.1", PORT):
        for _batch in range(5):
            await asyncio.gather(
                *(
                    lab.chat_client(
                        url, 1, origin=None, additional_headers={}, user_agent_header="chat-bot/2.1"
                    )
                    for _ in range(20)
                )
            )


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
