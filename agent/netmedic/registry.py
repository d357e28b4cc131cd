"""What the agent knows about, declared once: fact families, config keys, socket fields.

Everything that lists these names reads them from here or is tested against
them: facts.py and the CLI's usage text, the config checks, the catalog's
reserved names, the facts and catalog JSON schemas, the output encoder, the
``netmedic_facts`` module's ``only`` choices and the tests.

Imported on ``netmedic facts --only ports``' path: plain tuples and dicts only.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:
    from typing import Dict, FrozenSet, Tuple

# Fact families in collection order: units needs the port owners, dns the units.
FAMILIES: Tuple[str, ...] = ("ports", "units", "dns", "processes", "ephemeral", "channels")

# Top-level keys of /etc/netmedic/config.yml and the container type each must have.
CONFIG_KEYS: Dict[str, type] = {
    "ports": list,
    "units": list,
    "dns": dict,
    "processes": list,
    "channels": list,
}

# The config keys each family reads (ctx.setting(KEY)).
CONFIG_READ: Dict[str, Tuple[str, ...]] = {
    "ports": ("ports",),
    "units": ("units", "ports"),  # declared owner units are queried too
    "dns": ("dns",),
    "processes": ("processes",),
    "ephemeral": ("ports", "processes"),
    "channels": ("channels",),
}

# Families for which the config file is loaded. ports reads only a config its caller
# passes (probe-bind, the netmedic_facts module): `--only ports` never imports yaml.
CONFIG_FAMILIES: FrozenSet[str] = frozenset(FAMILIES) - {"ports"}

# Where an `errors` entry can come from: a family, or the config file.
ERROR_SOURCES: Tuple[str, ...] = ("config", *FAMILIES)

# The top-level keys of the facts document around the families.
ENVELOPE: Tuple[str, ...] = (
    "schema_version", "agent_version", "host", "collected_at", "duration_ms", "errors",
)  # fmt: skip
# After the envelope, only in `netmedic facts --diagnose` (the facts.d hook): the findings.
DIAGNOSIS_KEY = "diagnosis"

# Roots of a catalog entry's match scope besides the families; a binding may not take
# any root's name.
SCOPE_ROOTS: Tuple[str, ...] = (*FAMILIES, "errors", "host", "config", "params")

# The keys of a `ports.sockets` entry and of its `owner`, in the order the collector
# writes them.
SOCKET_FIELDS: Tuple[str, ...] = (
    "proto", "family", "address", "port", "device", "scope_id", "v6only", "inode", "uid",
    "netns", "owner", "owner_reason", "other_pids", "sharing",
)  # fmt: skip
# Of those, always written but not required by the schema: a saved document without them
# (an older agent's) is read as sockets bound to no device, v6only unknown.
SOCKET_BINDING_FIELDS: Tuple[str, ...] = ("device", "scope_id", "v6only")
OWNER_FIELDS: Tuple[str, ...] = ("pid", "name", "exe", "user", "unit", "container_id")
# Written only where it applies: the owners of declared ports' sockets (netmedic.containers).
OWNER_OPTIONAL_FIELDS: Tuple[str, ...] = ("container_name",)
