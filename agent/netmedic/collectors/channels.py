"""Channels family: per declared app, the release channel in use and the symptom.

A profile (``config.channels``, docs/facts.md)::

    {app: portmaster, data_dir: /opt/safing/portmaster, config_file: config.json,
     key_path: [core, releaseChannel], service: portmaster.service,
     indexes: {stable: updates/stable.json, beta: updates/beta.json},
     api: {url: "http://127.0.0.1:817", timeout_s: 4,
           checks: [{name: ui, path: /api/database/v1, status: [400, 403]}],
           symptom: Failed to identify the requesting process},
     journal: {symptom: "denying api access: failed to identify process"}}

Every path is relative to ``data_dir`` and must resolve (symlinks followed) inside
it; one that escapes is flagged and never read. The effective channel follows the
Portmaster 1.x launcher (safing/portmaster#1565): the beta index is loaded when the
channel is beta/staging OR when it is unset and the beta index exists.

The symptom is read, never inferred from the channel: ``api`` GETs the declared
checks on a loopback URL (bounded, read-only; a body with ``api.symptom`` is the
symptom, a bare 403 is not: Portmaster denies every process outside its own
directory, netmedic included), and ``journal`` counts the unit's lines with
``journal.symptom`` since its current start. Nothing is probed unless declared.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from netmedic.context import Context, Facts
from netmedic.hostpaths import host_path

DEFAULT_CONFIG_FILE = "config.json"
DEFAULT_KEY_PATH = ("core", "releaseChannel")
BETA_CHANNELS = frozenset({"beta", "staging"})
SIGNATURE_SUFFIX = ".sig"
# Probe bounds: Portmaster retries attribution 5 x 500 ms before answering, so > 2.5 s.
DEFAULT_TIMEOUT_S = 4.0
MAX_TIMEOUT_S = 10.0
MAX_CHECKS = 8
BODY_BYTES = 4096  # read at most this much of an answer
BODY_QUOTE = 160  # and quote at most this much of it
JOURNAL_LINES = 50  # matching lines read; the count is capped there
TOO_EARLY = 425  # Portmaster's "not ready, reload (F5) to try again" while starting
# portbase colours its log lines (log/formatting_unix.go); they reach the journal as is.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class EscapingPath(ValueError):
    """A profile path resolves outside the app's data_dir."""


def inside(data_dir: Path, relpath: str) -> Path:
    """Resolve ``relpath`` under ``data_dir``; raise :class:`EscapingPath` when it leaves it.

    ``(Path("/opt/pm"), "updates/beta.json")`` → ``/opt/pm/updates/beta.json``;
    ``"../etc/shadow"`` → EscapingPath.
    """
    root = data_dir.resolve()
    candidate = (root / relpath).resolve()
    if candidate != root and root not in candidate.parents:
        raise EscapingPath(f"{relpath!r} resolves outside data_dir")
    return candidate


def read_channel(text: str, key_path: Sequence[str]) -> Optional[str]:
    """``('{"core": {"releaseChannel": "beta"}}', ["core", "releaseChannel"])`` → ``"beta"``.

    A missing key is unset (None); a non-object on the way or a non-string value is a ValueError.
    """
    node: Any = json.loads(text)
    for key in key_path:
        if not isinstance(node, dict):
            raise ValueError(f"{'/'.join(key_path)}: {key!r} is not inside an object")
        if key not in node:
            return None
        node = node[key]
    if node is None or isinstance(node, str):
        return node
    raise ValueError(f"{'/'.join(key_path)}: expected a string, got {type(node).__name__}")


def effective_channel(channel: Optional[str], beta_index_present: bool) -> str:
    """Portmaster's rule.

    ``(None, True)`` → ``"beta"``; ``("staging", False)`` → ``"beta"``;
    ``(None, False)`` → ``"stable"``; ``("stable", True)`` → ``"stable"``.
    """
    if channel in BETA_CHANNELS or (channel is None and beta_index_present):
        return "beta"
    return channel or "stable"


def plain(text: str) -> str:
    """A log line or body as people read it: colour codes gone, whitespace folded, cut short.

    ``"\\x1b[33m... WARN 001\\x1b[0m filter: denying"`` → ``"... WARN 001 filter: denying"``
    """
    folded = " ".join(_ANSI.sub("", text).split())
    return folded if len(folded) <= BODY_QUOTE else folded[: BODY_QUOTE - 3] + "..."


def loopback_target(url: str) -> Tuple[str, int]:
    """``"http://127.0.0.1:817"`` → ``("127.0.0.1", 817)``; anything not plain-HTTP loopback raises.

    The agent only ever talks to the host itself: ``http://10.0.0.1`` or ``https://...``
    is a ValueError naming the URL.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "http" or not loopback or parts.path not in ("", "/"):
        raise ValueError(f"api.url {url!r} must be http://<loopback address>[:port], no path")
    return host, parts.port or 80


def _expected(check: Mapping[str, Any]) -> List[int]:
    """``{"status": [400, 403]}`` → ``[400, 403]``; ``{}`` → ``[200]``."""
    status = check.get("status", 200)
    return [int(s) for s in (status if isinstance(status, list) else [status])]


def _get(host: str, port: int, path: str, timeout: float) -> Tuple[int, str]:
    """One GET, no redirects followed: ``(status, body)``; OSError/HTTPException on failure."""
    import http.client  # noqa: PLC0415 - probe_api imported it

    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"User-Agent": "netmedic", "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read(BODY_BYTES).decode("utf-8", "replace")
    finally:
        connection.close()


def probe_api(spec: Mapping[str, Any]) -> Facts:
    """GET each declared check; ``symptom`` is true when a body carries ``spec["symptom"]``.

    ``{url: http://127.0.0.1:817, checks: [{name: ping, path: /api/v1/ping}], symptom: X}``
    → ``{"url": ..., "checks": [{"name": "ping", "status": 200, "body": "Pong.", "ok": true,
    "error": null}], "starting": false, "symptom": false, "evidence": null, "error": null}``.
    ``symptom`` is null when no check was answered (or none is declared to tell).
    """
    url = str(spec.get("url", ""))
    symptom_text = str(spec.get("symptom") or "")
    facts: Facts = {"url": url, "checks": [], "starting": False, "symptom": None,
                    "evidence": None, "error": None}  # fmt: skip
    checks = spec.get("checks") or []
    try:
        host, port = loopback_target(url)
        timeout = min(float(spec.get("timeout_s", DEFAULT_TIMEOUT_S)), MAX_TIMEOUT_S)
        if not isinstance(checks, list) or len(checks) > MAX_CHECKS:
            raise ValueError(f"api.checks must be a list of at most {MAX_CHECKS} checks")
    except (TypeError, ValueError) as exc:
        facts["error"] = str(exc)
        return facts
    # Only here: http.client and the ssl it pulls in are a large share of start-up, which
    # a host that declares no API would pay on every `netmedic facts`.
    import http.client  # noqa: PLC0415

    answered = False
    for declared in checks:
        check: Mapping[str, Any] = declared if isinstance(declared, dict) else {}
        path = str(check.get("path", ""))
        result: Facts = {"name": str(check.get("name", path)), "path": path, "status": None,
                         "body": None, "ok": False, "error": None}  # fmt: skip
        facts["checks"].append(result)
        try:
            expected = _expected(check)
        except (TypeError, ValueError):
            expected = []
        if not path.startswith("/") or not expected:
            result["error"] = "a check needs a path starting with / and whole-number statuses"
            continue
        try:
            status, body = _get(host, port, path, timeout)
        except (OSError, http.client.HTTPException) as exc:  # refused, timed out, garbled
            result["error"] = f"{type(exc).__name__}: {exc}"
            continue
        answered = True
        has_symptom = bool(symptom_text) and symptom_text in body
        result.update(status=status, body=plain(body))
        result["ok"] = (
            status in expected and str(check.get("content") or "") in body and not has_symptom
        )
        facts["starting"] = facts["starting"] or status == TOO_EARLY
        if has_symptom and facts["evidence"] is None:
            facts["evidence"] = f"GET {path}: {status} {plain(body)}"
    if not symptom_text:
        facts["error"] = "api.symptom is not declared: no answer can show the symptom"
    elif answered:
        facts["symptom"] = facts["evidence"] is not None
    return facts


def read_journal(ctx: Context, unit: str, symptom: str) -> Facts:
    """Lines of ``unit``'s journal since its current start that contain ``symptom``.

    ``{"unit": "portmaster.service", "invocation": "0534...", "symptom_lines": 2,
    "last": "230913 12:04:32.338 rewall/api:210 ▶ WARN 874 filter: denying ...", "error": null}``;
    ``symptom_lines`` counts at most JOURNAL_LINES (``--reverse``: the newest ones, newest
    first, as --grep with --lines prints them anyway). An inactive unit has no invocation.
    """
    facts: Facts = {"unit": unit, "invocation": None, "symptom_lines": 0, "last": None,
                    "error": None}  # fmt: skip
    if not unit or not symptom:
        facts["error"] = "journal needs a unit (journal.unit or service) and journal.symptom"
        return facts
    shown = ctx.run(["systemctl", "show", "--property=InvocationID", "--value", unit], 5.0)
    if shown.returncode != 0:
        facts["error"] = f"systemctl show {unit}: {plain(shown.stderr) or shown.returncode}"
        return facts
    invocation = shown.stdout.strip()
    if not invocation:
        return facts
    facts["invocation"] = invocation
    found = ctx.run(
        ["journalctl", f"_SYSTEMD_INVOCATION_ID={invocation}", "--output=cat", "--all",
         "--no-pager", "--quiet", "--reverse", f"--lines={JOURNAL_LINES}",
         "--grep", re.escape(symptom)],
        5.0,
    )  # fmt: skip
    if found.returncode not in (0, 1):  # 1: no entry matched
        facts["error"] = f"journalctl: {plain(found.stderr) or found.returncode}"
        return facts
    lines = [plain(line) for line in found.stdout.splitlines() if symptom in _ANSI.sub("", line)]
    facts.update(symptom_lines=len(lines), last=lines[0] if lines else None)  # newest first
    return facts


def _file_facts(data_dir: Path, relpath: str) -> Facts:
    facts: Facts = {"path": relpath, "exists": False, "error": None}
    try:
        facts["exists"] = inside(data_dir, relpath).is_file()
    except EscapingPath as exc:
        facts["error"] = str(exc)
    return facts


def _index_facts(data_dir: Path, relpath: str) -> Facts:
    facts = _file_facts(data_dir, relpath)
    signature = _file_facts(data_dir, relpath + SIGNATURE_SUFFIX)
    facts["signature_exists"] = signature["exists"]
    return facts


def _backups(data_dir: Path, relpath: Optional[str]) -> Facts:
    facts: Facts = {"path": relpath, "entries": [], "error": None}
    if not relpath:
        return facts
    try:
        directory = inside(data_dir, relpath)
        facts["entries"] = sorted(os.listdir(directory))
    except EscapingPath as exc:
        facts["error"] = str(exc)
    except FileNotFoundError:
        pass  # no backup taken yet
    except OSError as exc:
        facts["error"] = f"{type(exc).__name__}: {exc.strerror or exc}"
    return facts


def _channel_setting(data_dir: Path, config_file: str, key_path: Sequence[str]) -> Facts:
    """``{channel, config_file: {path, exists, error}}``; problems land in ``error``."""
    facts = _file_facts(data_dir, config_file)
    channel: Optional[str] = None
    if facts["exists"]:
        try:
            text = inside(data_dir, config_file).read_text(encoding="utf-8")
            channel = read_channel(text, key_path)
        except json.JSONDecodeError as exc:
            facts["error"] = f"malformed JSON: {exc}"
        except (OSError, ValueError) as exc:
            facts["error"] = str(exc)
    return {"channel": channel, "config_file": facts}


def symptom_seen(api: Optional[Facts], journal: Optional[Facts]) -> Optional[bool]:
    """True when the API answered with the symptom or the journal shows it; False when
    the API answered without it; None when nothing could tell (not declared, unreachable).

    ``({"symptom": False}, {"symptom_lines": 3})`` → True (the journal saw it this run).
    """
    if (api or {}).get("symptom") or (journal or {}).get("symptom_lines"):
        return True
    return (api or {}).get("symptom")


def app_facts(ctx: Context, profile: Mapping[str, Any]) -> Facts:
    """One app profile → its channel and symptom facts; errors stay inside the entry."""
    app = str(profile.get("app", "?"))
    data_dir_text = str(profile.get("data_dir", ""))
    facts: Facts = {"app": app, "data_dir": data_dir_text, "data_dir_exists": False, "error": None}
    if not data_dir_text.startswith("/"):
        facts["error"] = "data_dir must be an absolute path"
        return facts
    data_dir = host_path(ctx, data_dir_text)
    facts["data_dir_exists"] = data_dir.is_dir()
    key_path: List[str] = [str(k) for k in profile.get("key_path") or DEFAULT_KEY_PATH]
    setting = _channel_setting(
        data_dir, str(profile.get("config_file") or DEFAULT_CONFIG_FILE), key_path
    )
    indexes = {
        str(name): _index_facts(data_dir, str(rel))
        for name, rel in (profile.get("indexes") or {}).items()
    }
    beta_present = bool(indexes.get("beta", {}).get("exists"))
    service = profile.get("service")
    api = profile.get("api")
    journal = profile.get("journal")
    api_facts = probe_api(api) if isinstance(api, dict) else None
    journal_facts = None
    if isinstance(journal, dict):
        unit = str(journal.get("unit") or service or "")
        journal_facts = read_journal(ctx, unit, str(journal.get("symptom") or ""))
    facts.update(
        key_path=key_path,
        channel=setting["channel"],
        config_file=setting["config_file"],
        indexes=indexes,
        effective_channel=effective_channel(setting["channel"], beta_present),
        backups=_backups(data_dir, profile.get("backup_dir")),
        service=str(service) if service else None,
        api=api_facts,
        journal=journal_facts,
        symptom=symptom_seen(api_facts, journal_facts),
        error=setting["config_file"]["error"],
    )
    return facts


def collect(ctx: Context) -> Facts:
    """The channels family: ``{"apps": [...]}``, one entry per configured profile."""
    return {
        "apps": [
            app_facts(ctx, profile if isinstance(profile, dict) else {})
            for profile in ctx.setting("channels", []) or []
        ]
    }
