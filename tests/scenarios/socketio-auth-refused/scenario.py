"""python-socketio (aiohttp) whose connect handler refuses the client's auth; the
python-socketio client connects over the websocket transport only. The upgrade succeeds,
the server's Socket.IO CONNECT_ERROR says "unauthorized", and the client goes away."""

from __future__ import annotations

import asyncio
from pathlib import Path

import socketio
from aiohttp import web

from tests.scenarios import lab

PORT = 9336


async def session() -> None:
    sio = socketio.AsyncServer(async_mode="aiohttp")

    @sio.event
    async def connect(sid: str, environ: dict[str, object], auth: object) -> None:
        raise socketio.exceptions.ConnectionRefusedError("unauthorized")

    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", PORT).start()
    client = socketio.AsyncClient()
    try:
        await client.connect(
            f"http://127.0.0.1:{PORT}", transports=["websocket"], auth={"token": "expired"}
        )
    except socketio.exceptions.ConnectionError as exc:
        print(f"  client: {exc}")
    finally:
        await client.disconnect()
        await asyncio.sleep(0.3)
        await runner.cleanup()


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
