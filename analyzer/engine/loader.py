"""Rule files: read, validate, compile. Once per process.

A rule file is ``<id>.yaml`` holding one rule (fields in ``rules/schema.json`` and
docs/rules.md). Loading one:

1. YAML is parsed with node positions kept, so every later complaint names the file, line
   and column of the value at fault;
2. the data is validated against ``rules/schema.json`` (JSON Schema 2020-12);
3. the id must equal the file name; the scope must be registered
   (``analyzer.engine.scopes``); ``requires`` values are ``Fact`` values;
4. ``when`` is compiled as CEL and every field it names is checked against the view
   (``analyzer.engine.cel``); ``message`` (and each ``escalate`` entry) likewise;
5. examples are parsed (they run under ``rules test`` and in the test suite).

Any failure raises ``RuleError(message, path, line, column)``.

Built-in and user rules
-----------------------
User folders (``--rules DIR``) are read after the built-in folder. A user rule with the
id of a built-in rule REPLACES it (so a team can retune a built-in's severity or message
without forking the pack); the replaced rule is recorded in ``RuleSet.overridden``. The
same id in two user folders is an error: nothing says which one was meant.

Loaded rule sets are cached per process, keyed by the folders and the files' sizes and
modification times: a batch of thousands of captures compiles the pack once.

Start-up: parsing the YAML and validating it against the schema cost most of a small
capture's run, so the validated data of each rule file is also kept on disk
(``analyzer.cache``), one JSON file per rule folder, each rule's data under the SHA-256 of
the file's bytes, the whole valid only for this package version, Python version and
schema. A warm start reads that and compiles the CEL (a few milliseconds for the whole
pack). Only data that passed validation is stored, and the node tree that positions
errors is built from the file only when there is an error to position, so a bad rule file
fails with the same file:line:column message warm or cold. The YAML is read with
libyaml's parser when PyYAML has it; should libyaml reject a file, the pure-Python parser
reads it again, so the message is PyYAML's usual one.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer import __version__
from analyzer.cache import read_json, write_json
from analyzer.engine.cel import (
    Compiled,
    CompileError,
    Template,
    compile_expression,
    compile_template,
)
from analyzer.engine.findings import Severity
from analyzer.engine.scopes import SCOPES
from analyzer.engine.scopes import ensure as ensure_scope
from analyzer.errors import AnalyzerError, RuleError
from analyzer.resources import rules_dir
from analyzer.session.model import Fact

if TYPE_CHECKING:
    import yaml

# -- YAML with positions --------------------------------------------------------------------


class Source:
    """A rule file's text and node tree, to turn a value's offset into line:column.

    The tree is composed (by PyYAML's pure-Python parser, whose marks every position
    below is computed from) the first time a position is asked for, which is only when
    there is an error to report.
    """

    __slots__ = ("_composed", "_root", "digest", "path", "text")

    def __init__(self, path: str, text: str, digest: str = "") -> None:
        self.path = path
        self.text = text
        self.digest = digest  # SHA-256 of the file's bytes: its key in the disk cache
        self._root: yaml.Node | None = None
        self._composed = False

    def compose(self) -> yaml.Node | None:
        """The node tree; raises ``yaml.YAMLError`` when the text is not YAML."""
        if not self._composed:
            import yaml

            self._root = yaml.compose(self.text, Loader=yaml.SafeLoader)
            self._composed = True
        return self._root

    @property
    def root(self) -> yaml.Node | None:
        import yaml

        try:
            return self.compose()
        except yaml.YAMLError:  # libyaml read what this parser rejects: no positions
            self._composed = True
            return None

    def node_at(self, keys: Sequence[str | int]) -> yaml.Node | None:
        import yaml

        node = self.root
        for key in keys:
            if isinstance(node, yaml.MappingNode):
                nxt = None
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == key:
                        nxt = v
                        break
                node = nxt
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
                node = node.value[key] if 0 <= key < len(node.value) else None
            else:
                return None
            if node is None:
                return None
        return node

    def key_position(self, keys: Sequence[str | int]) -> tuple[int, int] | None:
        """1-based (line, column) of the node at ``keys`` (its key's parent when absent)."""
        for depth in range(len(keys), -1, -1):
            node = self.node_at(keys[:depth])
            if node is not None:
                return node.start_mark.line + 1, node.start_mark.column + 1
        return None

    def value_position(self, keys: Sequence[str | int], offset: int) -> tuple[int, int]:
        """1-based (line, column) of character ``offset`` inside the scalar at ``keys``."""
        import yaml

        node = self.node_at(keys)
        if not isinstance(node, yaml.ScalarNode):
            return self.key_position(keys) or (1, 1)
        value: str = node.value
        offset = max(0, min(offset, len(value)))
        before = value[:offset]
        vline = before.count("\n")
        vcol = offset - (before.rfind("\n") + 1)
        mark = node.start_mark
        lines = self.text.split("\n")
        if node.style == "|":
            # Literal block: content starts on the next line, one value line per file line.
            line = mark.line + 1 + vline
            indent = 0
            for candidate in lines[mark.line + 1 :]:
                if candidate.strip():
                    indent = len(candidate) - len(candidate.lstrip(" "))
                    break
            return line + 1, indent + vcol + 1
        if "\n" not in value and mark.line == node.end_mark.line:
            quote = 1 if node.style in ("'", '"') else 0
            return mark.line + 1, mark.column + quote + vcol + 1
        # Folded or multi-line plain/quoted scalars: find the value's line in the file.
        wanted = value.split("\n")[vline] if "\n" in value else value
        words = wanted[vcol:].split()
        probe = words[0] if words else wanted.strip()
        for number in range(mark.line, min(node.end_mark.line + 1, len(lines))):
            col = lines[number].find(probe) if probe else -1
            if col >= 0:
                return number + 1, col + 1
        return mark.line + 1, mark.column + 1


def _read_source(path: Path | Traversable, shown: str) -> Source:
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleError(f"not UTF-8 text ({exc.reason})", shown) from None
    except OSError as exc:
        raise RuleError(f"cannot read ({exc.strerror or exc})", shown) from None
    # Universal newlines, as reading the file in text mode gives.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return Source(shown, text, hashlib.sha256(raw).hexdigest())


def _parse_yaml(source: Source) -> Any:
    import yaml

    fast = getattr(yaml, "CSafeLoader", None)  # PyYAML built with libyaml
    if fast is not None:
        try:
            return yaml.load(source.text, Loader=fast)
        except yaml.YAMLError:
            pass  # report what the pure-Python parser says, as without libyaml
    try:
        source.compose()
        return yaml.safe_load(source.text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        raise RuleError(f"invalid YAML: {what}", source.path, line, col) from None
    except yaml.YAMLError as exc:
        raise RuleError(f"invalid YAML: {exc}", source.path) from None


# -- the schema -----------------------------------------------------------------------------

_SCHEMA: dict[str, Any] | None = None


def rule_schema() -> dict[str, Any]:
    global _SCHEMA
    if _SCHEMA is None:
        text = (rules_dir() / "schema.json").read_text(encoding="utf-8")
        _SCHEMA = json.loads(text)
    return _SCHEMA


def _schema_error(data: Any, source: Source) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(rule_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return
    keys = [k for k in error.absolute_path]
    where = ".".join(str(k) for k in keys) or "the rule"
    if error.validator == "required":
        message = f"{where}: {error.message}"
    elif error.validator == "additionalProperties":
        message = f"{where}: {error.message}"
    elif error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        message = f"{where}: {error.instance!r} is not one of {allowed}"
    else:
        message = f"{where}: {error.message}"
    pos = source.key_position(keys) or (None, None)
    raise RuleError(message, source.path, pos[0], pos[1])


# -- rules ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Example:
    name: str
    values: Mapping[str, Any]  # variable name -> partial view, merged over the defaults
    message: str | None  # the exact message expected, when given
    index: int  # position in the file's list


@dataclass(frozen=True, slots=True)
class EvidenceSpec:
    kind: str  # header | response_header | status | close | end | anomaly | first_message...
    arg: str = ""


@dataclass(frozen=True, slots=True)
class Escalation:
    when: Compiled
    severity: Severity
    because: str


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    severity: Severity
    scope: str
    requires: tuple[str, ...]
    when: Compiled
    message: Template
    why: str
    fix: str
    references: tuple[str, ...]
    tags: tuple[str, ...]
    falsepositives: tuple[str, ...]
    matches: tuple[Example, ...]
    non_matches: tuple[Example, ...]
    evidence: tuple[EvidenceSpec, ...]
    escalate: tuple[Escalation, ...]
    advice: str  # how to capture what ``requires`` needs, when a capture lacks it
    path: str
    builtin: bool
    heavy: frozenset[str]  # heavy view fields the condition, message or escalations read
    # top-level fields of the scope's item variable the condition reads (None: all of them);
    # conditions are evaluated over just those, the message over the whole view
    fields: frozenset[str] | None = None
    # the same for the message and escalations, evaluated only when the rule fires
    message_fields: frozenset[str] | None = None
    reads: frozenset[str] = frozenset()  # every view field named by condition or message

    def selected_by(self, names: Iterable[str]) -> bool:
        wanted = set(names)
        return self.id in wanted or any(t in wanted for t in self.tags)


_EVIDENCE_KINDS = (
    "header",
    "response_header",
    "status",
    "close",
    "end",
    "proxy_headers",
    "target",
    "anomaly",
    "first_message",
    "last_message",
)


def _compile_at(
    source: Source, keys: Sequence[str | int], text: str, scope: str, *, template: bool
) -> Any:
    variables = SCOPES[scope].variables
    try:
        if template:
            return compile_template(text, variables)
        return compile_expression(text, variables, want_bool=True)
    except CompileError as exc:
        line, col = source.value_position(keys, exc.offset or 0)
        raise RuleError(exc.message, source.path, line, col) from None


def _examples(data: Any, key: str) -> tuple[Example, ...]:
    out = []
    for i, item in enumerate(data or ()):
        values = {k: v for k, v in item.items() if k not in ("name", "message")}
        out.append(Example(str(item.get("name") or f"{key}[{i}]"), values, item.get("message"), i))
    return tuple(out)


# -- the disk cache of validated rule data ---------------------------------------------------

# Bump when what is stored, or what storing it means, changes.
_CACHE_FORMAT = 1


def _cache_salt() -> str:
    """What besides a file's bytes decides its validated data: this code, Python, schema."""
    schema = (rules_dir() / "schema.json").read_bytes()
    return ":".join(
        (
            str(_CACHE_FORMAT),
            __version__,
            sys.version,
            hashlib.sha256(schema).hexdigest(),
        )
    )


class PackCache:
    """The validated data of one folder's rule files, by SHA-256 of each file's bytes.

    Read from the disk cache when made, written back by ``save`` when a file was parsed
    anew (or one is gone), holding only the folder's current files.
    """

    def __init__(self, folder: Path | Traversable, *, builtin: bool) -> None:
        where = f"{'builtin' if builtin else 'user'}:{folder}"
        self.name = f"rules-{hashlib.sha256(where.encode()).hexdigest()[:20]}.json"
        self.salt = _cache_salt()
        stored = read_json(self.name)
        rules = stored.get("rules") if isinstance(stored, dict) else None
        fresh = isinstance(stored, dict) and stored.get("salt") == self.salt
        self.stored: dict[str, Any] = rules if fresh and isinstance(rules, dict) else {}
        self.current: dict[str, Any] = {}
        self.hits = 0
        self.misses = 0

    def get(self, digest: str) -> dict[str, Any] | None:
        data = self.stored.get(digest)
        if not isinstance(data, dict):
            self.misses += 1
            return None
        self.hits += 1
        self.current[digest] = data
        return data

    def put(self, digest: str, data: dict[str, Any]) -> None:
        """Keep ``data`` (valid by now) if JSON gives it back unchanged."""
        try:
            same = json.loads(json.dumps(data)) == data
        except (TypeError, ValueError):  # a YAML date, binary, set...: parse it each time
            same = False
        if same:
            self.current[digest] = data

    def save(self) -> None:
        if self.current.keys() != self.stored.keys():
            write_json(self.name, {"salt": self.salt, "rules": self.current})


def parse_rule(
    path: Path | Traversable,
    *,
    builtin: bool = False,
    shown: str | None = None,
    cache: PackCache | None = None,
) -> Rule:
    """Load, validate and compile one rule file. Raises ``RuleError``.

    With ``cache``, the file's validated data is taken from it when there, and put there
    once validated.
    """
    shown = shown or str(path)
    source = _read_source(path, shown)
    data = cache.get(source.digest) if cache is not None else None
    if data is None:
        data = _parse_yaml(source)
        if not isinstance(data, dict):
            raise RuleError(
                "a rule file holds one mapping (id: ..., title: ..., when: ...)", shown, 1, 1
            )
        _schema_error(data, source)
        if cache is not None:
            cache.put(source.digest, data)
    stem = path.name.rsplit(".", 1)[0]
    if data["id"] != stem:
        line, col = source.key_position(["id"]) or (1, 1)
        raise RuleError(
            f"id {data['id']!r} does not match the file name (expected {stem!r})", shown, line, col
        )
    scope = data.get("scope", "connection")
    if ensure_scope(scope) is None:
        line, col = source.key_position(["scope"]) or (1, 1)
        known = ", ".join(sorted(SCOPES))
        raise RuleError(f"scope {scope!r} is not known here (known: {known})", shown, line, col)
    when: Compiled = _compile_at(source, ["when"], data["when"], scope, template=False)
    message: Template = _compile_at(source, ["message"], data["message"], scope, template=True)
    escalations = []
    for i, item in enumerate(data.get("escalate") or ()):
        cond = _compile_at(source, ["escalate", i, "when"], item["when"], scope, template=False)
        escalations.append(
            Escalation(cond, Severity.parse(item["severity"]), item.get("because", ""))
        )
    evidence = []
    for item in data.get("evidence") or ():
        kind, arg = next(iter(item.items()))
        evidence.append(EvidenceSpec(kind, "" if arg is True else str(arg)))
    examples = data.get("examples") or {}
    uses = set(when.uses) | set(message.uses)
    for esc in escalations:
        uses |= esc.when.uses
    heavy_names = SCOPES[scope].heavy
    first_var = next(iter(SCOPES[scope].variables))
    heavy = frozenset(f for v, f in uses if v == first_var and f in heavy_names)
    read = {f for v, f in when.uses if v == first_var}
    fields = None if "*" in read else frozenset(read)
    later = {f for v, f in uses if v == first_var}
    message_fields = None if "*" in later else frozenset(later)
    return Rule(
        id=data["id"],
        title=data["title"].strip(),
        severity=Severity.parse(data["severity"]),
        scope=scope,
        requires=tuple(data.get("requires") or ()),
        when=when,
        message=message,
        why=str(data.get("why", "")).strip(),
        fix=str(data.get("fix", "")).strip(),
        references=tuple(data.get("references") or ()),
        tags=tuple(data.get("tags") or ()),
        falsepositives=tuple(data.get("falsepositives") or ()),
        matches=_examples(examples.get("match"), "match"),
        non_matches=_examples(examples.get("no_match"), "no_match"),
        evidence=tuple(evidence),
        escalate=tuple(escalations),
        advice=str(data.get("advice", "")).strip(),
        path=shown,
        builtin=builtin,
        heavy=heavy,
        fields=fields,
        message_fields=message_fields,
        reads=frozenset(f for _, f in when.uses | message.uses),
    )


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]  # sorted by id
    overridden: tuple[str, ...] = ()  # built-in ids replaced by a user rule

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def _rule_files(folder: Path | Traversable) -> list[Path | Traversable]:
    return sorted(
        (p for p in folder.iterdir() if p.name.endswith((".yaml", ".yml")) and p.is_file()),
        key=lambda p: p.name,
    )


def _fingerprint(files: Iterable[Path | Traversable]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for f in files:
        if isinstance(f, Path):
            st = f.stat()
            out.append((str(f), st.st_size, st.st_mtime_ns))
        else:
            out.append((str(f), 0, 0))
    return tuple(out)


_CACHE: dict[tuple[Any, ...], RuleSet] = {}


def load_rules(dirs: Sequence[Path] = (), *, builtin: bool = True) -> RuleSet:
    """The built-in rules (unless ``builtin`` is False) and every rule in ``dirs``."""
    sources: list[tuple[Path | Traversable, list[Path | Traversable], bool]] = []
    if builtin:
        folder = rules_dir()
        sources.append((folder, _rule_files(folder), True))
    for d in dirs:
        if not d.is_dir():
            raise RuleError("not a folder of rule files", d)
        sources.append((d.resolve(), _rule_files(d), False))
    key = tuple((_fingerprint(files), b) for _, files, b in sources)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    by_id: dict[str, Rule] = {}
    overridden: list[str] = []
    for folder, files, is_builtin in sources:
        cache = PackCache(folder, builtin=is_builtin)
        for f in files:
            rule = parse_rule(f, builtin=is_builtin, cache=cache)
            previous = by_id.get(rule.id)
            if previous is not None:
                if previous.builtin and not is_builtin:
                    overridden.append(rule.id)
                else:
                    raise RuleError(
                        f"rule id {rule.id!r} is also defined in {previous.path}", rule.path, 1, 1
                    )
            by_id[rule.id] = rule
        cache.save()
    ruleset = RuleSet(tuple(sorted(by_id.values(), key=lambda r: r.id)), tuple(overridden))
    _CACHE[key] = ruleset
    return ruleset


def load_paths(paths: Sequence[Path]) -> list[Rule]:
    """Rule files named directly or found in folders (for ``rules validate/test``)."""
    out: list[Rule] = []
    for p in paths:
        if p.is_dir():
            out.extend(parse_rule(f) for f in _rule_files(p))
        elif p.exists():
            out.append(parse_rule(p))
        else:
            raise RuleError("no such file or folder", p)
    return out


def select_rules(
    rules: Sequence[Rule], select: Sequence[str] = (), ignore: Sequence[str] = ()
) -> tuple[Rule, ...]:
    """Rules picked by id or tag; an unknown name is an error, not an empty selection."""
    known = {r.id for r in rules} | {t for r in rules for t in r.tags}
    for option, names in (("--select", select), ("--ignore", ignore)):
        for name in names:
            if name not in known:
                raise AnalyzerError(f"{option}: no rule or tag is named {name!r}")
    picked = [r for r in rules if not select or r.selected_by(select)]
    return tuple(r for r in picked if not r.selected_by(ignore))


FACT_VALUES = tuple(f.value for f in Fact)
EVIDENCE_KINDS = _EVIDENCE_KINDS
