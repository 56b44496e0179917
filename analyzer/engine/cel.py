"""CEL conditions and message templates: compile once, check field names, evaluate fast.

Why ``cel-expr-python``
-----------------------
Measured here (benchmarks/bench_rules.py prints the figures) on one connection-sized
view: Google's C++ runtime ``cel-expr-python`` evaluates a compiled condition in about
2-3 us once the activation holds the view, the Rust-backed ``common-expression-language``
about 18 us, pure-Python ``cel-python`` hundreds. ``cel-expr-python`` declares variable
types (an undeclared variable, a call on the wrong type or a syntax error fails at
compile time), but it declares structured types only as protobuf messages: our view is
maps, so the variables are declared ``map(string, dyn)``.

Field names are therefore checked here: the compiled expression (a ``cel.expr.CheckedExpr``
protobuf, from ``Expression.serialize()``) is decoded with the small wire-format reader
below, and every field selection (``connection.close.code``, ``has(connection.origin)``,
``connection["origin"]``, comprehension variables over ``connection.messages``) is walked
against ``analyzer.engine.view.VIEW_SCHEMA``. A misspelt field is a ``RuleError`` with the
offset in the expression, which the loader turns into file:line:column.

Message templates are text with CEL expressions in braces: ``closed with {connection.close
.code}``; ``{{`` and ``}}`` are literal braces. Each expression is compiled and checked
like a condition. CEL cannot reach Python objects, files or the network and always
terminates, so a template copied from someone else's rule cannot do harm; Jinja2's
sandbox would have given a second language with weaker guarantees and no field check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel

from analyzer.engine.view import Field

# -- the protobuf wire format, just enough for cel.expr.CheckedExpr -------------------------


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, i


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of one message: ints for varints, bytes otherwise."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            length, i = _varint(buf, i)
            value = buf[i : i + length]
            i += length
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:  # groups are not used by cel.expr
            raise ValueError(f"unsupported wire type {wire}")
        yield number, value


@dataclass(frozen=True, slots=True)
class Node:
    """One node of a CEL expression tree (``cel.expr.Expr``), reduced to what we check."""

    id: int
    kind: str  # "const" | "ident" | "select" | "call" | "list" | "struct" | "comp"
    name: str = ""  # ident name, selected field, called function, iteration variable
    const: object = None  # string/int constant value, for map["key"] checks
    test_only: bool = False  # has(x.f)
    children: tuple[Node, ...] = ()  # select: (operand,); call: (target?, args...)
    has_target: bool = False
    accu_var: str = ""
    iter_var2: str = ""


def _constant(buf: bytes) -> object:
    for number, value in _fields(buf):
        if number == 6 and isinstance(value, bytes):  # string_value
            return value.decode("utf-8", "replace")
        if number in (3, 4) and isinstance(value, int):  # int64 / uint64
            return value
    return None


def _expr(buf: bytes) -> Node:
    expr_id = 0
    for number, value in _fields(buf):
        if number == 2 and isinstance(value, int):
            expr_id = value
        elif not isinstance(value, bytes):
            continue
        elif number == 3:
            return Node(expr_id, "const", const=_constant(value))
        elif number == 4:
            name = next((v for n, v in _fields(value) if n == 1 and isinstance(v, bytes)), b"")
            return Node(expr_id, "ident", name=name.decode())
        elif number == 5:
            operand: tuple[Node, ...] = ()
            field_name, test_only = "", False
            for n, v in _fields(value):
                if n == 1 and isinstance(v, bytes):
                    operand = (_expr(v),)
                elif n == 2 and isinstance(v, bytes):
                    field_name = v.decode()
                elif n == 3:
                    test_only = bool(v)
            return Node(expr_id, "select", field_name, children=operand, test_only=test_only)
        elif number == 6:
            target: Node | None = None
            function = ""
            args: list[Node] = []
            for n, v in _fields(value):
                if n == 1 and isinstance(v, bytes):
                    target = _expr(v)
                elif n == 2 and isinstance(v, bytes):
                    function = v.decode()
                elif n == 3 and isinstance(v, bytes):
                    args.append(_expr(v))
            kids = ((target,) if target is not None else ()) + tuple(args)
            return Node(expr_id, "call", function, children=kids, has_target=target is not None)
        elif number == 7:
            items = tuple(_expr(v) for n, v in _fields(value) if n == 1 and isinstance(v, bytes))
            return Node(expr_id, "list", children=items)
        elif number == 8:
            entries: list[Node] = []
            for n, v in _fields(value):
                if n == 2 and isinstance(v, bytes):  # Entry: map_key = 3, value = 4
                    entries.extend(
                        _expr(ev) for en, ev in _fields(v) if en in (3, 4) and isinstance(ev, bytes)
                    )
            return Node(expr_id, "struct", children=tuple(entries))
        elif number == 9:
            parts: dict[int, Any] = {}
            for n, v in _fields(value):
                parts[n] = v
            # iter_var 1, iter_range 2, accu_var 3, accu_init 4, loop_condition 5,
            # loop_step 6, result 7, iter_var2 8
            sub = tuple(
                _expr(parts[k]) if isinstance(parts.get(k), bytes) else Node(0, "const")
                for k in (2, 4, 5, 6, 7)
            )
            return Node(
                expr_id,
                "comp",
                name=bytes(parts.get(1, b"")).decode(),
                children=sub,
                accu_var=bytes(parts.get(3, b"")).decode(),
                iter_var2=bytes(parts.get(8, b"")).decode(),
            )
    return Node(expr_id, "const")


def decode_checked(serialized: bytes) -> tuple[Node, dict[int, int]]:
    """The expression tree and expr id -> character offset, from ``Expression.serialize()``.

    The serialized form is a ``google.protobuf.Any`` holding a ``cel.expr.CheckedExpr``
    (expr = 4, source_info = 5; SourceInfo.positions = 4, a map<int64, int32>).
    """
    payload = next(v for n, v in _fields(serialized) if n == 2 and isinstance(v, bytes))
    root: Node | None = None
    positions: dict[int, int] = {}
    for number, value in _fields(payload):
        if number == 4 and isinstance(value, bytes):
            root = _expr(value)
        elif number == 5 and isinstance(value, bytes):
            for n, v in _fields(value):
                if n == 4 and isinstance(v, bytes):
                    entry = dict(_fields(v))
                    key, pos = entry.get(1, 0), entry.get(2, 0)
                    if isinstance(key, int) and isinstance(pos, int):
                        positions[key] = pos
    if root is None:
        raise ValueError("no expression in the compiled form")
    return root, positions


# -- field checking -------------------------------------------------------------------------


class FieldCheckError(Exception):
    def __init__(self, message: str, offset: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


_DYN = Field("dyn")


def _near(name: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(slots=True)
class _Checker:
    variables: Mapping[str, Field]
    positions: dict[int, int]
    used: set[tuple[str, str]]  # (variable, top-level field) pairs the expression reads

    def fail(self, node: Node, message: str) -> FieldCheckError:
        return FieldCheckError(message, self.positions.get(node.id))

    def member(self, node: Node, base: Field, name: str, path: str) -> Field:
        if base.kind == "struct" and base.fields is not None:
            if name not in base.fields:
                choices = sorted(base.fields)
                raise self.fail(node, f"no field '{name}' in {path}{_near(name, choices)}")
            return base.fields[name]
        if base.kind == "map":
            return base.item or _DYN
        if base.kind == "list":
            raise self.fail(
                node,
                f"{path} is a list: '.{name}' needs an element "
                f"(e.g. {path}.exists(x, x.{name} ...))",
            )
        if base.kind in ("string", "int", "double", "bool"):
            raise self.fail(node, f"{path} is a {base.kind}: it has no field '{name}'")
        return _DYN

    def walk(self, node: Node, scope: dict[str, tuple[Field, str]]) -> tuple[Field, str]:
        """The schema and dotted path of ``node``'s value; raises on an unknown field."""
        if node.kind == "ident":
            if node.name in scope:
                return scope[node.name]
            if node.name in self.variables:
                # the variable used whole (not through a field): every field is needed
                self.used.add((node.name, "*"))
                return self.variables[node.name], node.name
            return _DYN, node.name
        if node.kind == "select":
            base, path = self.operand(node.children[0], scope)
            self._note(path, node.name)
            try:
                return self.member(node, base, node.name, path), f"{path}.{node.name}"
            except FieldCheckError as exc:
                # CEL places a selection at its '.', point at the field name instead
                exc.offset = None if exc.offset is None else exc.offset + 1
                raise
        if node.kind == "call":
            kinds = [
                self.operand(child, scope)
                if i == 0 and node.name == "_[_]"
                else self.walk(child, scope)
                for i, child in enumerate(node.children)
            ]
            if node.name == "_[_]" and len(kinds) == 2:
                (base, path), key = kinds[0], node.children[1]
                if base.kind == "list":
                    return base.item or _DYN, f"{path}[]"
                if isinstance(key.const, str):
                    self._note(path, key.const)
                    return self.member(key, base, key.const, path), f"{path}.{key.const}"
                return (base.item or _DYN) if base.kind == "map" else _DYN, f"{path}[]"
            if node.name == "@in" and len(kinds) == 2:
                # "name" in connection.request: a struct key test, checked like a field
                (_, _), (base, path) = kinds
                key = node.children[0]
                if base.kind == "struct" and isinstance(key.const, str):
                    self.member(key, base, key.const, path)
                    self._note(path, key.const)
            return _DYN, "(value)"
        if node.kind == "comp":
            iter_range, accu_init, cond, step, result = node.children
            range_field, range_path = self.walk(iter_range, scope)
            self.walk(accu_init, scope)
            inner = dict(scope)
            if range_field.kind == "list":
                inner[node.name] = (range_field.item or _DYN, node.name)
                if node.iter_var2:
                    inner[node.name], inner[node.iter_var2] = (
                        (Field("int"), node.name),
                        (range_field.item or _DYN, node.iter_var2),
                    )
            elif range_field.kind in ("map", "struct"):
                inner[node.name] = (Field("string"), node.name)
                if node.iter_var2:
                    inner[node.iter_var2] = (range_field.item or _DYN, node.iter_var2)
            else:
                inner[node.name] = (_DYN, node.name)
            inner[node.accu_var] = (_DYN, node.accu_var)
            for part in (cond, step, result):
                self.walk(part, inner)
            return _DYN, "(value)"
        for child in node.children:
            self.walk(child, scope)
        return _DYN, "(value)"

    def operand(self, node: Node, scope: dict[str, tuple[Field, str]]) -> tuple[Field, str]:
        """Like ``walk``, but a variable selected from is not "used whole"."""
        if node.kind == "ident" and node.name not in scope and node.name in self.variables:
            return self.variables[node.name], node.name
        return self.walk(node, scope)

    def _note(self, path: str, name: str) -> None:
        if path in self.variables:
            self.used.add((path, name))


def check_fields(
    serialized: bytes, variables: Mapping[str, Field]
) -> tuple[frozenset[tuple[str, str]], str]:
    """Raise ``FieldCheckError`` for a field the view does not have.

    Returns the (variable, top-level field) pairs the expression reads, which tells the
    evaluator which heavy fields a rule needs, and the view's kind of the whole
    expression's value when it is a plain field ("dyn" otherwise).
    """
    root, positions = decode_checked(serialized)
    checker = _Checker(variables, positions, set())
    field, _ = checker.walk(root, {})
    return frozenset(checker.used), field.kind


# -- environments and compiled expressions --------------------------------------------------


def _cel_type(field: Field) -> Any:
    if field.kind == "struct" or field.kind == "map":
        return cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
    if field.kind == "list":
        return cel.Type.List(cel.Type.DYN)
    return cel.Type.DYN


_ENVS: dict[tuple[tuple[str, str], ...], Any] = {}


def environment(variables: Mapping[str, Field]) -> Any:
    """One CEL environment per set of declared variables, shared by every rule."""
    key = tuple(sorted((name, field.kind) for name, field in variables.items()))
    env = _ENVS.get(key)
    if env is None:
        from cel_expr_python.ext import ext_bindings, ext_strings

        env = cel.NewEnv(
            variables={name: _cel_type(field) for name, field in variables.items()},
            extensions=[ext_strings.ExtStrings(), ext_bindings.ExtBindings()],
        )
        _ENVS[key] = env
    return env


class CompileError(Exception):
    """A condition or template expression that does not compile or names a bad field."""

    def __init__(self, message: str, offset: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset  # 0-based character offset in the expression, when known


def _clean_cel_error(text: str) -> tuple[str, int | None, int | None]:
    """cel-cpp's 'ERROR: <input>:L:C: message\\n | source\\n | ..^' -> (message, line, col)."""
    first = None
    for line in text.splitlines():
        m = re.search(r"ERROR: <input>:(\d+):(\d+): (.*)", line)
        if m:
            first = m
            break
    if first is None:
        msg = text.split("\n", 1)[0]
        msg = re.sub(r"^[A-Z_]+: ", "", msg)
        return msg.strip(), None, None
    message = re.sub(r" \(in container ''\)", "", first.group(3)).strip()
    return message, int(first.group(1)), int(first.group(2))


def _offset_of(source: str, line: int, column: int) -> int:
    lines = source.split("\n")
    return sum(len(x) + 1 for x in lines[: line - 1]) + max(0, column - 1)


@dataclass(frozen=True, slots=True)
class Compiled:
    source: str
    program: Any  # cel Expression
    uses: frozenset[tuple[str, str]]
    result_type: str


def compile_expression(source: str, variables: Mapping[str, Field], *, want_bool: bool) -> Compiled:
    """Compile ``source``; raise ``CompileError`` (with an offset) on any problem."""
    env = environment(variables)
    try:
        program = env.compile(source)
    except RuntimeError as exc:
        message, line, col = _clean_cel_error(str(exc))
        offset = _offset_of(source, line, col) if line is not None and col is not None else None
        raise CompileError(message, offset) from None
    try:
        uses, kind = check_fields(program.serialize(), variables)
    except FieldCheckError as exc:
        raise CompileError(exc.message, exc.offset) from None
    result = program.return_type().name()
    if result.lower() == "dyn" and kind not in ("dyn", "bool"):
        result = kind  # a view field of known type, e.g. connection.id (a string)
    if want_bool and result.lower() not in ("bool", "dyn"):
        raise CompileError(f"the condition must be true or false, not {result.lower()}", 0)
    return Compiled(source, program, uses, result.lower())


# -- templates ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Template:
    """Literal text and compiled CEL expressions, alternating."""

    parts: tuple[str | Compiled, ...]
    uses: frozenset[tuple[str, str]]
    packed: Any = None  # every placeholder as one CEL list: one evaluation per message

    @property
    def sources(self) -> tuple[str, ...]:
        """The placeholders' expressions, in order."""
        return tuple(p.source for p in self.parts if isinstance(p, Compiled))

    def render(self, activation: Any, values: list[object] | None = None) -> str:
        """The message; ``values``: the placeholders' values when already evaluated
        (each ``dyn(expression)`` of a list that evaluated without error)."""
        if values is None and self.packed is not None:
            result = self.packed.eval(activation)
            if result.type().name().upper().startswith("LIST"):
                values = list(result.plain_value())
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            if values is not None:
                out.append(format_value(values.pop(0)))
                continue
            # the packed list failed: find which placeholder, keep the others
            one = part.program.eval(activation)
            if one.type().name().upper() == "ERROR":
                out.append("?")  # an error in one placeholder must not lose the finding
                continue
            out.append(format_value(one.plain_value()))
        return "".join(out)


def format_value(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value == value else "?"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value) or "none"
    return str(value)


def split_template(text: str) -> list[tuple[str, int, bool]]:
    """(chunk, offset, is_expression) pieces; raises CompileError for unbalanced braces."""
    pieces: list[tuple[str, int, bool]] = []
    literal: list[str] = []
    literal_start = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "{" and text.startswith("{{", i):
            literal.append("{")
            i += 2
            continue
        if ch == "}" and text.startswith("}}", i):
            literal.append("}")
            i += 2
            continue
        if ch == "}":
            raise CompileError("'}' without '{' (write '}}' for a literal brace)", i)
        if ch == "{":
            if literal:
                pieces.append(("".join(literal), literal_start, False))
                literal = []
            start, depth, quote = i + 1, 1, ""
            j = start
            while j < n and depth:
                c = text[j]
                if quote:
                    if c == "\\":
                        j += 1
                    elif c == quote:
                        quote = ""
                elif c in "'\"":
                    quote = c
                elif c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                j += 1
            if depth:
                raise CompileError("'{' without a closing '}'", i)
            expr = text[start : j - 1]
            if not expr.strip():
                raise CompileError("empty '{}' in the message", i)
            pieces.append((expr, start, True))
            i = j
            literal_start = i
            continue
        if not literal:
            literal_start = i
        literal.append(ch)
        i += 1
    if literal:
        pieces.append(("".join(literal), literal_start, False))
    return pieces


def compile_template(text: str, variables: Mapping[str, Field]) -> Template:
    parts: list[str | Compiled] = []
    uses: set[tuple[str, str]] = set()
    for chunk, offset, is_expr in split_template(text):
        if not is_expr:
            # Messages are one paragraph: YAML line breaks and indentation become one space.
            parts.append(re.sub(r"\s+", " ", chunk))
            continue
        try:
            compiled = compile_expression(chunk, variables, want_bool=False)
        except CompileError as exc:
            raise CompileError(exc.message, offset + (exc.offset or 0)) from None
        uses |= compiled.uses
        parts.append(compiled)
    if parts and isinstance(parts[0], str):
        parts[0] = parts[0].lstrip()
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1].rstrip()
    exprs = [p.source for p in parts if isinstance(p, Compiled)]
    packed = None
    if exprs:
        source = "[" + ", ".join(f"dyn({e})" for e in exprs) + "]"
        packed = environment(variables).compile(source)
    return Template(tuple(parts), frozenset(uses), packed)
