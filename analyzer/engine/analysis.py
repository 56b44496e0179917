"""What one run of the rules over some captures gives: the captures, the findings, the rules
that could not be evaluated. Renderers read it; ``analyzer.pipeline`` makes it."""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.engine.findings import Finding, NotEvaluable
from analyzer.session.model import Capture


@dataclass(frozen=True, slots=True)
class Analysis:
    captures: tuple[Capture, ...]
    findings: tuple[Finding, ...] = ()
    not_evaluable: tuple[NotEvaluable, ...] = ()
    rules_run: tuple[str, ...] = ()  # ids of the rules evaluated
    extra: dict[str, object] = field(default_factory=dict)  # e.g. hop chains
