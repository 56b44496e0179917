"""TEST-ONLY helpers shared by tests/inputs/test_tls*.py: feed TlsFlow, ask tshark."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import tcp_payloads

from analyzer.inputs.tls import KeyLog, TlsFlow
from analyzer.limits import DEFAULT_LIMITS

TLS_DIR = Path(__file__).resolve().parent.parent


@dataclass
class Decrypted:
    flow: TlsFlow
    tcp: tcp_payloads.Flow
    pieces: list[tuple[bool, bytes, int, float]] = field(default_factory=list)

    def side(self, from_orig: bool) -> bytes:
        return b"".join(p for o, p, _, _ in self.pieces if o == from_orig)


def feed(
    tcp: tcp_payloads.Flow,
    keylog: KeyLog | None,
    capture: str = "test.pcap",
    events: list[tcp_payloads.Event] | None = None,
    **kwargs: bool,
) -> Decrypted:
    flow = TlsFlow(keylog, capture, tcp.stream, DEFAULT_LIMITS, **kwargs)
    result = Decrypted(flow, tcp)
    for e in tcp.events if events is None else events:
        if e.gap:
            flow.gap(e.from_orig, e.gap, e.packet, e.time)
        if e.payload:
            result.pieces += flow.data(e.from_orig, e.payload, e.packet, e.time)
    return result


def decrypt_file(pcap: Path, keylog: KeyLog | None, **kwargs: bool) -> list[Decrypted]:
    cap = tcp_payloads.read(pcap)
    return [feed(f, keylog, str(pcap), **kwargs) for f in cap.flows]


def tshark_follow(pcap: Path, keys: Path | None, stream: int = 0) -> set[bytes]:
    """The decrypted bytes of each side of one TLS stream, as tshark's follow,tls,raw shows.

    Returned as a set: tshark 4.0 does not indent the same side for TLS 1.2 and 1.3.
    """
    cmd = ["tshark", "-n", "-r", str(pcap)]
    if keys is not None:
        cmd += ["-o", f"tls.keylog_file:{keys}"]
    cmd += ["-q", "-z", f"follow,tls,raw,{stream}"]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    body = text.split("=" * 67)[1]
    indented: list[bytes] = []
    flush: list[bytes] = []
    for line in body.splitlines():
        stripped = line.strip()
        if not stripped or ":" in stripped:
            continue
        (indented if line.startswith("\t") else flush).append(bytes.fromhex(stripped))
    return {b"".join(indented), b"".join(flush)}


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
