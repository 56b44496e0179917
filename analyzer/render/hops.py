"""Hop chains in reports: one WebSocket session seen at several points (``analyzer.session.hops``).

The engine leaves the chains it linked on ``Analysis.extra["hops"]``; ``hops_document``
turns them into the report document's ``hops`` array (``HopChain.to_json()`` with every
captured value redacted by the report's ``Redactor``, exactly as connection headers are),
and the renderers draw from that:

- ``hops_svg``: one sequence diagram per chain, one lane per point of the network (client,
  each proxy, server), each leg's events placed between its two lanes on the chain's clock
  (the leg's ``clock_offset`` applied);
- ``hops_markdown``: the chain in one line and the header diff lines per hop;
- ``hop_where``: the verdict's "where" when a hop rule is the headline, naming the hop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from markupsafe import Markup, escape

from analyzer.render.preview import show
from analyzer.render.redact import Redactor

Doc = dict[str, Any]

LANE_GAP = 190  # x distance between two lanes
LANE_LEFT = 120
ROW = 26
TOP = 70
MAX_LEG_ROWS = 14  # events per leg drawn; the rest folded into one row
LABEL_CHARS = 30


def _redact_leg(leg: Doc, red: Redactor) -> Doc:
    out = dict(leg)
    out["url"] = red.url(leg.get("url"))
    out["target"] = red.url(leg.get("target"))
    out["method"] = red.text(leg.get("method"))
    out["label"] = red.text(leg.get("label"))
    for part in ("request_headers", "response_headers"):
        out[part] = {
            red.text(name) or "": [red.header(name, v) for v in values]
            for name, values in (leg.get(part) or {}).items()
        }
    close = leg.get("close")
    if close is not None:
        out["close"] = {**close, "reason": red.text(close.get("reason"))}
    out["close_text"] = red.text(leg.get("close_text"))
    return out


def hops_document(chains: object, red: Redactor) -> list[Doc]:
    """The ``hops`` array of the report: ``HopChain.to_json()`` per chain, redacted.
    ``chains``: ``Analysis.extra["hops"]``, a sequence of ``HopChain``."""
    out: list[Doc] = []
    for chain in chains if isinstance(chains, Iterable) else ():
        raw: Doc = chain.to_json()
        legs = [_redact_leg(leg, red) for leg in raw["legs"]]
        hops = []
        for hop in raw["hops"]:
            h = dict(hop)
            h["label"] = red.text(hop["label"])
            h["client_side"] = legs[hop["index"]]
            h["server_side"] = legs[hop["index"] + 1]
            for part in ("request_diff", "response_diff"):
                h[part] = {
                    kind: [
                        {
                            "name": c["name"],
                            "before": [red.header(c["name"], v) for v in c["before"]],
                            "after": [red.header(c["name"], v) for v in c["after"]],
                        }
                        for c in changes
                    ]
                    for kind, changes in hop[part].items()
                }
            hops.append(h)
        out.append(
            {
                **raw,
                "notes": [red.text(n) for n in raw["notes"]],
                "legs": legs,
                "hops": hops,
            }
        )
    return out


# -- words ---------------------------------------------------------------------------------


def point_names(chain: Doc) -> list[str]:
    """The points of the network, client-most first: client, each proxy, server."""
    legs = chain["legs"]
    if not legs:
        return []
    first = legs[0]
    names = [f"client {first['client']}" if first["client"] else "browser"]
    for hop in chain["hops"]:
        names.append(f"proxy {hop['proxy']}" if hop["proxy"] else "proxy")
    last = "gateway" if chain.get("gateway_answered") else "server"
    names.append(f"{last} {legs[-1]['server']}" if legs[-1]["server"] else last)
    return names


def chain_line(chain: Doc) -> str:
    """``browser -> proxy 127.0.0.1:3000 -> server 127.0.0.1:8080``."""
    return " \u2192 ".join(point_names(chain))


# Which hop a hop rule is about: the first hop the predicate holds for.
_RULE_HOP = {
    "origin-stripped-by-hop": lambda h: "origin" in h["request_removed"],
    "header-stripped-by-hop": lambda h: bool(h["request_removed"] or h["response_removed"]),
    "close-code-changed-by-hop": lambda h: h["close_changed"] is True,
}


def chain_of_finding(doc: Doc, finding: Doc) -> Doc | None:
    """The chain a session-scope (hop) finding is about, or None for other findings."""
    if "hops" not in finding.get("tags", ()) or not finding.get("connection"):
        return None
    for chain in doc.get("hops", ()):
        if chain["legs"] and chain["legs"][0]["connection_id"] == finding["connection"]:
            found: Doc = chain
            return found
    return None


def hop_where(doc: Doc, finding: Doc) -> str | None:
    """``at the proxy at 127.0.0.1:3000 (session-1: browser -> proxy ... -> server ...)``;
    None when the finding is not a hop finding."""
    chain = chain_of_finding(doc, finding)
    if chain is None:
        return None
    pick = _RULE_HOP.get(finding["rule"])
    hop = next((h for h in chain["hops"] if pick is not None and pick(h)), None)
    if hop is None and len(chain["hops"]) == 1:
        hop = chain["hops"][0]
    path = f"{chain['id']} ({chain_line(chain)})"
    if hop is not None and str(hop["label"]) not in str(finding["message"]):
        return f"at {hop['label']}, in {path}"
    if hop is not None:
        return f"in {path}"
    if chain["gateway_answered"]:
        return f"at the gateway {chain['legs'][0]['server'] or ''}, in {path}".replace("  ", " ")
    return f"in {path}"


# -- the sequence diagram ------------------------------------------------------------------


def _leg_rows(
    leg: Doc, conn: Doc | None, answered: float | None
) -> list[tuple[float | None, str, str, str]]:
    """(time on the chain's clock, side, label, kind) for one leg. ``answered``: when the
    upgrade's answer is drawn (captures give no time of their own for it)."""
    off = float(leg.get("clock_offset") or 0.0)

    def t(x: Any) -> float | None:
        return float(x) + off if isinstance(x, int | float) else None

    rows: list[tuple[float | None, str, str, str]] = []
    start = leg.get("start")
    if leg.get("method"):
        rows.append((start, "client", f"{leg['method']} {leg.get('target') or ''}", "handshake"))
    if leg.get("status") is not None:
        rows.append((answered, "server", str(leg["status"]), "handshake"))
    if conn is not None:
        for m in conn.get("messages", ()):
            kind = {1: "text", 2: "binary"}.get(m["opcode"], f"opcode {m['opcode']}")
            rows.append((t(m["time"]), m["from"], f"{kind} {m['size']} B", "data"))
        frames = conn.get("frames")
        if frames is not None:
            for f in frames:
                if f["opcode"] == 8:
                    code = f.get("close_code")
                    label = f"close {code}" if code is not None else "close (no code)"
                    rows.append((t(f["time"]), f["from"], label, "close"))
        elif conn.get("close") is not None:
            cl = conn["close"]
            label = f"close {cl['code']}" if cl["code"] is not None else "close (no code)"
            rows.append((t(cl.get("time")), cl["from"] or "none", label, "close"))
    if not leg.get("close_known"):
        rows.append((None, "none", "closes not recorded", "end"))
    elif leg.get("close") is None:
        rows.append((None, "none", str(leg.get("close_text") or ""), "end"))
    head = [r for r in rows if r[3] == "handshake"]
    rest = sorted(
        (r for r in rows if r[3] != "handshake"),
        key=lambda r: r[0] if r[0] is not None else float("inf"),
    )
    if len(rest) > MAX_LEG_ROWS:
        keep = rest[: MAX_LEG_ROWS // 2] + rest[-MAX_LEG_ROWS // 2 :]
        folded = len(rest) - len(keep)
        keep.insert(MAX_LEG_ROWS // 2, (None, "none", f"\u22ef {folded} more", "fold"))
        rest = keep
    return head + rest


def _cut(text: str) -> str:
    s = show(text, 10 * LABEL_CHARS)
    return s if len(s) <= LABEL_CHARS else s[: LABEL_CHARS - 1] + "\u2026"


def hops_svg(chain: Doc, hi: int, connections: dict[str, Doc]) -> Markup:
    """One lane per point (client, proxy..., server); each leg's events between its lanes,
    in time order on the chain's clock. ``connections``: id -> the document's connection."""
    names = point_names(chain)
    lanes = [LANE_LEFT + LANE_GAP * i for i in range(len(names))]
    width = lanes[-1] + LANE_LEFT
    # The answer to the upgrade has no time of its own in the model: a proxy passes it on
    # after the next leg's answer, so each leg's is drawn no earlier than the next one's.
    legs = chain["legs"]
    answered: list[float | None] = [leg.get("start") for leg in legs]
    for li in range(len(legs) - 2, -1, -1):
        here, after = answered[li], answered[li + 1]
        if here is not None and after is not None and after > here:
            answered[li] = after
    laid: list[tuple[int, tuple[float | None, str, str, str]]] = []
    for li, leg in enumerate(legs):
        for row in _leg_rows(leg, connections.get(leg["connection_id"]), answered[li]):
            laid.append((li, row))
    # Interleave legs by time (chain clock); untimed rows stay after their leg's last row;
    # at the same time requests go client-most first, answers server-most first.
    order: list[tuple[float, int, int]] = []
    last: dict[int, float] = {}
    for n, (li, row) in enumerate(laid):
        if row[0] is not None:
            key = row[0]
        else:  # how a leg ended goes below everything; a fold stays where it was
            key = float("inf") if row[3] == "end" else last.get(li, float("-inf"))
        last[li] = key
        answer = row[3] == "handshake" and row[1] == "server"
        rank = 2 * len(legs) - li if answer else li
        order.append((key, rank, n))
    order.sort()
    rows = [laid[n] for _, _, n in order]
    first_start = chain["legs"][0].get("start") if chain["legs"] else None
    height = TOP + ROW * len(rows) + 20
    sid = f"h{hi}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="seq hopseq" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" role="img" aria-labelledby="{sid}-title">',
        f'<title id="{sid}-title">Sequence of {escape(show(chain["id"], 40))} across '
        f"{len(names)} points</title>",
        f'<defs><marker id="arrow-{sid}" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" class="sd-head"/></marker></defs>',
        f'<text x="8" y="{TOP - 20}" class="sd-axis">s (chain clock)</text>',
    ]
    for x, name in zip(lanes, names, strict=True):
        role, _, addr = name.partition(" ")
        parts.append(f'<text x="{x}" y="20" class="sd-lane-name">{escape(role)}</text>')
        parts.append(
            f'<text x="{x}" y="38" class="sd-lane-addr">{escape(show(addr, 40))}</text>'
            f'<line x1="{x}" y1="{TOP - 14}" x2="{x}" y2="{height - 10}" class="sd-lane"/>'
        )
    for i, (li, (t, side, label, kind)) in enumerate(rows):
        y = TOP + ROW * i + 12
        left, right = lanes[li], lanes[li + 1]
        mid = (left + right) // 2
        if t is not None and isinstance(first_start, int | float):
            parts.append(f'<text x="8" y="{y + 4}" class="sd-time">+{t - first_start:.3f}</text>')
        text = escape(_cut(label))
        if side in ("client", "server"):
            x1, x2 = (left, right) if side == "client" else (right, left)
            parts.append(
                f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" class="sd-msg sd-{side} '
                f'sd-{kind}" marker-end="url(#arrow-{sid})"/>'
                f'<text x="{mid}" y="{y - 5}" class="sd-label sd-{kind}">{text}</text>'
            )
        else:
            parts.append(
                f'<rect x="{left + 6}" y="{y - 14}" width="{right - left - 12}" height="20" '
                f'rx="4" class="sd-note sd-{kind}"/>'
                f'<text x="{mid}" y="{y}" class="sd-label sd-{kind}">{text}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


# -- Markdown ------------------------------------------------------------------------------


def hops_markdown(doc: Doc, md: Any) -> list[str]:
    """Lines of the Markdown report's "Hops" section (none without chains). ``md`` is the
    Markdown renderer's escaping function."""
    chains = doc.get("hops") or []
    if not chains:
        return []
    lines = ["", "## Hops"]
    for chain in chains:
        lines.append("")
        lines.append(f"{md(chain['id'])}: {md(chain_line(chain), 400)}")
        for n, leg in enumerate(chain["legs"], 1):
            lines.append(
                f"- Leg {n} {md(leg['label'], 160)} ({md(leg['capture'], 120)}): "
                f"{md(leg['close_text'] or '', 160)}"
            )
        for hop in chain["hops"]:
            for part in ("request", "response"):
                diff = hop[f"{part}_diff"]
                for kind in ("removed", "added", "changed"):
                    for c in diff[kind]:
                        before = "; ".join(c["before"]) or "absent"
                        after = "; ".join(c["after"]) or "absent"
                        lines.append(
                            f"- {md(hop['label'], 80)}: {part} header {md(c['name'], 80)} "
                            f"{kind} ({md(before, 100)} -> {md(after, 100)})"
                        )
        for note in chain["notes"]:
            lines.append(f"- Note: {md(note, 240)}")
    return lines
