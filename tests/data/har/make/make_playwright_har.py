"""Make real Playwright HAR exports of a WebSocket session on loopback.

A Python ``websockets`` server on 127.0.0.1 serves a page at ``/`` and a WebSocket at
``/chat``. The page (Chromium driven by Playwright) opens the socket, sends a text and a
binary message; the server answers the text, then closes with 1008 Policy Violation after
the binary one (the motivating case's shape). Playwright's HAR recorder writes the HAR.

Usage: python make_playwright_har.py OUT_DIR
Needs: node with ``playwright-core`` installed beside record_har.mjs (npm install
playwright-core), Debian's chromium at /usr/bin/chromium, the ``websockets`` package.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from http import HTTPStatus
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.version import version as websockets_version

HERE = Path(__file__).resolve().parent

PAGE = b"""<!doctype html><title>ws</title><script>
const ws = new WebSocket(`ws://${location.host}/chat?room=1`);
ws.binaryType = 'arraybuffer';
ws.onopen = () => ws.send('hello');
ws.onmessage = (e) => { if (e.data === 'welcome') ws.send(new Uint8Array([0, 1, 2, 255])); };
ws.onclose = (e) => { document.title = 'done'; };
</script>"""


def page(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/":
        headers = Headers([("Content-Type", "text/html"), ("Content-Length", str(len(PAGE)))])
        return Response(HTTPStatus.OK, "OK", headers, PAGE)
    return None  # go on with the WebSocket handshake


async def chat(ws: ServerConnection) -> None:
    async for message in ws:
        if message == "hello":
            await ws.send("welcome")
        else:
            await ws.close(1008, "policy violation: no origin")
            return


async def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    async with serve(chat, "127.0.0.1", 0, process_request=page) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/"
        for content in ("embed", "attach"):
            out = out_dir / f"playwright-{content}.har"
            proc = await asyncio.create_subprocess_exec(
                "node", str(HERE / "record_har.mjs"), url, str(out), content, cwd=HERE
            )
            if await proc.wait() != 0:
                raise SystemExit(f"record_har.mjs failed for {content}")


def versions() -> str:
    """The versions that made the files, written beside them as VERSIONS.txt."""

    def run(*cmd: str) -> str:
        return subprocess.run(cmd, cwd=HERE, capture_output=True, text=True).stdout.strip()

    playwright = run("node", "-p", "require('playwright-core/package.json').version")
    return (
        f"playwright-core {playwright}\n{run('/usr/bin/chromium', '--version')}\n"
        f"node {run('node', '--version')}\nwebsockets {websockets_version}\n"
        f"Python {sys.version.split()[0]}\n"
    )


if __name__ == "__main__":
    out = Path(sys.argv[1])
    asyncio.run(main(out))
    (out / "VERSIONS.txt").write_text(versions())
