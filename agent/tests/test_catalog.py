"""Catalog format: schema, validator, loader (shipped + operator files), paths,
matcher and templates."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Dict

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from netmedic.catalog import load_catalog
from netmedic.catalog.loader import SHIPPED_DIR
from netmedic.catalog.matcher import bindings, compile_condition, compile_loop, evaluate
from netmedic.catalog.operators import OPERATORS
from netmedic.catalog.paths import PathError, items, parse_path, resolve
from netmedic.catalog.template import render, render_value
from netmedic.validate import SCHEMA_DIR, UnsupportedSchema, Validator, schema_validator

SCHEMA = json.loads((SCHEMA_DIR / "catalog.schema.json").read_text(encoding="utf-8"))
SHIPPED = sorted(SHIPPED_DIR.glob("*.yml"))
ROLES = {"unit_ordering", "port_conflicts", "release_channel", "process_reaper", "ephemeral_ports"}


def write_operator(etc: Path, name: str, text: str) -> Path:
    directory = etc / "netmedic" / "catalog.d"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


MINIMAL = """\
    id: custom-thing
    title: A custom thing
    severity: info
    match:
      when: {path: ports.source, op: eq, value: psutil}
    subject: ports
    evidence: ["ports read with {ports.source}"]
    remediation: {role: port_conflicts, vars: {}}
    destructive: false
"""


# --- schema and shipped entries ------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_entry_is_valid_for_jsonschema_and_our_validator(path: Path) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.validate(raw, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert schema_validator("catalog").validate(raw) == []
    assert raw["id"] == path.stem  # one file per issue, named after it
    assert raw["remediation"]["role"] in ROLES


def test_shipped_catalog_loads_without_rejections() -> None:
    catalog = load_catalog(None)
    assert catalog.rejected == []
    assert len(catalog.entries) == len(SHIPPED) >= 9


BAD_ENTRIES = [
    ({"id": "x", "title": "t"}, "match"),  # a patch of nothing
    ({"id": "Bad Id"}, "id"),
    ({"id": "x", "severity": "fatal"}, "severity"),
    ({"id": "x", "match": {"when": {"path": "a", "op": "equals", "value": 1}}}, "match.when"),
    ({"id": "x", "match": {"when": {"path": "a", "op": "eq"}}}, "match.when"),
    ({"id": "x", "match": {"for_each": [{"in": "a"}]}}, "match.for_each[0].as"),
    (
        {"id": "x", "match": {"when": {"path": "a", "op": "exists", "value": "yes"}}},
        "match.when.value",
    ),
    ({"id": "x", "extra": 1}, "extra"),
]


@pytest.mark.parametrize(("raw", "field"), BAD_ENTRIES)
def test_validator_agrees_with_jsonschema_on_bad_entries(raw: Dict[str, Any], field: str) -> None:
    full = dict(raw)
    if "match" in full:
        full.update(
            title="t",
            severity="info",
            subject="s",
            evidence=["e"],
            remediation={"role": "r", "vars": {}},
            destructive=False,
        )
    ours = schema_validator("catalog").validate(full)
    theirs = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(full))
    if field == "match":  # a patch without match is schema-valid; the loader rejects it
        assert ours == [] and theirs == []
        return
    assert ours and theirs
    assert ours[0].field.startswith(field), ours


def test_validator_refuses_unsupported_keywords() -> None:
    with pytest.raises(UnsupportedSchema, match="patternProperties"):
        Validator({"patternProperties": {"^a": {"type": "string"}}})


# --- loader: rejections name the file and the field -----------------------------


def test_malformed_operator_file_is_rejected_naming_file_and_field(tmp_path: Path) -> None:
    write_operator(
        tmp_path,
        "50-bad.yml",
        MINIMAL.replace("op: eq", "op: equals"),
    )
    catalog = load_catalog(tmp_path)
    assert "custom-thing" not in catalog.entries
    (error,) = catalog.rejected
    message = str(error)
    assert message.startswith("/etc/netmedic/catalog.d/50-bad.yml: match.when")
    assert "'equals' is not one of" in message


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("id: [unclosed", "", "invalid YAML"),
        (MINIMAL.replace("severity: info", "severity: urgent"), "severity", "'urgent'"),
        (MINIMAL.replace("path: ports.source", "path: 'ports.[x'"), "match.when.path", "path"),
        (MINIMAL.replace("value: psutil", "value: '(unclosed'").replace("op: eq", "op: regex"),
         "match.when.value", "invalid regex"),
        (MINIMAL.replace("{ports.source}", "{ports..source}"), "evidence[0]", "expected a name"),
        (MINIMAL.replace("op: eq, value: psutil", "op: gt, param: limit"), "match.when.param",
         "not declared"),
        (MINIMAL.replace("when: {path: ports.source, op: eq, value: psutil}",
                         "for_each: [{in: ports.sockets, as: ports}]"), "match.for_each[0].as",
         "reserved"),
        ("id: not-shipped\nenabled: false\n", "match", "no entry 'not-shipped' to patch"),
        (MINIMAL.replace("vars: {}", "vars: {port_conflicts_allow_destructive: true}"),
         "remediation.vars.port_conflicts_allow_destructive", "cannot approve destructive"),
    ],
)  # fmt: skip
def test_rejections_name_the_field(tmp_path: Path, text: str, field: str, fragment: str) -> None:
    write_operator(tmp_path, "x.yml", text)
    (error,) = load_catalog(tmp_path).rejected
    assert error.source == "/etc/netmedic/catalog.d/x.yml"
    assert error.field == field
    assert fragment in str(error)


@pytest.mark.parametrize(("text", "fragment"), [("id: [unclosed", "invalid YAML"),
                                              ("- a list\n", "is not a mapping")])
def test_a_broken_shipped_file_is_rejected_alone(tmp_path: Path, text: str,
                                                 fragment: str) -> None:
    # Shipped files skip the schema at run time (test_shipped_entry_is_valid... checks
    # them here); one the install garbled is still rejected, not a traceback.
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "broken.yml").write_text(text, encoding="utf-8")
    (shipped / "custom-thing.yml").write_text(textwrap.dedent(MINIMAL), encoding="utf-8")
    catalog = load_catalog(None, shipped_dir=shipped)
    (error,) = catalog.rejected
    assert error.source == "netmedic/catalog/broken.yml"
    assert fragment in str(error)
    assert list(catalog.entries) == ["custom-thing"]


def test_operator_file_adds_an_entry(tmp_path: Path) -> None:
    write_operator(tmp_path, "10-custom.yml", MINIMAL)
    catalog = load_catalog(tmp_path)
    assert catalog.entries["custom-thing"].source == "/etc/netmedic/catalog.d/10-custom.yml"


def test_operator_patch_tunes_params_and_disables(tmp_path: Path) -> None:
    write_operator(
        tmp_path, "10-tune.yml", "id: ephemeral-port-pressure\nparams: {max_pressure: 0.5}\n"
    )
    write_operator(tmp_path, "20-off.yml", "id: release-channel-beta\nenabled: false\n")
    catalog = load_catalog(tmp_path)
    pressure = catalog.entries["ephemeral-port-pressure"]
    assert pressure.params == {"max_pressure": 0.5, "range_low": 15000, "range_high": 60999}
    assert "release-channel-beta" not in [e.id for e in catalog.active()]


def test_operator_file_with_match_replaces_shipped_entry(tmp_path: Path) -> None:
    write_operator(
        tmp_path, "10-replace.yml", MINIMAL.replace("custom-thing", "release-channel-beta")
    )
    entry = load_catalog(tmp_path).entries["release-channel-beta"]
    assert entry.title == "A custom thing"
    assert entry.source.endswith("10-replace.yml")


# --- paths ------------------------------------------------------------------------


def test_paths_parse_and_resolve() -> None:
    facts = {
        "units": {"units": {"a.service": {"after": ["x"]}, "b.service": {"after": None}}},
        "name": "a.service",
        "ports": {"sockets": [{"port": 1, "owner": None}, {"port": 2, "owner": {"pid": 9}}]},
    }
    assert resolve(parse_path('units.units["a.service"].after[0]'), facts) == ["x"]
    assert resolve(parse_path("units.units[$name].after"), facts) == [["x"]]
    assert resolve(parse_path("units.units[*].after"), facts) == [["x"]]  # null left out
    assert resolve(parse_path("ports.sockets[*].owner.pid"), facts) == [9]
    assert resolve(parse_path("ports.sockets[-1].port"), facts) == [2]
    assert resolve(parse_path("ports.sockets[5].port"), facts) == []
    assert resolve(parse_path("nothing.here"), facts) == []
    assert [k for k, _ in items(parse_path("ports.sockets[*]"), facts)] == [0, 1]
    assert [k for k, _ in items(parse_path("units.units"), facts)] == ["a.service", "b.service"]


@pytest.mark.parametrize("bad", ["", "1abc", "a.", "a[", "a[x]", "a['x", "a[$]", "a b"])
def test_bad_paths_are_refused(bad: str) -> None:
    with pytest.raises(PathError):
        parse_path(bad)


# --- templates --------------------------------------------------------------------


def test_render_text_and_typed_vars() -> None:
    scope = {"d": {"port": 1900, "proto": "udp", "list": [1, 2], "none": None, "ratio": 0.83125}}
    assert (
        render("{d.port}/{d.proto} {d.missing|n/a} {d.none} {{x}}", scope)
        == "1900/udp n/a unknown {x}"
    )
    assert render("{d.list} {d.ratio}", scope) == "1, 2 0.831"
    assert render_value({"p": "{d.port}", "s": "port {d.port}", "n": "{d.none}"}, scope) == {
        "p": 1900,
        "s": "port 1900",
        "n": None,
    }
    assert render_value("{d.list[*]}", scope) == [1, 2]


def test_template_never_reaches_python_attributes() -> None:
    # str.format would resolve {d.__class__}; paths only walk mappings and lists.
    assert render("{d.__class__}", {"d": {}}) == "unknown"


# --- matcher ----------------------------------------------------------------------


def cond(raw: Dict[str, Any], params: Dict[str, Any] | None = None) -> Any:
    return compile_condition(raw, "match.when", params or {})


@pytest.mark.parametrize(
    ("raw", "scope", "expected"),
    [
        ({"path": "a", "op": "eq", "value": 1}, {"a": 1}, True),
        ({"path": "a", "op": "eq", "value": True}, {"a": 1}, False),  # bool is not int
        ({"path": "a", "op": "ne", "value": 1}, {}, False),  # unknown is not "different"
        ({"path": "a", "op": "lt", "ref": "b"}, {"a": 5, "b": 9}, True),  # time ordering
        ({"path": "a", "op": "lt", "ref": "b"}, {"a": 5}, False),
        ({"path": "a", "op": "lt", "value": 3}, {"a": "2"}, False),  # no str/int ordering
        ({"path": "a", "op": "in", "value": ["x", "y"]}, {"a": "y"}, True),
        ({"path": "a", "op": "not_in", "value": ["x"]}, {"a": "y"}, True),
        ({"path": "a", "op": "in", "ref": "l[*].n"}, {"a": 2, "l": [{"n": 1}, {"n": 2}]}, True),
        ({"path": "a", "op": "contains", "value": "x"}, {"a": ["x"]}, True),
        ({"path": "a", "op": "not_contains", "value": "x"}, {"a": ["y"]}, True),
        ({"path": "a", "op": "contains_any", "value": ["x", "z"]}, {"a": ["z"]}, True),
        ({"path": "a", "op": "contains_none", "value": ["x"]}, {"a": ["z"]}, True),
        ({"path": "a", "op": "regex", "value": "^gp"}, {"a": "gpclient"}, True),
        ({"path": "a", "op": "regex", "value": "1"}, {"a": 1}, False),  # regex on strings only
        ({"path": "a", "op": "exists", "value": False}, {"a": None}, True),
        ({"path": "a", "op": "empty", "value": True}, {"a": []}, True),
        ({"path": "a", "op": "empty", "value": True}, {}, False),
        ({"path": "a[*]", "op": "gt", "value": 2}, {"a": [1, 3]}, True),  # any value
        ({"path": "a", "op": "gt", "param": "limit"}, {"a": 0.9}, True),
        ({"not": {"path": "a", "op": "eq", "value": 1}}, {"a": 2}, True),
        ({"all": [{"path": "a", "op": "eq", "value": 1}, {"path": "b", "op": "eq", "value": 2}]},
         {"a": 1, "b": 3}, False),
        ({"any": [{"path": "a", "op": "eq", "value": 1}, {"path": "b", "op": "eq", "value": 2}]},
         {"a": 1, "b": 3}, True),
        ({"some": {"in": "l", "as": "i", "where": {"path": "i", "op": "gt", "value": 2}}},
         {"l": [1, 3]}, True),
        ({"every": {"in": "l", "as": "i", "where": {"path": "i", "op": "gt", "value": 2}}},
         {"l": [1, 3]}, False),
        ({"none": {"in": "l", "as": "i", "where": {"path": "i", "op": "gt", "value": 5}}},
         {"l": [1, 3]}, True),
    ],
)  # fmt: skip
def test_operators(raw: Dict[str, Any], scope: Dict[str, Any], expected: bool) -> None:
    assert evaluate(cond(raw, {"limit": 0.8}), scope, {"limit": 0.8}) is expected


def test_join_binds_declared_ports_to_sockets() -> None:
    scope = {
        "config": {"ports": [{"port": 1900, "proto": "udp"}, {"port": 80, "proto": "tcp"}]},
        "ports": {
            "sockets": [{"port": 1900, "proto": "udp", "pid": 1}, {"port": 1900, "proto": "tcp"}]
        },
    }
    loops = [
        compile_loop({"in": "config.ports", "as": "d"}, "f0", {}),
        compile_loop(
            {
                "in": "ports.sockets[*]",
                "as": "s",
                "where": {
                    "all": [
                        {"path": "s.port", "op": "eq", "ref": "d.port"},
                        {"path": "s.proto", "op": "eq", "ref": "d.proto"},
                    ]
                },
            },
            "f1",
            {},
        ),
    ]
    found = [(b["d"]["port"], b["s"].get("pid")) for b in bindings(loops, scope, {})]
    assert found == [(1900, 1)]


# --- property tests ---------------------------------------------------------------

scalars = st.one_of(st.integers(-1000, 1000), st.text(max_size=5), st.booleans())


@given(scalars)
def test_eq_is_reflexive_and_ne_its_negation(value: Any) -> None:
    scope = {"a": value}
    assert evaluate(cond({"path": "a", "op": "eq", "ref": "a"}), scope, {})
    assert not evaluate(cond({"path": "a", "op": "ne", "ref": "a"}), scope, {})


@given(st.integers(), st.integers())
def test_lt_gt_are_mirror_images(a: int, b: int) -> None:
    scope = {"a": a, "b": b}
    lt = evaluate(cond({"path": "a", "op": "lt", "ref": "b"}), scope, {})
    gt = evaluate(cond({"path": "b", "op": "gt", "ref": "a"}), scope, {})
    assert lt == gt == (a < b)


@given(scalars, st.lists(scalars, max_size=6))
def test_in_and_not_in_partition_known_values(value: Any, options: list[Any]) -> None:
    scope = {"a": value}
    inside = evaluate(cond({"path": "a", "op": "in", "value": options}), scope, {})
    outside = evaluate(cond({"path": "a", "op": "not_in", "value": options}), scope, {})
    assert inside != outside


@given(st.sampled_from(sorted(OPERATORS)), st.one_of(scalars, st.lists(scalars, max_size=3)))
def test_missing_field_satisfies_no_binary_operator(op: str, operand: Any) -> None:
    raw = {"path": "missing", "op": op, "value": "x" if op == "regex" else operand}
    assert not evaluate(cond(raw), {"a": 1}, {})


@given(st.lists(st.integers(0, 20), max_size=8), st.integers(0, 20))
def test_quantifiers_agree_with_python(values: list[int], limit: int) -> None:
    loop = {"in": "l", "as": "i", "where": {"path": "i", "op": "gt", "value": limit}}
    scope = {"l": values}
    assert evaluate(cond({"some": loop}), scope, {}) == any(v > limit for v in values)
    assert evaluate(cond({"every": loop}), scope, {}) == all(v > limit for v in values)
    assert evaluate(cond({"none": loop}), scope, {}) == (not any(v > limit for v in values))


trees = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text("ab", max_size=2), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(trees)
def test_wildcard_resolution_never_raises(tree: Any) -> None:
    for text in ("t[*][*]", "t.a[0]", "t[*].b", "t[-1]"):
        resolve(parse_path(text), {"t": tree})
