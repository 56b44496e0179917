"""The ``ws-analyzer`` command: thin click commands over the library (``analyzer.pipeline``,
``analyzer.batch``, ``analyzer.engine``)."""

from analyzer.cli.main import main

__all__ = ["main"]
