"""The agent's interface for every caller: the CLI, the Ansible modules, tests.

One entry per question a caller asks of a host:

- :func:`collect`: the facts document (``netmedic facts``, the ``netmedic_facts`` module);
- :func:`diagnose_host`: facts plus their diagnosis, the config and the catalog
  loaded once (``netmedic diagnose``, ``netmedic_facts`` with ``diagnose``);
- :func:`check`: whether one finding (optionally one subject of it) is present
  (``netmedic check ID``, every role's verification);
- :func:`probe_bind`: what binding a port finds (``netmedic probe-bind``);
- :func:`installed_config`: the host's config file as it is (``netmedic_plan``'s freshness).

The config is the one the caller names (``config_path``), else the caller's
``ctx.config`` (a module's ``config`` option), else the host's
``<etc_root>/netmedic/config.yml``, read only when something asks for it. A file
that cannot be parsed is an ``errors`` entry of family ``config``; the rest runs
without it. cli.py and commands.py only parse arguments and print what this
module returns.

``netmedic facts --only ports`` imports this module: the diagnosis's modules
(yaml, dataclasses, the catalog) are imported inside the functions that use them.
"""

from __future__ import annotations

from netmedic.facts import error_entry, gather, select_families
from netmedic.registry import CONFIG_FAMILIES, FAMILIES

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name)

if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

    from netmedic.context import Context, Facts
    from netmedic.diagnose import Diagnosis, Finding
    from netmedic.probe import BindProbe

    ErrorEntry = Dict[str, str]


class ConfigUnreadable(ValueError):
    """The config file the caller named cannot be read; the message names it."""


class FactsUnusable(ValueError):
    """A saved facts document cannot be diagnosed; the message names the file and what in it."""


class _Record:
    """A value class: equal when its fields are (not a dataclass: see the module docstring)."""

    __slots__: Tuple[str, ...] = ()
    _FIELDS: Tuple[str, ...] = ()  # the constructor's arguments, in order

    def _fields(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable fields

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS)
        return f"{type(self).__name__}({fields})"


class HostDiagnosis(_Record):
    """A host's facts, the config they were read with, and what the catalog found in them."""

    __slots__ = ("config", "diagnosis", "facts")
    _FIELDS = ("facts", "diagnosis", "config")

    def __init__(self, facts: Facts, diagnosis: Diagnosis, config: Dict[str, Any]) -> None:
        self.facts = facts
        self.diagnosis = diagnosis
        self.config = config


class CheckResult(_Record):
    """``netmedic check ID [--subject S]``: exit 0 absent, 1 present, 3 unknown/not evaluated."""

    __slots__ = ("diagnosis", "exit_code", "finding_id", "findings", "state", "subject")
    _FIELDS = ("finding_id", "subject", "state", "exit_code", "findings", "diagnosis")

    def __init__(  # noqa: PLR0917 - the fields, in order, as the dataclass it was took them
        self,
        finding_id: str,
        subject: Optional[str],
        state: str,  # "absent" | "present" | "not evaluated" | "unknown id"
        exit_code: int,
        findings: List[Finding],
        diagnosis: Diagnosis,
    ) -> None:
        self.finding_id = finding_id
        self.subject = subject
        self.state = state
        self.exit_code = exit_code
        self.findings = findings
        self.diagnosis = diagnosis

    def to_dict(self) -> Dict[str, Any]:
        return {
            "id": self.finding_id,
            "subject": self.subject,
            "state": self.state,
            "exit_code": self.exit_code,
            "findings": [f.to_dict() for f in self.findings],
            "skipped": self.diagnosis.skipped,
            "catalog_errors": self.diagnosis.catalog_errors,
        }


def collect(ctx: Context) -> Facts:
    """The facts document of the families in ``ctx.only`` (all when None)."""
    config, errors = load_config(ctx, families=select_families(ctx.only))
    return _gather(ctx.replace(config=config), errors)


def installed_config(ctx: Context) -> Tuple[Dict[str, Any], Optional[str]]:
    """``(config, error)`` of ``<etc_root>/netmedic/config.yml``, whatever ``ctx.config`` is.

    ``({}, None)`` when the file is absent; ``({}, "/etc/netmedic/config.yml: ...")``
    when it cannot be used. Nothing is left out: the file is compared, not used.
    """
    from netmedic import config  # noqa: PLC0415 - yaml only when a config is read

    raw, error = config.read_host_config(ctx.etc_root)
    return raw, None if error is None else str(error)


def load_facts(path: str) -> Facts:
    """The facts document saved in ``path`` (``diagnose --facts``), checked before any match.

    Read bounded (:data:`netmedic.inputs.MAX_FACTS_BYTES`), parsed as strict JSON
    (no NaN, nesting limited) and validated against ``schema/facts.schema.json``:
    ``{..., "ports": "oops"}`` → FactsUnusable("FILE: not a facts document: ports:
    must be a null or object ...").
    """
    from netmedic import inputs  # noqa: PLC0415 - json and the schema: only here
    from netmedic.validate import schema_validator  # noqa: PLC0415

    try:
        document = inputs.parse_json(inputs.read_limited(path, inputs.MAX_FACTS_BYTES))
    except OSError as exc:
        raise FactsUnusable(f"{path}: cannot read: {exc}") from exc
    except inputs.InputError as exc:
        raise FactsUnusable(f"{path}: {exc}") from exc
    issues = schema_validator("facts").validate(document)
    if issues:
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise FactsUnusable(f"{path}: not a facts document: {issues[0]}{more}")
    checked: Facts = document
    return checked


def diagnose_host(
    ctx: Context,
    only: Optional[Sequence[str]] = None,
    facts: Optional[Mapping[str, Any]] = None,
    config_path: str = "",
) -> HostDiagnosis:
    """Facts (``facts`` when given, else collected now) and their diagnosis.

    ``only`` names the finding ids to run (all enabled entries when None).
    Raises :class:`ConfigUnreadable` when ``config_path`` cannot be read.
    """
    from netmedic.catalog import load_catalog  # noqa: PLC0415 - yaml and the catalog: only here
    from netmedic.diagnose import diagnose  # noqa: PLC0415

    config, errors = load_config(ctx, config_path)
    if facts is None:
        document = _gather(ctx.replace(config=config), errors)
    else:
        document = dict(facts)
        document["errors"] = [*(document.get("errors") or []), *errors]
    diagnosis = diagnose(document, load_catalog(ctx.etc_root), config, only=only)
    return HostDiagnosis(facts=document, diagnosis=diagnosis, config=config)


def check(
    ctx: Context,
    finding_id: str,
    subject: Optional[str] = None,
    facts: Optional[Mapping[str, Any]] = None,
    config_path: str = "",
) -> CheckResult:
    """Whether ``finding_id`` (for ``subject``, or any subject) is present on the host."""
    host = diagnose_host(ctx, only=[finding_id], facts=facts, config_path=config_path)
    result = host.diagnosis
    findings = [f for f in result.findings if not subject or f.subject == subject]
    if findings:
        exit_code, state = 1, "present"
    elif any(s["id"] == finding_id for s in result.skipped):
        exit_code, state = 3, "not evaluated"
    elif finding_id in result.evaluated:
        exit_code, state = 0, "absent"
    else:  # diagnose() records every id it ran: one it never saw is not in the catalog
        exit_code, state = 3, "unknown id"
    return CheckResult(finding_id, subject or None, state, exit_code, findings, result)


def probe_bind(ctx: Context, proto: str, port: int, address: str = "0.0.0.0") -> BindProbe:
    """Bind ``address:port/proto`` and classify it (free, in use and by whom, ...).

    ``proto``, ``port`` and ``address`` are checked as :mod:`netmedic.probe`'s
    ``parse_*`` check them; a bad one raises ValueError quoting it.
    """
    from netmedic import probe  # noqa: PLC0415 - socket and ipaddress: only here

    return probe.probe_bind(probe.parse_proto(proto), probe.parse_port(str(port)), address, ctx)


def load_config(
    ctx: Context, path: str = "", families: Iterable[str] = FAMILIES
) -> Tuple[Dict[str, Any], List[ErrorEntry]]:
    """The config and the ``errors`` entries of what in it could not be used.

    ``path`` when given, else ``ctx.config`` when not empty, else the host's
    file when one of ``families`` reads it (else ``{}``, and yaml stays unimported).
    Each is checked the same way (:func:`netmedic.config.checked`): a file that
    cannot be used gives ``({}, [{"family": "config", "type": "ConfigError", ...}])``,
    a value that breaks the schema one ``ConfigInvalid`` entry and is left out.
    An unreadable ``path`` raises :class:`ConfigUnreadable`.
    """
    if not path and not ctx.config and CONFIG_FAMILIES.isdisjoint(families):
        return {}, []
    from netmedic import config  # noqa: PLC0415 - yaml only when a config is read

    if path:
        try:
            raw = config.read_config(path, path)
        except OSError as exc:
            raise ConfigUnreadable(f"{path}: cannot read: {exc}") from exc
        except config.ConfigError as exc:
            return {}, [error_entry("config", exc)]
        loaded, problems = config.checked(raw, path)
    elif ctx.config:
        loaded, problems = config.checked(ctx.config, "config")
    else:
        loaded, problems = config.load_config(ctx.etc_root)
    return loaded, [error_entry("config", problem) for problem in problems]


def _gather(ctx: Context, config_errors: List[ErrorEntry]) -> Facts:
    """:func:`netmedic.facts.gather`, with the config's errors first among ``errors``."""
    document = gather(ctx)
    document["errors"][:0] = config_errors
    return document
