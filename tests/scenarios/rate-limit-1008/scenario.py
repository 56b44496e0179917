"""A chat server (Python websockets) that allows 10 messages per connection, then closes
1008 "rate limit exceeded". The client sends the page's Origin and 15 messages."""

from __future__ import annotations

from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from tests.scenarios import lab

PORT = 9302


async def limited(ws: ServerConnection) -> None:
    count = 0
    async for message in ws:
        count += 1
        if count > 10:
            await ws.close(1008, "rate limit exceeded")
            return
        await ws.send(message)


async def session() -> None:
    async with serve(limited, "127.0.0.1", PORT):
        await lab.chat_client(f"ws://127.0.0.1:{PORT}/chat", 15)


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
