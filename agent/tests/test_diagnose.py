"""Diagnosis: the incident host's findings in detail, healthy and near-miss hosts
silent as a whole, exit codes, the diagnose/check handlers. Each entry's own cases
are its fixture (test_catalog_fixtures.py)."""

from __future__ import annotations

import copy
import io
import json
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from netmedic.catalog import load_catalog
from netmedic.commands import cmd_check, cmd_diagnose
from netmedic.context import Context
from netmedic.diagnose import CRITICAL, OK, UNKNOWN, WARNING, Diagnosis, diagnose

FIXTURES = Path(__file__).parent / "fixtures" / "diagnose"
CONFIG_PATH = FIXTURES / "config.yml"
CONFIG = yaml.safe_load(CONFIG_PATH.read_text(encoding="utf-8"))
CATALOG = load_catalog(None)


def facts(host: str) -> Dict[str, Any]:
    doc: Dict[str, Any] = json.loads((FIXTURES / f"{host}.json").read_text(encoding="utf-8"))
    return doc


def run(doc: Dict[str, Any], config: Dict[str, Any] = CONFIG) -> Diagnosis:
    return diagnose(doc, CATALOG, config)


def subjects(result: Diagnosis, entry_id: str) -> List[str]:
    return [f.subject for f in result.findings if f.id == entry_id]


def finding(result: Diagnosis, entry_id: str, subject: str) -> Any:
    (found,) = [f for f in result.findings if f.id == entry_id and f.subject == subject]
    return found


@pytest.mark.parametrize("host", ["healthy", "near-miss"])
def test_healthy_and_near_miss_hosts_are_silent(host: str) -> None:
    result = run(facts(host))
    assert [(f.id, f.subject) for f in result.findings] == []
    assert result.status == OK


def test_port_conflict_names_the_holder() -> None:
    found = finding(run(facts("incidents")), "declared-port-held-by-other", "1900/udp")
    assert found.severity == "critical"
    assert found.destructive is True
    assert found.evidence[0] == (
        "1900/udp held by pid 812 (Plex Media Server, user plex, unit plexmediaserver.service)"
        " on 0.0.0.0 without SO_REUSEADDR"
    )
    assert "declared owner gmediarender.service is failed" in found.evidence
    assert found.to_dict()["remediation"] == {
        "role": "port_conflicts",
        "vars": {
            # The declaration as config.yml has it, and who holds the port.
            "port_conflicts_plan": [
                {"port": 1900, "proto": "udp", "owner": "gmediarender.service"}
            ],
            "port_conflicts_holders_found": [
                {
                    "port": 1900,
                    "proto": "udp",
                    "address": "0.0.0.0",
                    "pid": 812,
                    "name": "Plex Media Server",
                    "user": "plex",
                    "unit": "plexmediaserver.service",
                    "container": None,
                }
            ],
        },
    }


def test_unreadable_holder_is_reported_not_guessed() -> None:
    result = run(facts("incidents"))
    assert "8080/tcp" not in subjects(result, "declared-port-held-by-other")
    found = finding(result, "declared-port-holder-unreadable", "8080/tcp")
    assert found.evidence == [
        "8080/tcp is bound on 0.0.0.0 (inode 4002, uid 33) by an unreadable owner: "
        "permission denied reading /proc/900/fd"
    ]


def _with_plex_sharing(reuse_addr: Any) -> Dict[str, Any]:
    doc = facts("near-miss")
    for sock in doc["ports"]["sockets"]:
        if sock["owner"] and sock["owner"]["pid"] == 812:
            sock["sharing"]["reuse_addr"] = reuse_addr
    return doc


def test_udp_holder_with_unreadable_sharing_is_a_possible_conflict() -> None:
    found = finding(run(_with_plex_sharing(None)), "declared-port-held-by-other", "1900/udp")
    assert "whether it set SO_REUSEADDR could not be read" in found.evidence[0]


def test_tcp_holder_conflicts_whatever_its_socket_options() -> None:
    doc = facts("healthy")
    web = next(s for s in doc["ports"]["sockets"] if s["port"] == 8080)
    web["owner"] = dict(web["owner"], pid=901, name="caddy", unit="caddy.service", user="caddy")
    web["sharing"] = {"reuse_addr": True, "reuse_port": False}
    found = finding(run(doc), "declared-port-held-by-other", "8080/tcp")
    assert found.evidence[0] == (
        "8080/tcp held by pid 901 (caddy, user caddy, unit caddy.service) on 0.0.0.0"
    )


def test_remapped_owner_holding_its_new_port_resolves_the_old_one() -> None:
    """A plan entry with ``remap`` (port_conflicts remap) stops conflicting once the
    owner holds the remapped port; until then the squatter is still a conflict."""
    doc = facts("healthy")
    web = next(s for s in doc["ports"]["sockets"] if s["port"] == 8080)
    web["owner"] = dict(web["owner"], pid=901, name="python3", unit="squatter.service")
    config = copy.deepcopy(CONFIG)
    declared = {"port": 8080, "proto": "tcp", "owner": "web.service", "remap": {"port": 8081}}
    config["ports"] = [declared]
    assert subjects(run(doc, config), "declared-port-held-by-other") == ["8080/tcp"]
    moved = copy.deepcopy(web)
    moved.update(port=8081, inode=web["inode"] + 1)
    moved["owner"] = dict(web["owner"], pid=902, unit="web.service")
    doc["ports"]["sockets"].append(moved)
    assert subjects(run(doc, config), "declared-port-held-by-other") == []


def test_wait_online_is_not_asked_for_without_a_network_manager() -> None:
    """Containers (and hosts whose network is up before boot) run no network
    manager: there is no wait-online service to enable."""
    doc = facts("incidents")
    assert subjects(run(doc), "network-online-without-wait-online") == ["network-online.target"]
    doc["units"]["network"]["network_managers_active"] = []
    assert subjects(run(doc), "network-online-without-wait-online") == []


def test_holder_outside_any_unit_still_conflicts() -> None:
    doc = _with_plex_sharing(False)
    plex = next(s for s in doc["ports"]["sockets"] if s["owner"]["pid"] == 812)
    plex["owner"]["unit"] = None
    found = finding(run(doc), "declared-port-held-by-other", "1900/udp")
    assert "unit none" in found.evidence[0]


def test_declaration_without_proto_matches_both_protocols() -> None:
    config = copy.deepcopy(CONFIG)
    config["ports"] = [{"port": 1900, "owner": "gmediarender.service"}]
    assert subjects(run(facts("incidents"), config), "declared-port-held-by-other") == ["1900/udp"]


def test_started_before_dns_names_both_kinds_of_evidence() -> None:
    unit = "snap.multipass.multipassd.service"
    found = finding(run(facts("incidents")), "unit-started-before-dns", unit)
    assert found.evidence[:2] == [
        f"{unit} started at 5000000 us (monotonic), before DNS was usable at 9000000 us "
        "(resolver-active; resolv.conf mode resolved-stub)",
        f"{unit} logged a name-resolution failure at 5400000 us, after its start at 5000000 us, "
        "and has not restarted since although its names resolve now: Could not update manifest: "
        "failed to download from 'https://cdimage.ubuntu.com/releases/streams/v1/index.json': "
        "Host cdimage.ubuntu.com not found",
    ]
    # The role gets the unit's whole declaration (config.yml units[]).
    assert found.role_vars["unit_ordering_units"] == [{"name": unit}]


# release-channel-beta and its look-alike: agent/tests/test_channels.py.


def test_lingering_processes_merge_into_one_finding_per_profile() -> None:
    found = finding(run(facts("incidents")), "lingering-client-processes", "globalprotect")
    assert [t["pid"] for t in found.role_vars["process_reaper_targets"]] == [4242, 4250]
    declared = facts("incidents")["processes"]["profiles"][0]["declared"]
    assert found.role_vars["process_reaper_profiles"] == [declared]
    assert "a lock file of globalprotect still names pid 4242" in found.evidence


def test_pressure_threshold_is_configurable_by_operator_patch(tmp_path: Path) -> None:
    directory = tmp_path / "netmedic" / "catalog.d"
    directory.mkdir(parents=True)
    (directory / "tune.yml").write_text(
        "id: ephemeral-port-pressure\nparams: {max_pressure: 0.5}\n"
    )
    doc = facts("near-miss")  # ratio 0.7999: under 0.8, over 0.5
    result = diagnose(doc, load_catalog(tmp_path), CONFIG)
    found = finding(result, "ephemeral-port-pressure", "net.ipv4.ip_local_port_range")
    assert found.evidence[0].endswith("pressure 0.8 > 0.5")


def test_status_precedence() -> None:
    assert run(facts("incidents")).status == CRITICAL
    doc = facts("incidents")
    doc["ports"]["sockets"] = []
    assert run(doc).status == WARNING
    assert run(facts("partial")).status == UNKNOWN  # ports collector failed


def test_failed_family_skips_its_entries_with_the_reason() -> None:
    result = run(facts("partial"))
    assert {s["id"] for s in result.skipped} == {
        "declared-port-held-by-other",
        "declared-port-holder-unreadable",
        "declared-port-owner-not-listening",
    }
    assert result.skipped[0]["reason"] == "ports: not collected ([Errno 1] Operation not permitted)"


# --- handlers ---------------------------------------------------------------------


def call(handler: Any, args: List[str], etc: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = handler(args, out, Context(etc_root=etc))
    return code, out.getvalue()


def saved(host: str) -> List[str]:
    return ["--facts", str(FIXTURES / f"{host}.json"), "--config", str(CONFIG_PATH)]


def test_diagnose_table_and_json(tmp_path: Path) -> None:
    code, text = call(cmd_diagnose, saved("incidents"), tmp_path)
    assert code == CRITICAL
    status, perfdata = text.splitlines()[0].split(" | ")
    assert status == "NETMEDIC CRITICAL - incidents: 1 critical, 11 warning, 1 info"
    assert perfdata.startswith("findings_critical=1;;;0 findings_warning=11;;;0 ")
    assert "fix: role port_conflicts, destructive: needs approval" in text
    code, text = call(cmd_diagnose, [*saved("incidents"), "--format", "json"], tmp_path)
    doc = json.loads(text)
    assert code == doc["exit_code"] == CRITICAL
    assert doc["status"] == "CRITICAL" and doc["host"] == "incidents"
    assert set(doc["findings"][0]) == {
        "id", "title", "severity", "subject", "evidence", "remediation", "destructive",
    }  # fmt: skip
    code, text = call(cmd_diagnose, saved("healthy"), tmp_path)
    assert code == OK
    assert text.startswith("NETMEDIC OK - healthy: no findings | findings_critical=0;;;0 ")
    assert text.count("\n") == 1


def bad_facts(tmp_path: Path) -> Dict[str, str]:
    """Saved facts a run cannot use: a document cut short (a torn copy), JSON not an object."""
    saved_dir = tmp_path / "saved"
    saved_dir.mkdir()
    whole = (FIXTURES / "healthy.json").read_text(encoding="utf-8")
    truncated = saved_dir / "truncated.json"
    truncated.write_text(whole[: len(whole) // 2], encoding="utf-8")
    not_object = saved_dir / "list.json"
    not_object.write_text("[1, 2]\n", encoding="utf-8")
    return {"truncated": str(truncated), "list": str(not_object)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "--format must be one of table, json, prometheus, not 'xml'"),
        (["--facts", "/nonexistent.json"], "--facts /nonexistent.json: cannot read"),
        (["--facts", "{truncated}"], "--facts {truncated}: not JSON"),
        (["--facts", "{list}"], "--facts {list}: expected a facts document (a JSON object)"),
        (["extra"], "expected no arguments, got extra"),
        (["--bogus", "1"], "unknown option: --bogus"),
    ],
)
def test_diagnose_usage_errors_are_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: List[str], message: str
) -> None:
    files = bad_facts(tmp_path)
    code, _ = call(cmd_diagnose, [arg.format(**files) for arg in args], tmp_path)
    assert code == UNKNOWN
    assert message.format(**files) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "message"),
    [("truncated", "not JSON"), ("list", "expected a facts document (a JSON object)")],
)
def test_check_with_unusable_saved_facts_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    path = bad_facts(tmp_path)[name]
    code, text = call(cmd_check, ["declared-port-held-by-other", "--facts", path], tmp_path)
    assert (code, text) == (UNKNOWN, "")
    assert f"netmedic check: --facts {path}: {message}" in capsys.readouterr().err


def test_rejected_operator_file_makes_a_clean_host_unknown(tmp_path: Path) -> None:
    directory = tmp_path / "netmedic" / "catalog.d"
    directory.mkdir(parents=True)
    (directory / "broken.yml").write_text("id: broken\nseverity: loud\n")
    code, text = call(cmd_diagnose, saved("healthy"), tmp_path)
    assert code == UNKNOWN
    assert "catalog file rejected: /etc/netmedic/catalog.d/broken.yml: severity: 'loud'" in text


def test_check_exit_codes(tmp_path: Path) -> None:
    assert call(cmd_check, ["declared-port-held-by-other", *saved("incidents")], tmp_path)[0] == 1
    assert call(cmd_check, ["declared-port-held-by-other", *saved("healthy")], tmp_path)[0] == 0
    assert call(cmd_check, ["no-such-entry", *saved("incidents")], tmp_path)[0] == 3
    assert call(cmd_check, ["declared-port-held-by-other", *saved("partial")], tmp_path)[0] == 3
    by_subject = ["unit-started-before-dns", "--subject", "snap.multipass.multipassd.service"]
    assert call(cmd_check, [*by_subject, *saved("incidents")], tmp_path)[0] == 1
    other = ["unit-started-before-dns", "--subject", "ssh.service"]
    assert call(cmd_check, [*other, *saved("incidents")], tmp_path)[0] == 0


def test_check_text_and_json(tmp_path: Path) -> None:
    code, text = call(cmd_check, ["declared-port-held-by-other", *saved("incidents")], tmp_path)
    assert text.splitlines()[:2] == ["declared-port-held-by-other: present", "  1900/udp:"]
    args = ["declared-port-held-by-other", *saved("healthy"), "--format", "json"]
    code, text = call(cmd_check, args, tmp_path)
    doc = json.loads(text)
    assert (code, doc["state"], doc["findings"]) == (0, "absent", [])


def test_check_runs_a_disabled_entry_when_asked(tmp_path: Path) -> None:
    directory = tmp_path / "netmedic" / "catalog.d"
    directory.mkdir(parents=True)
    (directory / "off.yml").write_text("id: release-channel-beta\nenabled: false\n")
    # (the look-alike, release-channel-beta-channel-only, still reports)
    assert call(cmd_diagnose, saved("incidents"), tmp_path)[1].count("release-channel-beta ") == 0
    assert call(cmd_check, ["release-channel-beta", *saved("incidents")], tmp_path)[0] == 1


DOCS_EXAMPLE = Path(__file__).parents[2] / "docs" / "catalog.md"


def test_docs_worked_example_operator_file(tmp_path: Path) -> None:
    """The operator file shown in docs/catalog.md loads and fires on its fixture."""
    text = DOCS_EXAMPLE.read_text(encoding="utf-8")
    block = text.split("```yaml\n# /etc/netmedic/catalog.d/50-dockerd-holds-ssdp.yml\n", 1)[1]
    entry = block.split("```", 1)[0]
    directory = tmp_path / "netmedic" / "catalog.d"
    directory.mkdir(parents=True)
    (directory / "50-dockerd-holds-ssdp.yml").write_text(textwrap.dedent(entry))
    catalog = load_catalog(tmp_path)
    assert catalog.rejected == []
    doc = facts("incidents")
    plex = next(s for s in doc["ports"]["sockets"] if s["port"] == 1900)
    plex["owner"].update(pid=1200, name="dockerd", user="root", unit="docker.service")
    found = finding(diagnose(doc, catalog, CONFIG), "dockerd-holds-ssdp", "docker.service")
    assert found.evidence == ["dockerd (pid 1200, unit docker.service) holds 1900/udp on 0.0.0.0"]
