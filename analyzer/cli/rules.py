"""``ws-analyzer rules``: list, show, validate and test rule files.

Thin click commands over ``analyzer.engine.loader`` and ``analyzer.engine.examples``. A
broken rule file raises ``RuleError`` (``file:line:column: what is wrong``); the main
command group prints it and exits 2.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import click

from analyzer.engine.evaluate import run_examples
from analyzer.engine.loader import Rule, load_paths, load_rules
from analyzer.errors import AnalyzerError

WIDTH = 88


def _rules_from(rule_dirs: tuple[Path, ...]) -> tuple[Rule, ...]:
    return load_rules(rule_dirs).rules


def _wrap(text: str, indent: str = "  ") -> str:
    paragraphs = [p for p in text.strip().split("\n\n") if p.strip()]
    return "\n\n".join(
        textwrap.fill(" ".join(p.split()), WIDTH, initial_indent=indent, subsequent_indent=indent)
        for p in paragraphs
    )


def _yaml_block(values: object, indent: str = "    ") -> str:
    import yaml

    text = yaml.safe_dump(values, sort_keys=False, default_flow_style=False, width=80)
    return textwrap.indent(text.rstrip(), indent)


_rule_dirs_option = click.option(
    "--rules",
    "rule_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A folder of your own rule files, beside the built-in ones. Repeatable.",
)


@click.group("rules")
def rules() -> None:
    """The rules: what they look for, their docs, and checking your own.

    Rules are YAML files (one rule each, rules/<id>.yaml) with a CEL condition over the
    connection's view. Put your own in a folder and pass it with --rules.
    """


@rules.command("list")
@_rule_dirs_option
def list_command(rule_dirs: tuple[Path, ...]) -> None:
    """Every rule: id, severity, scope and title."""
    items = _rules_from(rule_dirs)
    width = max((len(r.id) for r in items), default=2)
    for r in items:
        origin = "" if r.builtin else "  (user)"
        click.echo(f"{r.id:<{width}}  {r.severity.label:<8}  {r.scope:<10}  {r.title}{origin}")


@rules.command("show")
@click.argument("rule_id")
@_rule_dirs_option
def show_command(rule_id: str, rule_dirs: tuple[Path, ...]) -> None:
    """A rule's documentation: what, why, examples, fix, references."""
    ruleset = load_rules(rule_dirs)
    rule = ruleset.get(rule_id)
    if rule is None:
        raise AnalyzerError(f"no rule has the id {rule_id!r} (see `ws-analyzer rules list`)")
    out = [
        f"{rule.id}: {rule.title}",
        f"severity: {rule.severity.label}    scope: {rule.scope}    tags: {', '.join(rule.tags)}",
    ]
    if rule.requires:
        out.append(f"requires: {', '.join(rule.requires)}")
    for esc in rule.escalate:
        out.append(f"raised to {esc.severity.label} when {esc.because or esc.when.source.strip()}")
    out += ["", "What it finds:", _wrap(rule.title + ". Condition (CEL):")]
    out.append(textwrap.indent(rule.when.source.strip(), "    "))
    out += ["", "Why it matters:", _wrap(rule.why)]
    if rule.matches:
        ex = rule.matches[0]
        out += ["", f"Example that matches ({ex.name}):", _yaml_block(dict(ex.values))]
        if ex.message:
            out += ["  message:", _wrap(ex.message, "    ")]
    if rule.non_matches:
        ex = rule.non_matches[0]
        out += ["", f"Example that does not match ({ex.name}):"]
        if any(ex.values.values()):
            out.append(_yaml_block(dict(ex.values)))
        else:
            out.append("    a clean session (the examples' defaults, unchanged)")
    out += ["", "What to do:", _wrap(rule.fix)]
    if rule.falsepositives:
        out += ["", "False positives:"]
        out += [_wrap(f"- {fp}") for fp in rule.falsepositives]
    out += ["", "References:"]
    out += [f"  - {ref}" for ref in rule.references]
    out += ["", f"file: {rule.path}"]
    click.echo("\n".join(out))


def _targets(paths: tuple[Path, ...], rule_dirs: tuple[Path, ...]) -> list[Rule]:
    if paths:
        return load_paths(paths)
    return list(_rules_from(rule_dirs))


@rules.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate_command(paths: tuple[Path, ...]) -> None:
    """Check rule files (default: the built-in ones): YAML, schema, id, CEL, fields.

    Prints one line per valid file; the first broken file stops with
    file:line:column and what is wrong (exit 2).
    """
    for rule in _targets(paths, ()):
        click.echo(f"ok {rule.path}")


@rules.command("test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def test_command(paths: tuple[Path, ...]) -> None:
    """Run each rule's examples (default: the built-in rules). Exit 1 on a failure."""
    failures = total = 0
    for rule in _targets(paths, ()):
        for result in run_examples(rule):
            total += 1
            if result.ok:
                click.echo(f"PASS {rule.id} {result.kind}: {result.name}")
            else:
                failures += 1
                click.echo(f"FAIL {rule.id} {result.kind}: {result.name}: {result.detail}")
    click.echo(f"{total - failures} passed, {failures} failed")
    if failures:
        raise SystemExit(1)
