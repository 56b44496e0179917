"""The disk cache of validated rule data: used when warm, ignored when wrong, never a
change in what loading a rule file says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.cache import cache_dir
from analyzer.engine import loader  # noqa: I001
from analyzer.engine.loader import PackCache, load_rules, parse_rule
from analyzer.errors import RuleError

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ROOT / "rules"
EXAMPLE = ROOT / "examples" / "chat-1008" / "server-side.pcapng"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts with an empty cache of its own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("WS_ANALYZER_CACHE_DIR", str(folder))
    return folder


def user_folder(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    for name in names:
        (folder / f"{name}.yaml").write_bytes((BUILTIN / f"{name}.yaml").read_bytes())
    return folder


def load_with_cache(folder: Path) -> PackCache:
    cache = PackCache(folder, builtin=False)
    for path in sorted(folder.glob("*.yaml")):
        parse_rule(path, cache=cache)
    cache.save()
    return cache


def test_the_second_load_is_served_from_the_cache(tmp_path: Path) -> None:
    folder = user_folder(tmp_path, "origin-missing", "token-in-url")
    cold = load_with_cache(folder)
    assert (cold.hits, cold.misses) == (0, 2)
    warm = load_with_cache(folder)
    assert (warm.hits, warm.misses) == (2, 0)


def test_warm_and_cold_give_the_same_rules(tmp_path: Path) -> None:
    folder = user_folder(tmp_path, "origin-missing", "close-1008-after-first-message")
    path = folder / "origin-missing.yaml"
    cold = parse_rule(path, cache=PackCache(folder, builtin=False))
    load_with_cache(folder)
    warm_cache = PackCache(folder, builtin=False)
    warm = parse_rule(path, cache=warm_cache)
    assert warm_cache.hits == 1
    for name in ("id", "title", "severity", "scope", "requires", "why", "fix", "tags"):
        assert getattr(warm, name) == getattr(cold, name)
    assert (warm.when.source, warm.when.uses) == (cold.when.source, cold.when.uses)
    assert (warm.fields, warm.message_fields, warm.heavy) == (
        cold.fields,
        cold.message_fields,
        cold.heavy,
    )
    assert warm.matches == cold.matches and warm.non_matches == cold.non_matches


def test_a_changed_file_is_parsed_again(tmp_path: Path) -> None:
    folder = user_folder(tmp_path, "origin-missing", "token-in-url")
    load_with_cache(folder)
    path = folder / "token-in-url.yaml"
    path.write_text(path.read_text().replace("severity: low", "severity: high", 1))
    cache = load_with_cache(folder)
    assert (cache.hits, cache.misses) == (1, 1)
    rule = parse_rule(path, cache=PackCache(folder, builtin=False))
    assert rule.severity.label == "high"


def test_the_built_in_pack_is_cached_by_load_rules(
    _own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An earlier test in this process may have loaded the pack: start from no memo.
    monkeypatch.setattr(loader, "_CACHE", {})
    load_rules()
    (stored,) = _own_cache.glob("rules-*.json")
    data = json.loads(stored.read_text())
    assert len(data["rules"]) == len(list(BUILTIN.glob("*.yaml")))


@pytest.mark.parametrize(
    "content", [b"", b"{truncated", b'{"salt": 1}', b'{"salt": "x", "rules": []}', b"\xff"]
)
def test_a_corrupt_cache_file_is_ignored_and_rebuilt(tmp_path: Path, content: bytes) -> None:
    folder = user_folder(tmp_path, "origin-missing")
    cache = load_with_cache(folder)
    (cache_dir() / cache.name).write_bytes(content)
    rebuilt = load_with_cache(folder)
    assert (rebuilt.hits, rebuilt.misses) == (0, 1)
    assert load_with_cache(folder).hits == 1


def test_wrong_data_under_the_right_key_is_not_trusted_blindly(tmp_path: Path) -> None:
    folder = user_folder(tmp_path, "origin-missing")
    cache = load_with_cache(folder)
    stored = json.loads((cache_dir() / cache.name).read_text())
    stored["rules"] = {digest: "not a mapping" for digest in stored["rules"]}
    (cache_dir() / cache.name).write_text(json.dumps(stored))
    assert load_with_cache(folder).misses == 1


def test_an_unwritable_cache_folder_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("WS_ANALYZER_CACHE_DIR", str(blocker / "cache"))
    folder = user_folder(tmp_path, "origin-missing")
    assert load_with_cache(folder).misses == 1
    assert load_with_cache(folder).misses == 1
    assert load_rules((folder,)).get("origin-missing") is not None


def error_of(path: Path, cache: PackCache | None) -> str:
    with pytest.raises(RuleError) as info:
        parse_rule(path, cache=cache)
    return str(info.value)


def test_a_bad_rule_fails_the_same_with_a_warm_cache(tmp_path: Path) -> None:
    """A schema-valid rule whose condition names a missing field: its data is cached, and
    the error (file:line:col) is the same from cold, from warm and without a cache."""
    folder = user_folder(tmp_path, "origin-missing")
    path = folder / "origin-missing.yaml"
    path.write_text(path.read_text().replace("connection.origin == null", "connection.orign"))
    uncached = error_of(path, None)
    cold = PackCache(folder, builtin=False)
    assert error_of(path, cold) == uncached
    cold.save()
    warm = PackCache(folder, builtin=False)
    assert error_of(path, warm) == uncached
    assert warm.hits == 1
    assert uncached.startswith(f"{path}:7:")


def test_a_file_whose_data_is_cached_still_needs_its_own_name(tmp_path: Path) -> None:
    """The cache is keyed by content: a copy under another name hits it, and still fails
    the id check, positioned as without a cache."""
    folder = user_folder(tmp_path, "origin-missing")
    load_with_cache(folder)
    copy = folder / "no-origin.yaml"
    copy.write_bytes((folder / "origin-missing.yaml").read_bytes())
    warm = PackCache(folder, builtin=False)
    message = error_of(copy, warm)
    assert warm.hits == 1
    assert message == error_of(copy, None)
    assert message == (
        f"{copy}:1:5: id 'origin-missing' does not match the file name (expected 'no-origin')"
    )


@pytest.mark.parametrize(
    "text",
    [
        "id: broken\ntitle: [unclosed\nseverity: low\n",  # invalid YAML
        "id: broken\ntitle: Broken\n",  # fails the schema
        "- a list\n",  # not a mapping
    ],
)
def test_files_that_never_validate_fail_the_same_every_time(tmp_path: Path, text: str) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    path = folder / "broken.yaml"
    path.write_text(text)
    first = error_of(path, PackCache(folder, builtin=False))
    with pytest.raises(RuleError) as info:
        load_rules((folder,), builtin=False)
    assert str(info.value) == first == error_of(path, None)
    assert error_of(path, PackCache(folder, builtin=False)) == first


def test_analyze_on_a_pcap_imports_no_heavy_module(tmp_path: Path) -> None:
    """A small pcap is answered at once: nothing it does not need is imported, whether the
    rule cache is cold (first run) or warm (second)."""
    script = (
        "import sys\n"
        "from analyzer.cli import main\n"
        "try:\n"
        f"    main(['analyze', {str(EXAMPLE)!r}, '-o', {str(tmp_path / 'r.html')!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    never = {"pandas", "pyarrow", "dask", "distributed", "numpy", "haralyzer", "cryptography"}
    env = dict(os.environ)
    for run in ("cold", "warm"):
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
        )
        loaded = {name.split(".")[0] for name in done.stdout.split()}
        assert not loaded & never, run
        if run == "warm":  # parsing and validating the pack is skipped
            assert not loaded & {"yaml", "jsonschema"}, run
