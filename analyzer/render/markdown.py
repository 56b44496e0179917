"""The Markdown report: the verdict and the findings with their evidence, short enough to
paste into a ticket (under 60 lines for a single-connection capture).

Captured text is escaped for Markdown (no HTML, links or emphasis can come from a
capture), made printable and cut short.
"""

from __future__ import annotations

import re

from analyzer.engine.analysis import Analysis
from analyzer.render.document import CLOSE_NAMES, Doc, build_document, where
from analyzer.render.options import DEFAULT_OPTIONS, RenderOptions
from analyzer.render.preview import show

MD_SPECIAL_RE = re.compile(r"([\\`*_\[\]|~>])")
LINE_START_RE = re.compile(r"^([#+=-]|\d+[.)])")
MAX_FINDINGS_IN_FULL = 5
MAX_EVIDENCE = 3
MAX_LISTED = 5


def md(value: object, limit: int = 200) -> str:
    """Captured text made inert in Markdown: escaped, one line, printable, bounded."""
    text = show(str(value), limit).replace("<", "&lt;")
    return MD_SPECIAL_RE.sub(r"\\\1", text)


def md_line(value: object, limit: int = 200) -> str:
    """``md`` for text that starts a line: no heading, list or rule can begin there."""
    return LINE_START_RE.sub(r"\\\1", md(value, limit))


def first_sentence(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def close_text(conn: Doc) -> str:
    cl = conn.get("close")
    if cl is None:
        tls = conn.get("tls")
        if tls and not tls["decrypted"]:
            return "unknown: the connection is encrypted"
        if not conn["close_known"]:
            return "unknown (this capture records no close frames)"
        return "no close frame"
    who = cl["from"] or "one side (sender not recorded)"
    code = cl["code"]
    name = f" {CLOSE_NAMES[code]}" if code in CLOSE_NAMES else ""
    text = f"{who} sent {code if code is not None else 'a close with no status code'}{name}"
    if cl.get("reason"):
        text += f' "{cl["reason"]}"'
    start = conn.get("start")
    if cl.get("time") is not None and isinstance(start, int | float):
        text += f" at +{cl['time'] - start:.3f} s"
    text += (
        f", after {cl['client_messages_before']} client / "
        f"{cl['server_messages_before']} server messages"
    )
    if cl["echoed"] is True:
        text += f"; answered with {cl['echo_code']}"
    elif cl["echoed"] is False:
        text += "; never answered"
    return text


def tls_text(tls: Doc) -> str:
    """A connection's TLS facts in one line: version, SNI, ALPN, cipher, decrypted or why not."""
    parts = [tls["version"] or "version not seen"]
    if tls["sni"]:
        parts.append(f"SNI {tls['sni']}")
    if tls["alpn_selected"]:
        parts.append(f"ALPN {tls['alpn_selected']}")
    elif tls["alpn"]:
        parts.append(f"ALPN offered {', '.join(tls['alpn'])}")
    if tls["cipher_suite"]:
        parts.append(tls["cipher_suite"])
    if tls["decrypted"]:
        parts.append("decrypted")
    else:
        parts.append("not decrypted" + (f": {tls['problem']}" if tls["problem"] else ""))
    text = ", ".join(parts)
    if tls.get("application") == "HTTP/2":
        text += "; HTTP/2: WebSocket over HTTP/2 is not analysed yet"
    return text


def render_markdown(analysis: Analysis, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    return markdown_text(build_document(analysis, options))


def markdown_text(doc: Doc) -> str:
    lines: list[str] = []
    add = lines.append
    v = doc["verdict"]
    add(f"# {md(v['sentence'], 600)}")
    add("")
    if v["also"]:
        add("Also on this connection: " + "; ".join(md(a, 200) for a in v["also"]) + ".")
        add("")
    caps = "; ".join(
        f"{md(c['path'])} ({c['format']}"
        + (f", {md(c['creator'])}" if c["creator"] else "")
        + (f" {md(c['creator_version'], 40)}" if c["creator_version"] else "")
        + ")"
        for c in doc["captures"]
    )
    red = doc["redaction"]
    hidden = sum(red["counts"].values())
    red_text = f"on, {hidden} value{'s' if hidden != 1 else ''} hidden" if red["enabled"] else "OFF"
    add(
        f"Capture: {caps}. Analyzed {doc['generated_iso']} by ws-analyzer "
        f"{doc['tool']['version']}; redaction {red_text}."
    )
    for c in doc["captures"]:
        for w in c.get("warnings", []):
            add("")
            add(f"> **Warning:** {md(c['path'])}: {md(w, 300)}.")
    findings = doc["findings"]
    if findings:
        add("")
        add(f"## Findings ({len(findings)})")
        for f in findings[:MAX_FINDINGS_IN_FULL]:
            add("")
            conn = f" on {md(f['connection'])}" if f["connection"] else ""
            add(f"### {f['severity'].upper()}: {md(f['title'])} ({md(f['rule'])}){conn}")
            add(md_line(f["message"], 400))
            for e in f["evidence"][:MAX_EVIDENCE]:
                loc = where(e.get("location"))
                add(f"- Evidence: {md(e['label'], 200)}" + (f" ({loc})" if loc else ""))
            if len(f["evidence"]) > MAX_EVIDENCE:
                add(f"- ... and {len(f['evidence']) - MAX_EVIDENCE} more in the full report")
            if f["fix"]:
                add(f"- Fix: {md(first_sentence(f['fix']), 260)}")
        rest = findings[MAX_FINDINGS_IN_FULL:]
        if rest:
            add("")
            for f in rest:
                add(f"- {f['severity'].upper()} {md(f['rule'])}: {md(f['message'], 160)}")
    for conn in doc["connections"]:
        add("")
        add(f"## Connection {md(conn['id'])}")
        add("")
        add("| | |")
        add("|---|---|")
        add(f"| URL | {md(conn['url'] or 'unknown', 160)} |")
        if conn["client"] or conn["server"]:
            add(
                f"| Client -> server | {md(conn['client'] or '?')} -> {md(conn['server'] or '?')} |"
            )
        status = conn["response"]["status"] if conn["response"] else "no response seen"
        add(f"| Status | {status} |")
        if conn["request"] is not None:
            origin = md(conn["origin"], 120) if conn["origin"] is not None else "**absent**"
            add(f"| Origin | {origin} |")
        mc = conn["message_count"]
        add(f"| Messages | {mc['client']} from client, {mc['server']} from server |")
        add(f"| Close | {md(close_text(conn), 300)} |")
        add(f"| Ended by | {conn['end']} |")
        tls = conn.get("tls")
        if tls:
            add(f"| TLS | {md(tls_text(tls), 400)} |")
        if conn["anomalies"]:
            codes = sorted({a["code"] for a in conn["anomalies"]})
            add(f"| Anomalies | {md(', '.join(codes), 200)} |")
    from analyzer.render.hops import hops_markdown

    lines.extend(hops_markdown(doc, md))
    ne = doc["not_evaluable"]
    notes = [n for c in doc["captures"] for n in c["notes"]]
    if ne or notes:
        add("")
        add("## What this capture cannot show")
        for n in notes[:MAX_LISTED]:
            add(f"- {md(n, 240)}")
        seen: set[str] = set()
        for item in ne:
            if item["rule"] in seen or len(seen) >= MAX_LISTED:
                continue
            seen.add(item["rule"])
            advice = f" {md(first_sentence(item['advice'], 160))}" if item["advice"] else ""
            add(f"- Rule {md(item['rule'])} not evaluated: {md(item['reason'], 160)}.{advice}")
        left = len({n["rule"] for n in ne}) - len(seen)
        if left > 0:
            add(f"- ... and {left} more rules not evaluated (see the JSON or HTML report)")
    return "\n".join(lines) + "\n"
