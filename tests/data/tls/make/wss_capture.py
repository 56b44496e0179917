"""Make real wss:// captures on loopback, with their NSS key logs.

Used two ways:
- by the tests (``tests/inputs/test_tls*.py``) to generate a capture live;
- from the command line to regenerate the committed files in ``tests/data/tls/``::

      /work/venv/bin/python tests/data/tls/make/wss_capture.py tests/data/tls

A self-signed certificate (EC P-256, SAN localhost) is made with ``cryptography``; dumpcap
captures ``lo`` with a capture filter on the session's port; the client (Python ``ssl``'s
``keylog_filename``, or Node's ``--tls-keylog``) writes the key log.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

# A short exchange: text and binary messages, one of 20 000 bytes so that TLS records
# (at most 16 KiB of plaintext) span several TCP segments and several records per message.
DEFAULT_MESSAGES: tuple[tuple[str, int], ...] = (
    ("text", 5),
    ("text", 300),
    ("binary", 1000),
    ("text", 20_000),
)


@dataclass(frozen=True)
class Session:
    """What to generate."""

    name: str
    tls: str  # "1.2" or "1.3"
    impl: str = "python"  # "python" (websockets) or "node" (ws)
    ciphers: str | None = None  # TLS 1.2 OpenSSL cipher string (or Node ciphers option)
    suite13: str | None = None  # TLS 1.3 suite (python: through an OPENSSL_CONF file)
    alpn: tuple[str, ...] | None = None
    messages: tuple[tuple[str, int], ...] = DEFAULT_MESSAGES
    compression: bool = False


# The committed captures: each supported suite, from Python and from Node.
SESSIONS: tuple[Session, ...] = (
    Session("py-tls12-aes128gcm", "1.2", ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"),
    Session("py-tls12-aes256gcm", "1.2", ciphers="ECDHE-ECDSA-AES256-GCM-SHA384"),
    Session("py-tls12-chacha20", "1.2", ciphers="ECDHE-ECDSA-CHACHA20-POLY1305"),
    Session("py-tls13-aes128gcm", "1.3", suite13="TLS_AES_128_GCM_SHA256"),
    Session("py-tls13-aes256gcm", "1.3", suite13="TLS_AES_256_GCM_SHA384"),
    Session("py-tls13-chacha20", "1.3", suite13="TLS_CHACHA20_POLY1305_SHA256"),
    Session("node-tls12-aes128gcm", "1.2", impl="node", ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"),
    Session("node-tls12-chacha20", "1.2", impl="node", ciphers="ECDHE-ECDSA-CHACHA20-POLY1305"),
    Session("node-tls13-aes128gcm", "1.3", impl="node", ciphers="TLS_AES_128_GCM_SHA256"),
    Session("node-tls13-aes256gcm", "1.3", impl="node", ciphers="TLS_AES_256_GCM_SHA384"),
    Session("node-tls13-chacha20", "1.3", impl="node", ciphers="TLS_CHACHA20_POLY1305_SHA256"),
    Session("py-tls13-h2alpn", "1.3", alpn=("h2",), messages=(("text", 20),)),
    # Not WebSocket: OpenSSL's s_client sends a KeyUpdate ("K": the server updates too).
    Session("openssl-tls13-keyupdate", "1.3", impl="openssl"),
    # Not WebSocket: a HelloRetryRequest (server wants P-384, client's key share is X25519),
    # then a resumed session that sends 0-RTT early data.
    Session("openssl-tls13-hrr-0rtt", "1.3", impl="openssl-0rtt"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def node_modules() -> Path | None:
    """A folder with the npm package ``ws`` installed (NODE_PATH), or None when unavailable."""
    if shutil.which("node") is None:
        return None
    folder = Path(os.environ.get("WS_NODE_MODULES", Path(tempfile.gettempdir()) / "tls-node-ws"))
    if (folder / "node_modules" / "ws").is_dir():
        return folder / "node_modules"
    if shutil.which("npm") is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["npm", "install", "--no-save", "--prefix", str(folder), "ws@8"],
        capture_output=True,
        timeout=300,
    )
    if done.returncode != 0 or not (folder / "node_modules" / "ws").is_dir():
        return None
    return folder / "node_modules"


class Dumpcap:
    """dumpcap on ``lo`` with a capture filter; stopped (SIGTERM) by ``stop``."""

    def __init__(self, out: Path, port: int) -> None:
        self.proc = subprocess.Popen(
            ["dumpcap", "-q", "-i", "lo", "-P", "-f", f"tcp port {port}", "-w", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 15
        assert self.proc.stderr is not None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if "Capturing on" in line:
                return
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("dumpcap did not start capturing on lo")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def generate(session: Session, out_dir: Path) -> tuple[Path, Path]:
    """Run ``session`` on loopback under dumpcap; return (capture.pcap, keylog.txt)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pcap = out_dir / f"{session.name}.pcap"
    keylog = out_dir / f"{session.name}.keys"
    for path in (pcap, keylog):
        path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_certificate(Path(tmp))
        port = free_port()
        cfg: dict[str, object] = {
            "port": port,
            "cert": str(cert),
            "key": str(key),
            "keylog": str(keylog),
            "tls": session.tls,
            "ciphers": session.ciphers,
            "alpn": list(session.alpn) if session.alpn else None,
            "messages": [list(m) for m in session.messages],
            "compression": session.compression,
        }
        env = dict(os.environ)
        if session.impl == "python":
            if session.suite13:
                conf = Path(tmp) / "openssl.cnf"
                conf.write_text(
                    "openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n"
                    "[ssl_sect]\nsystem_default = sys_default\n[sys_default]\n"
                    f"Ciphersuites = {session.suite13}\n"
                )
                env["OPENSSL_CONF"] = str(conf)
            cmd = [sys.executable, str(HERE / "wss_python_pair.py"), json.dumps(cfg)]
        else:
            modules = node_modules()
            if modules is None:
                raise RuntimeError("node and the npm package ws are needed for this session")
            env["NODE_PATH"] = str(modules)
            cmd = [
                "node",
                f"--tls-keylog={keylog}",
                str(HERE / "wss_node_pair.js"),
                json.dumps(cfg),
            ]
        cap = Dumpcap(pcap, port)
        try:
            if session.impl == "openssl":
                openssl_key_update(cert, key, keylog, port)
            elif session.impl == "openssl-0rtt":
                openssl_hrr_early_data(cert, key, keylog, port, Path(tmp))
            else:
                subprocess.run(cmd, env=env, check=True, timeout=60, capture_output=True)
            time.sleep(0.3)  # let the last packets reach dumpcap
        finally:
            cap.stop()
    return pcap, keylog


def openssl_key_update(cert: Path, key: Path, keylog: Path, port: int) -> None:
    """s_server and s_client: one line, a KeyUpdate (both sides), another line, quit."""
    server = subprocess.Popen(
        [
            "openssl",
            "s_server",
            "-accept",
            str(port),
            "-cert",
            str(cert),
            "-key",
            str(key),
            "-tls1_3",
            "-naccept",
            "1",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        client = subprocess.Popen(
            [
                "openssl",
                "s_client",
                "-connect",
                f"127.0.0.1:{port}",
                "-tls1_3",
                "-servername",
                "localhost",
                "-keylogfile",
                str(keylog),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert client.stdin is not None
        # s_client reads commands only at the start of what it reads: one line at a time.
        for line in (b"before the key update\n", b"K\n", b"after the key update\n", b"Q\n"):
            time.sleep(0.3)
            client.stdin.write(line)
            client.stdin.flush()
        client.stdin.close()
        client.wait(timeout=10)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _s_client(args: list[str], lines: list[bytes]) -> None:
    client = subprocess.Popen(
        ["openssl", "s_client", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert client.stdin is not None
    for line in lines:
        time.sleep(0.3)
        client.stdin.write(line)
        client.stdin.flush()
    time.sleep(0.3)
    client.stdin.close()  # EOF: s_client closes the connection
    client.wait(timeout=10)


def openssl_hrr_early_data(cert: Path, key: Path, keylog: Path, port: int, tmp: Path) -> None:
    """Two connections to one s_server: the first gets a HelloRetryRequest and a session
    ticket; the second resumes it and sends 0-RTT early data (``-early_data``)."""
    server = subprocess.Popen(
        [
            "openssl",
            "s_server",
            "-accept",
            str(port),
            "-cert",
            str(cert),
            "-key",
            str(key),
            "-tls1_3",
            "-early_data",
            "-groups",
            "P-384",
            "-naccept",
            "2",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    session, early = tmp / "session.pem", tmp / "early.txt"
    early.write_bytes(b"early data line\n")
    common = [
        "-connect",
        f"127.0.0.1:{port}",
        "-tls1_3",
        "-servername",
        "localhost",
        "-keylogfile",
        str(keylog),
    ]
    try:
        time.sleep(0.5)
        _s_client(
            [*common, "-groups", "X25519:P-384", "-sess_out", str(session)], [b"first connection\n"]
        )
        _s_client(
            [*common, "-groups", "P-384", "-sess_in", str(session), "-early_data", str(early)],
            [b"after the handshake\n"],
        )
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def versions() -> str:
    import cryptography
    import websockets

    parts = [
        f"Python {sys.version.split()[0]}",
        f"websockets {websockets.__version__}",
        f"cryptography {cryptography.__version__}",
    ]
    import ssl

    parts.append(ssl.OPENSSL_VERSION)
    if shutil.which("node"):
        node = subprocess.run(["node", "--version"], capture_output=True, text=True)
        parts.append(f"Node {node.stdout.strip()}")
    dumpcap = subprocess.run(["dumpcap", "--version"], capture_output=True, text=True)
    parts.append(dumpcap.stdout.splitlines()[0] if dumpcap.stdout else "dumpcap")
    return "; ".join(parts)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent
    wanted = set(sys.argv[2:])
    for s in SESSIONS:
        if wanted and s.name not in wanted:
            continue
        made = generate(s, target)
        print(s.name, *(f"{p.name}={p.stat().st_size}" for p in made))
    if not wanted:
        # One pcapng carrying its own keys in a Decryption Secrets Block.
        subprocess.run(
            [
                "editcap",
                "--inject-secrets",
                f"tls,{target / 'node-tls13-chacha20.keys'}",
                str(target / "node-tls13-chacha20.pcap"),
                str(target / "node-tls13-chacha20-dsb.pcapng"),
            ],
            check=True,
        )
    for path in target.glob("*.*"):
        path.chmod(0o644)
    (HERE / "VERSIONS.txt").write_text(versions() + "\n")
