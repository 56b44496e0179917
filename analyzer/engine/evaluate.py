"""Run the rules over captures: findings, and what could not be evaluated.

For each scope (``analyzer.engine.scopes``) and each item of it (a connection, a capture):

1. rules whose ``requires`` the item cannot show become ``NotEvaluable`` records, with
   advice on how to capture what is missing: never a silent pass;
2. the other rules' conditions are evaluated together: one CEL program per distinct set of
   rules, a list ``[when1, when2, ...]`` compiled once and cached, evaluated once against
   one activation (the CEL runtime's fixed cost per evaluation is about 2 us; a pack of 30
   rules evaluated one by one would spend 60 us on that alone). If the list gives an error
   the rules are evaluated one by one to find which, and that rule is reported as not
   evaluable with the error (a rule bug must not hide the others' findings);
3. each rule that fires gives a ``Finding``: its message filled from the view, severity
   raised by ``escalate`` entries that hold, evidence with locations. The placeholders
   and escalation conditions of every rule that fired on an item are evaluated as one
   more CEL list (``_after``), over the conditions' activation when it holds the fields
   they read; if that list gives an error, each is evaluated on its own as before.

What costs (benchmarks/bench_rules.py): the CEL runtime converts each activation's view
on first use (about 0.3 us per value), evaluates ~0.5 us per condition, and has a fixed
~1.5 us per evaluation; the Python view of a connection is built lazily, group of fields
by group (``analyzer.engine.view.LazyConnectionView``), so only what the rules read is
computed. tests/engine/test_engine_fast_path.py checks that all this gives byte-identical
findings and not-evaluable records to evaluating rule by rule over the eager view.

Findings are sorted by severity (highest first), then time, rule id and connection.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from analyzer.engine.analysis import Analysis
from analyzer.engine.cel import environment
from analyzer.engine.evidence import build as build_evidence
from analyzer.engine.examples import merge
from analyzer.engine.findings import Evidence, Finding, NotEvaluable
from analyzer.engine.loader import Rule, load_rules, select_rules
from analyzer.engine.scopes import PROVIDERS, SCOPES, Item, ensure
from analyzer.engine.view import LazyConnectionView, free_fields
from analyzer.inputs.tls import KEYLOG_ADVICE
from analyzer.session.model import Capture, Fact

if TYPE_CHECKING:
    from analyzer.options import Options

# How to capture each fact a capture may lack. Rules may override with ``advice``.
ADVICE: dict[str, str] = {
    Fact.CLOSE_FRAMES: "Close frames are not in this capture (browser and Playwright HARs "
    "record none). Record packets where the client or the server runs: "
    "`tcpdump -i any -w ws.pcap 'tcp port 8080'` (for wss://, start the client with "
    "SSLKEYLOGFILE=keys.log and pass --keylog keys.log), or record with HTTP Toolkit, whose "
    "HAR export keeps close codes.",
    Fact.FRAMES: "Frames (FIN, RSV bits, opcodes, pings) are not in this capture: HARs keep "
    "messages only. Record packets: `tcpdump -i any -w ws.pcap 'tcp port 8080'`.",
    Fact.MASKS: "Mask bits are not in this capture: HARs keep unmasked messages. Record "
    "packets: `tcpdump -i any -w ws.pcap 'tcp port 8080'`.",
    Fact.TRANSPORT_END: "How the TCP connection ended (FIN, RST) is not in this capture: "
    "record packets with `tcpdump -i any -w ws.pcap 'tcp port 8080'` and let the capture "
    "run until the connection is gone.",
    Fact.HANDSHAKE_REQUEST: "The upgrade request is not in this capture: start capturing "
    "before the client connects (for HARs, open devtools before loading the page).",
    Fact.HANDSHAKE_RESPONSE: "The server's answer to the upgrade is not in this capture: "
    "start capturing before the client connects and keep it running until it is answered.",
    Fact.MESSAGES: "Data messages are not in this capture (Firefox and Safari HARs record "
    "none): export the HAR from Chrome or Edge devtools, or record packets with tcpdump.",
    Fact.MESSAGE_PAYLOADS: "Message contents are not in this capture: export the HAR from "
    "Chrome or Edge devtools, or record packets (with a TLS key log for wss://).",
    Fact.ENDPOINTS: "Client and server addresses are not in this capture: record packets "
    "with tcpdump on either host.",
    Fact.CREDENTIALS: "Cookies and Authorization were removed from this HAR (sanitized "
    "export): in Chrome devtools use 'Export HAR (with sensitive data)', or record packets.",
}

_FACT_WORDS: dict[str, str] = {
    Fact.CLOSE_FRAMES: "close frames",
    Fact.FRAMES: "individual frames",
    Fact.MASKS: "frame mask bits",
    Fact.TRANSPORT_END: "how the TCP connection ended",
    Fact.HANDSHAKE_REQUEST: "the upgrade request",
    Fact.HANDSHAKE_RESPONSE: "the server's answer to the upgrade",
    Fact.MESSAGES: "data messages",
    Fact.MESSAGE_PAYLOADS: "message contents",
    Fact.ENDPOINTS: "client and server addresses",
    Fact.CREDENTIALS: "cookies and authorization headers as sent",
}


_SCOPE_ENVS: dict[str, tuple[Any, Any]] = {}  # scope -> (its variables, environment)


def activation_for(scope: str, variables: dict[str, Any]) -> Any:
    declared = SCOPES[scope].variables
    hit = _SCOPE_ENVS.get(scope)
    if hit is None or hit[0] is not declared:
        hit = (declared, environment(declared))
        _SCOPE_ENVS[scope] = hit
    return hit[1].Activation(variables)


def truth(value: Any) -> tuple[bool | None, str | None]:
    """(result, error): a CEL result read as a condition's outcome."""
    kind = value.type().name().upper()
    if kind == "ERROR":
        return None, str(value.value())
    if kind == "BOOL":
        return bool(value.value()), None
    return None, f"the condition gave {kind.lower()}, not true or false"


_PROGRAMS: dict[tuple[str, tuple[str, ...]], Any] = {}


def _pack_program(scope: str, rules: Sequence[Rule]) -> Any:
    key = (scope, tuple(f"{r.path}\0{r.when.source}" for r in rules))
    program = _PROGRAMS.get(key)
    if program is None:
        source = "[" + ",\n".join(f"({r.when.source})" for r in rules) + "]"
        program = environment(SCOPES[scope].variables).compile(source)
        _PROGRAMS[key] = program
    return program


def _activation(
    item: Item, scope: str, heavy: frozenset[str], fields: frozenset[str] | None
) -> Any:
    """The activation for ``item`` holding ``fields`` of the item variable (None: all).

    The CEL runtime converts a variable's whole value on first use, and converting the
    full connection view costs several times evaluating the pack; conditions therefore
    see only the fields they read (the loader knows them), and the full view is built
    only for a rule that fired, to fill its message.
    """
    key = (heavy, fields)
    act = item.cache.get(key)
    if act is None:
        variables = item.variables
        first = next(iter(SCOPES[scope].variables))
        full = variables[first]
        if fields is not None or heavy or not isinstance(full, dict):
            # a LazyConnectionView computes only the fields read; CEL takes a dict
            if fields is None:
                view = dict(full)
            elif isinstance(full, LazyConnectionView):
                view = full.select(fields)
            else:
                view = {k: full[k] for k in fields if k in full}
            if item.heavy is not None:
                for name in heavy:
                    view[name] = item.heavy(name)
            variables = {**variables, first: view}
        act = activation_for(scope, variables)
        item.cache[key] = act
    return act


@lru_cache(maxsize=1024)
def _reason(missing: tuple[str, ...], fmt: str, creator: str | None) -> str:
    what = ", ".join(_FACT_WORDS.get(m, m) for m in missing)
    source = fmt + (f" from {creator}" if creator else "")
    return f"this capture ({source}) cannot show {what}"


@lru_cache(maxsize=1024)
def _advice(rule_advice: str, missing: tuple[str, ...]) -> str:
    return rule_advice or " ".join(dict.fromkeys(ADVICE.get(m, "") for m in missing)).strip()


@lru_cache(maxsize=256)
def _unread_tls(version: str | None, problem: str | None, http2: bool) -> tuple[str, str]:
    """(reason, advice) for a TLS connection whose contents were not read."""
    if http2:
        return (
            "cannot be evaluated: the connection is HTTP/2 (ALPN h2), and WebSocket over "
            "HTTP/2 (RFC 8441) is not analysed yet",
            "Not analysed yet. Clients that open WebSocket over HTTP/1.1 (the usual case) are "
            "analysed: capture one of those, or a server that does not enable RFC 8441.",
        )
    why = (problem or "no key").removesuffix(": " + KEYLOG_ADVICE).removeprefix("encrypted and ")
    reason = f"cannot be evaluated: encrypted ({version or 'TLS'}; {why})"
    if "not supported for decryption" in why or "cannot be used with" in why:
        return reason, (
            "A key log would not help here: TLS 1.2 and 1.3 with AES-GCM or ChaCha20-Poly1305 "
            "(what browsers, Node and Python negotiate by default) are decrypted. Capture a "
            "client and server that use one of those."
        )
    if "handshake" in why or "ClientHello" in why:
        return reason, (
            "Start the capture before the connection opens: keys are looked up by the "
            f"ClientHello's random. Then {KEYLOG_ADVICE}."
        )
    return reason, f"To decrypt it, {KEYLOG_ADVICE}."


def _not_evaluable(rule: Rule, item: Item, missing: tuple[str, ...]) -> NotEvaluable:
    cap = item.capture
    conn = item.connection
    tls = conn.tls if conn is not None else None
    if tls is not None and conn is not None and conn.request is None and conn.response is None:
        # TLS that was not decrypted (or HTTP/2): say so, not "this capture cannot show".
        if not tls.decrypted or conn.http_version == "2":
            reason, advice = _unread_tls(tls.version, tls.problem, conn.http_version == "2")
            return NotEvaluable(
                rule=rule.id,
                title=rule.title,
                connection=conn.id,
                reason=reason,
                advice=advice,
                missing=missing,
            )
    return NotEvaluable(
        rule=rule.id,
        title=rule.title,
        connection=conn.id if conn else None,
        reason=_reason(missing, cap.format, cap.creator),
        advice=_advice(rule.advice, missing),
        missing=missing,
    )


@dataclass(frozen=True, slots=True)
class _Done:
    """A fired rule's escalation outcomes and placeholder values, evaluated beforehand."""

    escalated: tuple[bool, ...]
    values: tuple[object, ...]


# (scope, ids of the fired rules) -> (those rules, the program or None, [(n values, n esc)])
_AFTER: dict[tuple[str, tuple[int, ...]], tuple[tuple[Rule, ...], Any, tuple[int, ...]]] = {}


def _after(scope: str, hits: tuple[Rule, ...], act: Any) -> list[_Done] | None:
    """Every fired rule's placeholders and escalation conditions, in one evaluation.

    Each evaluation has a fixed cost of about 2 us; a finding used to take one for its
    message and one per escalation. The list holds ``dyn(placeholder)``s and
    ``dyn((escalation))``s of every fired rule, in order. None when the list does not
    give values (an error anywhere in it): the caller then evaluates each expression on
    its own, as before, so that one failing placeholder still keeps the others.
    """
    key = (scope, tuple(map(id, hits)))
    entry = _AFTER.get(key)
    if entry is None or any(a is not b for a, b in zip(entry[0], hits, strict=True)):
        exprs: list[str] = []
        sizes: list[int] = []
        for rule in hits:
            sources = rule.message.sources
            exprs.extend(f"dyn({e})" for e in sources)
            exprs.extend(f"dyn(({esc.when.source}))" for esc in rule.escalate)
            sizes.append(len(sources))
        program = None
        if exprs:
            try:
                program = environment(SCOPES[scope].variables).compile("[" + ", ".join(exprs) + "]")
            except RuntimeError:
                program = None
        if len(_AFTER) > 1024:
            _AFTER.clear()
        entry = (hits, program, tuple(sizes))
        _AFTER[key] = entry
    _, program, layout = entry
    if program is None:
        if any(rule.message.sources or rule.escalate for rule in hits):
            return None
        return [_Done((), ()) for _ in hits]
    result = program.eval(act)
    if not result.type().name().upper().startswith("LIST"):
        return None
    values = result.plain_value()
    out: list[_Done] = []
    i = 0
    for rule, n in zip(hits, layout, strict=True):
        k = len(rule.escalate)
        out.append(
            _Done(
                tuple(v is True for v in values[i + n : i + n + k]),
                tuple(values[i : i + n]),
            )
        )
        i += n + k
    return out


# (id of a plan, capture format, creator, unread TLS) -> (plan, [(rule id, title, reason,
# advice, missing)]): what every connection of that kind is told, worked out once.
_Texts = list[tuple[str, str, str, str, tuple[str, ...]]]
_SKIPPED: dict[tuple[Any, ...], tuple[_Plan, _Texts]] = {}


def _skipped(plan: _Plan, item: Item) -> list[NotEvaluable]:
    """``_not_evaluable`` for each rule ``plan`` skips, the same records made faster."""
    if not plan.skipped:
        return []
    conn = item.connection
    tls = conn.tls if conn is not None else None
    unread: tuple[str | None, str | None, bool] | None = None  # what _unread_tls reads
    if tls is not None and conn is not None and conn.request is None and conn.response is None:
        if not tls.decrypted or conn.http_version == "2":
            unread = (tls.version, tls.problem, conn.http_version == "2")
    cap = item.capture
    key = (id(plan), cap.format, cap.creator, unread)
    entry = _SKIPPED.get(key)
    if entry is not None and entry[0] is plan:
        texts = entry[1]
    else:
        texts = []
        for rule, missing in plan.skipped:
            n = _not_evaluable(rule, item, missing)
            texts.append((n.rule, n.title, n.reason, n.advice, n.missing))
        if len(_SKIPPED) > 1024:
            _SKIPPED.clear()
        _SKIPPED[key] = (plan, texts)
    cid = conn.id if conn else None
    return [
        NotEvaluable(
            rule=rule, title=title, connection=cid, reason=reason, advice=advice, missing=missing
        )
        for rule, title, reason, advice, missing in texts
    ]


def _finding(
    rule: Rule, item: Item, act: Any, scope: str = "connection", done: _Done | None = None
) -> Finding:
    severity = rule.severity
    extra: list[Evidence] = []
    for j, esc in enumerate(rule.escalate):
        if done is None:
            ok, _ = truth(esc.when.program.eval(act))
        else:
            ok = done.escalated[j]
        if ok and esc.severity > severity:
            severity = esc.severity
            if esc.because:
                extra.append(Evidence(f"severity {severity.label}: {esc.because}"))
    uses = rule.reads
    evidence: tuple[Evidence, ...] = ()
    time = item.time
    conn = item.connection
    specs = [(e.kind, e.arg) for e in rule.evidence]
    hook = SCOPES[scope].evidence
    if hook is not None:
        evidence = tuple(hook(item, specs, uses))
    elif conn is not None:
        view = item.variables.get("connection")
        names = view.header_names() if isinstance(view, LazyConnectionView) else None
        evidence = build_evidence(conn, specs, uses, names)
    if conn is not None:
        if "close" in uses and conn.close is not None and conn.close.time is not None:
            time = conn.close.time
    return Finding(
        rule=rule.id,
        title=rule.title,
        severity=severity,
        connection=conn.id if conn else None,
        message=rule.message.render(act, None if done is None else list(done.values)),
        evidence=evidence + tuple(extra),
        why=rule.why,
        fix=rule.fix,
        references=rule.references,
        tags=rule.tags,
        time=time,
    )


@dataclass(frozen=True, slots=True)
class _Group:
    heavy: frozenset[str]
    rules: tuple[Rule, ...]
    fields: frozenset[str] | None  # union of the fields the conditions read
    program: Any  # the packed conditions
    # what the conditions' activation holds: ``fields`` and the messages' plain values
    # that come free with them (connection scope), so that it serves most messages too
    held: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to do for items of one scope that can show the same facts."""

    rules: Sequence[Rule]  # kept so that ``id(rules)`` in the key stays this object's
    skipped: tuple[tuple[Rule, tuple[str, ...]], ...]  # rules and the facts they miss
    groups: tuple[_Group, ...]


_PLANS: dict[tuple[int, str, frozenset[str]], _Plan] = {}


def _plan(rules: Sequence[Rule], scope: str, can_show: frozenset[str]) -> _Plan:
    key = (id(rules), scope, can_show)
    plan = _PLANS.get(key)
    if plan is not None and plan.rules is rules:
        return plan
    skipped: list[tuple[Rule, tuple[str, ...]]] = []
    by_heavy: dict[frozenset[str], list[Rule]] = {}
    for rule in rules:
        missing = tuple(f for f in rule.requires if f not in can_show)
        if missing:
            skipped.append((rule, missing))
        else:
            by_heavy.setdefault(rule.heavy, []).append(rule)
    groups = []
    for heavy, group in by_heavy.items():
        fields: frozenset[str] | None = frozenset()
        for rule in group:
            fields = None if fields is None or rule.fields is None else fields | rule.fields
        held = fields
        if scope == "connection" and fields is not None:
            wanted = frozenset().union(*(r.message_fields or frozenset() for r in group))
            held = fields | free_fields(fields, wanted - fields)
        groups.append(_Group(heavy, tuple(group), fields, _pack_program(scope, group), held))
    if len(_PLANS) > 256:  # rule sets change rarely; never let this grow without bound
        _PLANS.clear()
    plan = _Plan(rules, tuple(skipped), tuple(groups))
    _PLANS[key] = plan
    return plan


def evaluate_item(
    rules: Sequence[Rule], item: Item, scope: str
) -> tuple[list[Finding], list[NotEvaluable]]:
    """Evaluate ``rules`` (all of ``scope``) on one item."""
    findings: list[Finding] = []
    plan = _plan(rules, scope, item.can_show)
    skipped = _skipped(plan, item)
    for g in plan.groups:
        heavy, group = g.heavy, g.rules
        act = _activation(item, scope, heavy, g.held)
        result = g.program.eval(act)
        is_list = result.type().name().upper().startswith("LIST")
        values = result.plain_value() if is_list else None
        if values is None or len(values) != len(group) or not set(map(type, values)) <= {bool}:
            values = []
            for rule in group:
                ok, error = truth(rule.when.program.eval(act))
                if error is not None:
                    conn = item.connection
                    skipped.append(
                        NotEvaluable(
                            rule=rule.id,
                            title=rule.title,
                            connection=conn.id if conn else None,
                            reason=f"the rule's condition failed here: {error}",
                            advice=f"fix the rule file {rule.path}",
                        )
                    )
                values.append(bool(ok))
        hits = [rule for rule, fired in zip(group, values, strict=True) if fired]
        if hits:
            # one activation for every message of this item: the fields they read
            wanted: frozenset[str] | None = frozenset()
            for rule in hits:
                mf = rule.message_fields
                wanted = None if wanted is None or mf is None else wanted | mf
            if wanted is not None and g.held is not None and wanted <= g.held:
                full = act  # the conditions' activation already holds every field read
            else:
                full = _activation(item, scope, heavy, wanted)
            done = _after(scope, tuple(hits), full)
            if done is None:
                findings.extend(_finding(rule, item, full, scope) for rule in hits)
            else:
                findings.extend(
                    _finding(rule, item, full, scope, d) for rule, d in zip(hits, done, strict=True)
                )
    return findings, skipped


def sort_findings(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    return tuple(
        sorted(
            findings,
            key=lambda f: (
                -f.severity,
                f.time is None,
                f.time or 0.0,
                f.rule,
                f.connection or "",
            ),
        )
    )


def run_rules(captures: tuple[Capture, ...], options: Options) -> Analysis:
    """Load (cached), select and run the rules; the ``Analysis`` a renderer needs."""
    ruleset = load_rules(options.rule_dirs, builtin=options.builtin_rules)
    rules = select_rules(ruleset.rules, options.select, options.ignore)
    findings: list[Finding] = []
    skipped: list[NotEvaluable] = []
    extra: dict[str, object] = {}
    for name in PROVIDERS:  # scopes with report extras (hop chains) even without rules
        ensure(name)
    for scope_name, scope in list(SCOPES.items()):
        scoped = [r for r in rules if r.scope == scope_name]
        if not scoped and scope.extra is None:
            continue
        payloads: list[Any] = []
        for item in scope.items(captures):
            payloads.append(item.payload)
            if scoped:
                f, s = evaluate_item(scoped, item, scope_name)
                findings.extend(f)
                skipped.extend(s)
        if scope.extra is not None:
            extra.update(scope.extra(payloads))
    if ruleset.overridden:
        extra["rules_overridden"] = ruleset.overridden
    return Analysis(
        captures=captures,
        findings=sort_findings(findings),
        not_evaluable=tuple(skipped),
        rules_run=tuple(r.id for r in rules),
        extra=extra,
    )


# -- a rule's inline examples (``rules test`` and the test suite) ---------------------------


def example_variables(scope: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The scope's clean views with the example's partial views merged over them."""
    make = SCOPES[scope].example_defaults
    defaults = make() if make is not None else {}
    out = {name: merge(view, values.get(name, {})) for name, view in defaults.items()}
    for name, view in values.items():
        out.setdefault(name, copy.deepcopy(view))
    return out


@dataclass(frozen=True, slots=True)
class ExampleResult:
    rule: str
    kind: str  # "match" | "no_match"
    name: str
    ok: bool
    detail: str  # what went wrong, empty when ok


def run_examples(rule: Any) -> list[ExampleResult]:
    """Evaluate ``rule``'s examples; a result per example."""
    out: list[ExampleResult] = []
    for kind, examples, expected in (
        ("match", rule.matches, True),
        ("no_match", rule.non_matches, False),
    ):
        for ex in examples:
            variables = example_variables(rule.scope, ex.values)
            activation = activation_for(rule.scope, variables)
            got, error = truth(rule.when.program.eval(activation))
            if error is not None:
                out.append(ExampleResult(rule.id, kind, ex.name, False, f"error: {error}"))
                continue
            if got != expected:
                want = "match" if expected else "not match"
                out.append(ExampleResult(rule.id, kind, ex.name, False, f"expected to {want}"))
                continue
            if expected and ex.message is not None:
                text = rule.message.render(activation)
                if text != " ".join(ex.message.split()):
                    out.append(
                        ExampleResult(rule.id, kind, ex.name, False, f"message was {text!r}")
                    )
                    continue
            out.append(ExampleResult(rule.id, kind, ex.name, True, ""))
    return out
