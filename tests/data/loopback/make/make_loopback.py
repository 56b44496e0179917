#!/usr/bin/env python3
"""Make the rule-pack captures: WebSocket sessions on loopback, one scenario per file.

Each scenario runs a real server (Python websockets, or nginx in front of it) and a
client on 127.0.0.1, on its own port, while dumpcap records `lo` with a capture filter on
that port. Where a scenario needs a protocol violation that no real library commits (an
unmasked client frame, a bad close code...), a small raw-socket peer sends those exact
bytes and the other side is real websockets, so its reaction (1002, 1007...) is real.

Scenarios (file = <name>.pcapng in the folder above):
  clean                browser-like client (Chrome User-Agent, allowed Origin), 3 echoes, 1000
  no-origin-1008       client without Origin; server's allow-list closes 1008 on message 1
  foreign-origin-1008  client with Origin https://evil.example; 1008 on message 1
  rejected-403         server checks Origin in process_request and answers 403
  internal-error-1011  the server's handler raises: websockets closes 1011
  token-in-url         ws://.../chat?access_token=<JWT>; otherwise clean
  going-away-1001      the server shuts down while the client is connected: 1001
  message-too-big-1009 server max_size=64, the client sends 1000 bytes: 1009
  close-codes          four connections closed by the server with 1012, 1013, 1014, 4401
  abnormal-rst         the server resets the TCP connection (SO_LINGER 0) after a message
  subprotocol-none     client offers chat.v2, server supports none: no Sec-WebSocket-Protocol
  subprotocol-wrong    server hook answers Sec-WebSocket-Protocol: chat.v9 (not offered)
  raw-violations       raw client frames against a websockets server, one connection each:
                       unmasked text, RSV1 without extension, 200-byte ping, FIN-less ping,
                       invalid UTF-8 text, close code 1006, close never answered
  masked-server        raw server sends a masked text frame to a websockets client
  deflate-garbage      raw client negotiates permessage-deflate, sends RSV1 garbage
  idle-timeout         client -> nginx (proxy_read_timeout default 60 s) -> server; one
                       message, then silence without pings: nginx drops both legs at 60 s

Needs (run as root): dumpcap, Python with websockets (17.4 was used), nginx for
idle-timeout. Usage: python make_loopback.py [SCENARIO ...] (default: all).
Ports, times, keys and sequence numbers change from run to run; the behaviour does not.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake

OUT = Path(__file__).resolve().parent.parent
CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwiZXhwIjoxNzAwMDAwMDAwfQ"
    ".c2lnbmF0dXJlLW5vdC1yZWFs"
)


# -- capturing ----------------------------------------------------------------------------


class Capture:
    def __init__(self, name: str, port: int) -> None:
        self.path = OUT / f"{name}.pcapng"
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Capture:
        tmp = Path(tempfile.mkdtemp()) / "cap.pcapng"
        self.tmp = tmp
        self.proc = subprocess.Popen(
            ["dumpcap", "-q", "-i", "lo", "-f", f"tcp port {self.port}", "-w", str(tmp)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 10
        while time.time() < deadline and not tmp.exists():
            time.sleep(0.05)
        time.sleep(0.5)  # dumpcap writes the file before the capture is live
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.move(str(self.tmp), self.path)
        print(f"wrote {self.path.relative_to(OUT.parent.parent.parent)}")


# -- servers --------------------------------------------------------------------------------


def allowed(port: int) -> str:
    """The origin of the chat page: same host and port as the WebSocket server."""
    return f"http://127.0.0.1:{port}"


async def chat(ws: ServerConnection) -> None:
    """Echo server with an origin allow-list checked on the first message."""
    origin = ws.request.headers.get("Origin") if ws.request else None
    async for message in ws:
        if origin != allowed(ws.local_address[1]):
            await ws.close(1008, "origin not allowed")
            return
        await ws.send(f"echo: {message}")


async def echo_all(ws: ServerConnection) -> None:
    """Echo server without an origin check (behind the nginx of idle-timeout)."""
    async for message in ws:
        await ws.send(f"echo: {message}")


SAME = "same-origin"


async def client_session(
    url: str, messages: int, *, origin: str | None = SAME, ua: str | None = CHROME_UA, **kw: object
) -> None:
    if origin == SAME:
        origin = "http://" + url.split("/")[2]
    headers = {"User-Agent": ua} if ua else None
    try:
        async with connect(
            url,
            origin=origin,
            additional_headers=headers,
            user_agent_header=None,
            **kw,  # type: ignore[arg-type]
        ) as ws:
            for i in range(messages):
                await ws.send(f'{{"type":"chat","text":"hello {i}"}}')
                await asyncio.wait_for(ws.recv(), 5)
    except (ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
        print(f"  client: {type(exc).__name__}: {exc}")


async def scenario_chat(
    port: int, url_path: str, origin: str | None, messages: int, ua: str | None = CHROME_UA
) -> None:
    async with serve(chat, "127.0.0.1", port, ping_interval=None):
        await client_session(f"ws://127.0.0.1:{port}{url_path}", messages, origin=origin, ua=ua)
        await asyncio.sleep(0.2)


async def scenario_403(port: int) -> None:
    def check(connection: ServerConnection, request: object) -> object:
        if request.headers.get("Origin") != allowed(port):  # type: ignore[attr-defined]
            return connection.respond(HTTPStatus.FORBIDDEN, "origin not allowed\n")
        return None

    async with serve(chat, "127.0.0.1", port, process_request=check):
        await client_session(f"ws://127.0.0.1:{port}/chat", 1, origin=None, ua=None)


async def scenario_1011(port: int) -> None:
    async def broken(ws: ServerConnection) -> None:
        async for message in ws:
            raise RuntimeError(f"cannot handle {message!r}")

    async with serve(broken, "127.0.0.1", port):
        await client_session(f"ws://127.0.0.1:{port}/chat", 1)
        await asyncio.sleep(0.2)


async def scenario_1001(port: int) -> None:
    server = await serve(chat, "127.0.0.1", port, ping_interval=None)
    async with connect(f"ws://127.0.0.1:{port}/chat", origin=allowed(port)) as ws:  # type: ignore[arg-type]
        await ws.send("hello")
        await ws.recv()
        server.close()  # closes every connection with 1001 Going Away
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except ConnectionClosed as exc:
            print(f"  client: {exc}")
    await server.wait_closed()


async def scenario_1009(port: int) -> None:
    async with serve(chat, "127.0.0.1", port, max_size=64):
        async with connect(f"ws://127.0.0.1:{port}/chat", origin=allowed(port)) as ws:  # type: ignore[arg-type]
            await ws.send("x" * 1000)
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed as exc:
                print(f"  client: {exc}")


async def scenario_close_codes(port: int) -> None:
    codes = iter(
        [
            (1012, "service restart"),
            (1013, "overloaded, retry later"),
            (1014, "upstream sent garbage"),
            (4401, "Unauthorized"),
        ]
    )

    async def closer(ws: ServerConnection) -> None:
        code, reason = next(codes)
        await ws.recv()
        await ws.close(code, reason)

    async with serve(closer, "127.0.0.1", port, subprotocols=["graphql-transport-ws"]):
        for _ in range(4):
            sub = ["graphql-transport-ws"]
            await client_session(f"ws://127.0.0.1:{port}/graphql", 1, subprotocols=sub)
            await asyncio.sleep(0.1)


async def scenario_rst(port: int) -> None:
    async def reset(ws: ServerConnection) -> None:
        await ws.recv()
        sock = ws.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.transport.abort()

    async with serve(reset, "127.0.0.1", port):
        await client_session(f"ws://127.0.0.1:{port}/chat", 1)
        await asyncio.sleep(0.2)


async def scenario_subprotocol_none(port: int) -> None:
    async with serve(chat, "127.0.0.1", port):
        await client_session(f"ws://127.0.0.1:{port}/chat", 2, subprotocols=["chat.v2"])


async def scenario_subprotocol_wrong(port: int) -> None:
    def answer(connection: ServerConnection, request: object, response: object) -> None:
        response.headers["Sec-WebSocket-Protocol"] = "chat.v9"  # type: ignore[attr-defined]

    async with serve(chat, "127.0.0.1", port, process_response=answer):
        await client_session(f"ws://127.0.0.1:{port}/chat", 1, subprotocols=["chat.v1"])
        await asyncio.sleep(0.2)


# -- raw peers: exact bytes a library would never send ---------------------------------------


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True
) -> bytes:
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def raw_handshake(sock: socket.socket, port: int, extra: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /chat HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {allowed(port)}\r\nUser-Agent: raw-test-client/1.0\r\n{extra}\r\n"
        ).encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def raw_exchange(
    port: int, frames: list[bytes], *, extra: str = "", answer_close: bool = True
) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        raw_handshake(sock, port, extra)
        for f in frames:
            sock.sendall(f)
            time.sleep(0.05)
        sock.settimeout(2)
        got = b""
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                got += chunk
                if answer_close and len(got) >= 2 and got[0] & 0x0F == 0x8:
                    n = got[1] & 0x7F
                    sock.sendall(frame(0x8, got[2 : 2 + n]))
                    answer_close = False
        except TimeoutError:
            pass


async def scenario_raw(port: int) -> None:
    async def echo(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass

    cases: list[tuple[list[bytes], bool]] = [
        ([frame(0x1, b"unmasked hello", mask=False)], True),
        ([frame(0x1, b"rsv1 without extension", rsv=4)], True),
        ([frame(0x9, b"p" * 200)], True),
        ([frame(0x9, b"ping", fin=False)], True),
        ([frame(0x1, b"caf\xe9 latin-1")], True),
        ([frame(0x8, struct.pack("!H", 1006) + b"abnormal")], True),
    ]
    async with serve(echo, "127.0.0.1", port, ping_interval=None, compression=None):
        for frames, answer in cases:
            await asyncio.to_thread(raw_exchange, port, frames, answer_close=answer)
            await asyncio.sleep(0.1)

    async def close_first(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.close(1000, "bye")

    # A client that never answers the server's close, then drops TCP.
    async with serve(close_first, "127.0.0.1", port, close_timeout=1, compression=None):
        await asyncio.to_thread(raw_exchange, port, [frame(0x1, b"hi")], answer_close=False)
        await asyncio.sleep(1.5)


async def scenario_deflate(port: int) -> None:
    async def echo(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass

    async with serve(echo, "127.0.0.1", port):
        ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        garbage = bytes([0xFF, 0xFF, 0x00, 0x13, 0x37, 0xDE, 0xAD, 0xBE, 0xEF])
        await asyncio.to_thread(raw_exchange, port, [frame(0x1, garbage, rsv=4)], extra=ext)
        await asyncio.sleep(0.2)


async def scenario_masked_server(port: int) -> None:
    def serve_raw() -> None:
        with socket.create_server(("127.0.0.1", port)) as srv:
            srv.settimeout(5)
            conn, _ = srv.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                key = next(
                    line.split(":", 1)[1].strip()
                    for line in data.decode().split("\r\n")
                    if line.lower().startswith("sec-websocket-key:")
                )
                accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
                conn.sendall(
                    (
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                    ).encode()
                )
                conn.sendall(frame(0x1, b"masked by the server", mask=True))
                conn.settimeout(2)
                try:
                    while conn.recv(4096):
                        pass
                except TimeoutError:
                    pass

    thread = asyncio.create_task(asyncio.to_thread(serve_raw))
    await asyncio.sleep(0.3)
    try:
        async with connect(
            f"ws://127.0.0.1:{port}/chat", origin=allowed(port), compression=None
        ) as ws:  # type: ignore[arg-type]
            await asyncio.wait_for(ws.recv(), 3)
    except (ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
        print(f"  client: {type(exc).__name__}: {exc}")
    await thread


NGINX = """\
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  server {{
    listen 127.0.0.1:{front};
    location / {{
      proxy_pass http://127.0.0.1:{back};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
}}
"""


async def scenario_idle(front: int) -> None:
    back = front + 1000
    prefix = Path(tempfile.mkdtemp())
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX.format(prefix=prefix, front=front, back=back))
    nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(prefix)])
    try:
        await asyncio.sleep(1)
        async with serve(echo_all, "127.0.0.1", back, ping_interval=None):
            try:
                async with connect(
                    f"ws://127.0.0.1:{front}/chat",
                    origin=allowed(front),
                    ping_interval=None,  # type: ignore[arg-type]
                    additional_headers={"User-Agent": CHROME_UA},
                    user_agent_header=None,
                ) as ws:
                    await ws.send("hello, then silence")
                    await ws.recv()
                    await asyncio.wait_for(ws.recv(), 90)
            except (ConnectionClosed, TimeoutError) as exc:
                print(f"  client: {type(exc).__name__}: {exc}")
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        shutil.rmtree(prefix, ignore_errors=True)


SCENARIOS: dict[str, tuple[int, Callable[[int], Awaitable[None]]]] = {
    "clean": (9101, lambda p: scenario_chat(p, "/chat", SAME, 3)),
    "no-origin-1008": (9102, lambda p: scenario_chat(p, "/chat", None, 1, ua=None)),
    "foreign-origin-1008": (9103, lambda p: scenario_chat(p, "/chat", "https://evil.example", 1)),
    "rejected-403": (9104, scenario_403),
    "internal-error-1011": (9105, scenario_1011),
    "token-in-url": (9106, lambda p: scenario_chat(p, f"/chat?access_token={JWT}", SAME, 1)),
    "going-away-1001": (9107, scenario_1001),
    "message-too-big-1009": (9108, scenario_1009),
    "close-codes": (9109, scenario_close_codes),
    "abnormal-rst": (9110, scenario_rst),
    "subprotocol-none": (9111, scenario_subprotocol_none),
    "subprotocol-wrong": (9112, scenario_subprotocol_wrong),
    "raw-violations": (9113, scenario_raw),
    "masked-server": (9114, scenario_masked_server),
    "deflate-garbage": (9115, scenario_deflate),
    "idle-timeout": (9116, scenario_idle),
}


def main(names: list[str]) -> None:
    for name in names or list(SCENARIOS):
        port, make = SCENARIOS[name]
        print(f"{name} (port {port})")
        with Capture(name, port):
            asyncio.run(make(port))  # type: ignore[arg-type]


if __name__ == "__main__":
    main(sys.argv[1:])
