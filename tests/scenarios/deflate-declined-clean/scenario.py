"""The client (Python websockets) offers permessage-deflate, the server (websockets with
compression=None) declines it; three messages echoed uncompressed, close 1000."""

from __future__ import annotations

from pathlib import Path

from websockets.asyncio.server import serve

from tests.scenarios import lab

PORT = 9322


async def session() -> None:
    async with serve(lab.echo, "127.0.0.1", PORT, compression=None):
        await lab.chat_client(f"ws://127.0.0.1:{PORT}/chat", 3)


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
