"""Headless Chromium (Playwright HAR) loads a page from 127.0.0.1:9344 that opens a socket
to another origin, ws://127.0.0.1:9345; that Python websockets server allows only
https://app.example (``origins=``) and refuses the upgrade with 403."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.server import serve

from tests.scenarios import lab

PAGE_PORT, WS_PORT = 9344, 9345
PAGE = f"""
const ws = new WebSocket("ws://127.0.0.1:{WS_PORT}/chat");
ws.onclose = () => {{ document.title = "done"; }};
"""


async def session(out: Path) -> None:
    page = serve(lab.echo, "127.0.0.1", PAGE_PORT, process_request=lab.page_or(lab.html(PAGE)))
    chat = serve(lab.echo, "127.0.0.1", WS_PORT, origins=["https://app.example"])
    async with page, chat:
        url = f"http://127.0.0.1:{PAGE_PORT}/"
        print(await asyncio.to_thread(lab.browser_har, url, out / "browser.har"))


def record(out: Path) -> None:
    lab.node_env()
    with lab.capture(out / "session.pcapng", PAGE_PORT, WS_PORT):
        lab.run(session(out))
