"""JUnit XML for CI pipelines: one test case per rule and connection.

A finding is a ``failure`` (type = severity); a rule that could not be evaluated is
``skipped`` with the reason; a rule that ran and found nothing passes. Capture-scope
findings get a test case named after the capture. One ``testsuite`` per capture.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from analyzer.pipeline import Analysis
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


def build_junit(doc: Doc) -> ET.Element:
    root = ET.Element("testsuites", name="ws-analyzer")
    findings: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for f in doc["findings"]:
        findings.setdefault((f["rule"], f["connection"]), []).append(f)
    skipped = {(n["rule"], n["connection"]): n for n in doc["not_evaluable"]}
    rules = list(
        dict.fromkeys([*doc["rules_run"], *(r for r, _ in findings), *(r for r, _ in skipped)])
    )
    total = fails = skips = 0
    for cap in doc["captures"]:
        conns = [c["id"] for c in doc["connections"] if c["capture"] == cap["path"]]
        suite = ET.SubElement(root, "testsuite", name=xml_text(cap["path"]))
        cases: list[tuple[str, str | None]] = [(r, c) for c in conns for r in rules]
        cases += [key for key in [*findings, *skipped] if key[1] is None and key not in cases]
        n = f_count = s_count = 0
        for rule, conn in cases:
            if (
                conn is None
                and not any(f["connection"] is None for f in doc["findings"] if f["rule"] == rule)
                and (rule, None) not in skipped
            ):
                continue
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
                    case,
                    "failure",
                    message=xml_text(worst["message"]),
                    type=worst["severity"],
                )
                failure.text = xml_text("\n\n".join(_failure_body(h) for h in hits))
            elif (rule, conn) in skipped:
                s_count += 1
                ne = skipped[(rule, conn)]
                ET.SubElement(
                    case,
                    "skipped",
                    message=xml_text(f"{ne['reason']} {ne['advice']}".strip()),
                )
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
