"""The JSON report: the v1 contract for integrations (``ws-analyzer/report/v1``).

The document is built by ``analyzer.render.document``; its JSON Schema ships at
``analyzer/schemas/report-v1.schema.json`` (``schema_path()``).
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from analyzer.pipeline import Analysis
from analyzer.render.document import SCHEMA, build_document
from analyzer.render.options import DEFAULT_OPTIONS, RenderOptions

__all__ = ["SCHEMA", "load_schema", "render_json", "schema_path"]


def schema_path() -> Traversable:
    return resources.files("analyzer") / "schemas" / "report-v1.schema.json"


def load_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    return loaded


def render_json(analysis: Analysis, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    doc = build_document(analysis, options)
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
