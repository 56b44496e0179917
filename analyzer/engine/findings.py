"""Findings: judgements made by rules, with the evidence a reader can check."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from analyzer.session.model import Location


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, name: str) -> Severity:
        return cls[name.strip().upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Evidence:
    """One thing a reader can check: a header, a message, a frame, a close."""

    label: str  # "Origin header absent from the upgrade request"
    location: Location | None = None
    header: str | None = None  # header name, when the evidence is a header
    frame: int | None = None  # index in Connection.frames
    message: int | None = None  # index in Connection.messages

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"label": self.label}
        if self.location is not None:
            out["location"] = self.location.to_json()
        for name in ("header", "frame", "message"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # rule id == rule file name
    title: str
    severity: Severity
    connection: str | None  # Connection.id; None for capture-scope rules
    message: str  # filled from the model: says what happened here
    evidence: tuple[Evidence, ...] = ()
    why: str = ""
    fix: str = ""
    references: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    time: float | None = None  # when it happened (Unix seconds), for the verdict


@dataclass(frozen=True, slots=True)
class NotEvaluable:
    """A rule that could not be judged: the capture cannot show what it needs."""

    rule: str
    title: str
    connection: str | None
    reason: str  # "this capture records no close frames (Chrome HAR)"
    advice: str  # how to capture what is missing
    missing: tuple[str, ...] = ()  # Fact values
