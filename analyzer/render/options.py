"""What the user asked of a report, beyond the analysis itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RenderOptions:
    redact: bool = True  # hide secrets (see analyzer.render.redact); the report says which
    redact_headers: tuple[str, ...] = ()  # more header names whose values are hidden
    redact_params: tuple[str, ...] = ()  # more query parameter names whose values are hidden
    now: float | None = None  # the time of analysis to print (Unix seconds); None: now


DEFAULT_OPTIONS = RenderOptions()
