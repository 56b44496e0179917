"""Compression mismatch: a Python websockets server negotiates permessage-deflate, but a
process_response hook (standing for a proxy that rewrites the response) removes
Sec-WebSocket-Extensions from the 101. The server still compresses its frames (RSV1 set);
the websockets client, which negotiated nothing, fails the connection with 1002."""

from __future__ import annotations

from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from tests.scenarios import lab

PORT = 9321


def strip(connection: ServerConnection, request: object, response: object) -> None:
    del response.headers["Sec-WebSocket-Extensions"]  # type: ignore[attr-defined]


async def session() -> None:
    async with serve(lab.echo, "127.0.0.1", PORT, process_response=strip):
        await lab.chat_client(f"ws://127.0.0.1:{PORT}/chat", 2)


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
