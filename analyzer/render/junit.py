"""JUnit XML for CI pipelines: one test case per rule and connection.

A finding is a ``failure`` (type = severity); a rule that could not be evaluated is
``skipped`` with the reason; a rule that ran and found nothing passes. Capture-scope
findings get a test case named after the capture. One ``testsuite`` per capture.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from analyzer.engine.analysis import Analysis
from analyzer.render.document import Doc, build_document
from analyzer.render.options import DEFAULT_OPTIONS, RenderOptions

# Characters XML 1.0 cannot carry at all, even escaped.
XML_INVALID_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_TEXT = 4000


def xml_text(value: object) -> str:
    text = str(value)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + f"\u2026 ({len(text)} characters)"
    return XML_INVALID_RE.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def _failure_body(f: dict[str, Any]) -> str:
    lines = [f["message"], ""]
    for e in f["evidence"]:
        loc = e.get("location") or {}
        where = ""
        if "packet" in loc:
            where = f" (packet {loc['packet']})"
        elif "entry" in loc:
            where = f" (HAR entry {loc['entry']})"
        lines.append(f"evidence: {e['label']}{where}")
    if f["fix"]:
        lines += ["", f"fix: {f['fix'].strip()}"]
    return "\n".join(lines)


def _capture_of(item: dict[str, Any], default: str | None) -> str | None:
    """The capture a capture-scope finding belongs to: its evidence says, else the first."""
    for e in item.get("evidence", ()):
        loc = e.get("location") or {}
        if "capture" in loc:
            return str(loc["capture"])
    return default


def build_junit(doc: Doc) -> ET.Element:
    root = ET.Element("testsuites", name="ws-analyzer")
    findings: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for f in doc["findings"]:
        findings.setdefault((f["rule"], f["connection"]), []).append(f)
    skipped = {(n["rule"], n["connection"]): n for n in doc["not_evaluable"]}
    rules = list(
        dict.fromkeys([*doc["rules_run"], *(r for r, _ in findings), *(r for r, _ in skipped)])
    )
    # A rule judged at capture scope somewhere is not a per-connection test case.
    keys = [*findings, *skipped]
    capture_scope = {r for r, c in keys if c is None} - {r for r, c in keys if c is not None}
    conn_rules = [r for r in rules if r not in capture_scope]
    first = doc["captures"][0]["path"] if doc["captures"] else None
    scope_capture: dict[tuple[str, str | None], str | None] = {}
    for key, hits in findings.items():
        if key[1] is None:
            scope_capture[key] = _capture_of(hits[0], first)
    for key in skipped:
        if key[1] is None:
            scope_capture.setdefault(key, first)
    total = fails = skips = 0
    for cap in doc["captures"]:
        conns = [c["id"] for c in doc["connections"] if c["capture"] == cap["path"]]
        suite = ET.SubElement(root, "testsuite", name=xml_text(cap["path"]))
        cases: list[tuple[str, str | None]] = [(r, c) for c in conns for r in conn_rules]
        cases += [key for key, path in scope_capture.items() if path == cap["path"]]
        n = f_count = s_count = 0
        for rule, conn in cases:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=xml_text(conn if conn is not None else cap["path"]),
                name=xml_text(rule),
            )
            n += 1
            hits = findings.get((rule, conn), [])
            if hits:
                f_count += 1
                worst = hits[0]
                failure = ET.SubElement(
                    case, "failure", message=xml_text(worst["message"]), type=worst["severity"]
                )
                failure.text = xml_text("\n\n".join(_failure_body(h) for h in hits))
            elif (rule, conn) in skipped:
                s_count += 1
                ne = skipped[(rule, conn)]
                reason = f"{ne['reason']} {ne['advice']}".strip()
                ET.SubElement(case, "skipped", message=xml_text(reason))
        suite.set("tests", str(n))
        suite.set("failures", str(f_count))
        suite.set("errors", "0")
        suite.set("skipped", str(s_count))
        total, fails, skips = total + n, fails + f_count, skips + s_count
    root.set("tests", str(total))
    root.set("failures", str(fails))
    root.set("errors", "0")
    root.set("skipped", str(skips))
    return root


def render_junit(analysis: Analysis, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    return junit_text(build_document(analysis, options))


def junit_text(doc: Doc) -> str:
    root = build_junit(doc)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
