"""Headless Chromium (Playwright HAR) loads a page from nginx whose WebSocket location
answers 503 (an upstream in maintenance); the page tries three times."""

from __future__ import annotations

from pathlib import Path

from tests.scenarios import lab

PORT = 9341
PAGE = """
let tries = 0;
function open() {
  const ws = new WebSocket("ws://" + location.host + "/ws/chat");
  ws.onclose = () => { if (++tries < 3) setTimeout(open, 200); else document.title = "done"; };
}
open();
"""
SERVER = f"""
    location = / {{ default_type text/html; return 200 '{lab.html(PAGE).decode()}'; }}
    location /ws/ {{ return 503; }}
"""


def record(out: Path) -> None:
    lab.node_env()
    with lab.capture(out / "session.pcapng", PORT), lab.nginx(PORT, SERVER):
        print(lab.browser_har(f"http://127.0.0.1:{PORT}/", out / "browser.har"))
