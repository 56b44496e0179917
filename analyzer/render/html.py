"""The HTML report: one self-contained file, safe to open and to attach to a ticket.

Theory of operation
-------------------
The page is drawn from the redacted document (``analyzer.render.document``) by the
jinja2 template ``reports/report.html.j2`` with autoescape on; captured text is only ever
passed as plain strings (escaped by jinja2) after ``show`` made it printable and short.
The only ``Markup`` values are our own: the stylesheet and script read from
``reports/assets/`` and the SVG sequence diagrams, whose captured labels ``svg.py``
escapes itself.

A Content-Security-Policy meta tag forbids everything (no network, no plugins, no
frames, no forms) except our one inline stylesheet and our one inline script, named by
their SHA-256 hashes: an injected ``<script>`` or event handler that escaped escaping
would still not run.

Evidence links: every finding's evidence points (``#`` anchors) at the row it is about:
a header (or the row saying the header is absent), a message, a frame, the close. Rows
that evidence points at are always shown, even when a long table is cut.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import jinja2
from markupsafe import Markup

from analyzer.engine.analysis import Analysis
from analyzer.render.document import (
    CLOSE_NAMES,
    OPCODE_NAMES,
    Doc,
    build_document,
    iso_time,
    where,
)
from analyzer.render.options import DEFAULT_OPTIONS, RenderOptions
from analyzer.render.preview import show
from analyzer.render.svg import sequence_svg
from analyzer.resources import reports_dir

TEMPLATE = "report.html.j2"
HEAD_ROWS = 200  # rows of a long table shown from its start...
TAIL_ROWS = 50  # ... and from its end; evidence rows always
HEADER_VALUE_CHARS = 2000
PREVIEW_CHARS = 1500

HIGHLIGHT_EXACT = frozenset(
    {
        "origin",
        "host",
        ":authority",
        ":protocol",
        ":path",
        "upgrade",
        "connection",
        "forwarded",
        "via",
        "x-real-ip",
        "user-agent",
    }
)
HIGHLIGHT_PREFIXES = ("sec-websocket-", "x-forwarded-", "proxy-")
KEY_REQUEST_HEADERS = ("Origin",)  # shown as ABSENT when missing from the request


def highlighted(name: str) -> bool:
    n = name.lower()
    return n in HIGHLIGHT_EXACT or n.startswith(HIGHLIGHT_PREFIXES)


def prose(text: str) -> str:
    """Rule text wrapped in its YAML file: single newlines join, blank lines stay."""
    paragraphs = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


def _asset(name: str) -> str:
    return (reports_dir() / "assets" / name).read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class _Assets:
    """The inline stylesheet and script, and the page's Content-Security-Policy naming
    them by hash: read and hashed once per process and template folder."""

    css: Markup
    js: Markup
    csp: str


_ENVIRONMENTS: dict[str, jinja2.Environment] = {}
_ASSETS: dict[str, _Assets] = {}


def _cached_environment(key: str) -> jinja2.Environment:
    """One environment per process and template folder ``key``: it keeps the compiled
    templates (compiling ``report.html.j2`` costs far more than drawing a small report)."""
    env = _ENVIRONMENTS.get(key)
    if env is None:
        env = _ENVIRONMENTS[key] = _environment()
    return env


def _cached_assets(key: str) -> _Assets:
    assets = _ASSETS.get(key)
    if assets is None:
        css = _asset("report.css")
        js = _asset("report.js")
        csp = (
            "default-src 'none'; "
            f"style-src {csp_hash(css)}; "
            f"script-src {csp_hash(js)}; "
            "img-src 'none'; font-src 'none'; connect-src 'none'; media-src 'none'; "
            "object-src 'none'; frame-src 'none'; worker-src 'none'; manifest-src 'none'; "
            "base-uri 'none'; form-action 'none'"
        )
        assets = _ASSETS[key] = _Assets(Markup(css), Markup(js), csp)
    return assets


def _environment() -> jinja2.Environment:
    root = reports_dir()

    def load(name: str) -> str:
        return (root / name).read_text(encoding="utf-8")

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["show"] = show
    env.filters["iso"] = iso_time
    env.filters["prose"] = prose
    return env


@dataclass(slots=True)
class _Targets:
    """What evidence points at in one connection, and the anchors it resolves to."""

    headers_req: dict[str, int] = field(default_factory=dict)  # lower name -> row
    headers_resp: dict[str, int] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)  # request headers shown as absent
    messages: set[int] = field(default_factory=set)
    frames: set[int] = field(default_factory=set)


class _Page:
    """Builds the template's view of the document: rows to show, anchors, labels."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self.conn_index = {c["id"]: i for i, c in enumerate(doc["connections"])}
        self.targets = [self._first_targets(c) for c in doc["connections"]]
        self.findings = [self._finding(i, f) for i, f in enumerate(doc["findings"])]

    @staticmethod
    def _first_targets(conn: Doc) -> _Targets:
        t = _Targets()
        if conn["request"] is not None:
            for i, h in enumerate(conn["request"]["headers"]):
                t.headers_req.setdefault(str(h["name"]).lower(), i)
            for name in KEY_REQUEST_HEADERS:
                if name.lower() not in t.headers_req:
                    t.absent.append(name)
        if conn["response"] is not None:
            for i, h in enumerate(conn["response"]["headers"]):
                t.headers_resp.setdefault(str(h["name"]).lower(), i)
        return t

    def _evidence_anchor(self, ci: int | None, e: Doc) -> str:
        if ci is None:
            return "#capture"
        conn = self.doc["connections"][ci]
        t = self.targets[ci]
        header = e.get("header")
        if header is not None:
            lname = str(header).lower()
            in_response = "response" in str(e.get("label", "")).lower()
            if not in_response and lname in t.headers_req:
                return f"#c{ci}-rq-{t.headers_req[lname]}"
            if lname in t.headers_resp:
                return f"#c{ci}-rs-{t.headers_resp[lname]}"
            if lname in t.headers_req:
                return f"#c{ci}-rq-{t.headers_req[lname]}"
            if conn["request"] is None:
                return f"#c{ci}-req"
            names = [a.lower() for a in t.absent]
            if lname not in names:
                t.absent.append(str(header))
                names.append(lname)
            return f"#c{ci}-absent-{names.index(lname)}"
        frames = conn.get("frames")
        if e.get("frame") is not None and frames is not None:
            fi = int(e["frame"])
            if 0 <= fi < len(frames):
                t.frames.add(fi)
                for m in conn["messages"]:
                    if m.get("frame_index") == fi:
                        t.messages.add(m["index"])
                return f"#c{ci}-f{fi}"
        if e.get("message") is not None:
            mi = int(e["message"])
            if any(m["index"] == mi for m in conn["messages"]):
                t.messages.add(mi)
                return f"#c{ci}-m{mi}"
        loc = e.get("location") or {}
        if loc:
            for key, anchor in (("request", "req"), ("response", "resp")):
                part = conn.get(key)
                if part is not None and part.get("location") == loc:
                    return f"#c{ci}-{anchor}"
            cl = conn.get("close")
            if cl is not None and loc in (cl.get("location"), cl.get("echo_location")):
                return f"#c{ci}-close"
            if "packet" in loc and frames is not None:
                for f in frames:
                    if f["packet"] == loc["packet"] or f.get("last_packet") == loc["packet"]:
                        t.frames.add(f["index"])
                        return f"#c{ci}-f{f['index']}"
            for m in conn["messages"]:
                ml = m.get("location") or {}
                same_packet = "packet" in loc and ml.get("packet") == loc["packet"]
                same_entry = (
                    "message" in loc
                    and ml.get("entry") == loc.get("entry")
                    and ml.get("message") == loc["message"]
                )
                if same_packet or same_entry:
                    t.messages.add(m["index"])
                    return f"#c{ci}-m{m['index']}"
        return f"#c{ci}"

    def _conn_at(self, loc: dict[str, Any] | None, ci: int | None) -> int | None:
        """The connection evidence at ``loc`` is on: the finding's, unless the location
        names another connection's capture and stream or HAR entry (a hop finding's
        evidence on each leg of the session)."""
        if not loc or ci is None:
            return ci
        conns = self.doc["connections"]
        here = conns[ci]
        here_loc = here.get("location") or {}
        if here["capture"] == loc.get("capture") and (
            here.get("stream") == loc.get("stream")
            if "stream" in loc
            else here_loc.get("entry") == loc.get("entry")
        ):
            return ci
        for k, c in enumerate(conns):
            if c["capture"] != loc.get("capture"):
                continue
            if "stream" in loc and c.get("stream") == loc["stream"]:
                return k
            if "entry" in loc and (c.get("location") or {}).get("entry") == loc["entry"]:
                return k
        return ci

    def _finding(self, i: int, f: Doc) -> Doc:
        ci = self.conn_index.get(f["connection"]) if f["connection"] is not None else None
        evidence = []
        for e in f["evidence"]:
            loc = e.get("location")
            packet = loc.get("packet") if loc else None
            evidence.append(
                {
                    "label": e["label"],
                    "anchor": self._evidence_anchor(self._conn_at(loc, ci), e),
                    "where": where(loc, detail=False),
                    "packet": packet,
                    "stream": loc.get("stream") if loc else None,
                }
            )
        return {
            **f,
            "id": f"f{i}",
            "ci": ci,
            "evidence_rows": evidence,
        }

    def connection(self, ci: int) -> Doc:
        conn = self.doc["connections"][ci]
        t = self.targets[ci]
        if conn.get("close") is not None and conn["close"].get("frame_index") is not None:
            t.frames.add(conn["close"]["frame_index"])
        frames = conn.get("frames")
        if frames is not None:
            for f in frames:
                if f["opcode"] == 8:
                    t.frames.add(f["index"])
        messages = _cut(conn["messages"], t.messages)
        frame_rows = _cut(frames, t.frames) if frames is not None else None
        start = conn.get("start")
        linkable = {f"#c{ci}-req", f"#c{ci}-resp", f"#c{ci}-close"}
        linkable |= {f"#c{ci}-m{m['index']}" for m in messages if m is not None}
        linkable |= {f"#c{ci}-f{f['index']}" for f in frame_rows or () if f is not None}
        return {
            "c": conn,
            "ci": ci,
            "svg": sequence_svg(conn, ci, t.messages, t.frames, linkable),
            "absent": t.absent,
            "messages": messages,
            "frames": frame_rows,
            "rel": (lambda x: f"+{x - start:.3f}" if x is not None and start is not None else ""),
            "opcode_name": lambda op: OPCODE_NAMES.get(op, f"opcode {op}"),
            "findings": [f for f in self.findings if f["ci"] == ci],
        }


def _cut(rows: list[Doc], pinned: set[int]) -> list[Doc | None]:
    """Long tables keep their head, tail and pinned rows; None marks a cut."""
    if len(rows) <= HEAD_ROWS + TAIL_ROWS:
        return list(rows)
    keep = set(range(HEAD_ROWS)) | set(range(len(rows) - TAIL_ROWS, len(rows)))
    keep |= {i for i, r in enumerate(rows) if r["index"] in pinned}
    out: list[Doc | None] = []
    skipped = False
    for i, r in enumerate(rows):
        if i in keep:
            out.append(r)
            skipped = False
        elif not skipped:
            out.append(None)
            skipped = True
    return out


def _hops(doc: Doc, page: _Page) -> list[Doc]:
    """The "Hops" sections: per chain, its legs (with the page anchor of each leg's
    connection), the multi-lane sequence diagram and the header diff rows per hop."""
    from analyzer.render.hops import chain_line, hops_svg

    by_id = {c["id"]: c for c in doc["connections"]}
    out = []
    for hi, chain in enumerate(doc.get("hops") or ()):
        diffs = []
        for hop in chain["hops"]:
            rows = [
                {"part": part, "kind": kind, **change}
                for part in ("request", "response")
                for kind in ("removed", "added", "changed")
                for change in hop[f"{part}_diff"][kind]
            ]
            diffs.append({"hop": hop, "rows": rows})
        out.append(
            {
                "chain": chain,
                "hi": hi,
                "line": chain_line(chain),
                "svg": hops_svg(chain, hi, by_id),
                "conn_anchor": {
                    leg["connection_id"]: page.conn_index.get(leg["connection_id"])
                    for leg in chain["legs"]
                },
                "diffs": diffs,
            }
        )
    return out


def render_html(analysis: Analysis, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    return html_text(build_document(analysis, options))


def html_text(doc: Doc) -> str:
    page = _Page(doc)
    connections = [page.connection(i) for i in range(len(doc["connections"]))]
    root = str(reports_dir())
    assets = _cached_assets(root)
    severities = ("critical", "high", "medium", "low", "info")
    counts = {s: sum(1 for f in doc["findings"] if f["severity"] == s) for s in severities}
    template = _cached_environment(root).get_template(TEMPLATE)
    return template.render(
        hops=_hops(doc, page),
        doc=doc,
        verdict=doc["verdict"],
        findings=page.findings,
        connections=connections,
        severity_counts=counts,
        csp=assets.csp,
        css=assets.css,
        js=assets.js,
        close_names=CLOSE_NAMES,
        highlighted=highlighted,
        header_chars=HEADER_VALUE_CHARS,
        preview_chars=PREVIEW_CHARS,
    )
