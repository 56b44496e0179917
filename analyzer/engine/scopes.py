"""Scopes: what a rule is evaluated over, and under which CEL variable names.

A small registry, so that a new scope (``session``: hop chains across captures, added
later) is one entry here and no change to the loader or the evaluator:

- ``name``: the value of a rule's ``scope`` field;
- ``variables``: CEL variable name -> declared schema (``analyzer.engine.view.Field``);
  the first one is the item itself;
- ``items(captures)``: yields one ``Item`` per thing to evaluate.

``connection`` rules see ``connection`` (the connection's view) and ``capture`` (the
capture it came from); ``capture`` rules see ``capture`` with a ``connections`` list.
Scopes defined elsewhere (``session``) are listed in ``PROVIDERS`` and registered the first
time a rule names them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from analyzer.engine.examples import default_views
from analyzer.engine.findings import Evidence
from analyzer.engine.view import (
    CAPTURE,
    CAPTURE_SCOPE_SCHEMA,
    CONNECTION,
    HEAVY_FIELDS,
    Field,
    LazyConnectionView,
    capture_view,
    connection_view,
    heavy_field,
)
from analyzer.session.model import Capture, Connection


@dataclass(slots=True)
class Item:
    """One thing a rule is evaluated over: its variables, lazily completed."""

    variables: dict[str, Any]  # name -> light view
    can_show: frozenset[str]
    connection: Connection | None
    capture: Capture
    time: float | None
    heavy: Callable[[str], Any] | None = None  # heavy field name -> value
    payload: Any = None  # what a scope's own evidence hook needs (e.g. a hop chain)
    cache: dict[Any, Any] = field(default_factory=dict)  # (heavy, fields) -> activation


@dataclass(frozen=True, slots=True)
class Scope:
    name: str
    variables: Mapping[str, Field]
    items: Callable[[tuple[Capture, ...]], Iterator[Item]]
    heavy: tuple[str, ...] = ()  # fields of the first variable filled only on demand
    doc: str = ""
    # variable name -> full view of a clean item; rule examples merge over it
    example_defaults: Callable[[], dict[str, Any]] | None = None
    # (item, [(evidence kind, arg)], fields read) -> evidence; default: the item's
    # connection, through analyzer.engine.evidence.build
    evidence: (
        Callable[[Item, list[tuple[str, str]], frozenset[str]], tuple[Evidence, ...]] | None
    ) = None
    # (payloads of every item of this scope) -> entries for ``Analysis.extra`` (e.g. the
    # session scope's hop chains, so that reports show them without linking twice). A scope
    # with this hook has its items made even when no rule of it is selected.
    extra: Callable[[list[Any]], dict[str, object]] | None = None


def _connection_defaults() -> dict[str, Any]:
    return default_views()


def _capture_defaults() -> dict[str, Any]:
    views = default_views()
    cap = views["capture"]
    cap["connections"] = [views["connection"]]
    return {"capture": cap}


def _connection_items(captures: tuple[Capture, ...]) -> Iterator[Item]:
    for cap in captures:
        cap_view = capture_view(cap)
        for conn in cap.connections:
            yield Item(
                # computed field group by field group as rules read them
                variables={"connection": LazyConnectionView(conn, cap), "capture": cap_view},
                can_show=conn.can_show,
                connection=conn,
                capture=cap,
                time=conn.start,
                heavy=lambda name, c=conn: heavy_field(c, name),  # type: ignore[misc]
            )


def _capture_items(captures: tuple[Capture, ...]) -> Iterator[Item]:
    for cap in captures:
        view = capture_view(cap)
        view["connections"] = [connection_view(c, cap) for c in cap.connections]
        yield Item(
            variables={"capture": view},
            can_show=cap.can_show,
            connection=None,
            capture=cap,
            time=min((c.start for c in cap.connections if c.start is not None), default=None),
        )


SCOPES: dict[str, Scope] = {
    "connection": Scope(
        "connection",
        {"connection": CONNECTION, "capture": CAPTURE},
        _connection_items,
        heavy=HEAVY_FIELDS,
        doc="once per WebSocket connection (or attempt)",
        example_defaults=_connection_defaults,
    ),
    "capture": Scope(
        "capture",
        {"capture": CAPTURE_SCOPE_SCHEMA},
        _capture_items,
        doc="once per capture file",
        example_defaults=_capture_defaults,
    ),
}

# Scopes defined outside the engine, registered on first use: scope name ->
# "module:function" that calls ``register``. Keeps the engine free of import cycles.
PROVIDERS: dict[str, str] = {
    "session": "analyzer.engine.hops_scope:register_session_scope",
}


def register(scope: Scope) -> None:
    """Add a scope (e.g. ``session`` for hop chains). Rule files may then name it."""
    SCOPES[scope.name] = scope


def ensure(name: str) -> Scope | None:
    """The scope called ``name``, registering it through ``PROVIDERS`` when needed."""
    if name not in SCOPES and name in PROVIDERS:
        import importlib

        module, _, func = PROVIDERS[name].partition(":")
        try:
            getattr(importlib.import_module(module), func)()
        except (ImportError, AttributeError):
            return None
    return SCOPES.get(name)
