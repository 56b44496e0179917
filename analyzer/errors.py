"""Errors: the tool cannot go on.

Each is turned by the CLI into one line, ``ws-analyzer: <file>: <what is wrong>``, and exit
code 2. Traffic that is merely odd is never an error: it becomes an ``Anomaly`` on the
connection (see ``analyzer.session.model``).
"""

from __future__ import annotations

from pathlib import Path

EXIT_USAGE = 2


class AnalyzerError(Exception):
    """Base class: something the user must fix before analysis can go on."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None

    def __str__(self) -> str:
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message


class InputError(AnalyzerError):
    """A capture file is missing, unreadable, or not in a format we know."""


class UnknownFormatError(InputError):
    """The file is none of HAR, pcap, pcapng (gzip-compressed or not)."""


class KeyLogError(InputError):
    """A TLS key log file cannot be used at all."""


class RuleError(AnalyzerError):
    """A rule file is broken: bad YAML, schema violation, CEL that does not compile.

    ``line`` and ``column`` are 1-based positions in ``path`` when known.
    """

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message, path)
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = self.path or "<rule>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class OutputError(AnalyzerError):
    """A report cannot be written where the user asked."""
