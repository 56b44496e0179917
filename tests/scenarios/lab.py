"""What the scenario recorders share: dumpcap on lo, nginx, Node, headless Chromium.

Everything runs on 127.0.0.1 and is stopped by the helper that started it. Each scenario's
``scenario.py`` has one function, ``record(out)``, that writes its captures into ``out``
using these helpers; ``python -m tests.scenarios.record NAME`` calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NODE_DIR = HERE / ".node"  # npm packages for the Node scripts (gitignored)
NODE_PACKAGES = ("ws@8.18.3", "playwright-core@1.65.1")
CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


# -- capturing ----------------------------------------------------------------------------


@contextlib.contextmanager
def capture(path: Path, *ports: int) -> Iterator[Path]:
    """dumpcap on lo, filtered on these TCP ports, written to ``path`` when the block ends."""
    tmp = Path(tempfile.mkdtemp(prefix="ws-scenario-")) / "cap.pcapng"
    flt = " or ".join(f"tcp port {p}" for p in ports)
    proc = subprocess.Popen(
        ["dumpcap", "-q", "-i", "lo", "-f", flt, "-w", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while not tmp.exists() and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"dumpcap failed: {proc.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.05)
        time.sleep(1.0)  # dumpcap writes the file a moment before the capture is live
        yield path
        time.sleep(0.5)  # let the last FIN/ACKs reach the capture
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(tmp), path)
    path.chmod(0o644)
    shutil.rmtree(tmp.parent, ignore_errors=True)


def split(src: Path, dst: Path, port: int) -> None:
    """The packets of ``src`` on one TCP port (one leg of a proxied session)."""
    subprocess.run(
        ["tshark", "-r", str(src), "-Y", f"tcp.port == {port}", "-w", str(dst)],
        check=True,
        capture_output=True,
    )


# -- processes ------------------------------------------------------------------------------


def wait_port(port: int, timeout: float = 10, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextlib.contextmanager
def started(
    cmd: list[str], port: int | None = None, **kw: object
) -> Iterator[subprocess.Popen[bytes]]:
    """A background process (stopped at the end of the block), ready once ``port`` listens."""
    proc = subprocess.Popen(cmd, **kw)  # type: ignore[call-overload]
    try:
        if port is not None:
            wait_port(port, proc=proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


NGINX = """\
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  {http}
  server {{
    listen 127.0.0.1:{port};
    {server}
  }}
}}
"""

# The usual WebSocket proxy block (nginx docs, "WebSocket proxying").
WS_LOCATION = """
    location / {{
      proxy_pass http://127.0.0.1:{back};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      {extra}
    }}
"""


@contextlib.contextmanager
def nginx(port: int, server: str, http: str = "") -> Iterator[None]:
    """Debian's nginx in the foreground on 127.0.0.1:port with this ``server {}`` body."""
    prefix = Path(tempfile.mkdtemp(prefix="ws-scenario-nginx-"))
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX.format(prefix=prefix, port=port, server=server, http=http))
    try:
        with started(["nginx", "-c", str(conf), "-p", str(prefix)], port):
            yield
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def node_env() -> dict[str, str]:
    """NODE_PATH with ws and playwright-core, installed with npm the first time."""
    modules = NODE_DIR / "node_modules"
    if not all((modules / p.rsplit("@", 1)[0]).is_dir() for p in NODE_PACKAGES):
        subprocess.run(
            ["npm", "install", "--silent", "--no-save", "--prefix", str(NODE_DIR), *NODE_PACKAGES],
            check=True,
        )
    return {**os.environ, "NODE_PATH": str(modules)}


def node(script: str, *args: str, timeout: float = 30) -> str:
    """Run one of the Node scripts beside this file; its standard output."""
    done = subprocess.run(
        ["node", str(HERE / script), *args],
        env=node_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed: {done.stderr}")
    return done.stdout


def browser_har(url: str, har: Path, timeout_ms: int = 10000) -> str:
    """Headless Chromium opens ``url``; Playwright records ``har``. The page sets
    document.title to "done ..." when its sockets are finished; returns that title."""
    return node("browser.js", url, str(har), str(timeout_ms), timeout=60).strip()


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


# -- small servers ----------------------------------------------------------------------------


async def echo(ws: ServerConnection) -> None:
    """Echo every message back until the client closes."""
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            await ws.send(message)


def html(body: str) -> bytes:
    return f"<!doctype html><title>start</title><script>{body}</script>".encode()


@contextlib.contextmanager
def silent_server(port: int) -> Iterator[None]:
    """A TCP listener that accepts connections and never answers (a hung backend),
    for the length of the block."""
    import threading

    srv = socket.create_server(("127.0.0.1", port), backlog=1024)
    conns: list[socket.socket] = []

    def accept_loop() -> None:
        with contextlib.suppress(OSError):
            while True:
                conns.append(srv.accept()[0])

    threading.Thread(target=accept_loop, daemon=True).start()
    try:
        yield
    finally:
        srv.close()
        for conn in conns:
            conn.close()


async def chat_client(url: str, messages: int, close: bool = True, **kw: object) -> None:
    """A websockets client with a Chrome User-Agent and the page's Origin (unless ``origin``
    is given): sends ``messages`` JSON chat messages, one per answer, then closes 1000.
    A refused handshake or a close by the server ends it early (printed, not raised)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidHandshake

    kw.setdefault("origin", "http://" + url.split("/")[2])
    kw.setdefault("additional_headers", {"User-Agent": CHROME_UA})
    kw.setdefault("user_agent_header", None)
    try:
        async with connect(url, **kw) as ws:  # type: ignore[arg-type]
            for i in range(messages):
                await ws.send(f'{{"type":"chat","text":"hello {i}"}}')
                await asyncio.wait_for(ws.recv(), 5)
            if close:
                await ws.close(1000, "bye")
    except (ConnectionClosed, InvalidHandshake, TimeoutError, OSError) as exc:
        print(f"  client: {type(exc).__name__}: {exc}")


def page_or(page: bytes, then: Callable[..., object] | None = None) -> Callable[..., object]:
    """A websockets ``process_request`` that serves ``page`` at / and hands every other
    request to ``then`` (or on to the WebSocket handshake)."""
    from http import HTTPStatus

    from websockets.datastructures import Headers
    from websockets.http11 import Response

    def process_request(connection: ServerConnection, request: object) -> object:
        if request.path == "/":  # type: ignore[attr-defined]
            headers = Headers([("Content-Type", "text/html"), ("Content-Length", str(len(page)))])
            return Response(HTTPStatus.OK, "OK", headers, page)
        return then(connection, request) if then else None

    return process_request
