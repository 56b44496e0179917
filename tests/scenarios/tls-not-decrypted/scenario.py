"""wss:// with no key log: a Python websockets server with a self-signed certificate made
at record time (cryptography), two clients, three echoes each, close 1000. The capture
holds only TLS records."""

from __future__ import annotations

import datetime
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import serve

from tests.scenarios import lab

PORT = 9325


def certificate(folder: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .sign(key, hashes.SHA256())
    )
    pem = folder / "cert.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem


async def session(pem: Path) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pem)
    client_ctx = ssl.create_default_context(cafile=pem)
    async with serve(lab.echo, "127.0.0.1", PORT, ssl=server_ctx):
        for _ in range(2):
            await lab.chat_client(
                f"wss://localhost:{PORT}/chat", 3, ssl=client_ctx, origin="https://localhost"
            )


def record(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp, lab.capture(out / "session.pcapng", PORT):
        lab.run(session(certificate(Path(tmp))))
