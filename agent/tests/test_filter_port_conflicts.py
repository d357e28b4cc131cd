"""plugins/filter/port_conflicts.py, the port_conflicts role's filters: from the agent's findings
to what the role does per port.

Findings come from the shipped catalog run on facts shaped like the agent's (``ports.sockets``
with an owner the agent could not read, ``units.units``, ``ports.containers``), as the role
gets them from netmedic_check (``state: query``) or from netmedic_plan.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest
from ansible_collections.netmedic.remediation.plugins.filter.port_conflicts import FilterModule

from netmedic.catalog import load_catalog
from netmedic.diagnose import diagnose

# The filters by the names the role's tasks use (netmedic.remediation.<name>).
F = FilterModule().filters()

CATALOG = load_catalog(None)
HANDLED = ["declared-port-held-by-other", "declared-port-owner-not-listening",
           "declared-port-holder-unreadable"]  # fmt: skip
NO_HOLDER = "no process in this pid namespace holds the socket"
PROFILES = {"plexmediaserver": {"units": ["plexmediaserver.service"], "file": "/p", "edits": []}}
FIXED = [{"port": 1900, "proto": "udp", "why": "SSDP listens on 1900/udp by protocol"}]


def sock(
    port: int,
    unit: Optional[str],
    *,
    proto: str = "tcp",
    address: str = "127.0.0.1",
    reuse_addr: Optional[bool] = None,
    pid: int = 4242,
    container: Optional[str] = None,
) -> Dict[str, Any]:
    """A socket as the agent reports it; ``unit=None`` is an owner it could not read."""
    owner = None
    if unit is not None:
        owner = {"pid": pid, "name": unit.split(".")[0], "exe": "/usr/bin/python3",
                 "user": "root", "unit": unit, "container_id": None}  # fmt: skip
        if container:
            owner["container_name"] = container
    return {
        "proto": proto, "family": "ipv4", "address": address, "port": port,
        "inode": 3843602 + port, "uid": 0, "netns": "net:[4026532181]", "owner": owner,
        "owner_reason": None if owner else NO_HOLDER, "other_pids": [],
        "sharing": {"reuse_addr": reuse_addr, "reuse_port": None},
    }  # fmt: skip


def entry(action: str, port: int = 18110, **extra: Any) -> Dict[str, Any]:
    return {"port": port, "proto": "tcp", "owner": "lab-deaf.service", "on_conflict": action,
            "holders": ["lab-named-hog.service"], **extra}  # fmt: skip


def found(
    ports: List[Dict[str, Any]],
    sockets: List[Dict[str, Any]],
    states: Optional[Dict[str, str]] = None,
    containers: Optional[Dict[str, Any]] = None,
) -> List[Dict[str, Any]]:
    """What netmedic_check (state: query) returns for the role's ids on these facts."""
    units = {name: {"active_state": state, "sub_state": "x", "n_restarts": 0}
             for name, state in (states or {}).items()}  # fmt: skip
    family: Dict[str, Any] = {"source": "netlink", "sockets": sockets}
    if containers:
        family["containers"] = containers
    facts = {"ports": family, "units": {"systemd": "running", "units": units}, "errors": []}
    diagnosis = diagnose(facts, CATALOG, {"ports": ports}, only=HANDLED)
    return [f.to_dict() for f in diagnosis.findings]


def decide(findings: List[Dict[str, Any]], allow: Optional[bool] = True,
           plan: Optional[List[Dict[str, Any]]] = None) -> List[Dict[str, Any]]:  # fmt: skip
    taken = F["port_conflicts_intake"](findings, False, allow)
    result: List[Dict[str, Any]] = F["port_conflicts_decide"](taken, plan or [], PROFILES, 2)
    return result


# --- intake: the approval a run gives ------------------------------------------------


def test_intake_approves_a_run_on_its_own_only_when_allowed() -> None:
    findings = found([entry("stop_holder")], [sock(18110, "lab-named-hog.service")])
    assert [f["approved"] for f in F["port_conflicts_intake"](findings, False, None)] == [False]
    assert [f["approved"] for f in F["port_conflicts_intake"](findings, False, True)] == [True]
    handed = [{"id": "x", "subject": "1/tcp", "vars": {"v": 1}, "approved": True}]
    assert F["port_conflicts_intake"](handed, True, None)[0]["approved"] is True
    assert F["port_conflicts_intake"](handed, True, False)[0]["approved"] is False  # false wins
    assert F["port_conflicts_intake"](handed, True, None)[0]["vars"] == {"v": 1}


# --- the decisions, from the catalog's findings --------------------------------------


def test_the_incident_reconfigures_plex_for_the_failing_owner() -> None:
    declared = {"port": 1900, "proto": "udp", "owner": "gmediarender.service",
                "on_conflict": "reconfigure", "holders": ["plexmediaserver.service"]}  # fmt: skip
    plex = sock(1900, "plexmediaserver.service", proto="udp", address="0.0.0.0", reuse_addr=False)
    findings = found([declared], [plex], {"gmediarender.service": "failed"})
    assert sorted(f["id"] for f in findings) == HANDLED[:2]
    [item] = decide(findings)
    assert (item["subject"], item["decision"], item["finding"]) == (
        "1900/udp", "reconfigure", "declared-port-held-by-other")  # fmt: skip
    assert (item["holder_units"], item["profile"]) == (
        ["plexmediaserver.service"],
        "plexmediaserver",
    )
    assert item["owner_unit"] == "gmediarender.service"
    # Not approved: reported, nothing done.
    assert decide(findings, allow=None)[0]["decision"] == "needs-approval"
    assert decide(findings, allow=False)[0]["decision"] == "needs-approval"


def test_a_holder_with_so_reuseaddr_sharing_udp_is_no_finding() -> None:
    declared = {"port": 1900, "proto": "udp", "owner": "gmediarender.service"}
    sockets = [
        sock(1900, "gmediarender.service", proto="udp", address="0.0.0.0", reuse_addr=True),
        sock(1900, "minidlna.service", proto="udp", address="0.0.0.0", reuse_addr=True, pid=9),
    ]
    assert found([declared], sockets, {"gmediarender.service": "active"}) == []


def test_an_unnamed_holder_needs_approval_and_the_inventorys_entry_wins() -> None:
    findings = found([entry("stop_holder")], [sock(18110, "lab-hog.service")])
    [item] = decide(findings)
    assert item["decision"] == "needs-approval"
    assert "do not name pid 4242 lab-hog (unit lab-hog.service)" in item["reason"]
    override = [entry("stop_holder", holders=["lab-hog.service"])]
    assert decide(findings, plan=override)[0]["decision"] == "stop_holder"


def test_more_holder_units_than_allowed_are_refused() -> None:
    holders = ["a.service", "b.service", "c.service"]
    sockets = [
        sock(18110, unit, address=f"127.0.0.{n}", pid=n) for n, unit in enumerate(holders, 1)
    ]
    [item] = decide(found([entry("stop_holder", holders=holders)], sockets))
    assert item["decision"] == "refused"
    assert "held by 3 units (port_conflicts_max_holders is 2)" in item["reason"]


@pytest.mark.parametrize(
    ("unit", "container", "says"),
    [
        ("session-4.scope", None, "needs every holder to be a systemd service"),
        ("docker-" + "ab" * 32 + ".scope", "unifi", "Docker container unifi holds it"),
        ("docker.service", "unifi", "Docker container unifi holds it"),  # dockerd for a publisher
    ],
)
def test_a_holder_that_is_no_service_is_never_stopped(
    unit: str, container: Optional[str], says: str
) -> None:
    holder = sock(18110, unit, container=container)
    [item] = decide(found([entry("stop_holder", holders=[unit])], [holder]))
    assert item["decision"] == "refused" and says in item["reason"]


@pytest.mark.parametrize("action", ["reconfigure", "stop_holder", "mask_holder"])
def test_a_named_holder_next_to_an_unreadable_one_is_left_alone(action: str) -> None:
    sockets = [sock(18110, "lab-named-hog.service"), sock(18110, None, address="127.0.0.2")]
    [item] = decide(found([entry(action, profile="plexmediaserver")], sockets))
    assert item["findings"] == ["declared-port-held-by-other", "declared-port-holder-unreadable"]
    assert item["decision"] == "refused"
    assert (
        "by a socket whose owner could not be read (18110/tcp is bound on 127.0.0.2"
        in item["reason"]
    )


def test_an_unreadable_owner_alone_is_reported() -> None:
    [item] = decide(
        found([entry("stop_holder", holders=["lab-unowned.service"])], [sock(18110, None)])
    )
    assert (item["decision"], item["finding"]) == ("report", "declared-port-holder-unreadable")
    assert item["reason"].endswith("nothing is done while the holder is unknown")


def test_remap_touches_no_holder_and_is_done_once_moved() -> None:
    remap = entry(
        "remap",
        port=18080,
        owner="lab-web.service",
        holders=[],
        remap={"port": 18081, "environment": "PORT"},
    )
    squatter = sock(18080, "lab-squatter.service")
    [item] = decide(found([remap], [squatter], {"lab-web.service": "failed"}))
    assert (item["decision"], item["remap"]["port"]) == ("remap", 18081)
    moved = [squatter, sock(18081, "lab-web.service", pid=7)]
    assert found([remap], moved, {"lab-web.service": "active"}) == []


def test_an_owner_without_its_port_is_restarted_once_after_the_conflicts() -> None:
    declared = [
        {"port": 49494, "proto": "tcp", "owner": "gmediarender.service"},
        {"port": 1900, "proto": "udp", "owner": "gmediarender.service",
         "on_conflict": "reconfigure", "holders": ["plexmediaserver.service"]},
    ]  # fmt: skip
    plex = sock(1900, "plexmediaserver.service", proto="udp", address="0.0.0.0", reuse_addr=False)
    items = decide(found(declared, [plex], {"gmediarender.service": "active"}))
    assert [(i["subject"], i["decision"]) for i in items] == [
        ("1900/udp", "reconfigure"), ("49494/tcp", "restart_owner")]  # fmt: skip


def test_a_container_owner_is_matched_by_name_and_never_restarted() -> None:
    declared = {"port": 1900, "proto": "udp", "owner": {"container": "airconnect"},
                "on_conflict": "reconfigure", "holders": ["plexmediaserver.service"]}  # fmt: skip
    state = {"airconnect": {"id": "c" * 64, "state": "running", "exit_code": 0, "published": []}}
    plex = sock(1900, "plexmediaserver.service", proto="udp", address="0.0.0.0", reuse_addr=False)
    findings = found([declared], [plex], containers=state)
    [item] = decide(findings)
    assert (item["decision"], item["owner"], item["owner_unit"]) == (
        "reconfigure",
        "container airconnect",
        None,
    )
    # Fixed: the container's own socket (named by the agent) clears both findings.
    mine = sock(
        1900,
        "docker-" + "c" * 64 + ".scope",
        proto="udp",
        address="0.0.0.0",
        container="airconnect",
    )
    assert found([declared], [mine], containers=state) == []
    # Alone, an owner container without its port is reported: the role restarts units only.
    [item] = decide(found([declared], [], containers=state))
    assert item["decision"] == "report" and "docker restart airconnect" in item["reason"]


# --- input errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"port": 0, "owner": "a.service"}, "port_conflicts_plan[0].port: 0 is not a port"),
        ({"port": 1900, "proto": "udp", "owner": {"pod": "x"}}, "port_conflicts_plan[0].owner:"),
        ({"port": 1, "owner": "a.service", "on_conflict": "stop_holder"}, ".holders: empty"),
        ({"port": 1, "owner": "a.service", "profile": "plex"}, ".profile: 'plex' is not in"),
        (
            {"port": 1900, "proto": "udp", "on_conflict": "remap", "remap": {"port": 1901}},
            "cannot be remapped",
        ),
        (
            {"port": 1, "owner": {"container": "a"}, "on_conflict": "remap"},
            "a container owner is remapped",
        ),
        (
            {"port": 1, "owner": "a.service", "on_conflict": "remap", "remap": {"port": 2}},
            "exactly one of",
        ),
    ],
)
def test_plan_problems_name_the_entry(bad: Dict[str, Any], says: str) -> None:
    assert says in "; ".join(F["port_conflicts_problems"]([bad], FIXED, PROFILES))


def test_plan_problems_name_a_handed_declaration_by_its_label() -> None:
    bad = [{"port": 1, "owner": "a.service", "profile": "plex"}]
    problems = F["port_conflicts_problems"](bad, FIXED, PROFILES, ["the declared entry of 1/tcp"])
    assert problems == ["the declared entry of 1/tcp.profile: 'plex' is not in "
                        "port_conflicts_holder_profiles (plexmediaserver)"]  # fmt: skip


# --- the mask guard --------------------------------------------------------------------


def stat_of(unit: str, **stat: Any) -> Dict[str, Any]:
    """An ansible.builtin.stat result (follow: false) of /etc/systemd/system/UNIT."""
    path = f"/etc/systemd/system/{unit}"
    return {
        "item": unit,
        "stat": {"exists": True, "path": path, **stat} if stat else {"exists": False},
    }


def masking(unit: str) -> Dict[str, Any]:
    [item] = decide(found([entry("mask_holder", port=18100, holders=[unit])], [sock(18100, unit)]))
    assert item["decision"] == "mask_holder"
    return item


def test_mask_is_refused_for_a_unit_file_in_etc() -> None:
    item = masking("lab-squatter.service")
    [refused] = F["port_conflicts_refuse_unmaskable"](
        [item], [stat_of("lab-squatter.service", islnk=False)]
    )
    assert refused["decision"] == "refused"
    assert refused["reason"].startswith(
        "18100/tcp: mask_holder cannot mask lab-squatter.service: its unit file "
        "/etc/systemd/system/lab-squatter.service is where systemctl mask would write"
    )
    assert "nothing was changed" in refused["reason"]
    assert item["decision"] == "mask_holder"  # the input is not modified


def test_mask_is_refused_for_a_linked_unit_in_etc() -> None:
    item = masking("lab-linked.service")
    stats = [stat_of("lab-linked.service", islnk=True, lnk_target="/opt/lab/linked.service")]
    [refused] = F["port_conflicts_refuse_unmaskable"]([item], stats)
    assert refused["decision"] == "refused"
    assert "(a link to /opt/lab/linked.service)" in refused["reason"]


def test_mask_goes_ahead_for_a_vendor_unit_or_an_existing_mask() -> None:
    vendor, masked = masking("lab-vendor-hog.service"), masking("lab-masked.service")
    stats = [
        stat_of("lab-vendor-hog.service"),
        stat_of("lab-masked.service", islnk=True, lnk_target="/dev/null"),
    ]
    result = F["port_conflicts_refuse_unmaskable"]([vendor, masked], stats)
    assert [e["decision"] for e in result] == ["mask_holder", "mask_holder"]


def test_each_hosts_declaration_is_checked_with_its_own_profiles_and_named_by_host() -> None:
    plex = {"port": 1900, "proto": "udp", "owner": {"container": "airconnect"},
            "on_conflict": "reconfigure", "holders": ["plexmediaserver.service"],
            "profile": "plex"}  # fmt: skip
    problems = F["port_conflicts_declaration_problems"](
        {
            "media": {"ports": [plex]},
            "custom": {"ports": [plex]},  # its inventory defines a profile named plex
            "plain": {"units": ["a.service"]},  # declares no ports
            "broken": {"ports": "1900"},
        },
        FIXED,
        {"media": PROFILES, "custom": {"plex": PROFILES["plexmediaserver"]}, "plain": {}},
    )
    assert problems == [
        "media: netmedic_agent_config.ports[0].profile: 'plex' is not in port_conflicts_holder_"
        "profiles (plexmediaserver)",
        "broken: netmedic_agent_config.ports must be a list, got '1900'",
    ]
