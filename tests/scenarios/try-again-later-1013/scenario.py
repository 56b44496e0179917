"""An overloaded Python websockets server accepts the upgrade, then closes 1013 "server
busy, retry later" before serving anything; the client echoes the close."""

from __future__ import annotations

from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from tests.scenarios import lab

PORT = 9316


async def busy(ws: ServerConnection) -> None:
    await ws.close(1013, "server busy, retry later")


async def session() -> None:
    async with serve(busy, "127.0.0.1", PORT):
        await lab.chat_client(f"ws://127.0.0.1:{PORT}/chat", 1)


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
