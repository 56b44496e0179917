"""Pieces both input paths (HAR and packet capture) use to fill the session model.

The HAR reader (``analyzer.inputs.har``) and the packet-capture builder
(``analyzer.session.build_pcap``) each collect what their source shows, then call these
so that "first close", "echoed" and "how it ended" mean the same thing whatever the source.
"""

from __future__ import annotations

from collections.abc import Sequence

from analyzer.session.model import Close, EndKind, Message
from analyzer.vocabulary import CloseSeen

TransportEnd = str  # "fin" | "rst" | "open" (still open when the capture ended) | "unknown"


def summarize_close(
    closes: Sequence[CloseSeen],
    messages: Sequence[Message],
    transport_end: TransportEnd,
    blind: frozenset[str] = frozenset(),
) -> tuple[Close | None, EndKind]:
    """The first close and how the connection ended.

    ``closes`` are in capture order. ``transport_end`` says what the transport did:
    ``"fin"`` or ``"rst"`` (whichever came first), ``"open"`` when the capture ended
    with the connection still open, ``"unknown"`` when the source cannot tell (HAR).

    - ``close-handshake``: a close, then a close from the other side.
    - ``close-unanswered``: a close and no answer, and the transport ended or the
      capture went on past it (we saw the end and there was no echo).
    - ``fin`` / ``rst``: no close frame at all, the TCP connection ended.
    - ``capture-ended``: the capture stopped with the connection open and no close.
    - ``unknown``: the source cannot show how it ended.

    ``blind`` names the sides whose frames were not all parsed (a TCP gap lost the frame
    boundaries): a close from such a side may have gone unseen, so its absence proves
    nothing and the answer is ``unknown`` rather than a claim that none was sent.
    """
    if not closes:
        if blind:
            return None, "unknown"
        if transport_end in ("fin", "rst"):
            return None, transport_end  # type: ignore[return-value]
        if transport_end == "open":
            return None, "capture-ended"
        return None, "unknown"

    first = closes[0]
    echo = next((c for c in closes[1:] if c.side != first.side), None)
    if echo is not None:
        echoed: bool | None = True
        end: EndKind = "close-handshake"
    elif (
        first.side == "client"
        and "server" in blind
        or (first.side == "server" and "client" in blind)
    ):
        echoed, end = None, "unknown"
    elif transport_end in ("fin", "rst"):
        echoed, end = False, "close-unanswered"
    elif transport_end == "open":
        # The capture ended before an answer could be seen: we cannot say it never came.
        echoed, end = None, "capture-ended"
    else:
        echoed, end = None, "unknown"

    # Messages before the close: frame order is exact where we have it; times can tie
    # within one packet. One pass with no call per message (a connection may hold 100k),
    # none when the source counted them.
    client_before = server_before = 0
    last: Message | None = None
    fi, ft = first.frame_index, first.time
    if first.before is not None:
        client_before, server_before, n = first.before
        last = messages[n - 1] if n else None
        messages = ()
    for m in messages:
        mfi = m.frame_index
        if (mfi < fi) if (fi is not None and mfi is not None) else (ft is None or m.time <= ft):
            if m.side == "client":
                client_before += 1
            elif m.side == "server":
                server_before += 1
            last = m
    since_last: float | None = None
    if last is not None and ft is not None:
        since_last = max(0.0, ft - last.time)
    close = Close(
        side=first.side,
        code=first.code,
        reason=first.reason,
        time=first.time,
        echoed=echoed,
        client_messages_before=client_before,
        server_messages_before=server_before,
        since_last_message=since_last,
        location=first.location,
        frame_index=first.frame_index,
        echo_code=echo.code if echo else None,
        echo_location=echo.location if echo else None,
    )
    return close, end
