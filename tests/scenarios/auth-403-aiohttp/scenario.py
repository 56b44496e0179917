"""An aiohttp WebSocket endpoint that needs a session cookie and raises HTTPForbidden
without one; the client (Python websockets, browser-like) sends none."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from tests.scenarios import lab

PORT = 9319


async def chat(request: web.Request) -> web.WebSocketResponse:
    if "session" not in request.cookies:
        raise web.HTTPForbidden(text="forbidden: log in first")
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        await ws.send_str(message.data)
    return ws


async def session() -> None:
    app = web.Application()
    app.router.add_get("/chat", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", PORT).start()
    try:
        await lab.chat_client(f"ws://127.0.0.1:{PORT}/chat", 1)
        await asyncio.sleep(0.2)
    finally:
        await runner.cleanup()


def record(out: Path) -> None:
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session())
