"""roles/port_conflicts/filter_plugins: how a port plan meets the agent's port owners.

The sockets are shaped like the agent's ``ports.sockets`` (netlink path), including
an owner the agent could not read (``owner: null`` with its ``owner_reason``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest
from conftest import load_plugin

pc = load_plugin("roles/port_conflicts/filter_plugins/port_conflicts.py")

NO_HOLDER = "no process in this pid namespace holds the socket"
PROFILES = {"plexmediaserver": {"units": ["plexmediaserver.service"], "file": "/p", "edits": []}}


def sock(
    port: int,
    unit: Optional[str],
    *,
    proto: str = "tcp",
    address: str = "127.0.0.1",
    reuse_addr: Optional[bool] = None,
    pid: int = 4242,
    reason: str = NO_HOLDER,
) -> Dict[str, Any]:
    """A socket as the agent reports it; ``unit=None`` is an owner it could not read."""
    owner = None
    if unit is not None:
        owner = {
            "pid": pid,
            "name": unit.split(".")[0],
            "exe": "/usr/bin/python3",
            "user": "root",
            "unit": unit,
            "container_id": None,
        }
    return {
        "proto": proto,
        "family": "ipv4",
        "address": address,
        "port": port,
        "inode": 3843602 + port,
        "uid": 0,
        "netns": "net:[4026532181]",
        "owner": owner,
        "owner_reason": None if owner else reason,
        "other_pids": [],
        "sharing": {"reuse_addr": reuse_addr, "reuse_port": None},
    }


def entry(action: str, port: int = 18110, **extra: Any) -> Dict[str, Any]:
    return {
        "port": port,
        "proto": "tcp",
        "owner": "lab-deaf.service",
        "on_conflict": action,
        "holders": ["lab-named-hog.service"],
        **extra,
    }


def classify(plan: List[Dict[str, Any]], sockets: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    result: List[Dict[str, Any]] = pc.port_conflicts_classify(plan, sockets, PROFILES, 2)
    return result


@pytest.mark.parametrize("action", ["report", "reconfigure", "stop_holder", "mask_holder"])
def test_an_unreadable_owner_is_reported_never_acted_on(action: str) -> None:
    # The holder's name is even in the plan: it is not guessed from it.
    plan = [entry(action, holders=["lab-unowned.service"])]
    [item] = classify(plan, [sock(18110, None, address="127.0.0.2")])
    assert item["state"] == "unreadable"
    assert item["decision"] == "report"
    assert item["holders_found"] == []
    assert item["holder_units"] == []
    assert item["unreadable"] == [
        {"address": "127.0.0.2", "inode": 3843602 + 18110, "uid": 0, "reason": NO_HOLDER}
    ]
    assert NO_HOLDER in item["reason"]
    assert "127.0.0.2" in item["reason"]


def test_an_unreadable_owner_next_to_the_owner_is_still_reported() -> None:
    [item] = classify(
        [entry("stop_holder")],
        [sock(18110, "lab-deaf.service"), sock(18110, None, address="127.0.0.2")],
    )
    assert (item["state"], item["decision"]) == ("unreadable", "report")


@pytest.mark.parametrize("action", ["reconfigure", "stop_holder", "mask_holder"])
def test_a_named_holder_next_to_an_unreadable_one_is_left_alone(action: str) -> None:
    # Stopping the named holder would not free the port: refused, not acted on.
    sockets = [
        sock(18110, "lab-named-hog.service"),
        sock(18110, None, address="127.0.0.2"),
    ]
    [item] = classify([entry(action, profile="plexmediaserver")], sockets)
    assert item["state"] == "conflict"
    assert item["decision"] == "refused"
    assert [h["unit"] for h in item["holders_found"]] == ["lab-named-hog.service"]
    assert item["holders_found"][0]["named"] is True
    assert "owner could not be read" in item["reason"]
    assert NO_HOLDER in item["reason"]
    assert f"{action} is refused" in item["reason"]


def test_a_named_holder_next_to_an_unreadable_one_report_and_remap() -> None:
    sockets = [sock(18110, "lab-named-hog.service"), sock(18110, None, address="127.0.0.2")]
    [reported] = classify([entry("report")], sockets)
    assert reported["decision"] == "report"
    # remap moves the owner and touches no holder: the unknown holder does not matter.
    [moved] = classify([entry("remap", remap={"port": 18112, "environment": "PORT"})], sockets)
    assert moved["decision"] == "remap"


def test_a_named_holder_alone_is_acted_on() -> None:
    [item] = classify([entry("stop_holder")], [sock(18110, "lab-named-hog.service")])
    assert (item["state"], item["decision"]) == ("conflict", "stop_holder")
    assert item["holder_units"] == ["lab-named-hog.service"]
    assert item["unreadable"] == []


def test_udp_sharing_with_reuse_addr_is_no_conflict() -> None:
    plan = [
        {
            "port": 1900,
            "proto": "udp",
            "owner": "gmediarender.service",
            "on_conflict": "reconfigure",
            "holders": ["plexmediaserver.service"],
        }
    ]
    sockets = [
        sock(1900, "gmediarender.service", proto="udp", address="0.0.0.0", reuse_addr=True),
        sock(1900, "minidlna.service", proto="udp", address="0.0.0.0", reuse_addr=True, pid=9),
    ]
    [item] = classify(plan, sockets)
    assert (item["state"], item["decision"]) == ("held", "none")
    assert [h["unit"] for h in item["sharing"]] == ["minidlna.service"]
    # Without SO_REUSEADDR the same holder blocks libupnp (the -203).
    sockets[1]["sharing"]["reuse_addr"] = False
    sockets[1]["owner"]["unit"] = "plexmediaserver.service"
    [item] = classify(plan, sockets[1:])
    assert (item["state"], item["decision"]) == ("conflict", "reconfigure")
    assert item["profile"] == "plexmediaserver"


def stat_of(unit: str, **stat: Any) -> Dict[str, Any]:
    """An ansible.builtin.stat result (follow: false) of /etc/systemd/system/UNIT."""
    path = f"/etc/systemd/system/{unit}"
    found = {"exists": True, "path": path, **stat} if stat else {"exists": False}
    return {"item": unit, "stat": found}


def masking(unit: str) -> Dict[str, Any]:
    [item] = classify([entry("mask_holder", port=18100, holders=[unit])], [sock(18100, unit)])
    assert item["decision"] == "mask_holder"
    return item


def test_mask_is_refused_for_a_unit_file_in_etc() -> None:
    item = masking("lab-squatter.service")
    [refused] = pc.port_conflicts_refuse_unmaskable(
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
    [refused] = pc.port_conflicts_refuse_unmaskable(
        [item], [stat_of("lab-linked.service", islnk=True, lnk_target="/opt/lab/linked.service")]
    )
    assert refused["decision"] == "refused"
    assert "(a link to /opt/lab/linked.service)" in refused["reason"]


def test_mask_goes_ahead_for_a_vendor_unit_or_an_existing_mask() -> None:
    vendor = masking("lab-vendor-hog.service")  # its file is in /usr/local/lib/systemd/system
    masked = masking("lab-masked.service")
    stats = [
        stat_of("lab-vendor-hog.service"),
        stat_of("lab-masked.service", islnk=True, lnk_target="/dev/null"),
    ]
    result = pc.port_conflicts_refuse_unmaskable([vendor, masked], stats)
    assert [e["decision"] for e in result] == ["mask_holder", "mask_holder"]


def test_refuse_unmaskable_leaves_other_decisions_alone() -> None:
    [item] = classify([entry("stop_holder")], [sock(18110, "lab-named-hog.service")])
    stats = [stat_of("lab-named-hog.service", islnk=False)]
    assert pc.port_conflicts_refuse_unmaskable([item], stats)[0]["decision"] == "stop_holder"


def test_owner_holds_is_the_verification() -> None:
    sockets = [sock(18100, "lab-feed.service"), sock(18111, None)]
    assert pc.port_conflicts_owner_holds(sockets, 18100, "tcp", "lab-feed.service")
    assert not pc.port_conflicts_owner_holds(sockets, 18100, "udp", "lab-feed.service")
    assert not pc.port_conflicts_owner_holds(sockets, 18111, "tcp", "lab-deaf.service")
