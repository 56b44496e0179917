"""Python websockets echo server and client: three messages echoed, client closes 1000,
the server echoes the close. The plain good session."""

from __future__ import annotations

from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from tests.scenarios import lab

PORT = 9301


async def session() -> None:
    async with serve(lab.echo, "127.0.0.1", PORT):
        url = f"ws://127.0.0.1:{PORT}/chat"
        async with connect(url, origin=f"http://127.0.0.1:{PORT}") as ws:  # type: ignore[arg-type]
            for i in range(3):
                await ws.send(f"hello {i}")
                await ws.recv()
            await ws.close(1000, "bye")


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
