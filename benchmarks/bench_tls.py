"""TLS decryption cost per MB: analyzer.inputs.tls against tshark and scapy's TLS layer.

    PYTHONPATH=. python benchmarks/bench_tls.py [--mb 40] [--scapy-mb 4]
    (scapy comes with the extra: pip install ".[bench]")

Makes wss:// captures on loopback (Python websockets; dumpcap on lo, root needed) of about
``--mb`` MB, TLS 1.3 AES-128-GCM, TLS 1.3 ChaCha20 and TLS 1.2 AES-256-GCM, then times:

- ours, layer only: TlsFlow over TCP payloads already in memory (what build_pcap adds);
- ours, with the test-only pcap reader (tests/data/tls/make/tcp_payloads.py) in front;
- ours, full: ``read_packet_capture(pcap, keylog=keys)``, the tool's capture path (reader,
  TCP, TLS, upgrade, frames, messages), and the same without keys (TLS listed only);
- tshark -o tls.keylog_file (follow,tls,raw: reads, reassembles, decrypts, prints), and
  tshark reading the same file without keys, for its own baseline;
- scapy 2.x TLS (conf.tls_nss_filename, rdpcap), on a smaller capture (it is slow), with
  the share of the application bytes it recovers compared to ours (correctness first).

Prints MB/s (MB = 10^6 bytes of capture file). Figures, not asserts: no timed tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAKE = ROOT / "tests" / "data" / "tls" / "make"
sys.path.insert(0, str(MAKE))
sys.path.insert(0, str(ROOT))

import tcp_payloads  # noqa: E402
import wss_capture  # noqa: E402

from analyzer.inputs.tls import KeyLog, TlsFlow  # noqa: E402


def make(
    name: str, tls: str, mb: float, folder: Path, size: int = 65536, **kw: str
) -> tuple[Path, Path]:
    # Each message is echoed: about 2 x (size + overheads) bytes per message on the wire.
    count = max(1, int(mb * 1e6 / (2 * (size + 150))))
    session = wss_capture.Session(name, tls, messages=(("binary", size),) * count, **kw)  # type: ignore[arg-type]
    return wss_capture.generate(session, folder)


def best(fn: object, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def ours_layer(pcap: Path, keys: Path, segment: int | None = None) -> tuple[float, int]:
    """TlsFlow alone; ``segment`` re-cuts the payloads as an Ethernet path would (1448)."""
    cap = tcp_payloads.read(pcap)
    if segment:
        for tcp in cap.flows:
            tcp.events = [
                tcp_payloads.Event(e.from_orig, e.payload[i : i + segment], e.packet, e.time)
                for e in tcp.events
                for i in range(0, len(e.payload), segment)
            ]
    keylog = KeyLog.from_file(keys)
    plaintext = 0

    def run() -> None:
        nonlocal plaintext
        plaintext = 0
        for tcp in cap.flows:
            flow = TlsFlow(keylog, str(pcap), tcp.stream)
            for e in tcp.events:
                for piece in flow.data(e.from_orig, e.payload, e.packet, e.time):
                    plaintext += len(piece[1])

    return best(run), plaintext


def ours_with_reader(pcap: Path, keys: Path) -> float:
    def run() -> None:
        keylog = KeyLog.from_file(keys)
        for tcp in tcp_payloads.read(pcap).flows:
            flow = TlsFlow(keylog, str(pcap), tcp.stream)
            for e in tcp.events:
                flow.data(e.from_orig, e.payload, e.packet, e.time)

    return best(run)


def ours_full(pcap: Path, keys: Path | None) -> float:
    """The tool's whole capture path: pcap reader, TCP, TLS, HTTP upgrade, WebSocket."""
    from analyzer.session.build_pcap import read_packet_capture

    return best(lambda: read_packet_capture(pcap, keylog=keys))


def tshark(pcap: Path, keys: Path | None) -> float:
    cmd = ["tshark", "-n", "-r", str(pcap)]
    if keys is not None:
        cmd += ["-o", f"tls.keylog_file:{keys}", "-q", "-z", "follow,tls,raw,0"]
    else:
        cmd += ["-q", "-z", "follow,tcp,raw,0"]
    return best(lambda: subprocess.run(cmd, capture_output=True, check=True), repeat=2)


def scapy_tls(pcap: Path, keys: Path) -> tuple[float, int]:
    from scapy.all import TCP, bind_layers, conf, load_layer, rdpcap

    load_layer("tls")
    from scapy.layers.tls.record import TLS, TLSApplicationData

    conf.tls_session_enable = True
    conf.tls_nss_filename = str(keys)
    port = int(rdpcap(str(pcap), count=1)[0][TCP].dport)
    bind_layers(TCP, TLS, sport=port)
    bind_layers(TCP, TLS, dport=port)
    start = time.perf_counter()
    packets = rdpcap(str(pcap))
    recovered = 0
    for p in packets:
        layer = p.getlayer(TLS)
        while layer is not None and isinstance(layer, TLS):
            for msg in layer.msg:
                if isinstance(msg, TLSApplicationData):
                    recovered += len(msg.data)
            layer = layer.payload if isinstance(layer.payload, TLS) else None
    return time.perf_counter() - start, recovered


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=40.0)
    parser.add_argument("--scapy-mb", type=float, default=4.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases: list[tuple[str, str, dict[str, str]]] = [
            ("tls13-aes128gcm", "1.3", {"suite13": "TLS_AES_128_GCM_SHA256"}),
            ("tls13-chacha20", "1.3", {"suite13": "TLS_CHACHA20_POLY1305_SHA256"}),
            ("tls12-aes256gcm", "1.2", {"ciphers": "ECDHE-ECDSA-AES256-GCM-SHA384"}),
        ]
        print("64 KiB messages (16 KiB records); 'layer 1448' re-cuts payloads to Ethernet MSS")
        print(
            f"{'capture':<18} {'MB':>6} | {'layer':>6} {'layer 1448':>10} {'+reader':>8} | "
            f"{'full':>6} {'full nokeys':>11} | "
            f"{'tshark keys':>11} {'tshark nokeys':>13}   (MB/s)"
        )
        rows = [(n, t, kw, 65536, args.mb) for n, t, kw in cases]
        rows.append(("tls13-aes128 200B", "1.3", cases[0][2], 200, args.mb / 10))
        for name, tls, kw, msg_size, mb in rows:
            pcap, keys = make(name.replace(" ", "-"), tls, mb, folder, msg_size, **kw)
            size = pcap.stat().st_size / 1e6
            layer, plaintext = ours_layer(pcap, keys)
            layer_eth, _ = ours_layer(pcap, keys, 1448)
            reader = ours_with_reader(pcap, keys)
            full, full_nokeys = ours_full(pcap, keys), ours_full(pcap, None)
            with_keys = tshark(pcap, keys)
            without = tshark(pcap, None)
            print(
                f"{name:<18} {size:6.1f} | {size / layer:6.0f} {size / layer_eth:10.0f} "
                f"{size / reader:8.0f} | {size / full:6.0f} {size / full_nokeys:11.0f} | "
                f"{size / with_keys:11.0f} {size / without:13.0f}   "
                f"(plaintext {plaintext / 1e6:.1f} MB)"
            )
        print()
        print("scapy TLS (rdpcap, conf.tls_nss_filename), against ours on the same capture:")
        for name, tls, kw in cases:
            pcap, keys = make(f"scapy-{name}", tls, args.scapy_mb, folder, **kw)
            size = pcap.stat().st_size / 1e6
            _, ours = ours_layer(pcap, keys)
            seconds, recovered = scapy_tls(pcap, keys)
            print(
                f"{name:<18} {size:6.1f} MB: scapy {size / seconds:6.2f} MB/s, recovered "
                f"{recovered:,} of our {ours:,} plaintext bytes ({100 * recovered / ours:.0f}%)"
            )


if __name__ == "__main__":
    main()
