"""HAR input: WebSocket connections from any real HAR exporter, into the session model.

What haralyzer does for us, and where we bypass it
--------------------------------------------------
haralyzer holds the HAR container: ``HarParser`` over the decoded ``log`` (creator,
entries) and ``HarEntry`` with its ``Request``/``Response`` views (method, url, headers,
status, serverIPAddress, ``startedDateTime`` parsed by dateutil). We bypass it where it
fails on real files:

- reading the file: ``HarParser.from_file`` opens the path as UTF-8 text, so a BOM, UTF-16,
  gzip (``.har.gz``, recognised by content, not name) and truncated JSON all raise
  tracebacks. We read the bytes ourselves and hand haralyzer the decoded dict;
- missing and null fields: haralyzer indexes ``raw_entry["..."]`` and raises
  ``KeyError``/``TypeError`` (Chrome 2014 exports have no request ``httpVersion``; HTTP
  Toolkit writes no ``serverIPAddress``). Every access goes through ``_get``, which turns
  those into ``None``;
- ``pages``: haralyzer's page views require ``pages`` and ``pageref``; we never use them;
- WebSocket fields (``_resourceType``, ``_webSocketMessages``, ``_webSocketClose``,
  ``response.content._file``) are not known to haralyzer: read from the raw entry here and
  in ``analyzer.inputs.har_messages``.

Which entries are WebSockets
----------------------------
Any of: ``_resourceType: websocket``, ``_webSocketMessages`` or ``_webSocketClose``, a
ws/wss URL, an ``Upgrade: websocket`` request header, a ``:protocol: websocket``
pseudo-header (RFC 8441, WebSocket over HTTP/2: status 200, no 101), or status 101.

Exporters and their quirks
--------------------------
- Chrome/Edge: messages with times in seconds; no close frames; "Export HAR (sanitized)"
  drops Cookie, Set-Cookie and Authorization, so credentials are unknown unless the file
  shows one of them somewhere.
- Playwright: times in milliseconds; with ``content: "attach"`` the messages are in a
  ``.jsonl`` side file named by ``response.content._file`` relative to the HAR.
- mitmproxy (and pcap2har) write WebSocket URLs as ``https://``/``http://``. The
  connection's ``url`` is reported with the WebSocket scheme (``wss://``/``ws://``, the rest
  unchanged), and the URL as written is kept in ``Connection.extra["har_url"]``, so nothing
  the file said is lost.
- HTTP Toolkit: ``_webSocketClose`` ({code, reason, timestamp} or ``"aborted"``) is the only
  close record HAR has: such an entry has ``close_known`` True. It does not say which side
  closed: ``Close.side_known`` is False there.
- Firefox and Safari: a 101 entry without messages: messages unknown, not absent.

Errors and anomalies
--------------------
A file that is not a HAR at all raises ``InputError`` with one sentence (truncated JSON
with line and column, JSON without ``log.entries``...). An entry that is not shaped like a
HAR entry is skipped and recorded as a capture-level ``har.malformed_entry`` anomaly; the
rest of the file is read. Oddities inside a WebSocket entry are anomalies on its
connection.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from haralyzer import HarEntry, HarParser

from analyzer.errors import InputError
from analyzer.inputs.har_messages import MessageLog, read_side_file, side_file
from analyzer.limits import DEFAULT_LIMITS, Limits
from analyzer.session.build import summarize_close
from analyzer.session.model import (
    Anomaly,
    Capture,
    Connection,
    Fact,
    Header,
    Headers,
    Location,
    Request,
    Response,
)
from analyzer.vocabulary import CloseSeen

__all__ = ["read_har"]

T = TypeVar("T")

_GZIP_MAGIC = b"\x1f\x8b"
_WS_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
_DEFAULT_PORTS = {"ws": 80, "wss": 443, "http": 80, "https": 443}
# Exporters that can leave credentials out ("Export HAR (sanitized)" since Chrome 130).
_SANITIZING = ("chrome", "chromium", "edge", "webinspector", "devtools")
_CREDENTIAL_HEADERS = ("cookie", "authorization", "set-cookie", "proxy-authorization")
# A HAR records handshakes, never frames, masks or the TCP ending.
_NEVER = frozenset({Fact.FRAMES, Fact.MASKS, Fact.TRANSPORT_END, Fact.ENDPOINTS})


class _BadEntry(Exception):
    """An entry not shaped like a HAR entry: skipped, reported as a capture anomaly."""


def read_har(path: Path, *, limits: Limits = DEFAULT_LIMITS) -> Capture:
    """Read a HAR file (plain or gzip, UTF-8 with or without BOM) into the session model.

    Raises ``InputError`` when the file cannot be read or is not a HAR.
    """
    log = _har_log(_load_json(path), path)
    creator, creator_version = _creator(HarParser({"log": log}))
    reader = _Reader(path, limits, creator)

    anomalies: list[Anomaly] = []
    connections: list[Connection] = []
    entries: list[object] = log["entries"]
    for index in range(len(entries)):
        # Each entry is let go once read: its messages' text is freed while the next
        # connection is built, so the parsed file and the model are not both held whole.
        raw, entries[index] = entries[index], None
        try:
            connection = reader.entry(index, raw)
        except _BadEntry as exc:
            anomalies.append(
                Anomaly(
                    "har.malformed_entry",
                    f"entry {index} was skipped: {exc}",
                    Location(str(path), entry=index),
                )
            )
            continue
        if connection is not None:
            connections.append(connection)

    credentials = reader.credentials_shown or not _sanitizing(creator)
    if not credentials:
        connections = [
            dataclasses.replace(c, can_show=c.can_show - {Fact.CREDENTIALS}) for c in connections
        ]
    can_show: frozenset[str] = frozenset({Fact.HANDSHAKE_REQUEST, Fact.HANDSHAKE_RESPONSE})
    for c in connections:
        can_show |= c.can_show
    if credentials:
        can_show |= {Fact.CREDENTIALS}
    else:
        can_show -= {Fact.CREDENTIALS}
    return Capture(
        path=str(path),
        format="har",
        creator=creator,
        creator_version=creator_version,
        can_show=can_show,
        connections=tuple(connections),
        anomalies=tuple(anomalies),
        notes=_notes(creator, can_show, reader),
    )


# -- the container ------------------------------------------------------------------------


def _load_json(path: Path) -> Any:
    text = _read_text(path)
    if not text or text.isspace():  # not strip(): that would copy the whole file
        raise InputError("file holds only white space, not a HAR", path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise InputError(
                f"truncated JSON: the file ends before the HAR is complete ({exc.msg} at {where})",
                path,
            ) from None
        raise InputError(f"not a HAR: invalid JSON at {where} ({exc.msg})", path) from None
    except RecursionError:
        raise InputError("not a HAR: JSON nested too deeply to read", path) from None
    except ValueError as exc:  # e.g. an integer past Python's 4300-digit limit
        raise InputError(f"not a HAR: unreadable JSON value ({exc})", path) from None


def _read_text(path: Path) -> str:
    """The file's text; its bytes (and gzip's) are let go before the JSON is parsed."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a capture file", path) from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror or exc})", path) from None
    if not raw:
        raise InputError("file is empty", path)
    if raw.startswith(_GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"gzip data is corrupt or truncated ({exc})", path) from None
        if not raw:
            raise InputError("file is empty (after gzip decompression)", path)
    return _decode(raw, path)


def _decode(raw: bytes, path: Path) -> str:
    # RFC 8259 8.1: JSON is UTF-8, and "implementations MAY ignore the presence of a byte
    # order mark". Windows tools also write UTF-16 with a BOM: read that too.
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError("not a HAR: UTF-16 text that does not decode", path) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not a HAR: not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start})",
            path,
        ) from None


def _har_log(data: Any, path: Path) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError(
            f'not a HAR: the JSON is {_json_kind(data)}, not an object with "log"', path
        )
    log = data.get("log")
    if not isinstance(log, dict):
        raise InputError('not a HAR: the JSON has no "log" object', path)
    entries = log.get("entries")
    if not isinstance(entries, list):
        raise InputError('not a HAR: "log" has no "entries" list', path)
    return log


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _get(read: Callable[[], T]) -> T | None:
    """haralyzer's accessors raise on missing or null fields: that is ``None`` here."""
    try:
        return read()
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, OverflowError):
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _creator(parser: Any) -> tuple[str | None, str | None]:
    creator = _get(lambda: parser.creator)
    if not isinstance(creator, dict):
        return _text(creator), None
    name = _text(creator.get("name"))
    version = creator.get("version")
    return name, (str(version) if isinstance(version, str | int | float) else None)


def _sanitizing(creator: str | None) -> bool:
    return creator is not None and any(s in creator.lower() for s in _SANITIZING)


# -- one entry --------------------------------------------------------------------------


class _Reader:
    """Turns HAR entries into connections, numbering them in file order."""

    def __init__(self, path: Path, limits: Limits, creator: str | None) -> None:
        self.path = path
        self.capture = str(path)
        self.limits = limits
        self.creator = creator
        stem = path.name
        for suffix in (".gz", ".har", ".json"):
            stem = stem.removesuffix(suffix)
        self.stem = stem or path.name
        self.credentials_shown = False  # some header shows credentials were kept
        self.side_files_missing: list[str] = []
        self.rewritten_schemes: set[str] = set()
        self.messages_unknown = 0
        self.close_sides_unknown = 0
        self.count = 0

    def entry(self, index: int, raw: object) -> Connection | None:
        if not isinstance(raw, dict):
            raise _BadEntry(f"it is {_json_kind(raw)}, not an object")
        for part in ("request", "response"):
            value = raw.get(part)
            if value is not None and not isinstance(value, dict):
                raise _BadEntry(f'"{part}" is {_json_kind(value)}, not an object')
        entry = HarEntry(raw)
        url = _get(lambda: entry.request.url)
        if url is not None and not isinstance(url, str):
            raise _BadEntry(f'"request.url" is {_json_kind(url)}, not a string')
        messages = raw.get("_webSocketMessages")
        if messages is not None and not isinstance(messages, list):
            raise _BadEntry(f'"_webSocketMessages" is {_json_kind(messages)}, not a list')

        anomalies: list[Anomaly] = []
        where = Location(self.capture, entry=index)
        request_headers = self._headers(_get(lambda: entry.request.headers), where, anomalies)
        response_headers = self._headers(_get(lambda: entry.response.headers), where, anomalies)
        if request_headers is not None:
            self._note_credentials(request_headers)
        if response_headers is not None:
            self._note_credentials(response_headers)
        if _get(lambda: entry.request.cookies):
            self.credentials_shown = True
        status = _get(lambda: entry.response.status)
        if isinstance(status, bool) or not isinstance(status, int):
            status = None
        if not _is_websocket(raw, url, request_headers, status):
            return None

        number = self.count
        self.count += 1
        req_version = _version(_get(lambda: entry.request.httpVersion))
        resp_version = _version(_get(lambda: entry.response.httpVersion))
        pseudo = request_headers.get(":protocol") if request_headers is not None else None
        http_version = "2" if pseudo is not None else (req_version or resp_version)
        version_text = {"1.1": "HTTP/1.1", "2": "HTTP/2", "3": "HTTP/3"}

        ws_url, scheme_rewritten = _ws_url(url)
        request: Request | None = None
        if request_headers is not None or url is not None:
            method = _get(lambda: entry.request.method)
            if request_headers is not None and request_headers.get(":method"):
                method = request_headers.get(":method")
            request = Request(
                method=method if isinstance(method, str) else "",
                target=_target(url, request_headers),
                headers=request_headers or Headers(),
                version=version_text.get(http_version or ""),
                location=where,
            )
        response: Response | None = None
        if status is not None and status > 0:
            reason = _get(lambda: entry.response.statusText)
            response = Response(
                status=status,
                headers=response_headers or Headers(),
                reason=reason if isinstance(reason, str) and reason else None,
                version=version_text.get(resp_version or http_version or ""),
                location=where,
            )

        start = _start(entry)
        log = MessageLog(self.capture, index, self.limits, fallback_time=start)
        messages_known = self._messages(raw, messages, log)
        close_record = raw.get("_webSocketClose")
        closes = list(log.closes)
        side_known = True
        close_known = bool(closes)
        if close_record is not None:
            close_known = True
            seen = self._toolkit_close(close_record, log)
            if seen is not None:
                closes.insert(0, seen)
                side_known = False
                self.close_sides_unknown += 1
        close, end = summarize_close(closes, log.messages, "unknown")
        if close is not None and not side_known:
            close = dataclasses.replace(close, side_known=False)
        anomalies.extend(log.anomalies)

        can_show: set[str] = {Fact.CREDENTIALS}
        if request is not None and len(request.headers):
            can_show.add(Fact.HANDSHAKE_REQUEST)
        if response is not None:
            can_show.add(Fact.HANDSHAKE_RESPONSE)
        if messages_known:
            can_show |= {Fact.MESSAGES, Fact.MESSAGE_PAYLOADS}
        else:
            self.messages_unknown += 1
        if close_known:
            can_show.add(Fact.CLOSE_FRAMES)

        extra: dict[str, object] = {}
        if scheme_rewritten and url is not None:
            extra["har_url"] = url
            self.rewritten_schemes.add(urlsplit(url).scheme.lower())
        if log.control_frames:
            extra["har_control_frames"] = log.control_frames
        times = [m.time for m in log.messages] + [c.time for c in closes if c.time is not None]
        return Connection(
            id=f"{self.stem}#{number}",
            capture=self.capture,
            url=ws_url,
            client=None,
            server=_server(_get(lambda: entry.serverAddress), raw, url),
            start=start,
            end_time=max(times) if times else None,
            request=request,
            response=response,
            messages=tuple(log.messages),
            frames=None,
            close=close,
            close_known=close_known,
            end=end,
            can_show=frozenset(can_show - _NEVER),
            anomalies=tuple(anomalies),
            location=where,
            http_version=http_version,
            message_count=dict(log.count) if messages_known else None,
            extra=extra,
        )

    def _headers(self, value: object, where: Location, anomalies: list[Anomaly]) -> Headers | None:
        """Header fields in order, original case, duplicates kept; None when absent."""
        if value is None:
            return None
        if not isinstance(value, list):
            anomalies.append(
                Anomaly("har.malformed_headers", f"headers are {_json_kind(value)}", where)
            )
            return None
        items: list[Header] = []
        for n, h in enumerate(value):
            name = h.get("name") if isinstance(h, dict) else None
            if not isinstance(name, str):
                anomalies.append(
                    Anomaly("har.malformed_headers", f"header {n} has no name: {h!r:.80}", where)
                )
                continue
            if len(items) >= self.limits.max_header_count:
                anomalies.append(
                    Anomaly(
                        "limit.header_count",
                        f"more than {self.limits.max_header_count} header fields: "
                        "the rest are not kept",
                        where,
                    )
                )
                break
            raw_value = h.get("value")
            items.append(Header(name, "" if raw_value is None else str(raw_value)))
        return Headers(tuple(items))

    def _note_credentials(self, headers: Headers) -> None:
        if any(h.name.lower() in _CREDENTIAL_HEADERS for h in headers):
            self.credentials_shown = True

    def _messages(self, raw: dict[str, Any], messages: list[Any] | None, log: MessageLog) -> bool:
        """Read the entry's messages into ``log``; False when they are unknown."""
        if messages is not None:
            log.read(messages)
            return True
        response = raw.get("response")
        content = response.get("content") if isinstance(response, dict) else None
        name = content.get("_file") if isinstance(content, dict) else None
        if not isinstance(name, str) or not name:
            return False
        path = side_file(self.path, name)
        if path is None:
            log.anomaly(
                "har.side_file_outside",
                f"the messages are said to be in {name!r}, which is not beside the HAR: not read",
            )
            return False
        try:
            read_side_file(path, log)
        except OSError as exc:
            self.side_files_missing.append(name)
            log.anomaly(
                "har.side_file_missing",
                f"the messages are in the side file {name!r}, which cannot be read "
                f"({exc.strerror or exc}): messages unknown",
            )
            return False
        return True

    def _toolkit_close(self, record: object, log: MessageLog) -> CloseSeen | None:
        """HTTP Toolkit's ``_webSocketClose``: {code, reason, timestamp} or "aborted"."""
        if record == "aborted":
            log.anomaly(
                "har.websocket_aborted",
                "the exporter recorded the WebSocket as aborted: it ended without a close frame",
            )
            return None
        if not isinstance(record, dict):
            log.anomaly("har.malformed_close", f"_webSocketClose is {record!r:.80}")
            return None
        code = record.get("code")
        reason = record.get("reason")
        stamp = record.get("timestamp")
        time: float | None = None
        if isinstance(stamp, int | float) and not isinstance(stamp, bool) and stamp > 0:
            time = float(stamp) / 1000.0 if stamp > 1e11 else float(stamp)
        return CloseSeen(
            side="server",  # not recorded: Close.side_known is set False for this close
            time=time,
            code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            reason=reason if isinstance(reason, str) else None,
            location=log.location(),
        )


def _is_websocket(
    raw: dict[str, Any], url: str | None, headers: Headers | None, status: int | None
) -> bool:
    kind = raw.get("_resourceType")
    if isinstance(kind, str) and kind.lower() == "websocket":
        return True
    if "_webSocketMessages" in raw or "_webSocketClose" in raw:
        return True
    if url is not None and urlsplit(url.strip()).scheme.lower() in ("ws", "wss"):
        return True
    if headers is not None:
        if any(t.lower() == "websocket" for t in headers.tokens("Upgrade")):
            return True
        protocol = headers.get(":protocol")
        if protocol is not None and protocol.strip().lower() == "websocket":
            return True
    return status == 101


def _version(value: object) -> str | None:
    """ "HTTP/1.1", "http/1.1", "h2", "HTTP/2.0", "h3" -> "1.1", "2", "3"."""
    if not isinstance(value, str):
        return None
    v = value.strip().lower().removeprefix("http/")
    if v in ("1.1", "1.0"):
        return v
    if v in ("2", "2.0", "h2", "h2c"):
        return "2"
    if v in ("3", "3.0", "h3") or v.startswith("h3-"):
        return "3"
    return None


def _ws_url(url: str | None) -> tuple[str | None, bool]:
    """The URL with a WebSocket scheme, and whether the scheme was rewritten."""
    if url is None or not url.strip():
        return None, False
    url = url.strip()
    scheme, sep, rest = url.partition(":")
    ws = _WS_SCHEMES.get(scheme.lower()) if sep else None
    if ws is None or scheme.lower() == ws:
        return url, False  # already ws/wss, or a scheme we do not rewrite
    return ws + ":" + rest, True


def _target(url: str | None, headers: Headers | None) -> str:
    """request-target: ``:path`` for HTTP/2, else path and query of the URL."""
    if headers is not None:
        path = headers.get(":path")
        if path:
            return path
    if not url:
        return ""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return target


def _start(entry: Any) -> float | None:
    started = _get(lambda: entry.startTime)
    if not isinstance(started, datetime):
        return None
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return started.timestamp()


def _server(address: object, raw: dict[str, Any], url: str | None) -> str | None:
    """``ip:port`` from serverIPAddress and the URL's port (or Playwright's _serverPort)."""
    if not isinstance(address, str) or not address.strip():
        return None
    host = address.strip().strip("[]")
    port: int | None = None
    explicit = raw.get("_serverPort")
    if isinstance(explicit, int) and not isinstance(explicit, bool) and 0 < explicit < 65536:
        port = explicit
    elif url:
        try:
            parts = urlsplit(url.strip())
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
        except ValueError:
            port = None
    if port is None:
        return None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _exporter(creator: str | None) -> str:
    """A reader's name for the exporter: Chrome and Edge DevTools sign "WebInspector"."""
    if creator is None:
        return "This HAR export"
    if creator.lower().replace(" ", "") == "webinspector":
        return "Chrome/Edge (WebInspector) HAR exports"
    return f"{creator} HAR exports"


def _notes(creator: str | None, can_show: frozenset[str], reader: _Reader) -> tuple[str, ...]:
    who = _exporter(creator)
    notes = [
        "HAR files record no frames: FIN and RSV bits, masks and fragmentation are unknown.",
        "HAR files record no client port and no transport end (FIN or RST).",
    ]
    if Fact.CLOSE_FRAMES not in can_show:
        notes.append(
            f"{who} record no close frames: who closed, the close code and reason are "
            "unknown (HTTP Toolkit's HAR or a packet capture shows them)."
        )
    if reader.messages_unknown:
        notes.append(
            f"{reader.messages_unknown} WebSocket entr"
            f"{'y has' if reader.messages_unknown == 1 else 'ies have'} no message list "
            "(Firefox and Safari do not export messages): messages are unknown, not absent."
        )
    if reader.close_sides_unknown:
        notes.append(
            f"{who} record the close code and reason but not which side sent the close: "
            "the close's side is unknown (Close.side_known is False)."
        )
    for name in reader.side_files_missing:
        notes.append(
            f"The messages of a Playwright entry are in the side file {name!r}, which is "
            "not beside the HAR: copy it there to see them."
        )
    if Fact.CREDENTIALS not in can_show:
        notes.append(
            f"{who} may be sanitized (Cookie, Set-Cookie and Authorization removed): whether "
            "credentials were sent is unknown, not absent."
        )
    for scheme in sorted(reader.rewritten_schemes):
        notes.append(
            f"WebSocket URLs written as {scheme}:// are reported as "
            f"{_WS_SCHEMES[scheme]}://; the URL as written is kept in extra.har_url."
        )
    return tuple(notes)
