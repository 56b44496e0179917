"""Safe text: any string, any bytes give printable, bounded output; never an exception."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from analyzer.render.markdown import md
from analyzer.render.preview import decode_utf8, hexdump, payload_preview, show
from analyzer.render.redact import MASK, Redactor

CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@given(st.text(), st.integers(min_value=1, max_value=500))
def test_show_is_printable_and_bounded(text: str, limit: int) -> None:
    out = show(text, limit)
    assert not CONTROL_RE.search(out) and "\n" not in out
    assert len(out) <= 4 * limit + 40  # an escape is at most 6 characters for 1


@given(st.binary(max_size=600), st.integers(min_value=0, max_value=2000), st.sampled_from([1, 2]))
def test_payload_preview_never_raises(data: bytes, extra: int, opcode: int) -> None:
    red = Redactor()
    preview = payload_preview(data, len(data) + extra, opcode, red)
    assert preview is not None
    size = len(data) + extra
    if preview.kind == "empty":
        assert not data or size == 0
    elif opcode == 2:
        assert preview.truncated == (min(len(data), 256) < size)
    else:
        assert preview.truncated == (len(data) < size)
    json.dumps(preview.to_json(), ensure_ascii=False).encode("utf-8")


@given(st.text())
def test_redactor_never_raises_and_output_encodes(text: str) -> None:
    red = Redactor()
    for out in (red.text(text), red.payload(text), red.header("Cookie", text), red.url(text)):
        assert out is not None
        out.encode("utf-8")  # no lone surrogates survive


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8))
def test_bearer_values_are_hidden(secret: str) -> None:
    out = Redactor().header("Authorization", f"Bearer {secret}")
    assert out == f"Bearer {MASK}"


@given(st.text())
def test_markdown_text_cannot_open_a_tag(text: str) -> None:
    assert "<" not in md(text)


def test_utf8_cut_mid_character_is_not_invalid() -> None:
    data = "héllo €".encode()
    assert decode_utf8(data[:-1], complete=False) == ("héllo ", False)
    assert decode_utf8(b"\xff", complete=True)[1] is True
    assert hexdump(b"AB\x00") == "00000000  41 42 00" + " " * 39 + "  |AB.|"
