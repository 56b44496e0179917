"""The capture starts in the middle of a session: the Python websockets client and server
exchange three messages, dumpcap starts, three more messages, then the client closes
1000. The handshake is not in the capture; the roles must still come out right."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from tests.scenarios import lab

PORT = 9326


async def session(path: Path) -> None:
    async with serve(lab.echo, "127.0.0.1", PORT, ping_interval=None):
        url = f"ws://127.0.0.1:{PORT}/chat"
        async with connect(url, origin=f"http://127.0.0.1:{PORT}", ping_interval=None) as ws:  # type: ignore[arg-type]
            for i in range(3):
                await ws.send(f"before {i}")
                await ws.recv()
            cap = lab.capture(path, PORT)
            await asyncio.to_thread(cap.__enter__)
            for i in range(3):
                await ws.send(f"after {i}")
                await ws.recv()
            await ws.close(1000, "bye")
    await asyncio.to_thread(cap.__exit__, None, None, None)


def record(out: Path) -> None:
    lab.run(session(out / "session.pcapng"))
