"""A Python websockets server with max_size=1024; the client sends a 5000-byte message and
the server closes 1009 Message Too Big."""

from __future__ import annotations

from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from tests.scenarios import lab

PORT = 9314


async def session() -> None:
    async with serve(lab.echo, "127.0.0.1", PORT, max_size=1024):
        url = f"ws://127.0.0.1:{PORT}/upload"
        async with connect(url, origin=f"http://127.0.0.1:{PORT}") as ws:  # type: ignore[arg-type]
            await ws.send("small")
            await ws.recv()
            await ws.send("x" * 5000)
            try:
                await ws.recv()
            except ConnectionClosed as exc:
                print(f"  client: {exc}")


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
