"""The Python websockets server's handler raises on the second message: websockets closes
the connection with 1011 Internal Error."""

from __future__ import annotations

from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from tests.scenarios import lab

PORT = 9315


async def broken(ws: ServerConnection) -> None:
    await ws.send(await ws.recv())
    message = await ws.recv()
    raise RuntimeError(f"cannot handle {message!r}")


async def session() -> None:
    async with serve(broken, "127.0.0.1", PORT):
        await lab.chat_client(f"ws://127.0.0.1:{PORT}/chat", 3)


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
