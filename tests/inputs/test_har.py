"""HAR input: real exports (corpus, Playwright on loopback) and files derived from them.

Expected values are the known facts of each file (the corpus MANIFEST table, the
Playwright session script, tshark's view of the pcap a HAR was made from), asserted as
literals, never recomputed from the same JSON the reader reads.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.errors import InputError
from analyzer.inputs.har import read_har
from analyzer.limits import Limits
from analyzer.pipeline import load_capture
from analyzer.session.model import Capture, Connection, Fact

HAR = Path(__file__).resolve().parent.parent / "data" / "har"
CORPUS = HAR / "corpus"
DERIVED = HAR / "derived"
PLAYWRIGHT = HAR / "playwright"

MITM = CORPUS / "websocket.har"
GATLING = CORPUS / "play-chat.har"
PCAP2HAR = CORPUS / "test_websocket.py-test_websocket_parse.har"
PCAP2HAR_SEG = CORPUS / "test_websocket.py-test_websocket_segmented.har"

PIESOCKET = "wss://demo.piesocket.com/v3/channel_123"
API_KEY = "?api_key=VCXCEuvhGcBDP7XhiJJUDvR1e1D3eiVjgZ9VRiaV&notify_self"


def per_side(c: Connection) -> tuple[int, int]:
    return c.messages_from("client"), c.messages_from("server")


# -- the corpus: every HAR gives the right connections ------------------------------------

# (file, [(entry, url, status, origin, (client msgs, server msgs) or None when unknown)])
CORPUS_FACTS: list[tuple[Path, list[tuple[int, str, int, str, tuple[int, int] | None]]]] = [
    (
        MITM,
        [
            (0, PIESOCKET + API_KEY, 101, "https://www.piesocket.com", (0, 1)),
            (1, PIESOCKET, 101, "https://www.piesocket.com", (0, 1)),
            (2, PIESOCKET + API_KEY, 101, "https://www.piesocket.com", (2, 1)),
        ],
    ),
    (
        GATLING,
        [(9, "ws://localhost:9000/room/chat?username=robert", 101, "http://localhost:9000", None)],
    ),
    (PCAP2HAR, [(0, "ws://192.168.43.135:12345/", 101, "file://", (2, 3))]),
    (PCAP2HAR_SEG, [(0, "ws://spurs.cs.ucla.edu:9696/", 101, "null", (1, 1))]),
]


@pytest.mark.parametrize(("path", "facts"), CORPUS_FACTS, ids=lambda v: getattr(v, "name", ""))
def test_corpus_connections(
    path: Path, facts: list[tuple[int, str, int, str, tuple[int, int] | None]]
) -> None:
    capture = read_har(path)
    assert capture.format == "har"
    assert capture.anomalies == ()
    assert len(capture.connections) == len(facts)
    stem = path.name.removesuffix(".har")
    for n, (c, (entry, url, status, origin, counts)) in enumerate(
        zip(capture.connections, facts, strict=True)
    ):
        assert c.id == f"{stem}#{n}"
        assert c.location is not None and c.location.entry == entry
        assert c.url == url
        assert c.status == status
        assert c.origin == origin
        assert c.frames is None and c.client is None
        assert c.close is None and c.close_known is False and c.end == "unknown"
        if counts is None:
            assert Fact.MESSAGES not in c.can_show
            assert c.message_count is None and c.messages == ()
        else:
            assert Fact.MESSAGES in c.can_show
            assert per_side(c) == counts
            assert all(m.entry == entry for m in c.messages)


def test_corpus_creators() -> None:
    assert (read_har(MITM).creator, read_har(MITM).creator_version) == ("mitmproxy", "1.2.3")
    assert (read_har(GATLING).creator, read_har(GATLING).creator_version) == (
        "WebInspector",
        "537.36",
    )
    assert read_har(PCAP2HAR).creator == "pcap2har"


def test_message_sizes_match_tshark_view_of_the_same_session() -> None:
    # tshark 4.0 on pcap/mikekap-pcap2har/websocket.pcap: payload lengths 23, 12, 50, 15, 53
    c = read_har(PCAP2HAR).connections[0]
    assert [(m.side, m.size) for m in c.messages] == [
        ("server", 23),
        ("client", 12),
        ("server", 50),
        ("client", 15),
        ("server", 53),
    ]
    assert c.messages[1].preview == b"test message"
    assert c.messages[0].time == pytest.approx(1475155931.028697)
    assert [m.entry_message for m in c.messages] == [0, 1, 2, 3, 4]
    assert c.end_time == pytest.approx(1475156008.65769)
    assert c.start == pytest.approx(1475156008.65769 - 77.858, abs=1)  # startedDateTime


def test_binary_messages_are_base64_decoded() -> None:
    c = read_har(PCAP2HAR_SEG).connections[0]
    # tshark: the client frame has 39 payload bytes; the server's is 5379 after base64.
    assert [(m.side, m.opcode, m.size) for m in c.messages] == [
        ("client", 2, 39),
        ("server", 2, 5379),
    ]
    assert c.messages[0].preview is not None and c.messages[0].preview.startswith(b"\x05%\x07")
    assert c.server == "131.179.196.46:9696"


def test_mitmproxy_https_urls_become_wss_and_the_written_url_is_kept() -> None:
    capture = read_har(MITM)
    c = capture.connections[1]
    assert c.url == PIESOCKET
    assert c.extra["har_url"] == "https://demo.piesocket.com/v3/channel_123"
    assert c.request is not None and c.request.target == "/v3/channel_123"
    assert c.server == "143.244.202.177:443"
    assert any("https://" in n and "wss://" in n for n in capture.notes)


def test_headers_keep_order_case_and_duplicates(tmp_path: Path) -> None:
    har = json.loads(MITM.read_text())
    headers = har["log"]["entries"][0]["request"]["headers"]
    headers.append({"name": "origin", "value": "https://evil.example"})  # a second Origin
    path = tmp_path / "dup.har"
    path.write_text(json.dumps(har))
    c = read_har(path).connections[0]
    assert c.request is not None
    names = [h.name for h in c.request.headers]
    assert names[:4] == ["Host", "Connection", "Pragma", "Cache-Control"]
    assert names[-1] == "origin" and "dnt" in names
    assert c.request.headers.get_all("Origin") == (
        "https://www.piesocket.com",
        "https://evil.example",
    )
    assert c.origin == "https://www.piesocket.com"
    assert c.key == "aOpK58kffMOGmH4do+rCyw=="
    assert c.response is not None and c.response.reason == "Switching Protocols"
    assert c.accept_ok is True


# -- Playwright: real exports made on loopback by make/make_playwright_har.py ------------


def _playwright_checks(capture: Capture, version: str | None = "1.65.1") -> Connection:
    assert capture.creator == "Playwright"
    assert version is None or capture.creator_version == version
    assert len(capture.connections) == 1  # the page's document entry is not a WebSocket
    c = capture.connections[0]
    assert c.location is not None and c.location.entry == 1
    assert c.url is not None and c.url.startswith("ws://127.0.0.1:")
    assert c.url.endswith("/chat?room=1")
    assert c.origin is not None and c.origin.startswith("http://127.0.0.1:")
    assert c.status == 101 and c.http_version == "1.1"
    assert [(m.side, m.opcode, m.size, m.preview) for m in c.messages] == [
        ("client", 1, 5, b"hello"),
        ("server", 1, 7, b"welcome"),
        ("client", 2, 4, b"\x00\x01\x02\xff"),
    ]
    # Playwright writes milliseconds; the model holds seconds (made in 2026 on this machine).
    assert all(1.7e9 < m.time < 2.0e9 for m in c.messages)
    assert c.messages[0].time <= c.messages[1].time <= c.messages[2].time
    # The server closed with 1008, but Playwright records no close.
    assert c.close is None and c.close_known is False
    assert Fact.CLOSE_FRAMES not in c.can_show
    return c


def test_playwright_embed() -> None:
    _playwright_checks(read_har(PLAYWRIGHT / "playwright-embed.har"))


def test_playwright_attach_reads_the_side_file() -> None:
    c = _playwright_checks(read_har(PLAYWRIGHT / "playwright-attach.har"))
    assert Fact.MESSAGES in c.can_show and c.anomalies == ()


def test_playwright_attach_without_side_file_says_so(tmp_path: Path) -> None:
    shutil.copy(PLAYWRIGHT / "playwright-attach.har", tmp_path)
    capture = read_har(tmp_path / "playwright-attach.har")
    c = capture.connections[0]
    assert Fact.MESSAGES not in c.can_show and c.message_count is None
    assert [a.code for a in c.anomalies] == ["har.side_file_missing"]
    assert ".jsonl" in c.anomalies[0].detail
    assert any("side file" in n and "Playwright" in n for n in capture.notes)
    assert c.status == 101  # the handshake is still there


def test_side_file_outside_the_har_folder_is_not_read(tmp_path: Path) -> None:
    har = json.loads((PLAYWRIGHT / "playwright-attach.har").read_text())
    har["log"]["entries"][1]["response"]["content"]["_file"] = "../../etc/passwd"
    path = tmp_path / "a" / "x.har"
    path.parent.mkdir()
    path.write_text(json.dumps(har))
    c = read_har(path).connections[0]
    assert [a.code for a in c.anomalies] == ["har.side_file_outside"]
    assert Fact.MESSAGES not in c.can_show


# -- exporter quirks, files derived from real exports (tests/data/README.md) ------------


def test_chrome_sanitized_credentials_are_unknown() -> None:
    capture = read_har(DERIVED / "chrome-sanitized.har")
    assert Fact.CREDENTIALS not in capture.can_show
    assert all(Fact.CREDENTIALS not in c.can_show for c in capture.connections)
    assert any("sanitized" in n for n in capture.notes)
    assert any(
        n.startswith("Chrome/Edge (WebInspector) HAR exports record no close")
        for n in capture.notes
    )
    assert [c.url for c in capture.connections] == [
        PIESOCKET + API_KEY,
        PIESOCKET,
        PIESOCKET + API_KEY,
    ]
    assert all("har_url" not in c.extra for c in capture.connections)  # wss:// as written
    # The unsanitized original (mitmproxy) shows credentials.
    original = read_har(MITM)
    assert Fact.CREDENTIALS in original.can_show
    assert all(Fact.CREDENTIALS in c.can_show for c in original.connections)


def test_chrome_error_message_is_an_anomaly_not_a_message() -> None:
    c = read_har(DERIVED / "chrome-error.har").connections[0]
    assert per_side(c) == (2, 1) and len(c.messages) == 3
    (a,) = c.anomalies
    assert a.code == "har.websocket_error"
    assert "net::ERR_CONNECTION_RESET" in a.detail
    assert a.location is not None and (a.location.entry, a.location.message) == (0, 3)


def test_httptoolkit_close_codes() -> None:
    capture = read_har(DERIVED / "httptoolkit.har")
    assert capture.creator == "HTTP Toolkit"
    assert Fact.CLOSE_FRAMES in capture.can_show
    first, aborted, normal = capture.connections
    assert all(c.close_known for c in capture.connections)
    assert first.close is not None
    assert (first.close.code, first.close.reason) == (1008, "Unknown api key")
    assert first.close.side_known is False  # HTTP Toolkit does not say who closed
    assert first.close.echoed is None and first.end == "unknown"
    assert first.close.time == pytest.approx(1693314200.586985)
    assert (first.close.client_messages_before, first.close.server_messages_before) == (0, 1)
    assert first.close.since_last_message == pytest.approx(0.25)
    assert aborted.close is None
    assert [a.code for a in aborted.anomalies] == ["har.websocket_aborted"]
    assert normal.close is not None and (normal.close.code, normal.close.reason) == (1000, "")
    assert (normal.close.client_messages_before, normal.close.server_messages_before) == (2, 1)
    # Node's lower-case header names are kept as written; no serverIPAddress, no server.
    assert first.request is not None and first.request.headers.items[0].name == "host"
    assert first.origin == "https://www.piesocket.com"
    assert first.server is None
    assert any("not which side sent the close" in n for n in capture.notes)
    assert not any("record no close frames" in n for n in capture.notes)


@pytest.mark.parametrize(
    ("name", "creator", "http_version"),
    [("firefox.har", "Firefox", "1.1"), ("safari.har", "WebKit Web Inspector", None)],
)
def test_firefox_and_safari_messages_are_unknown(
    name: str, creator: str, http_version: str | None
) -> None:
    capture = read_har(DERIVED / name)
    assert capture.creator == creator
    (c,) = capture.connections
    assert c.status == 101 and c.origin == "https://www.piesocket.com"
    assert c.url is not None and c.url.startswith(PIESOCKET)
    assert Fact.MESSAGES not in c.can_show and Fact.MESSAGES not in capture.can_show
    assert c.message_count is None
    assert c.http_version == http_version
    assert any("messages are unknown" in n for n in capture.notes)


def test_websocket_over_http2() -> None:
    (c,) = read_har(DERIVED / "http2.har").connections
    assert c.status == 200 and c.http_version == "2"
    assert c.request is not None
    assert (c.request.method, c.request.target, c.request.version) == (
        "CONNECT",
        "/chat?room=1",
        "HTTP/2",
    )
    assert c.request.headers.get(":protocol") == "websocket"
    assert c.host is not None and c.host.startswith("127.0.0.1:")
    assert c.url is not None and c.url.startswith("wss://127.0.0.1:")
    assert per_side(c) == (2, 1)
    # The same session as the Playwright export, with times written in seconds.
    embed = read_har(PLAYWRIGHT / "playwright-embed.har").connections[0]
    assert c.origin == embed.origin
    assert [m.size for m in c.messages] == [m.size for m in embed.messages]


def test_control_opcodes_are_not_data_messages() -> None:
    capture = read_har(DERIVED / "control-opcodes.har")
    (c,) = capture.connections
    assert per_side(c) == (2, 3) and [m.opcode for m in c.messages] == [1] * 5
    assert c.extra["har_control_frames"] == 2  # the ping and the pong
    assert c.close_known is True and Fact.CLOSE_FRAMES in c.can_show
    assert c.close is not None
    assert (c.close.side, c.close.code, c.close.reason) == ("server", 1008, "policy")
    assert c.close.echoed is True and c.close.echo_code == 1008
    assert c.end == "close-handshake"
    assert (c.close.client_messages_before, c.close.server_messages_before) == (2, 3)
    assert c.close.location is not None and c.close.location.message == 7


def test_nulls_and_missing_fields() -> None:
    capture = read_har(DERIVED / "nulls.har")
    assert capture.creator == "mitmproxy" and capture.creator_version is None
    assert capture.anomalies == ()
    (c,) = capture.connections
    assert c.start is None and c.server is None
    assert c.status == 101 and c.http_version == "1.1"
    assert c.response is not None and c.response.reason is None
    assert c.request is not None and c.request.headers.get("X-Empty") == ""
    assert per_side(c) == (2, 1)
    assert [a.code for a in c.anomalies] == ["har.message_time_unknown"]
    assert c.anomalies[0].location is not None and c.anomalies[0].location.message == 1


def test_malformed_entries_are_reported_and_the_rest_is_read() -> None:
    capture = read_har(DERIVED / "malformed-entries.har")
    bad = {a.location.entry or 0: a for a in capture.anomalies if a.location is not None}
    assert [a.code for a in capture.anomalies] == ["har.malformed_entry"] * 3
    assert sorted(bad) == [1, 3, 4]
    assert "entry 1" in bad[1].detail and "string" in bad[1].detail
    assert '"request"' in bad[3].detail
    assert '"_webSocketMessages"' in bad[4].detail
    first, second = capture.connections
    assert [c.location.entry for c in (first, second) if c.location] == [0, 2]
    assert per_side(second) == (3, 2)  # foo, bar, the string-opcode one; and the bad base64
    codes = [a.code for a in second.anomalies]
    assert codes == [
        "har.malformed_message",
        "har.malformed_message",
        "har.malformed_message",
        "har.message_not_base64",
    ]
    assert [a.location.message for a in second.anomalies if a.location] == [3, 4, 5, 6]


# -- the container: BOM, UTF-16, gzip, no pages -----------------------------------------


def _summary(capture: Capture) -> list[tuple[Any, ...]]:
    return [(c.url, c.status, c.origin, per_side(c)) for c in capture.connections]


@pytest.mark.parametrize("variant", ["bom", "utf16", "gzip-named-har", "har.gz", "no-pages"])
def test_container_variants_read_the_same(tmp_path: Path, variant: str) -> None:
    raw = MITM.read_bytes()
    path = tmp_path / "websocket.har"
    if variant == "bom":
        path.write_bytes(b"\xef\xbb\xbf" + raw)
    elif variant == "utf16":
        path.write_bytes(raw.decode("utf-8").encode("utf-16"))
    elif variant == "gzip-named-har":
        path.write_bytes(gzip.compress(raw))  # gzip by content, whatever the name
    elif variant == "har.gz":
        path = tmp_path / "websocket.har.gz"
        path.write_bytes(gzip.compress(raw))
    else:
        har = json.loads(raw)
        del har["log"]["pages"]
        for e in har["log"]["entries"]:
            e.pop("pageref", None)
        path.write_text(json.dumps(har))
    capture = read_har(path)
    assert _summary(capture) == _summary(read_har(MITM))
    assert capture.connections[0].id == "websocket#0"


def test_pipeline_reads_a_gzipped_har(tmp_path: Path) -> None:
    path = tmp_path / "x.har.gz"
    path.write_bytes(gzip.compress(PCAP2HAR.read_bytes()))
    capture = load_capture(path)
    assert capture.format == "har" and len(capture.connections) == 1


def test_text_size_is_utf8_bytes(tmp_path: Path) -> None:
    har = json.loads(PCAP2HAR.read_text())
    har["log"]["entries"][0]["_webSocketMessages"][1]["data"] = "héllo ☃"
    path = tmp_path / "utf8.har"
    path.write_text(json.dumps(har))
    m = read_har(path).connections[0].messages[1]
    assert (m.size, m.preview) == (10, "héllo ☃".encode())


def test_limits_bound_records_not_counts() -> None:
    c = read_har(PCAP2HAR, limits=Limits(max_messages_per_connection=2, max_preview_bytes=4))
    conn = c.connections[0]
    assert len(conn.messages) == 2
    assert per_side(conn) == (2, 3)  # counted past the limit
    assert conn.messages[0].preview == b"Welc" and conn.messages[0].size == 23
    assert [a.code for a in conn.anomalies] == ["limit.messages_per_connection"]


def test_non_websocket_entries_are_skipped() -> None:
    # play-chat.har has 10 entries, only entry 9 is a WebSocket.
    capture = read_har(GATLING)
    assert [c.location.entry for c in capture.connections if c.location] == [9]


def test_upgrade_header_alone_finds_the_websocket(tmp_path: Path) -> None:
    har = json.loads(MITM.read_text())
    e = har["log"]["entries"][0]
    del e["_resourceType"], e["_webSocketMessages"]
    e["response"]["status"] = 0  # no response recorded
    path = tmp_path / "upgrade.har"
    path.write_text(json.dumps(har))
    capture = read_har(path)
    assert len(capture.connections) == 3
    c = capture.connections[0]
    assert c.response is None and c.request is not None
    assert Fact.HANDSHAKE_RESPONSE not in c.can_show


# -- bad input: one clear sentence ------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        (b"", "file is empty"),
        (b"  \n\t ", "only white space"),
        (bytes(range(128, 256)), "not utf-8"),
        (b'{"log": {"version": "1.2", "entries": [{"request": ', "truncated json"),
        (b'{"log": {"entries": [{"request": "unterminated', "truncated json"),
        (b'{"log": {"entries": []}} trailing', "invalid json at line 1 column 26"),
        (b"[1, 2]", "not a har: the json is a list"),
        (b'{"hello": "world"}', 'no "log" object'),
        (b'{"log": {"version": "1.2"}}', 'no "entries" list'),
        (b'{"log": {"entries": {}}}', 'no "entries" list'),
        (b'{"log": {"entries": [' + b"1" * 5000 + b"]}}", "unreadable json value"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (gzip.compress(b"")[:-4], "gzip"),
        (gzip.compress(b""), "empty (after gzip"),
    ],
    ids=[
        "missing",
        "empty",
        "whitespace",
        "random-bytes",
        "truncated",
        "truncated-string",
        "trailing-garbage",
        "json-list",
        "json-not-har",
        "no-entries",
        "entries-not-list",
        "huge-integer",
        "deep-nesting",
        "corrupt-gzip",
        "empty-gzip",
    ],
)
def test_bad_input_raises_one_sentence(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "bad.har"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_har(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": ")
    assert expected in message.lower()
    assert "\n" not in message


def test_truncated_json_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "cut.har"
    path.write_bytes(MITM.read_bytes()[:5000])
    with pytest.raises(InputError, match=r"truncated JSON: .* at line \d+ column \d+"):
        read_har(path)


def test_random_bytes_fail_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "noise.har"
    path.write_bytes(b"{" + os.urandom(4096))
    with pytest.raises(InputError):
        read_har(path)


def test_directory_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        read_har(tmp_path)


# -- any HAR-shaped input gives connections or anomalies, never an unexpected exception ---

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
_TEMPLATE = json.loads(MITM.read_text())["log"]["entries"][2]
_KEYS = [
    "request",
    "response",
    "_webSocketMessages",
    "_webSocketClose",
    "_resourceType",
    "serverIPAddress",
    "startedDateTime",
]


@st.composite
def mangled_entries(draw: st.DrawFn) -> object:
    """A real WebSocket entry with some fields, headers or messages replaced at random."""
    entry: dict[str, Any] = json.loads(json.dumps(_TEMPLATE))
    for key in draw(st.lists(st.sampled_from(_KEYS), max_size=3)):
        entry[key] = draw(json_values)
    messages = entry.get("_webSocketMessages")
    if isinstance(messages, list) and messages and draw(st.booleans()):
        messages[0] = draw(json_values)
    request = entry.get("request")
    if isinstance(request, dict) and draw(st.booleans()):
        request[draw(st.sampled_from(["url", "headers", "method", "httpVersion"]))] = draw(
            json_values
        )
    return entry if draw(st.booleans()) else draw(json_values)


@settings(max_examples=150, deadline=None)
@given(st.lists(mangled_entries(), min_size=1, max_size=3))
def test_any_entries_give_a_capture(entries: list[object]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.har"
        path.write_text(json.dumps({"log": {"entries": entries}}))
        capture = read_har(path)
    # Each entry is a connection, a reported malformed entry, or not a WebSocket: never two.
    used = [c.location.entry for c in capture.connections if c.location]
    used += [a.location.entry for a in capture.anomalies if a.location]
    assert len(used) == len(set(used)) == len(capture.connections) + len(capture.anomalies)
    assert all(a.code == "har.malformed_entry" for a in capture.anomalies)
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            assert n in used and n not in [
                c.location.entry for c in capture.connections if c.location
            ]
    for c in capture.connections:
        assert c.close_known is (c.close is not None or Fact.CLOSE_FRAMES in c.can_show)
        assert all(m.size >= 0 for m in c.messages)


# -- a fresh Playwright export, when Playwright is installed beside the make script -----

MAKE = HAR / "make"


@pytest.mark.skipif(
    not (MAKE / "node_modules" / "playwright-core").is_dir()
    or shutil.which("node") is None
    or not Path("/usr/bin/chromium").exists(),
    reason="needs `npm install --no-save playwright-core` in tests/data/har/make and chromium",
)
def test_fresh_playwright_export_reads_like_the_committed_one(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(MAKE / "make_playwright_har.py"), str(tmp_path)],
        check=True,
        timeout=180,
        capture_output=True,
    )
    # Whatever Playwright version is installed: the facts of the session are the same.
    _playwright_checks(read_har(tmp_path / "playwright-embed.har"), version=None)
    c = _playwright_checks(read_har(tmp_path / "playwright-attach.har"), version=None)
    assert c.anomalies == ()
