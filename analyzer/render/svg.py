"""The sequence diagram: client and server lanes, drawn by us as inline SVG (no library).

Rows run down a time axis: the upgrade request and response, data messages, pings and
pongs, the close frames with their code and who sent them, and how the transport ended.
Long runs of messages are collapsed into one row that says how many were folded; idle
gaps are marked with their length. Every captured string is escaped here (``escape``) and
cut short; attributes carry only numbers, our class names and ``#`` anchors we made.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from markupsafe import Markup, escape

from analyzer.render.document import CLOSE_NAMES, Doc
from analyzer.render.preview import show

WIDTH = 760
LEFT = 190  # x of the client lane
RIGHT = 640  # x of the server lane
ROW = 30
TOP = 64
MAX_ROWS = 36  # more events than this: collapse the middle
KEEP_HEAD = 10
KEEP_TAIL = 12
GAP_MARK = 1.0  # seconds of silence worth a mark
LABEL_CHARS = 60  # a label longer than this would run past the lanes


@dataclass(frozen=True, slots=True)
class Event:
    time: float | None
    side: str  # "client", "server", "none" (a note across both lanes)
    label: str
    kind: str  # "handshake", "data", "control", "close", "end", "fold"
    anchor: str | None = None  # "#c0-m3"
    pinned: bool = False  # evidence points here: never folded away


def _data_label(m: Doc) -> str:
    kind = {1: "text", 2: "binary"}.get(m["opcode"], f"opcode {m['opcode']}")
    return f"{kind} {m['size']} B"


def _close_label(code: int | None, reason: str | None) -> str:
    if code is None:
        text = "close (no status code)"
    else:
        name = CLOSE_NAMES.get(code)
        text = f"close {code}" + (f" {name}" if name else "")
    if reason:
        text += f' "{reason[:200]}"'
    return text


def events(conn: Doc, ci: int, pinned_messages: Set[int], pinned_frames: Set[int]) -> list[Event]:
    """The rows of the diagram, in time order."""
    out: list[Event] = []
    start = conn.get("start")
    req, resp = conn.get("request"), conn.get("response")
    if req is not None:
        target = str(req["target"])[:200]
        out.append(
            Event(
                start, "client", f"{req['method']} {target} (Upgrade)", "handshake", f"#c{ci}-req"
            )
        )
    if resp is not None:
        reason = f" {str(resp['reason'])[:200]}" if resp.get("reason") else ""
        out.append(Event(start, "server", f"{resp['status']}{reason}", "handshake", f"#c{ci}-resp"))
    for m in conn["messages"]:
        out.append(
            Event(
                m["time"],
                m["from"],
                _data_label(m),
                "data",
                f"#c{ci}-m{m['index']}",
                m["index"] in pinned_messages,
            )
        )
    frames = conn.get("frames")
    if frames is not None:
        for f in frames:
            op = f["opcode"]
            if op == 8:
                label = _close_label(f.get("close_code"), f.get("close_reason"))
                out.append(
                    Event(f["time"], f["from"], label, "close", f"#c{ci}-f{f['index']}", True)
                )
            elif op in (9, 10):
                name = "ping" if op == 9 else "pong"
                out.append(
                    Event(
                        f["time"],
                        f["from"],
                        f"{name} {f['length']} B",
                        "control",
                        f"#c{ci}-f{f['index']}",
                        f["index"] in pinned_frames,
                    )
                )
    else:
        cl = conn.get("close")
        if cl is not None:
            side = cl["from"] or "none"
            label = _close_label(cl["code"], cl["reason"])
            if cl["from"] is None:
                label += " (sender not recorded)"
            out.append(Event(cl.get("time"), side, label, "close", f"#c{ci}-close", True))
    # Stable sort by time; rows without a time keep their place after the handshake.
    head = [e for e in out if e.kind == "handshake"]
    rest = [e for e in out if e.kind != "handshake"]
    rest.sort(key=lambda e: e.time if e.time is not None else float("inf"))
    end = {
        "close-handshake": "closing handshake complete",
        "close-unanswered": "close never answered",
        "fin": "TCP FIN",
        "rst": "TCP RST",
        "capture-ended": "capture ended, connection still open",
        "unknown": "end not recorded by this capture",
    }.get(conn["end"], str(conn["end"]))
    return [*head, *rest, Event(conn.get("end_time"), "none", end, "end")]


def fold(rows: list[Event]) -> list[Event]:
    """Collapse the middle of a long run, keeping pinned rows and closes."""
    if len(rows) <= MAX_ROWS:
        return rows
    keep = set(range(KEEP_HEAD)) | set(range(len(rows) - KEEP_TAIL, len(rows)))
    keep |= {i for i, e in enumerate(rows) if e.pinned or e.kind in ("close", "handshake")}
    out: list[Event] = []
    run: list[Event] = []

    def flush() -> None:
        if not run:
            return
        c = sum(1 for e in run if e.side == "client")
        s = sum(1 for e in run if e.side == "server")
        times = [e.time for e in run if e.time is not None]
        span = f" over {max(times) - min(times):.3f} s" if len(times) > 1 else ""
        label = f"\u22ef {len(run)} more ({c} from client, {s} from server){span}"
        out.append(Event(run[0].time, "none", label, "fold"))
        run.clear()

    for i, e in enumerate(rows):
        if i in keep:
            flush()
            out.append(e)
        else:
            run.append(e)
    flush()
    return out


def _cut(label: str, limit: int = LABEL_CHARS) -> str:
    """Printable, and short enough to stay between the lanes."""
    text = show(label, 10 * limit)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def sequence_svg(
    conn: Doc,
    ci: int,
    pinned_messages: Set[int] = frozenset(),
    pinned_frames: Set[int] = frozenset(),
    linkable: Set[str] | None = None,
) -> Markup:
    """The diagram of one connection. ``linkable``: the anchors that exist on the page
    (rows of a cut table may not); None means all."""
    rows = fold(events(conn, ci, pinned_messages, pinned_frames))
    start = conn.get("start")
    # Gap marks between rows separated by a long silence.
    laid: list[tuple[Event | None, str]] = []
    prev: float | None = None
    for e in rows:
        if e.time is not None and prev is not None and e.time - prev >= GAP_MARK:
            laid.append((None, f"{e.time - prev:.1f} s idle"))
        laid.append((e, ""))
        if e.time is not None:
            prev = e.time
    height = TOP + ROW * len(laid) + 24
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="seq" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="c{ci}-seq-title">',
        f'<title id="c{ci}-seq-title">Sequence of connection {escape(show(conn["id"], 80))}'
        "</title>",
        '<defs><marker id="arrow-c{ci}" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" class="sd-head"/></marker></defs>'.replace(
            "{ci}", str(ci)
        ),
        f'<text x="{LEFT}" y="20" class="sd-lane-name">client</text>',
        f'<text x="{RIGHT}" y="20" class="sd-lane-name">server</text>',
        f'<text x="{LEFT}" y="38" class="sd-lane-addr">{escape(show(conn.get("client") or "", 48))}'
        "</text>",
        f'<text x="{RIGHT}" y="38" class="sd-lane-addr">'
        f"{escape(show(conn.get('server') or '', 48))}</text>",
        f'<line x1="{LEFT}" y1="{TOP - 14}" x2="{LEFT}" y2="{height - 12}" class="sd-lane"/>',
        f'<line x1="{RIGHT}" y1="{TOP - 14}" x2="{RIGHT}" y2="{height - 12}" class="sd-lane"/>',
        f'<text x="8" y="{TOP - 20}" class="sd-axis">time (s from upgrade)</text>',
    ]
    for i, (maybe, gap) in enumerate(laid):
        y = TOP + ROW * i + 12
        if maybe is None:
            parts.append(
                f'<line x1="{LEFT - 30}" y1="{y - 4}" x2="{RIGHT + 30}" y2="{y - 4}" '
                'class="sd-gap"/>'
                f'<text x="{(LEFT + RIGHT) // 2}" y="{y}" class="sd-gap-label">'
                f"{escape(gap)}</text>"
            )
            continue
        e = maybe
        if e.time is not None and isinstance(start, int | float):
            parts.append(f'<text x="8" y="{y + 4}" class="sd-time">+{e.time - start:.3f}</text>')
        label = escape(_cut(e.label))
        if e.side in ("client", "server"):
            x1, x2 = (LEFT, RIGHT) if e.side == "client" else (RIGHT, LEFT)
            cls = f"sd-msg sd-{e.side} sd-{e.kind}"
            body = (
                f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" class="{cls}" '
                f'marker-end="url(#arrow-c{ci})"/>'
                f'<text x="{(LEFT + RIGHT) // 2}" y="{y - 5}" class="sd-label sd-{e.kind}">'
                f"{label}</text>"
            )
        else:
            body = (
                f'<rect x="{LEFT - 20}" y="{y - 14}" width="{RIGHT - LEFT + 40}" height="20" '
                f'rx="4" class="sd-note sd-{e.kind}"/>'
                f'<text x="{(LEFT + RIGHT) // 2}" y="{y}" class="sd-label sd-{e.kind}">'
                f"{label}</text>"
            )
        if e.anchor is not None and (linkable is None or e.anchor in linkable):
            body = f'<a href="{e.anchor}">{body}</a>'
        parts.append(body)
    parts.append("</svg>")
    return Markup("".join(parts))
