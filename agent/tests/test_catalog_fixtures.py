"""Every shipped catalog entry is proven by its own fixture file, found rather than listed.

``agent/tests/fixtures/catalog/<entry id>.yml`` names the facts the entry must fire on
(with the subjects it must report, and optionally text its evidence must and must not
carry) and the look-alikes it must stay silent on, as paths under agent/tests/fixtures/.
Adding an incident to an existing role is the catalog file, this fixture and the id in
the role's handles (docs/design.md, "Adding an incident").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from netmedic.catalog import load_catalog
from netmedic.catalog.loader import SHIPPED_DIR
from netmedic.diagnose import diagnose

FIXTURES = Path(__file__).parent / "fixtures"
CATALOG = load_catalog(None)  # the shipped entries only
SHIPPED = sorted(p.stem for p in SHIPPED_DIR.glob("*.yml"))


def cases(kind: str) -> List[Tuple[str, Dict[str, Any]]]:
    found = []
    for entry_id in SHIPPED:
        path = FIXTURES / "catalog" / f"{entry_id}.yml"
        if path.is_file():
            found += [(entry_id, case) for case in yaml.safe_load(path.read_text())[kind]]
    return found


def findings_of(entry_id: str, case: Dict[str, Any]) -> List[str]:
    return sorted(f.subject for f in diagnosed(entry_id, case))


def diagnosed(entry_id: str, case: Dict[str, Any]) -> List[Any]:
    facts = json.loads((FIXTURES / case["facts"]).read_text())
    config = yaml.safe_load((FIXTURES / case["config"]).read_text()) if case.get("config") else {}
    result = diagnose(facts, CATALOG, config, only=[entry_id])
    assert result.skipped == [], f"{entry_id} not evaluated on {case['facts']}: {result.skipped}"
    return result.findings


@pytest.mark.parametrize("entry_id", SHIPPED)
def test_every_shipped_entry_has_its_fixture(entry_id: str) -> None:
    path = FIXTURES / "catalog" / f"{entry_id}.yml"
    assert path.is_file(), f"{entry_id}: add {path.relative_to(FIXTURES.parent.parent.parent)}"
    spec = yaml.safe_load(path.read_text())
    assert spec["fires_on"] and spec["silent_on"], f"{path}: a case to fire on and a look-alike"


@pytest.mark.parametrize(("entry_id", "case"), cases("fires_on"))
def test_entry_fires_on_its_facts(entry_id: str, case: Dict[str, Any]) -> None:
    findings = diagnosed(entry_id, case)
    assert sorted(f.subject for f in findings) == sorted(case["subjects"])
    evidence = "\n".join(line for f in findings for line in f.evidence)
    for text in case.get("evidence", []):
        assert text in evidence, f"{entry_id} on {case['facts']}: no {text!r} in {evidence}"
    for text in case.get("not_evidence", []):
        assert text not in evidence, f"{entry_id} on {case['facts']}: {text!r} in {evidence}"


@pytest.mark.parametrize(("entry_id", "case"), cases("silent_on"))
def test_entry_stays_silent_on_its_look_alikes(entry_id: str, case: Dict[str, Any]) -> None:
    assert findings_of(entry_id, case) == []
