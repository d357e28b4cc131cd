"""Everything that lists families, config keys or socket fields agrees with netmedic.registry."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Set

import pytest
import yaml
from conftest import MODULES, ROOT

from netmedic.args import USAGE
from netmedic.catalog.loader import RESERVED_NAMES
from netmedic.catalog.operators import OPERATORS, UNARY
from netmedic.registry import (
    CONFIG_FAMILIES,
    CONFIG_KEYS,
    CONFIG_READ,
    DIAGNOSIS_KEY,
    ENVELOPE,
    ERROR_SOURCES,
    FAMILIES,
    OWNER_FIELDS,
    OWNER_OPTIONAL_FIELDS,
    SCOPE_ROOTS,
    SOCKET_BINDING_FIELDS,
    SOCKET_FIELDS,
)

AGENT = ROOT / "agent" / "netmedic"
FACTS_SCHEMA = json.loads((AGENT / "schema" / "facts.schema.json").read_text())
CATALOG_SCHEMA = json.loads((AGENT / "schema" / "catalog.schema.json").read_text())


def test_facts_schema_top_level_is_the_envelope_and_the_families() -> None:
    assert list(FACTS_SCHEMA["properties"]) == [
        *ENVELOPE[:-1],
        *FAMILIES,
        ENVELOPE[-1],
        DIAGNOSIS_KEY,
    ]
    assert FACTS_SCHEMA["required"] == list(ENVELOPE)
    assert all(
        FACTS_SCHEMA["properties"][family]["oneOf"][1] == {"$ref": f"#/$defs/{family}"}
        for family in FAMILIES
    )


def test_facts_schema_error_sources() -> None:
    assert FACTS_SCHEMA["$defs"]["error"]["properties"]["family"]["enum"] == list(ERROR_SOURCES)


def test_facts_schema_socket_and_owner_fields() -> None:
    socket = FACTS_SCHEMA["$defs"]["socket"]
    assert list(socket["properties"]) == list(SOCKET_FIELDS)
    assert socket["required"] == [f for f in SOCKET_FIELDS if f not in SOCKET_BINDING_FIELDS]
    owner = socket["properties"]["owner"]["oneOf"][1]
    assert owner["required"] == list(OWNER_FIELDS)
    assert list(owner["properties"]) == [*OWNER_FIELDS, *OWNER_OPTIONAL_FIELDS]


def test_catalog_schema_requires_and_operators() -> None:
    requires = CATALOG_SCHEMA["properties"]["requires"]["items"]["enum"]
    assert requires == [*FAMILIES, "config"]
    compare = json.dumps(CATALOG_SCHEMA["$defs"])
    ops = re.search(r'"enum": (\["eq".*?\])', compare)
    assert ops is not None
    assert json.loads(ops.group(1)) == [*OPERATORS, *UNARY]


def test_scope_roots_are_the_catalogs_reserved_names() -> None:
    assert frozenset(SCOPE_ROOTS) == RESERVED_NAMES
    assert set(SCOPE_ROOTS) >= {*FAMILIES, "errors", "host", "config", "params"}


def settings_read(family: str) -> Set[str]:
    """The keys a collector's source reads with ``ctx.setting("KEY", ...)``."""
    text = (AGENT / "collectors" / f"{family}.py").read_text()
    return set(re.findall(r'ctx\.setting\("([a-z_]+)"', text))


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_reads_the_config_keys_the_registry_says(family: str) -> None:
    assert settings_read(family) == set(CONFIG_READ[family])


def test_config_keys_are_the_ones_families_read() -> None:
    assert list(CONFIG_READ) == list(FAMILIES)
    assert {key for keys in CONFIG_READ.values() for key in keys} == set(CONFIG_KEYS)
    # The file is loaded for every family that reads it, but ports (see registry.py).
    reading = {family for family, keys in CONFIG_READ.items() if keys}
    assert reading - {"ports"} == CONFIG_FAMILIES


def module_documentation(path: Path) -> Dict[str, Any]:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION":
            text = ast.literal_eval(node.value)
            assert isinstance(text, str)
            documented: Dict[str, Any] = yaml.safe_load(text)
            return documented
    raise AssertionError(f"{path}: no DOCUMENTATION")


def argument_choices(path: Path, option: str) -> List[str]:
    """The ``choices`` literal of ``option`` in the module's argument_spec."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Dict):
            keys = [ast.literal_eval(k) if isinstance(k, ast.Constant) else None for k in node.keys]
            if option in keys:
                spec = node.values[keys.index(option)]
                assert isinstance(spec, ast.Dict)
                fields = {ast.literal_eval(k): v for k, v in zip(spec.keys, spec.values) if k}
                choices: List[str] = ast.literal_eval(fields["choices"])
                return choices
    raise AssertionError(f"{path}: no argument_spec entry for {option}")


def test_netmedic_facts_only_choices_are_the_families() -> None:
    """A module's DOCUMENTATION cannot import the agent: its literal list is held here."""
    module = MODULES / "netmedic_facts.py"
    assert module_documentation(module)["options"]["only"]["choices"] == list(FAMILIES)
    assert argument_choices(module, "only") == list(FAMILIES)


def test_usage_and_docs_name_the_families_in_order() -> None:
    assert f"(families: {', '.join(FAMILIES)})" in USAGE
    docs = (ROOT / "docs" / "facts.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith("| `ports`"))
    assert re.findall(r"`([a-z]+)`", row.split("|")[1]) == list(FAMILIES)
    order = next(line for line in docs.splitlines() if "→" in line and "`ports`" in line)
    following = docs[docs.index(order) :].split("\n\n")[0]
    assert re.findall(r"`([a-z]+)`", following) == list(FAMILIES)


def test_docs_config_table_is_the_registrys() -> None:
    docs = (ROOT / "docs" / "facts.md").read_text()
    table = docs[docs.index("| key | type | read by |") :].split("\n\n")[0].splitlines()[2:]
    names = {list: "list", dict: "mapping"}
    rows = {}
    for row in table:
        key, kind, readers = (cell.strip() for cell in row.strip("|").split("|"))
        rows[key.strip("`")] = (kind, re.findall(r"^`([a-z]+)`|, `([a-z]+)`", readers))
    assert list(rows) == list(CONFIG_KEYS)
    for key, (kind, found) in rows.items():
        readers = [first or rest for first, rest in found]
        assert kind == names[CONFIG_KEYS[key]]
        assert readers == [family for family in FAMILIES if key in CONFIG_READ[family]], key
