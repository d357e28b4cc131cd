"""Diagnosis stays near-linear: joins by lookup (netmedic.catalog.index) give the same
findings as the nested loops they replace, and 4,000 sockets on one declared port take
well under the bound (the nested loops took a minute).

The curve for 1k-100k sockets: bench/diagnose_scaling.py, docs/performance.md.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from diagnose_scaling import CONFIG, synthetic_facts
from netmedic.catalog import load_catalog
from netmedic.catalog.index import JoinIndex, value_key
from netmedic.diagnose import diagnose, run_entry, scope_for
from netmedic.validate import schema_validator

CATALOG = load_catalog(None)


@pytest.mark.parametrize("shape", ["spread", "one-port"])
def test_the_benchs_documents_are_facts_documents(shape: str) -> None:
    # netmedic diagnose --facts refuses a document that breaks the schema (exit 3).
    assert schema_validator("facts").validate(synthetic_facts(shape, 40)) == []


def test_4000_sockets_on_one_declared_port_diagnose_in_linear_time() -> None:
    facts = synthetic_facts("one-port", 4000)
    started = time.monotonic()
    result = diagnose(facts, CATALOG, CONFIG)
    elapsed = time.monotonic() - started
    (found,) = [f for f in result.findings if f.id == "declared-port-held-by-other"]
    assert found.subject == "1900/udp"
    assert len(found.role_vars["port_conflicts_holders_found"]) == 4000
    assert len(found.evidence) == 4000 + 1  # one line per holder, and the declared owner's
    assert elapsed < 10, f"{elapsed:.1f} s"  # generous: about 0.5 s here; 60 s before the index


def test_value_keys_follow_the_matchers_eq() -> None:
    assert value_key(1) == value_key(1.0) != value_key(True)
    assert value_key("1") != value_key(1)
    assert value_key(float("nan")) is None


SOCKET = st.fixed_dictionaries(
    {
        "proto": st.sampled_from(["tcp", "udp"]),
        "port": st.sampled_from([22, 1900, 1901, 8080]),
        "address": st.sampled_from(["0.0.0.0", "::"]),
        "owner": st.none() | st.fixed_dictionaries(
            {"pid": st.integers(1, 5), "unit": st.sampled_from(["a.service", "b.service"]),
             "name": st.just("x"), "user": st.just("root")}),
        "sharing": st.fixed_dictionaries({"reuse_addr": st.none() | st.booleans()}),
        "other_pids": st.just([]),
    }
)  # fmt: skip
DECLARED = st.fixed_dictionaries(
    {"port": st.sampled_from([22, 1900, 8080, 1900.0])},
    optional={
        "proto": st.sampled_from(["tcp", "udp"]),
        "owner": st.sampled_from(["a.service", "b.service"]),
        "remap": st.fixed_dictionaries({"port": st.sampled_from([1901, 8080])}),
    },
)


def findings(facts: Any, config: Any, index: Optional[JoinIndex]) -> List[Any]:
    scope = scope_for(facts, config)
    return [
        finding.to_dict()
        for entry in CATALOG.active()
        if set(entry.requires) <= {"ports", "config"}
        for finding in run_entry(entry, scope, index)
    ]


@settings(max_examples=150, deadline=None)
@given(sockets=st.lists(SOCKET, max_size=8), declared=st.lists(DECLARED, max_size=3))
def test_joins_by_lookup_find_what_nested_loops_find(
    sockets: List[Dict[str, Any]], declared: List[Dict[str, Any]]
) -> None:
    facts = {"ports": {"source": "netlink", "sockets": sockets}, "units": None, "errors": []}
    config = {"ports": declared}
    expected = findings(facts, config, None)
    event(f"findings: {min(len(expected), 3)}")
    assert findings(facts, config, JoinIndex()) == expected
