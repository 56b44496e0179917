"""A Python websockets client exchanges two messages with a websockets echo server, then
drops the connection without a close frame: shutdown(SHUT_WR) sends a FIN, and closing the
socket with SO_LINGER 0 right after sends a RST (what a killed process can leave)."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from tests.scenarios import lab

PORT = 9305


async def session() -> None:
    async with serve(lab.echo, "127.0.0.1", PORT):
        url = f"ws://127.0.0.1:{PORT}/chat"
        async with connect(url, origin=f"http://127.0.0.1:{PORT}") as ws:  # type: ignore[arg-type]
            for text in ("hello", "still here"):
                await ws.send(text)
                await ws.recv()
            sock = ws.transport.get_extra_info("socket")
            # linger 0: the socket's close sends a RST instead of a FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_WR)  # FIN, no close frame
            ws.transport.abort()  # the socket's close: RST
        await asyncio.sleep(0.3)


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
