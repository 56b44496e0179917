"""summarize_close: what "first close", "echoed" and "how it ended" mean, for every source."""

from __future__ import annotations

from analyzer.session.build import summarize_close
from analyzer.session.model import Message
from analyzer.vocabulary import CloseSeen


def msg(index: int, side: str, time: float) -> Message:
    return Message(index, side, time, 1, 5, frame_index=index)  # type: ignore[arg-type]


MESSAGES = (msg(0, "client", 1.0), msg(1, "server", 1.5), msg(2, "client", 2.0))
SERVER_1008 = CloseSeen("server", 2.25, 1008, "origin not allowed", frame_index=3)
CLIENT_ECHO = CloseSeen("client", 2.5, 1008, "origin not allowed", frame_index=4)


def test_close_then_echo_is_a_close_handshake() -> None:
    close, end = summarize_close((SERVER_1008, CLIENT_ECHO), MESSAGES, "fin")
    assert end == "close-handshake"
    assert close is not None
    assert (close.side, close.code, close.echoed, close.echo_code) == ("server", 1008, True, 1008)
    assert (close.client_messages_before, close.server_messages_before) == (2, 1)
    assert close.since_last_message == 0.25


def test_close_then_fin_without_echo_is_unanswered() -> None:
    close, end = summarize_close((SERVER_1008,), MESSAGES, "rst")
    assert end == "close-unanswered"
    assert close is not None and close.echoed is False


def test_capture_ending_before_an_answer_claims_nothing() -> None:
    close, end = summarize_close((SERVER_1008,), MESSAGES, "open")
    assert end == "capture-ended"
    assert close is not None and close.echoed is None


def test_no_close_at_all_is_the_transport_end() -> None:
    assert summarize_close((), MESSAGES, "fin") == (None, "fin")
    assert summarize_close((), MESSAGES, "rst") == (None, "rst")
    assert summarize_close((), MESSAGES, "open") == (None, "capture-ended")
    assert summarize_close((), MESSAGES, "unknown") == (None, "unknown")


def test_a_side_lost_after_a_gap_proves_no_absence() -> None:
    # The client's frames after a TCP gap were not parsed: its echo may be there unseen.
    close, end = summarize_close((SERVER_1008,), MESSAGES, "fin", frozenset({"client"}))
    assert end == "unknown"
    assert close is not None and close.echoed is None
    # ... and a missing close from either side is no evidence of an abnormal closure.
    assert summarize_close((), MESSAGES, "fin", frozenset({"server"})) == (None, "unknown")
    # A gap on the closing side itself does not hide the answer of the other side.
    close, end = summarize_close((SERVER_1008,), MESSAGES, "fin", frozenset({"server"}))
    assert end == "close-unanswered"


def test_messages_after_the_close_do_not_count_as_before_it() -> None:
    late = (*MESSAGES, msg(5, "client", 2.75))
    close, _ = summarize_close((SERVER_1008, CLIENT_ECHO), late, "fin")
    assert close is not None and close.client_messages_before == 2
