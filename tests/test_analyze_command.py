"""The analyze command as a user runs it: what it prints, what it writes, its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from analyzer.cli import main

TESTS = Path(__file__).resolve().parent
DATA, EXAMPLES = TESTS / "data", TESTS.parent / "examples"
SERVER_SIDE = EXAMPLES / "chat-1008" / "server-side.pcapng"
TLS = DATA / "tls"


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_motivating_case_headline_on_stderr_and_report_written(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code, _, err = invoke("analyze", str(SERVER_SIDE), "-o", str(out))
    assert code == 0
    lines = err.splitlines()
    assert lines[0] == f"{SERVER_SIDE}: 1 WebSocket connection"
    assert lines[1].startswith("[critical] The server closed the connection with 1008")
    assert "no Origin header" in lines[1]
    assert lines[2] == f"wrote {out}"
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_fail_on_gives_exit_1_only_when_reached(tmp_path: Path) -> None:
    args = ("analyze", str(SERVER_SIDE), "-f", "json", "-o", str(tmp_path / "r.json"))
    assert invoke(*args, "--fail-on", "critical")[0] == 1
    assert (
        invoke(*args, "--ignore", "close-1008-after-first-message", "--fail-on", "critical")[0] == 0
    )


def test_json_to_stdout() -> None:
    code, out, _ = invoke("analyze", str(SERVER_SIDE), "-f", "json", "-o", "-")
    assert code == 0
    report = json.loads(out)
    assert report["schema"] == "ws-analyzer/report/v1"
    (conn,) = report["connections"]
    assert conn["origin"] is None
    assert conn["close"]["code"] == 1008


def test_encrypted_connections_are_counted_apart(tmp_path: Path) -> None:
    pcap = TLS / "py-tls13-aes128gcm.pcap"
    code, _, err = invoke("analyze", str(pcap), "-f", "json", "-o", str(tmp_path / "r.json"))
    assert code == 0
    assert err.splitlines()[0] == f"{pcap}: 1 TLS connection not decrypted (see --keylog)"


def test_stale_sslkeylogfile_is_ignored_but_a_given_keylog_is_used(tmp_path: Path) -> None:
    pcap = TLS / "py-tls13-aes128gcm.pcap"
    env = {"SSLKEYLOGFILE": str(tmp_path / "gone.log")}
    code, _, err = invoke("analyze", str(pcap), "-f", "json", "-o", "-", env=env)
    assert code == 0
    assert "not decrypted" in err
    env = {"SSLKEYLOGFILE": str(TLS / "py-tls13-aes128gcm.keys")}
    code, out, err = invoke("analyze", str(pcap), "-f", "json", "-o", "-", env=env)
    assert code == 0
    assert err.splitlines()[0] == f"{pcap}: 1 WebSocket connection"
    assert json.loads(out)["connections"][0]["url"].startswith("wss://")
