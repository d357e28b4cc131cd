"""Channels family against a Portmaster-layout fixture tree, a real loopback API that
answers as Portmaster 1.x does (safing/portmaster#1565), a recorded journal; and the
two catalog entries that read it (the failure, and its look-alike as information)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

import pytest
from conftest import FIXTURES, fixture_ctx
from test_schema import assert_valid

from netmedic import facts
from netmedic.catalog import load_catalog
from netmedic.collectors import channels
from netmedic.context import CommandResult
from netmedic.diagnose import diagnose

ROOT = FIXTURES / "channels" / "root"
INDEXES = {
    "stable": "updates/stable.json",
    "beta": "updates/beta.json",
    "staging": "updates/staging.json",
}


def _profile(data_dir: str, **extra: Any) -> Dict[str, Any]:
    return {"app": Path(data_dir).name, "data_dir": data_dir, "indexes": INDEXES, **extra}


def _collect(*profiles: Dict[str, Any]) -> Any:
    return channels.collect(fixture_ctx(ROOT, config={"channels": list(profiles)}))["apps"]


def test_portmaster_on_beta() -> None:
    (app,) = _collect(_profile("/opt/safing/portmaster", backup_dir="backups/netmedic"))
    assert app == {
        "app": "portmaster",
        "data_dir": "/opt/safing/portmaster",
        "data_dir_exists": True,
        "error": None,
        "key_path": ["core", "releaseChannel"],
        "channel": "beta",
        "config_file": {"path": "config.json", "exists": True, "error": None},
        "indexes": {
            "stable": {
                "path": "updates/stable.json",
                "exists": True,
                "error": None,
                "signature_exists": True,
            },
            "beta": {
                "path": "updates/beta.json",
                "exists": True,
                "error": None,
                "signature_exists": True,
            },
            "staging": {
                "path": "updates/staging.json",
                "exists": True,
                "error": None,
                "signature_exists": False,
            },
        },
        "effective_channel": "beta",
        "backups": {"path": "backups/netmedic", "entries": ["20240501T100000Z"], "error": None},
        # Nothing declared, nothing probed.
        "service": None,
        "api": None,
        "journal": None,
        "symptom": None,
    }


def test_unset_channel_with_beta_index_is_effectively_beta() -> None:
    (app,) = _collect(_profile("/opt/unset"))
    assert app["channel"] is None
    assert app["indexes"]["beta"]["exists"] is True
    assert app["effective_channel"] == "beta"
    assert app["backups"] == {"path": None, "entries": [], "error": None}


def test_malformed_json_is_reported_in_the_entry() -> None:
    broken, good = _collect(_profile("/opt/broken"), _profile("/opt/safing/portmaster"))
    assert broken["channel"] is None
    assert broken["error"].startswith(
        "malformed JSON: Expecting property name enclosed in double quotes"
    )
    assert broken["config_file"]["error"] == broken["error"]
    assert good["error"] is None


def test_symlink_escaping_data_dir_is_flagged_not_read() -> None:
    (app,) = _collect(_profile("/opt/escape", backup_dir="../outside"))
    assert app["indexes"]["beta"] == {
        "path": "updates/beta.json",
        "exists": False,
        "error": "'updates/beta.json' resolves outside data_dir",
        "signature_exists": False,
    }
    assert app["effective_channel"] == "stable"
    assert app["backups"]["error"] == "'../outside' resolves outside data_dir"


def test_missing_data_dir_and_relative_data_dir() -> None:
    missing, relative = _collect(_profile("/opt/nowhere"), _profile("opt/safing"))
    assert missing["data_dir_exists"] is False
    assert missing["config_file"] == {"path": "config.json", "exists": False, "error": None}
    assert missing["effective_channel"] == "stable"
    assert relative["error"] == "data_dir must be an absolute path"


def test_key_path_through_a_non_object(tmp_path: Path) -> None:
    (tmp_path / "opt" / "x").mkdir(parents=True)
    (tmp_path / "opt" / "x" / "config.json").write_text('{"core": "beta"}')
    ctx = fixture_ctx(tmp_path, config={"channels": [_profile("/opt/x")]})
    apps = channels.collect(ctx)["apps"]
    assert apps[0]["error"] == "core/releaseChannel: 'releaseChannel' is not inside an object"


@pytest.mark.parametrize(
    ("channel", "beta_present", "effective"),
    [
        ("beta", False, "beta"),
        ("staging", False, "beta"),
        (None, True, "beta"),
        (None, False, "stable"),
        ("stable", True, "stable"),
        ("support", True, "support"),
    ],
)
def test_effective_channel_rule(channel: Any, beta_present: bool, effective: str) -> None:
    assert channels.effective_channel(channel, beta_present) == effective


# --- the symptom: the API ------------------------------------------------------------

UNIDENTIFIED = "Failed to identify the requesting process. Reload to try again.\n"
UNAUTHORIZED = (
    "The requesting process is not authorized to access the Portmaster API.\n"
    "Checked process paths:\n/usr/bin/python3.11\n\nThe authorized root path is "
    "/opt/safing/portmaster/updates/.\n"
)
SYMPTOM = "Failed to identify the requesting process"
CHECKS = [
    {"name": "ping", "path": "/api/v1/ping", "status": 200, "content": "Pong."},
    {"name": "ready", "path": "/api/v1/ready", "status": 200},
    {"name": "ui", "path": "/api/database/v1", "status": [400, 403]},
]


@pytest.fixture
def core() -> Iterator[Dict[str, Any]]:
    """A loopback API answering as Portmaster 1.x's core; ``state["mode"]`` picks how."""
    state: Dict[str, Any] = {"mode": "bad-beta", "paths": []}

    class Core(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["paths"].append(self.path)
            if state["mode"] == "starting" and self.path in ("/api/v1/ping", "/api/v1/ready"):
                status, body = 425, "portmaster is not ready, reload (F5) to try again\n"
            elif self.path == "/api/v1/ping":
                status, body = 200, "Pong.\n"
            elif self.path == "/api/v1/ready":
                status, body = 200, "Portmaster is ready.\n"
            elif state["mode"] == "slow":
                return time.sleep(1)  # the client has given up by then: no answer
            else:
                status, body = 403, UNIDENTIFIED if state["mode"] == "bad-beta" else UNAUTHORIZED
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Core)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _probe(core: Dict[str, Any], **extra: Any) -> Any:
    return channels.probe_api({"url": core["url"], "checks": CHECKS, "symptom": SYMPTOM, **extra})


def test_api_of_the_bad_beta_shows_the_symptom(core: Dict[str, Any]) -> None:
    api = _probe(core)
    statuses = [(c["name"], c["status"], c["ok"]) for c in api["checks"]]
    assert statuses == [("ping", 200, True), ("ready", 200, True), ("ui", 403, False)]
    assert api["symptom"] is True
    assert api["evidence"] == (
        "GET /api/database/v1: 403 Failed to identify the requesting process. Reload to try again."
    )
    assert api["error"] is None
    assert core["paths"] == ["/api/v1/ping", "/api/v1/ready", "/api/database/v1"]  # GETs only


def test_api_of_a_healthy_beta_denies_us_without_the_symptom(core: Dict[str, Any]) -> None:
    core["mode"] = "healthy"
    api = _probe(core)
    # A 403 is what any process outside Portmaster's directory gets: not the symptom.
    assert (api["checks"][2]["status"], api["checks"][2]["ok"]) == (403, True)
    assert api["checks"][2]["body"].startswith("The requesting process is not authorized")
    assert (api["symptom"], api["evidence"]) == (False, None)


def test_api_while_starting_is_flagged(core: Dict[str, Any]) -> None:
    core["mode"] = "starting"
    api = _probe(core)
    assert api["starting"] is True
    assert [c["ok"] for c in api["checks"]] == [False, False, True]


def test_api_answers_are_bounded_by_the_timeout(core: Dict[str, Any]) -> None:
    core["mode"] = "slow"
    started = time.monotonic()
    api = _probe(core, timeout_s=0.3)
    assert time.monotonic() - started < 1.5
    assert "timed out" in api["checks"][2]["error"]
    assert api["symptom"] is False  # ping and ready answered without it


def test_unreachable_api_cannot_tell() -> None:
    api = channels.probe_api({"url": "http://127.0.0.1:9", "checks": CHECKS, "symptom": SYMPTOM})
    assert api["symptom"] is None
    assert api["checks"][0]["error"].startswith("ConnectionRefusedError")


def test_malformed_checks_are_reported_not_sent(core: Dict[str, Any]) -> None:
    api = _probe(core, checks=[{"path": "api"}, {"path": "/x", "status": "two hundred"}])
    assert [c["error"] for c in api["checks"]] == [
        "a check needs a path starting with / and whole-number statuses"
    ] * 2
    assert core["paths"] == []


def test_api_without_a_declared_symptom_is_an_error(core: Dict[str, Any]) -> None:
    api = channels.probe_api({"url": core["url"], "checks": CHECKS})
    assert api["symptom"] is None
    assert api["error"] == "api.symptom is not declared: no answer can show the symptom"


def test_loopback_urls_are_probed() -> None:
    urls = ["http://127.0.0.1:817", "http://127.0.0.2:817/", "http://localhost", "http://[::1]:8"]
    targets = [("127.0.0.1", 817), ("127.0.0.2", 817), ("localhost", 80), ("::1", 8)]
    assert [channels.loopback_target(url) for url in urls] == targets


@pytest.mark.parametrize(
    "url",
    ["http://192.0.2.1:817", "https://127.0.0.1:817", "http://example.org", "http://127.0.0.1/api"],
)
def test_other_urls_are_never_probed(url: str) -> None:
    api = channels.probe_api({"url": url, "checks": CHECKS, "symptom": SYMPTOM})
    assert api["error"] == f"api.url {url!r} must be http://<loopback address>[:port], no path"
    assert api["checks"] == []


# --- the symptom: the journal --------------------------------------------------------

JOURNAL = (FIXTURES / "channels" / "journal-unidentified.txt").read_text(encoding="utf-8")


class Recorder:
    """A command runner answering systemctl show and journalctl from recorded output."""

    def __init__(self, invocation: str = "0534aae5", journal: Any = None) -> None:
        self.invocation = invocation
        self.journal = journal or CommandResult(0, JOURNAL, "")
        self.calls: List[Sequence[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandResult:
        self.calls.append(list(argv))
        assert timeout <= 5.0  # bounded
        shown = CommandResult(0, self.invocation + "\n", "")
        return shown if argv[0] == "systemctl" else self.journal


def test_journal_lines_since_the_units_start() -> None:
    run = Recorder()
    symptom = "denying api access: failed to identify process"
    journal = channels.read_journal(fixture_ctx(ROOT, run=run), "portmaster.service", symptom)
    assert journal == {
        "unit": "portmaster.service",
        "invocation": "0534aae5",
        "symptom_lines": 3,
        "last": "261206 20:45:09.058 rewall/api:210 \u25b6 WARN 012 filter: denying api access: "
        "failed to identify process",
        "error": None,
    }
    assert run.calls[1][:2] == ["journalctl", "_SYSTEMD_INVOCATION_ID=0534aae5"]
    assert "--reverse" in run.calls[1] and "--lines=50" in run.calls[1]


def test_journal_of_a_stopped_unit_and_without_matches() -> None:
    ctx = fixture_ctx(ROOT, run=Recorder(invocation=""))
    assert channels.read_journal(ctx, "pm.service", "x")["symptom_lines"] == 0
    ctx = fixture_ctx(ROOT, run=Recorder(journal=CommandResult(1, "", "")))
    found = channels.read_journal(ctx, "pm.service", "x")
    assert (found["invocation"], found["symptom_lines"], found["last"]) == ("0534aae5", 0, None)
    ctx = fixture_ctx(ROOT, run=Recorder(journal=CommandResult(127, "", "no journalctl")))
    assert channels.read_journal(ctx, "pm.service", "x")["error"] == "journalctl: no journalctl"


def test_app_facts_join_api_and_journal(core: Dict[str, Any]) -> None:
    core["mode"] = "healthy"
    profile = _profile(
        "/opt/safing/portmaster",
        service="portmaster.service",
        api={"url": core["url"], "checks": CHECKS, "symptom": SYMPTOM},
        journal={"symptom": "denying api access: failed to identify process"},
    )
    ctx = fixture_ctx(ROOT, run=Recorder(), config={"channels": [profile]}, only=["channels"])
    doc = facts.gather(ctx)
    assert_valid(doc)  # the facts schema's channels section
    (app,) = doc["channels"]["apps"]
    # The API answers fine now, but the journal shows it failed since the unit's start.
    seen = (app["api"]["symptom"], app["journal"]["symptom_lines"], app["symptom"])
    assert (seen, app["journal"]["unit"]) == ((False, 3, True), "portmaster.service")


def test_symptom_seen() -> None:
    no, none, some = {"symptom_lines": 0}, {"symptom": None}, {"symptom_lines": 2}
    assert [channels.symptom_seen(*pair) for pair in [(None, None), (none, no)]] == [None, None]
    assert channels.symptom_seen({"symptom": False}, None) is False
    assert channels.symptom_seen({"symptom": False}, some) is True  # the journal saw it
    assert channels.symptom_seen({"symptom": True}, no) is True


# --- the catalog: the failure needs the symptom -------------------------------------

CATALOG = load_catalog(None)
API = {"url": "http://127.0.0.1:817", "checks": CHECKS, "symptom": SYMPTOM}
DECLARED = {"app": "portmaster", "data_dir": "/opt/safing/portmaster", "service": "pm", "api": API}


def _findings(app: Dict[str, Any]) -> Dict[str, Any]:
    facts = {"channels": {"apps": [app]}, "errors": []}
    result = diagnose(facts, CATALOG, {"channels": [DECLARED]})
    return {f.id: f for f in result.findings}


def _beta(**extra: Any) -> Dict[str, Any]:
    app = {"app": "portmaster", "data_dir": "/opt/safing/portmaster", "indexes": {}}
    return {**app, "channel": "beta", "config_file": {"path": "config.json"},
            "effective_channel": "beta", **extra}  # fmt: skip


def test_beta_with_the_symptom_is_the_failure() -> None:
    api = {"symptom": True, "evidence": "GET /api/database/v1: 403 Failed to identify ..."}
    journal = {"unit": "pm", "symptom_lines": 3, "last": "... failed to identify process"}
    found = _findings(_beta(api=api, journal=journal, symptom=True))
    assert list(found) == ["release-channel-beta"]
    beta = found["release-channel-beta"]
    assert (beta.severity, beta.destructive) == ("warning", True)
    assert beta.evidence == [
        "portmaster: release channel set to beta in /opt/safing/portmaster/config.json",
        "portmaster: its API denies the UI: GET /api/database/v1: 403 Failed to identify ...",
        "portmaster: 3 line(s) of pm's journal since its start show the symptom, "
        "the last: ... failed to identify process",
    ]
    # The role gets the app's whole declaration, declared once in config channels.
    assert beta.role_vars == {"release_channel_apps": [DECLARED]}


@pytest.mark.parametrize(
    ("app", "says"),
    [
        (_beta(api={"symptom": False, "checks": CHECKS}, symptom=False),
         "portmaster: its API answers without the symptom: ping, ready, ui checked"),
        (_beta(api={"symptom": None, "checks": [{"error": "ConnectionRefusedError: x"}],
                    "error": None}, symptom=None),
         "portmaster: the symptom could not be checked: the API did not answer "
         "(ConnectionRefusedError: x)"),
        (_beta(symptom=None),
         "portmaster: the symptom is not checked: its profile in config channels declares no api"),
    ],
)  # fmt: skip
def test_beta_without_the_symptom_is_information(app: Dict[str, Any], says: str) -> None:
    found = _findings(app)
    assert list(found) == ["release-channel-beta-channel-only"]
    info = found["release-channel-beta-channel-only"]
    assert (info.severity, info.destructive) == ("info", True)
    assert says in info.evidence
    assert info.evidence[-1].startswith("information only: the channel alone is not the failure")


def test_stable_with_the_symptom_is_not_a_channel_finding() -> None:
    app = _beta(channel="stable", effective_channel="stable", api={"symptom": True}, symptom=True)
    assert _findings(app) == {}
