"""One wss:// session between a Python `websockets` server and client on loopback.

Run by ``wss_capture.py`` as a subprocess (so that an ``OPENSSL_CONF`` file can pick the
TLS 1.3 cipher suite: Python's ``ssl`` module has no API for that). Arguments: a JSON object
with ``port``, ``cert``, ``key``, ``keylog``, ``tls`` ("1.2" or "1.3"), ``ciphers`` (OpenSSL
cipher string for TLS 1.2, or null), ``alpn`` (list or null), ``messages`` (list of
[kind, size]) and ``compression`` (bool). The client writes the NSS key log.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve


def payload(kind: str, size: int, index: int) -> str | bytes:
    if kind == "text":
        unit = f"message {index} "
        return (unit * (size // len(unit) + 1))[:size]
    return bytes((index * 7 + i) % 251 for i in range(size))


async def main(cfg: dict[str, object]) -> None:
    version = ssl.TLSVersion.TLSv1_2 if cfg["tls"] == "1.2" else ssl.TLSVersion.TLSv1_3
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(cfg["cert"]), str(cfg["key"]))
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(str(cfg["cert"]))
    for ctx in (server_ctx, client_ctx):
        ctx.minimum_version = version
        ctx.maximum_version = version
        if cfg.get("ciphers"):
            ctx.set_ciphers(str(cfg["ciphers"]))
        alpn = cfg.get("alpn")
        if isinstance(alpn, list):
            ctx.set_alpn_protocols([str(a) for a in alpn])
    client_ctx.keylog_filename = str(cfg["keylog"])

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    compression = "deflate" if cfg.get("compression") else None
    port = int(str(cfg["port"]))
    async with serve(echo, "127.0.0.1", port, ssl=server_ctx, compression=compression):
        async with connect(
            f"wss://127.0.0.1:{port}/tls-test",
            ssl=client_ctx,
            server_hostname="localhost",
            compression=compression,
            max_size=None,
        ) as ws:
            messages = cfg["messages"]
            assert isinstance(messages, list)
            for index, (kind, size) in enumerate(messages):
                await ws.send(payload(str(kind), int(size), index))
                await ws.recv()
            await ws.close(1000, "done")


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
