"""What the user asked for, beyond the capture paths: read by every stage, so it sits at the
bottom of the package beside ``Limits``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analyzer.limits import DEFAULT_LIMITS, Limits


@dataclass(frozen=True, slots=True)
class Options:
    """What the user asked for, beyond the capture paths."""

    limits: Limits = DEFAULT_LIMITS
    keylog: Path | None = None  # TLS key log (NSS format); SSLKEYLOGFILE if unset
    rule_dirs: tuple[Path, ...] = ()  # user rule folders, beside the built-in ones
    select: tuple[str, ...] = ()  # rule ids or tags; empty means all
    ignore: tuple[str, ...] = ()
    builtin_rules: bool = True


DEFAULT_OPTIONS = Options()
