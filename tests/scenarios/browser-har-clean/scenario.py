"""Headless Chromium (Playwright HAR): the page opens a socket to a Python websockets echo
server, sends two messages, gets both back and closes 1000."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.server import serve

from tests.scenarios import lab

PORT = 9343
PAGE = """
const ws = new WebSocket(`ws://${location.host}/chat`);
let got = 0;
ws.onopen = () => { ws.send("hello"); ws.send("world"); };
ws.onmessage = () => { if (++got === 2) ws.close(1000, "bye"); };
ws.onclose = (e) => { document.title = `done ${e.code}`; };
"""


async def session(out: Path) -> None:
    async with serve(lab.echo, "127.0.0.1", PORT, process_request=lab.page_or(lab.html(PAGE))):
        url = f"http://127.0.0.1:{PORT}/"
        print(await asyncio.to_thread(lab.browser_har, url, out / "browser.har"))


def record(out: Path) -> None:
    lab.node_env()
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session(out))
