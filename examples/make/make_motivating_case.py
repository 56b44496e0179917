#!/usr/bin/env python3
"""Make the example captures of the motivating case, with real software on loopback.

    headless Chromium --> Node http-proxy (drops Origin) :3000 --> Python websockets :8080
    page opens ws://127.0.0.1:3000/ws/chat, sends its first message, the server closes 1008

Writes, into examples/chat-1008/:
  both-legs.pcapng    dumpcap on lo, both TCP legs (browser<->proxy and proxy<->server)
  server-side.pcapng  the proxy<->server leg only (what a capture on the server host shows)
  browser.har         the HAR Playwright recorded in the browser

Needs: dumpcap and tshark (Debian wireshark-common/tshark), node and npm, Debian's chromium,
Python with `websockets`. Run as root (dumpcap on lo). Takes about ten seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "chat-1008"
PROXY_PORT, SERVER_PORT = 3000, 8080
ALLOWED_ORIGIN = f"http://127.0.0.1:{PROXY_PORT}"
NODE_PACKAGES = ["http-proxy@1.18.1", "playwright-core@1.65.1"]


def wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if text in line:
            return
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited before saying {text!r}")
    raise SystemExit(f"{proc.args} did not say {text!r} in {timeout}s")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ws-example-"))
    subprocess.run(
        ["npm", "install", "--silent", "--prefix", str(work), *NODE_PACKAGES], check=True
    )
    env = {"NODE_PATH": str(work / "node_modules"), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    raw = work / "raw.pcapng"
    procs: list[subprocess.Popen[str]] = []
    try:
        cap = subprocess.Popen(
            [
                "dumpcap",
                "-q",
                "-i",
                "lo",
                "-f",
                f"tcp port {PROXY_PORT} or tcp port {SERVER_PORT}",
                "-w",
                str(raw),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(cap)
        time.sleep(1.0)  # dumpcap needs a moment before it sees packets
        server = subprocess.Popen(
            [sys.executable, str(HERE / "server.py"), str(SERVER_PORT), ALLOWED_ORIGIN],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(server)
        wait_for_line(server, "server ready")
        proxy = subprocess.Popen(
            ["node", str(HERE / "proxy.js"), str(PROXY_PORT), str(SERVER_PORT)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        procs.append(proxy)
        wait_for_line(proxy, "proxy ready")
        har = OUT / "browser.har"
        subprocess.run(
            ["node", str(HERE / "browser.js"), f"http://127.0.0.1:{PROXY_PORT}/", str(har)],
            check=True,
            env=env,
            timeout=60,
        )
        time.sleep(1.0)  # let the last FIN/ACKs reach the capture
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    shutil.copy(raw, OUT / "both-legs.pcapng")
    subprocess.run(
        [
            "tshark",
            "-r",
            str(raw),
            "-Y",
            f"tcp.port == {SERVER_PORT}",
            "-w",
            str(OUT / "server-side.pcapng"),
        ],
        check=True,
    )
    shutil.rmtree(work)
    for f in sorted(OUT.iterdir()):
        print(f"{f.relative_to(HERE.parent.parent)}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
