"""SARIF 2.1.0 for CI pipelines and code-scanning dashboards.

Rules are ``reportingDescriptor``s with their help (why and fix); findings are
``result``s whose physical location is the capture file and whose logical locations name
the connection and the packet or HAR entry to open. Rules that could not be evaluated are
tool execution notifications (level "note"), not results: nothing was found or cleared.
"""

from __future__ import annotations

import json
from pathlib import PurePath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from analyzer.engine.analysis import Analysis
from analyzer.render.document import Doc, build_document
from analyzer.render.options import DEFAULT_OPTIONS, RenderOptions

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
# GitHub code scanning reads this property to rank results (0.0-10.0).
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}


def artifact_uri(path: str) -> str:
    """A URI reference for a capture path: relative stays relative, absolute is file://."""
    p = PurePath(path)
    if p.is_absolute():
        return "file://" + quote(p.as_posix(), safe="/")
    if PureWindowsPath(path).drive:
        return "file:///" + quote(PureWindowsPath(path).as_posix(), safe="/:")
    return quote(p.as_posix(), safe="/")


def _logical(loc: dict[str, Any] | None, connection: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if connection is not None:
        out.append({"name": connection, "kind": "module", "fullyQualifiedName": connection})
    if loc:
        prefix = f"{connection}/" if connection else ""
        if "packet" in loc:
            name = f"packet {loc['packet']}"
            out.append(
                {
                    "name": name,
                    "kind": "object",
                    "fullyQualifiedName": f"{prefix}packet/{loc['packet']}",
                }
            )
        elif "entry" in loc:
            fq = f"{prefix}entry/{loc['entry']}"
            name = f"HAR entry {loc['entry']}"
            if "message" in loc:
                fq += f"/message/{loc['message']}"
                name += f", message {loc['message']}"
            out.append({"name": name, "kind": "object", "fullyQualifiedName": fq})
    return out


def _rules(doc: Doc) -> list[dict[str, Any]]:
    info: dict[str, dict[str, Any]] = {}
    for f in doc["findings"]:
        info.setdefault(f["rule"], f)
    titles = {n["rule"]: n["title"] for n in doc["not_evaluable"]}
    ids = list(dict.fromkeys([*doc["rules_run"], *info, *titles]))
    out = []
    for rule in ids:
        f = info.get(rule)
        title = f["title"] if f else titles.get(rule, rule)
        desc: dict[str, Any] = {
            "id": rule,
            "name": rule,
            "shortDescription": {"text": title or rule},
        }
        if f is not None:
            help_text = "\n\n".join(
                part
                for part in (
                    f"Why: {f['why'].strip()}" if f["why"] else "",
                    f"Fix: {f['fix'].strip()}" if f["fix"] else "",
                    "References: " + "; ".join(f["references"]) if f["references"] else "",
                )
                if part
            )
            if f["why"]:
                desc["fullDescription"] = {"text": f["why"].strip()}
            if help_text:
                desc["help"] = {"text": help_text}
            desc["defaultConfiguration"] = {"level": LEVELS[f["severity"]]}
            desc["properties"] = {
                "tags": list(f["tags"]),
                "security-severity": SECURITY_SEVERITY[f["severity"]],
            }
        out.append(desc)
    return out


def build_sarif(doc: Doc) -> dict[str, Any]:
    rules = _rules(doc)
    index = {r["id"]: i for i, r in enumerate(rules)}
    captures = [c["path"] for c in doc["captures"]]
    art_index = {p: i for i, p in enumerate(captures)}
    conn_capture = {c["id"]: c["capture"] for c in doc["connections"]}
    results = []
    for f in doc["findings"]:
        locations = []
        evidence_locs = [e.get("location") for e in f["evidence"] if e.get("location")]
        cap = conn_capture.get(f["connection"] or "") or (
            evidence_locs[0]["capture"] if evidence_locs else (captures[0] if captures else None)
        )
        for loc in evidence_locs or [None]:
            path = loc["capture"] if loc else cap
            if path is None:
                continue
            phys: dict[str, Any] = {"uri": artifact_uri(path)}
            if path in art_index:
                phys["index"] = art_index[path]
            locations.append(
                {
                    "physicalLocation": {"artifactLocation": phys},
                    "logicalLocations": _logical(loc, f["connection"]),
                }
            )
        result: dict[str, Any] = {
            "ruleId": f["rule"],
            "ruleIndex": index[f["rule"]],
            "level": LEVELS[f["severity"]],
            "message": {"text": f["message"]},
            "locations": locations,
            "properties": {
                "severity": f["severity"],
                "connection": f["connection"],
                "evidence": [e["label"] for e in f["evidence"]],
            },
        }
        results.append(result)
    notifications = [
        {
            "level": "note",
            "message": {
                "text": f"{n['rule']} could not be evaluated"
                + (f" on {n['connection']}" if n["connection"] else "")
                + f": {n['reason']}"
                + (f" {n['advice']}" if n["advice"] else "")
            },
            "descriptor": {"id": n["rule"]},
            "associatedRule": {"id": n["rule"], "index": index[n["rule"]]},
        }
        for n in doc["not_evaluable"]
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "ws-analyzer",
                "version": doc["tool"]["version"],
                "semanticVersion": doc["tool"]["version"],
                "rules": rules,
            }
        },
        "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
        "artifacts": [
            {
                "location": {"uri": artifact_uri(p)},
                "description": {"text": f"{c['format']} capture"},
            }
            for p, c in zip(captures, doc["captures"], strict=True)
        ],
        "results": results,
        "properties": {
            "verdict": doc["verdict"]["sentence"],
            "redaction": doc["redaction"],
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def sarif_text(doc: Doc) -> str:
    return json.dumps(build_sarif(doc), indent=2, ensure_ascii=False) + "\n"


def render_sarif(analysis: Analysis, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    return sarif_text(build_document(analysis, options))
