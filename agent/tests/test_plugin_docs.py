"""Every plugin's DOCUMENTATION, EXAMPLES and RETURN is YAML that parses: ansible-doc and
Galaxy read them (a ``: `` inside a plain scalar is the usual break). ansible-doc itself
renders them in scripts/collection.sh; this is the fast check."""

from __future__ import annotations

import ast
from typing import List, Tuple

import pytest
import yaml
from conftest import ROOT

DOC_BLOCKS = ("DOCUMENTATION", "EXAMPLES", "RETURN")


def doc_blocks() -> List[Tuple[str, str, str]]:
    """``(plugin path, block name, text)`` for every documented plugin of the collection."""
    found = []
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target = node.targets[0] if isinstance(node, ast.Assign) else None
            if isinstance(target, ast.Name) and target.id in DOC_BLOCKS:
                found.append((str(path.relative_to(ROOT)), target.id, ast.literal_eval(node.value)))
            if isinstance(node, ast.ClassDef):  # doc fragments keep theirs in a class
                for item in node.body:
                    name = item.targets[0] if isinstance(item, ast.Assign) else None
                    if isinstance(name, ast.Name) and name.id in DOC_BLOCKS:
                        found.append(
                            (str(path.relative_to(ROOT)), name.id, ast.literal_eval(item.value))
                        )
    return found


BLOCKS = doc_blocks()


def test_every_module_and_lookup_is_documented() -> None:
    documented = {path for path, name, _ in BLOCKS if name == "DOCUMENTATION"}
    for kind in ("modules", "lookup", "doc_fragments"):
        for path in (ROOT / "plugins" / kind).glob("*.py"):
            assert str(path.relative_to(ROOT)) in documented, path


@pytest.mark.parametrize(("path", "name", "text"), BLOCKS, ids=[f"{p}:{n}" for p, n, _ in BLOCKS])
def test_the_block_parses_as_yaml(path: str, name: str, text: str) -> None:
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AssertionError(f"{path} {name}: {exc}") from None
    assert isinstance(parsed, (dict, list)), f"{path} {name}: not a mapping or list"
