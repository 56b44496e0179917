"""Safe previews of captured text and payloads.

Captured bytes are hostile: control characters, invalid UTF-8, megabytes in one header.
``payload_preview`` turns a message's preview bytes into text or hex (never raising);
``show`` makes any string fit to print: control characters escaped as ``\\xNN`` (in the
manner of python-websockets' ``Frame.__str__``), bidi overrides made visible, long text
cut with its size stated. HTML escaping is jinja2's job (autoescape); this module only
makes text printable and bounded.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass

from analyzer.render.redact import Redactor

# C0 and C1 controls except tab and newline, DEL, and Unicode format characters that
# reorder or hide text (bidi overrides and isolates, zero-width joiners, BOM).
UNPRINTABLE_RE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)
UNPRINTABLE_LINE_RE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)

JSON_PREVIEW_CHARS = 1024  # of each message's preview kept in the JSON report
HEX_PREVIEW_BYTES = 256  # binary payloads shown as hex up to this many bytes
# Byte -> itself when printable ASCII, else ".": the text column of a hex dump.
_PRINTABLE = bytes(b if 0x20 <= b < 0x7F else 0x2E for b in range(256))


@dataclass(frozen=True, slots=True)
class Preview:
    kind: str  # "text", "json", "binary", "empty"
    text: str  # redacted: decoded text, pretty JSON, or hex dump
    shown_bytes: int  # payload bytes the preview covers
    size: int  # the whole payload's size
    invalid_utf8: bool = False

    @property
    def truncated(self) -> bool:
        return self.shown_bytes < self.size

    def to_json(self) -> dict[str, object]:
        text = self.text
        cut = len(text) > JSON_PREVIEW_CHARS
        out: dict[str, object] = {
            "kind": self.kind,
            "text": text[:JSON_PREVIEW_CHARS] if cut else text,
            "bytes": self.shown_bytes,
            "truncated": self.truncated or cut,
        }
        if self.invalid_utf8:
            out["invalid_utf8"] = True
        return out


def _escape_char(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, newlines: bool = False) -> str:
    """Control and invisible reordering characters as escapes; tab/newline kept if asked."""
    pattern = UNPRINTABLE_RE if newlines else UNPRINTABLE_LINE_RE
    return pattern.sub(_escape_char, text)


def show(text: str | None, limit: int = 300, *, newlines: bool = False) -> str:
    """Printable and bounded: ``aaaa... (1048576 characters)``."""
    if text is None:
        return ""
    if len(text) > limit:
        head = printable(text[:limit], newlines=newlines)
        return f"{head}\u2026 ({len(text)} characters)"
    return printable(text, newlines=newlines)


def decode_utf8(data: bytes, complete: bool) -> tuple[str, bool]:
    """Decode; an incomplete sequence at a cut end is dropped, not called invalid."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        return decoder.decode(data, final=complete), False
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), True


def hexdump(data: bytes, limit: int = HEX_PREVIEW_BYTES) -> str:
    """``00000000  48 65 6c 6c 6f  |Hello|`` lines, 16 bytes each."""
    lines = []
    for off in range(0, min(len(data), limit), 16):
        chunk = data[off : off + 16]
        text = chunk.translate(_PRINTABLE).decode("ascii")
        lines.append(f"{off:08x}  {chunk.hex(' '):<47}  |{text}|")
    return "\n".join(lines)


def payload_preview(
    data: bytes | None, size: int, opcode: int, redactor: Redactor
) -> Preview | None:
    """What a reader sees of a message: text, pretty JSON or hex, redacted."""
    if data is None:
        return None
    if size == 0 or not data:
        return Preview("empty", "", 0, size)
    complete = len(data) >= size
    if opcode == 1:
        text, invalid = decode_utf8(data, complete)
        kind = "text"
        if complete and not invalid:
            pretty = _pretty_json(text)
            if pretty is not None:
                text, kind = pretty, "json"
        return Preview(kind, redactor.payload(text), len(data), size, invalid)
    shown = data[:HEX_PREVIEW_BYTES]
    return Preview("binary", hexdump(shown), len(shown), size)


def _pretty_json(text: str) -> str | None:
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):  # pragma: no cover - loads accepted it
        return None
