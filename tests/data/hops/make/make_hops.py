#!/usr/bin/env python3
"""Make the hop captures: one WebSocket chat session seen on both sides of real proxies.

Every scenario runs the chat server (server.py: origin allow-list, 1008 on the first
message when Origin is missing or foreign) on 127.0.0.1:8080 behind a proxy on
127.0.0.1:3000, and a client that sends Origin and a browser's User-Agent (client.py).
dumpcap captures `lo` filtered on the scenario's ports, so one file holds every leg;
tshark then splits it per leg. Files written into tests/data/hops/<scenario>/:

  both-legs.pcapng     every leg of the session, as one capture on the proxy host
  client-leg.pcapng    client <-> proxy only (tcp.port == 3000)
  server-leg.pcapng    proxy <-> server only (tcp.port == 8080)
  (chain: also mid-leg.pcapng, tcp.port == 3001; browser: browser.har, no client-leg)

Scenarios:
  httpproxy-strip    Node http-proxy, proxyReqWs hook removes Origin -> server closes 1008
  httpproxy-pass     Node http-proxy, no hook: Origin passes, three messages echoed, 1000
  nginx-strip        nginx, `proxy_set_header Origin "";` -> server closes 1008
  nginx-pass         nginx, the usual WebSocket config: Origin passes, 1000
  nginx-no-upgrade   nginx config that forgets Upgrade/Connection (and HTTP/1.1): the
                     upstream gets a plain HTTP/1.0 GET and refuses it; no upstream WebSocket
  nginx-dead-upstream nginx with nothing listening on 8080: nginx answers 502 itself
  relay-1011         a hand-written websockets relay (new handshake, no Origin) that turns
                     the upstream's 1008 into 1011 towards the client
  chain              client -> nginx :3000 (passes Origin) -> http-proxy :3001 (strips
                     Origin) -> server :8080: three legs, the second hop drops Origin
  browser            headless Chromium (Playwright) -> http-proxy (strips Origin) ->
                     server; browser.har recorded by Playwright + both-legs/server-leg pcaps

Needs (run as root): dumpcap, tshark, nginx (Debian packages), node and npm, Debian's
chromium (for `browser`), Python with `websockets`. Usage:
  python make_hops.py [SCENARIO ...]      (default: all)
Ports, times, keys and TCP sequence numbers differ from run to run; nothing else does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent
PROXY, MID, SERVER = 3000, 3001, 8080
ALLOWED = f"http://127.0.0.1:{PROXY}"
URL = f"ws://127.0.0.1:{PROXY}/ws/chat?room=support"
NODE_PACKAGES = ["http-proxy@1.18.1", "playwright-core@1.65.1"]

NGINX_BASE = """\
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{listen};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
{directives}
        }}
    }}
}}
"""
# The configuration every nginx WebSocket guide gives.
NGINX_WS = """\
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
"""
NGINX_CONFIGS = {
    "pass": NGINX_WS,
    # An empty value makes nginx leave the header out of the upstream request.
    "strip": NGINX_WS + '            proxy_set_header Origin "";\n',
    # Forgets proxy_http_version 1.1 and the Upgrade/Connection headers (hop-by-hop:
    # nginx does not forward them unless told to).
    "no-upgrade": """\
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
""",
}


class Run:
    """The processes of one scenario; stopped in reverse order, whatever happens."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work, self.env = work, env
        self.procs: list[subprocess.Popen[str]] = []

    def start(
        self, args: list[str], ready: str | None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env or self.env)
        self.procs.append(proc)
        if ready is not None:
            wait_for_line(proc, ready)
        return proc

    def server(self) -> None:
        self.start([sys.executable, str(HERE / "server.py"), str(SERVER), ALLOWED], "server ready")

    def http_proxy(self, listen: int, upstream: int, strip: str = "") -> None:
        env = dict(self.env, STRIP=strip)
        self.start(
            ["node", str(HERE / "proxy.js"), str(listen), str(upstream)], "proxy ready", env=env
        )

    def nginx(self, config: str, listen: int = PROXY, upstream: int = SERVER) -> None:
        prefix = Path(tempfile.mkdtemp(prefix=f"nginx-{config}-", dir=self.work))
        conf = prefix / "nginx.conf"
        conf.write_text(
            NGINX_BASE.format(
                prefix=prefix, listen=listen, upstream=upstream, directives=NGINX_CONFIGS[config]
            )
        )
        self.start(["nginx", "-p", str(prefix), "-c", str(conf)], None)
        wait_for_port(listen)

    def relay(self) -> None:
        self.start([sys.executable, str(HERE / "relay.py"), str(PROXY), str(SERVER)], "relay ready")

    def client(self) -> None:
        out = subprocess.run(
            [sys.executable, str(HERE / "client.py"), URL, ALLOWED],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
            env=self.env,
        )
        print("   ", out.stdout.strip().replace("\n", "\n    "))

    def browser(self, har: Path) -> None:
        out = subprocess.run(
            ["node", str(HERE / "browser.js"), f"http://127.0.0.1:{PROXY}/", str(har)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env,
        )
        print("   ", out.stdout.strip())

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


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


def wait_for_port(port: int, timeout: float = 10) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextmanager
def capture(raw: Path, ports: tuple[int, ...]) -> Iterator[None]:
    filt = " or ".join(f"tcp port {p}" for p in ports)
    cap = subprocess.Popen(
        ["dumpcap", "-q", "-i", "lo", "-f", filt, "-w", str(raw)], stderr=subprocess.PIPE, text=True
    )
    time.sleep(1.0)  # dumpcap needs a moment before it sees packets
    try:
        yield
        time.sleep(0.5)  # let the last FIN/ACKs reach the capture
    finally:
        cap.terminate()
        cap.wait(timeout=10)


def split(raw: Path, dest: Path, port: int) -> None:
    subprocess.run(
        ["tshark", "-r", str(raw), "-Y", f"tcp.port == {port}", "-w", str(dest)], check=True
    )


def scenario(name: str, work: Path, env: dict[str, str]) -> None:
    print(f"== {name}")
    out = OUT / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    raw = work / f"{name}.pcapng"
    ports = (PROXY, MID, SERVER) if name == "chain" else (PROXY, SERVER)
    run = Run(work, env)
    try:
        with capture(raw, ports):
            if name != "nginx-dead-upstream":
                run.server()
            if name == "httpproxy-strip":
                run.http_proxy(PROXY, SERVER, strip="origin")
            elif name == "httpproxy-pass":
                run.http_proxy(PROXY, SERVER)
            elif name in ("nginx-strip", "nginx-pass", "nginx-no-upgrade"):
                run.nginx(name.removeprefix("nginx-"))
            elif name == "nginx-dead-upstream":
                run.nginx("pass")
            elif name == "relay-1011":
                run.relay()
            elif name == "chain":
                run.http_proxy(MID, SERVER, strip="origin")
                run.nginx("pass", listen=PROXY, upstream=MID)
            elif name == "browser":
                run.http_proxy(PROXY, SERVER, strip="origin")
            else:
                raise SystemExit(f"unknown scenario {name}")
            if name == "browser":
                run.browser(out / "browser.har")
            else:
                run.client()
    finally:
        run.stop()
    shutil.copy(raw, out / "both-legs.pcapng")
    os.chmod(out / "both-legs.pcapng", 0o644)
    split(raw, out / "server-leg.pcapng", SERVER)
    if name != "browser":
        split(raw, out / "client-leg.pcapng", PROXY)
    if name == "chain":
        split(raw, out / "mid-leg.pcapng", MID)
    for f in sorted(out.iterdir()):
        print(f"    {f.relative_to(OUT.parent.parent.parent)}: {f.stat().st_size} bytes")


SCENARIOS = (
    "httpproxy-strip",
    "httpproxy-pass",
    "nginx-strip",
    "nginx-pass",
    "nginx-no-upgrade",
    "nginx-dead-upstream",
    "relay-1011",
    "chain",
    "browser",
)


def main() -> None:
    names = sys.argv[1:] or list(SCENARIOS)
    work = Path(tempfile.mkdtemp(prefix="ws-hops-"))
    try:
        subprocess.run(
            [
                "npm",
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(work),
                *NODE_PACKAGES,
            ],
            check=True,
        )
        env = {
            "NODE_PATH": str(work / "node_modules"),
            "PATH": "/usr/sbin:/usr/bin:/bin",
            "HOME": str(work),
        }
        for name in names:
            scenario(name, work, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
