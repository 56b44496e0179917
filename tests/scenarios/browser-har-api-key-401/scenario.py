"""Headless Chromium (Playwright HAR): the page opens ws://.../ws?api_key=... and the
Python websockets server refuses it with 401 and a JSON body {"error":"Unknown api key"}."""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from tests.scenarios import lab

PORT = 9342
PAGE = """
const ws = new WebSocket(`ws://${location.host}/ws?api_key=demo-4f2a`);
ws.onclose = () => { document.title = "done"; };
"""


def refuse(connection: ServerConnection, request: object) -> Response:
    body = json.dumps({"error": "Unknown api key"}).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return Response(HTTPStatus.UNAUTHORIZED, "Unauthorized", headers, body)


async def session(out: Path) -> None:
    import asyncio

    async with serve(
        lab.echo, "127.0.0.1", PORT, process_request=lab.page_or(lab.html(PAGE), refuse)
    ):
        url = f"http://127.0.0.1:{PORT}/"
        print(await asyncio.to_thread(lab.browser_har, url, out / "browser.har"))


def record(out: Path) -> None:
    lab.node_env()
    with lab.capture(out / "session.pcapng", PORT):
        lab.run(session(out))
