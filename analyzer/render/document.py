"""The report document: one redacted, JSON-ready view of an ``Analysis``.

Every format is drawn from this document, never from the model directly, so that
redaction is applied once and the same way everywhere (a secret hidden in the HTML is
hidden in the SARIF too), and the redaction counts describe what the reader got.

The document *is* the JSON report (schema ``ws-analyzer/report/v1``, see
``analyzer/schemas/report-v1.schema.json``); the other renderers read fields from it.
"""

from __future__ import annotations

import re
import time as _time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from analyzer import __version__
from analyzer.engine.analysis import Analysis
from analyzer.engine.findings import Evidence, Finding, NotEvaluable, Severity
from analyzer.render.options import RenderOptions
from analyzer.render.preview import payload_preview
from analyzer.render.redact import Redactor
from analyzer.session.model import (
    Anomaly,
    Capture,
    Close,
    Connection,
    Frame,
    Headers,
    Location,
    Message,
    Opcode,
)

SCHEMA = "ws-analyzer/report/v1"
SENTENCE_END_RE = re.compile(r"(?<=[a-z0-9)\"'])\.\s+(?=[A-Z])")

Doc = dict[str, Any]

CLOSE_NAMES = {
    1000: "Normal Closure",
    1001: "Going Away",
    1002: "Protocol Error",
    1003: "Unsupported Data",
    1005: "No Status Received",
    1006: "Abnormal Closure",
    1007: "Invalid Frame Payload Data",
    1008: "Policy Violation",
    1009: "Message Too Big",
    1010: "Mandatory Extension",
    1011: "Internal Error",
    1012: "Service Restart",
    1013: "Try Again Later",
    1014: "Bad Gateway",
    1015: "TLS Handshake",
}

OPCODE_NAMES = {int(o): o.name.lower() for o in Opcode}


def iso_time(t: float | None) -> str | None:
    if t is None:
        return None
    try:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
    except (OverflowError, OSError, ValueError):
        return None


def build_document(analysis: Analysis, options: RenderOptions) -> Doc:
    """The whole report as plain data, redacted per ``options``."""
    red = Redactor(options.redact, options.redact_headers, options.redact_params)
    now = options.now if options.now is not None else _time.time()
    captures = [_capture(c, red) for c in analysis.captures]
    connections = [_connection(k, red) for c in analysis.captures for k in c.connections]
    by_id = {c["id"]: c for c in connections}
    findings = [_finding(f, red) for f in _ordered(analysis.findings)]
    not_evaluable = [_not_evaluable(n, red) for n in analysis.not_evaluable]
    doc: Doc = {
        "schema": SCHEMA,
        "tool": {"name": "ws-analyzer", "version": __version__},
        "generated": now,
        "generated_iso": iso_time(now),
        "captures": captures,
        "connections": connections,
        "findings": findings,
        "not_evaluable": not_evaluable,
        "rules_run": list(analysis.rules_run),
    }
    chains = analysis.extra.get("hops")
    if chains:  # hop chains (analyzer.session.hops): only when captures were linked
        from analyzer.render.hops import hops_document

        doc["hops"] = hops_document(chains, red)
    doc["verdict"] = verdict(doc, by_id)
    doc["redaction"] = {
        "enabled": options.redact,
        "counts": red.summary(),
        "extra_headers": list(options.redact_headers),
        "extra_params": list(options.redact_params),
    }
    return doc


def _ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first; then earliest; the order the engine gave breaks ties."""
    indexed = list(enumerate(findings))
    indexed.sort(key=lambda p: (-int(p[1].severity), p[1].time is None, p[1].time or 0, p[0]))
    return [f for _, f in indexed]


def _loc(loc: Location | None) -> dict[str, object] | None:
    return loc.to_json() if loc is not None else None


SECRETS_WARNING = (
    "this capture embeds TLS keys (a pcapng Decryption Secrets Block): sharing it shares "
    "the keys, and anyone with the file can decrypt its TLS connections"
)


def _anomaly(a: Anomaly, red: Redactor) -> Doc:
    out: Doc = {"code": a.code, "detail": red.text(a.detail)}
    if a.location is not None:
        out["location"] = a.location.to_json()
    return out


def _capture(c: Capture, red: Redactor) -> Doc:
    return {
        "path": c.path,
        "format": c.format,
        "creator": red.text(c.creator),
        "creator_version": red.text(c.creator_version),
        "packets": c.packets,
        "connections": len(c.connections),
        "can_show": sorted(str(f) for f in c.can_show),
        "notes": [red.text(n) for n in c.notes],
        "secrets_embedded": c.secrets_embedded,
        "warnings": [SECRETS_WARNING] if c.secrets_embedded else [],
        "anomalies": [_anomaly(a, red) for a in c.anomalies],
    }


def _headers(headers: Headers, red: Redactor) -> list[Doc]:
    return [{"name": red.text(h.name), "value": red.header(h.name, h.value)} for h in headers]


def _first(headers: list[Doc], name: str) -> str | None:
    lname = name.lower()
    for h in headers:
        if str(h["name"]).lower() == lname:
            return str(h["value"])
    return None


def _message(m: Message, c: Connection, red: Redactor) -> Doc:
    out: Doc = {
        "index": m.index,
        "from": m.side,
        "time": m.time,
        "opcode": m.opcode,
        "size": m.size,
    }
    if m.compressed is not None:
        out["compressed"] = m.compressed
    if m.frames is not None:
        out["frames"] = m.frames
    if m.frame_index is not None:
        out["frame_index"] = m.frame_index
    out["location"] = m.location(c.capture, c.stream).to_json()
    preview = payload_preview(m.preview, m.size, m.opcode, red)
    if preview is not None:
        out["preview"] = preview.to_json()
    return out


def _frame(f: Frame, c: Connection, red: Redactor) -> Doc:
    out: Doc = {
        "index": f.index,
        "from": f.side,
        "time": f.time,
        "fin": f.fin,
        "rsv": f.rsv,
        "opcode": f.opcode,
        "masked": f.masked,
        "length": f.length,
        "packet": f.packet,
        "offset": f.offset,
    }
    if f.close_code is not None:
        out["close_code"] = f.close_code
    if f.close_reason is not None:
        out["close_reason"] = red.text(f.close_reason)
    if f.last_packet is not None:
        out["last_packet"] = f.last_packet
    return out


def _close(cl: Close, red: Redactor) -> Doc:
    out: Doc = {
        "from": cl.side if cl.side_known else None,
        "code": cl.code,
        "reason": red.text(cl.reason),
        "echoed": cl.echoed,
        "time": cl.time,
        "side_known": cl.side_known,
        "client_messages_before": cl.client_messages_before,
        "server_messages_before": cl.server_messages_before,
        "since_last_message": cl.since_last_message,
        "echo_code": cl.echo_code,
        "frame_index": cl.frame_index,
        "location": _loc(cl.location),
        "echo_location": _loc(cl.echo_location),
    }
    if cl.code is not None and cl.code in CLOSE_NAMES:
        out["code_name"] = CLOSE_NAMES[cl.code]
    return out


def _connection(c: Connection, red: Redactor) -> Doc:
    request: Doc | None = None
    response: Doc | None = None
    if c.request is not None:
        request = {
            "method": red.text(c.request.method),
            "target": red.url(c.request.target),
            "version": c.request.version,
            "headers": _headers(c.request.headers, red),
            "location": _loc(c.request.location),
        }
    if c.response is not None:
        response = {
            "status": c.response.status,
            "reason": red.text(c.response.reason),
            "version": c.response.version,
            "headers": _headers(c.response.headers, red),
            "location": _loc(c.response.location),
        }
    req_headers: list[Doc] = request["headers"] if request else []
    counts = {
        "client": c.messages_from("client"),
        "server": c.messages_from("server"),
    }
    out: Doc = {
        "id": c.id,
        "capture": c.capture,
        "url": red.url(c.url),
        "client": c.client,
        "server": c.server,
        "start": c.start,
        "end_time": c.end_time,
        "duration": (c.end_time - c.start)
        if c.end_time is not None and c.start is not None
        else None,
        "http_version": c.http_version,
        "handshake_seen": c.handshake_seen,
        "stream": c.stream,
        "request": request,
        "response": response,
        "origin": _first(req_headers, "Origin"),
        "host": _first(req_headers, "Host") or _first(req_headers, ":authority"),
        "user_agent": _first(req_headers, "User-Agent"),
        "accept_ok": c.accept_ok,
        "subprotocols_offered": [
            red.header("Sec-WebSocket-Protocol", p) for p in c.subprotocols_offered
        ],
        "subprotocol_selected": red.header("Sec-WebSocket-Protocol", c.subprotocol_selected)
        if c.subprotocol_selected is not None
        else None,
        "extensions_offered": [red.text(e) for e in c.extensions_offered],
        "extensions_negotiated": [red.text(e) for e in c.extensions_negotiated],
        "message_count": counts,
        "messages": [_message(m, c, red) for m in c.messages],
        "close": _close(c.close, red) if c.close is not None else None,
        "close_known": c.close_known,
        "end": c.end,
        "can_show": sorted(str(f) for f in c.can_show),
        "anomalies": [_anomaly(a, red) for a in c.anomalies],
        "location": _loc(c.location),
    }
    if c.frames is not None:
        out["frames"] = [_frame(f, c, red) for f in c.frames]
    if c.tls is not None:
        out["tls"] = {
            "version": c.tls.version,
            "sni": red.text(c.tls.sni),
            "alpn": [red.text(a) for a in c.tls.alpn],
            "alpn_selected": red.text(c.tls.alpn_selected),
            "cipher_suite": c.tls.cipher_suite,
            "decrypted": c.tls.decrypted,
            "problem": red.text(c.tls.problem),
            "application": c.tls.application,
        }
    return out


def _evidence(e: Evidence, red: Redactor) -> Doc:
    out: Doc = {"label": red.text(e.label)}
    if e.location is not None:
        out["location"] = e.location.to_json()
    if e.header is not None:
        out["header"] = e.header
    if e.frame is not None:
        out["frame"] = e.frame
    if e.message is not None:
        out["message"] = e.message
    return out


def _finding(f: Finding, red: Redactor) -> Doc:
    return {
        "rule": f.rule,
        "title": red.text(f.title),
        "severity": f.severity.label,
        "connection": f.connection,
        "message": red.text(f.message),
        "evidence": [_evidence(e, red) for e in f.evidence],
        "why": red.text(f.why),
        "fix": red.text(f.fix),
        "references": [red.text(r) for r in f.references],
        "tags": list(f.tags),
        "time": f.time,
    }


def _not_evaluable(n: NotEvaluable, red: Redactor) -> Doc:
    return {
        "rule": n.rule,
        "title": red.text(n.title),
        "connection": n.connection,
        "reason": red.text(n.reason),
        "advice": red.text(n.advice),
        "missing": list(n.missing),
    }


# -- the verdict ------------------------------------------------------------------------


def _moment(t: float | None, conn: Doc | None) -> str:
    if t is None:
        return ""
    start = conn.get("start") if conn else None
    when = iso_time(t) or ""
    if isinstance(start, int | float):
        return f"at {when} (+{t - start:.3f} s after the upgrade request)"
    return f"at {when}"


def _where(conn: Doc | None) -> str:
    if conn is None:
        return ""
    url = conn.get("url") or "(URL unknown)"
    return f"on connection {conn['id']} ({url})"


def verdict(doc: Doc, by_id: dict[str, Doc]) -> Doc:
    """The headline: the most severe finding in one sentence, with where and when."""
    findings: list[Doc] = doc["findings"]
    n_conn = len(doc["connections"])
    n_rules = len(doc["rules_run"])
    n_msgs = sum(sum(c["message_count"].values()) for c in doc["connections"])
    names = ", ".join(f"{c['path']} ({c['format']})" for c in doc["captures"]) or "nothing"
    analyzed = (
        f"{n_conn} WebSocket connection{'s' if n_conn != 1 else ''} "
        f"and {n_msgs} message{'s' if n_msgs != 1 else ''} in {names}"
    )
    # TLS connections listed with nothing above TLS read (no key, or HTTP/2).
    unread = [c for c in doc["connections"] if c.get("tls") and c["request"] is None]
    if not findings:
        if n_conn == 0:
            sentence = f"No WebSocket connection was found in {names}."
        elif len(unread) == n_conn:
            h2 = sum(1 for c in unread if c["tls"].get("application") == "HTTP/2")
            why = [f"{n_conn - h2} not decrypted"] if n_conn > h2 else []
            why += [f"{h2} HTTP/2, not analysed yet"] if h2 else []
            sentence = (
                f"No problem found in what could be checked: {names} holds {n_conn} TLS "
                f"connection{'s' if n_conn != 1 else ''} ({', '.join(why)}), so only "
                "endpoints and how TCP ended were evaluated."
            )
        elif n_rules == 0:
            sentence = f"No rules were run over {analyzed}: there are no findings to report."
        else:
            sentence = (
                f"No problem found: {n_rules} rule{'s' if n_rules != 1 else ''} "
                f"found nothing in {analyzed}."
            )
        if doc["not_evaluable"]:
            k = len({n["rule"] for n in doc["not_evaluable"]})
            sentence += (
                f" {k} rule{'s' if k != 1 else ''} could not be evaluated from this "
                "capture (see \u201cWhat this capture cannot show\u201d)."
            )
        return {
            "sentence": sentence,
            "severity": None,
            "finding": None,
            "also": [],
            "also_findings": [],
        }
    top = findings[0]
    conn = by_id.get(top["connection"]) if top["connection"] else None
    # Where and when attach to the message's first sentence; the rest follows it.
    message = " ".join(str(top["message"]).split())
    split = SENTENCE_END_RE.search(message)
    first, rest = (message[: split.start()], message[split.end() :]) if split else (message, "")
    parts = [first.rstrip(".")]
    from analyzer.render.hops import hop_where

    where = hop_where(doc, top) or _where(conn)
    if where:
        parts.append(where)
    moment = _moment(top["time"], conn)
    if moment:
        parts.append(moment)
    sentence = ", ".join(parts[:2]) + (" " + parts[2] if len(parts) > 2 else "") + "."
    if rest:
        sentence += " " + rest
    others = [
        i
        for i, f in enumerate(findings)
        if i > 0
        and f["connection"] == top["connection"]
        and Severity.parse(f["severity"]) >= Severity.MEDIUM
    ][:4]
    return {
        "sentence": sentence,
        "severity": top["severity"],
        "finding": 0,
        "also": [f"{findings[i]['title']} ({findings[i]['severity']})" for i in others],
        "also_findings": others,
    }


def where(loc: dict[str, Any] | None, *, detail: bool = True) -> str:
    """A location in words: "packet 9 (tcp.stream 0, from server)" or "HAR entry 1,
    message 0"; ``detail=False`` leaves out the stream and direction (the HTML shows
    them beside it)."""
    if not loc:
        return ""
    if "packet" in loc:
        if not detail:
            return f"packet {loc['packet']}"
        extra = []
        if "stream" in loc:
            extra.append(f"tcp.stream {loc['stream']}")
        if "direction" in loc:
            extra.append(f"from {loc['direction']}")
        tail = f" ({', '.join(extra)})" if extra else ""
        return f"packet {loc['packet']}{tail}"
    if "entry" in loc:
        text = f"HAR entry {loc['entry']}"
        if "message" in loc:
            text += f", message {loc['message']}"
        return text
    return ""
