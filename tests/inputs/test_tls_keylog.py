"""NSS key logs (analyzer.inputs.keylog): files, pcapng DSB payloads, bad lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MAKE = Path(__file__).resolve().parents[1] / "data" / "tls" / "make"
if str(MAKE) not in sys.path:
    sys.path.insert(0, str(MAKE))

import tcp_payloads  # noqa: E402
import tlstest  # noqa: E402

from analyzer.errors import KeyLogError  # noqa: E402
from analyzer.inputs.keylog import TLS13_LABELS, gather_keylog  # noqa: E402
from analyzer.inputs.tls import KeyLog  # noqa: E402

TLS = tlstest.TLS_DIR


def test_tls12_and_tls13_logs() -> None:
    tls12 = KeyLog.from_file(TLS / "py-tls12-aes128gcm.keys")
    assert len(tls12) == 1 and tls12.problems == ()
    ((client_random, labels),) = tls12.secrets.items()
    assert len(client_random) == 32 and set(labels) == {"CLIENT_RANDOM"}
    assert len(labels["CLIENT_RANDOM"]) == 48
    # Node logs each secret twice (client and server socket): identical lines, no problem.
    tls13 = KeyLog.from_file(TLS / "node-tls13-aes256gcm.keys")
    assert len(tls13) == 1 and tls13.problems == ()
    ((_, labels),) = tls13.secrets.items()
    assert set(labels) == set(TLS13_LABELS)  # EXPORTER_SECRET is valid but not needed
    assert {len(s) for s in labels.values()} == {48}  # SHA-384 suite


def test_malformed_lines_are_reported_and_the_rest_used(tmp_path: Path) -> None:
    real = (TLS / "py-tls13-chacha20.keys").read_text().splitlines()
    bad = [
        "CLIENT_RANDOM 1234",  # 2: too few fields
        "SERVER_TRAFFIC_SECRET_0 zz" + "0" * 62 + " " + "00" * 32,  # 3: client random not hex
        "CLIENT_RANDOM " + "ab" * 32 + " " + "cd" * 10,  # 4: master secret too short
        "MYSTERY_SECRET " + "ab" * 32 + " " + "cd" * 32,  # 5: unknown label
        "EXPORTER_SECRET " + "ab" * 32 + " " + "cd" * 32,  # 6: fine, just not needed
    ]
    path = tmp_path / "keys.txt"
    path.write_text("\n".join([real[0], *bad, *real[1:]]) + "\n")
    keylog = KeyLog.from_file(path)
    assert [n for n, _ in keylog.problems] == [2, 3, 4, 5]
    assert keylog.problems[0][1] == "expected 'LABEL CLIENT_RANDOM SECRET', found 2 fields"
    assert "client random must be 64 hex digits" in keylog.problems[1][1]
    assert "CLIENT_RANDOM secret must be 96 hex digits" in keylog.problems[2][1]
    assert keylog.problems[3][1] == "unknown label 'MYSTERY_SECRET'"
    (result,) = tlstest.decrypt_file(TLS / "py-tls13-chacha20.pcap", keylog)
    assert result.flow.info.decrypted and result.side(True).startswith(b"GET /tls-test")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "it is empty"),
        (b"# only a comment\n\n", "it is empty"),
        (b"hello world\n", "line 1: expected 'LABEL CLIENT_RANDOM SECRET', found 2 fields"),
        (b"\x00\xff\xfe binary junk", "line 1:"),
    ],
)
def test_no_usable_line_is_an_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "keys.txt"
    path.write_bytes(content)
    with pytest.raises(KeyLogError) as caught:
        KeyLog.from_file(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: no usable TLS key log line")
    assert message in text


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KeyLogError, match="cannot read the TLS key log"):
        KeyLog.from_file(tmp_path / "nope.txt")


def test_merged_logs_decrypt_both_captures() -> None:
    one = KeyLog.from_file(TLS / "py-tls12-chacha20.keys")
    two = KeyLog.from_file(TLS / "node-tls13-aes128gcm.keys")
    both = one.merged(two)
    assert len(both) == 2 and both.problems == ()
    for name in ("py-tls12-chacha20", "node-tls13-aes128gcm"):
        (result,) = tlstest.decrypt_file(TLS / f"{name}.pcap", both)
        assert result.flow.info.decrypted


def test_conflicting_secrets_keep_the_first() -> None:
    text = (TLS / "py-tls12-chacha20.keys").read_text()
    line = next(x for x in text.splitlines() if x.startswith("CLIENT_RANDOM"))
    other = line[:-6] + "000000"
    keylog = KeyLog.from_bytes(f"{line}\n{other}\n".encode(), "two.keys")
    assert keylog.usable_lines == 1
    assert keylog.problems[0][0] == 2 and "keeping the first" in keylog.problems[0][1]
    merged = keylog.merged(KeyLog.from_bytes(other.encode(), "other.keys"))
    assert any("differs" in p for _, p in merged.problems)
    (result,) = tlstest.decrypt_file(TLS / "py-tls12-chacha20.pcap", merged)
    assert result.flow.info.decrypted


def test_committed_pcapng_with_decryption_secrets_block() -> None:
    capture = tcp_payloads.read(TLS / "node-tls13-chacha20-dsb.pcapng")
    (secrets,) = capture.secrets
    keylog = KeyLog.from_bytes(secrets)
    assert keylog.sources == ("pcapng Decryption Secrets Block",)
    (result,) = [tlstest.feed(f, keylog) for f in capture.flows]
    assert result.flow.info.decrypted
    (plain,) = tlstest.decrypt_file(
        TLS / "node-tls13-chacha20.pcap", KeyLog.from_file(TLS / "node-tls13-chacha20.keys")
    )
    assert result.side(True) == plain.side(True) and result.side(False) == plain.side(False)


@pytest.mark.skipif(not tlstest.have("editcap"), reason="editcap not installed")
def test_editcap_inject_secrets_live(tmp_path: Path) -> None:
    out = tmp_path / "with-keys.pcapng"
    subprocess.run(
        [
            "editcap",
            "--inject-secrets",
            f"tls,{TLS / 'py-tls12-aes256gcm.keys'}",
            str(TLS / "py-tls12-aes256gcm.pcap"),
            str(out),
        ],
        check=True,
    )
    capture = tcp_payloads.read(out)
    (secrets,) = capture.secrets
    assert b"CLIENT_RANDOM" in secrets
    (result,) = [tlstest.feed(f, KeyLog.from_bytes(secrets)) for f in capture.flows]
    assert result.flow.info.decrypted
    assert result.side(False).startswith(b"HTTP/1.1 101")


def test_gather_keylog_from_option_environment_and_dsb(tmp_path: Path) -> None:
    keys12 = TLS / "py-tls12-chacha20.keys"
    keys13 = TLS / "node-tls13-chacha20.keys"
    assert gather_keylog(None, (), environ={}) is None
    # SSLKEYLOGFILE is used when no --keylog is given, and ignored when the file is gone.
    from_env = gather_keylog(None, (), environ={"SSLKEYLOGFILE": str(keys12)})
    assert from_env is not None and from_env.sources == (str(keys12),)
    gone = {"SSLKEYLOGFILE": str(tmp_path / "gone.txt")}
    assert gather_keylog(None, (), environ=gone) is None
    # --keylog wins over the environment; the capture's DSB is merged in.
    (dsb,) = tcp_payloads.read(TLS / "node-tls13-chacha20-dsb.pcapng").secrets
    both = gather_keylog(keys12, [dsb], environ={"SSLKEYLOGFILE": str(keys13)})
    assert both is not None and len(both) == 2
    assert both.sources == (str(keys12), "pcapng Decryption Secrets Block")
    with pytest.raises(KeyLogError):
        gather_keylog(tmp_path / "missing.txt", (), environ={})
