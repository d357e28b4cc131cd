"""collectors/ports.py: contract, fixture join, real sockets in children, ``ss`` cross-check."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import pytest
from conftest import as_nobody

from netmedic import fdtables, netlink, output, owners
from netmedic.collectors import ports
from netmedic.context import Context
from netmedic.registry import OWNER_FIELDS, SOCKET_FIELDS

FIXTURES = Path(__file__).parent / "fixtures" / "ports"
SOCKET_KEYS = set(SOCKET_FIELDS)
OWNER_KEYS = set(OWNER_FIELDS)
Spec = Tuple[str, str, Dict[str, int]]  # proto, address, socket options


def _open(proto: str, address: str, options: Dict[str, int]) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    for name, value in options.items():
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, name), value)
    sock.bind((address, 0))
    if proto == "tcp":
        sock.listen()
    return sock


class Farm:
    """Forked processes holding loopback sockets; every ``share_every``-th forks a sibling.

    ``sockets`` maps inode → {"proto", "address", "port", "pids"} as the
    children report them. Children exit when the farm closes its stop pipe.
    """

    def __init__(self, plans: List[List[Spec]], share_every: int = 0) -> None:
        self.plans = plans
        self.share_every = share_every
        self.sockets: Dict[int, Dict[str, Any]] = {}
        self.workers: List[int] = []

    def __enter__(self) -> Farm:
        report_r, report_w = os.pipe()
        stop_r, self._stop_w = os.pipe()
        for index, plan in enumerate(self.plans):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                try:
                    os.close(report_r)
                    os.close(self._stop_w)
                    self._child(index, plan, report_w, stop_r)
                finally:
                    os._exit(0)
            self.workers.append(pid)
        os.close(report_w)
        os.close(stop_r)
        with os.fdopen(report_r) as reports:
            for line in reports:
                record = json.loads(line)
                self.sockets[record.pop("inode")] = record
        return self

    def _child(self, index: int, plan: List[Spec], report: int, stop: int) -> None:
        held = [_open(*spec) for spec in plan]
        pids = [os.getpid()]
        if self.share_every and index % self.share_every == 0:
            sibling = os.fork()
            if sibling == 0:
                os.close(report)
                os.read(stop, 1)
                os._exit(0)
            pids.append(sibling)
        for sock, (proto, address, _options) in zip(held, plan):
            record = {"inode": os.fstat(sock.fileno()).st_ino, "proto": proto,
                      "address": address, "port": sock.getsockname()[1], "pids": pids}  # fmt: skip
            os.write(report, (json.dumps(record) + "\n").encode())
        os.close(report)
        os.read(stop, 1)  # EOF when the farm closes
        for pid in pids[1:]:
            os.waitpid(pid, 0)

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._stop_w)
        for pid in self.workers:
            os.waitpid(pid, 0)

    def ports(self) -> Set[Tuple[str, int]]:
        return {(s["proto"], s["port"]) for s in self.sockets.values()}


MIXED: List[Spec] = [
    ("tcp", "127.0.0.1", {}), ("tcp", "::1", {}), ("udp", "127.0.0.1", {}), ("udp", "::1", {}),
]  # fmt: skip


@pytest.fixture
def farm() -> Iterator[Farm]:
    with Farm([MIXED, MIXED[::-1], MIXED[:2]], share_every=2) as started:
        yield started


def ours(result: Dict[str, Any], farm: Farm) -> Dict[int, Dict[str, Any]]:
    return {s["inode"]: s for s in result["sockets"] if s["inode"] in farm.sockets}


# --- contract and pure parts ----------------------------------------------------


def test_contract_shape(farm: Farm) -> None:
    result = ports.collect(Context())
    assert set(result) == {"source", "sockets"}
    assert result["source"] == "netlink"
    for entry in result["sockets"]:
        assert set(entry) == SOCKET_KEYS
        assert entry["proto"] in ("tcp", "udp") and entry["family"] in ("ipv4", "ipv6")
        assert set(entry["sharing"]) == {"reuse_addr", "reuse_port"}
        assert (entry["owner"] is None) == (entry["owner_reason"] is not None)
        if entry["owner"] is not None:
            assert set(entry["owner"]) == OWNER_KEYS
    keys = [ports.sort_key(e) for e in result["sockets"]]
    assert keys == sorted(keys)
    json.dumps(result)  # serialisable as is


def test_declared_ports() -> None:
    declared = [
        {"port": 1900, "proto": "udp", "owner": "gmediarender.service"},
        {"port": 5353},
        {"port": 32400, "proto": "tcp"},
        {"port": "1900"},
        "junk",
    ]
    assert ports.declared_ports(declared) == {("udp", 1900), ("udp", 5353)}
    assert ports.declared_ports(None) == set()


FIXTURE_SOCKETS = [
    netlink.DiagSocket("tcp", "ipv4", "0.0.0.0", 8080, 90000, 33, "LISTEN"),
    netlink.DiagSocket("udp", "ipv4", "0.0.0.0", 1900, 81234, 115, "CLOSE"),
    netlink.DiagSocket("udp", "ipv6", "::", 1900, 77777, 0, "CLOSE"),
]


def fixture_ctx() -> Context:
    return Context(proc_root=FIXTURES / "proc", etc_root=FIXTURES / "etc")


def fixture_join() -> List[ports.PortSocket]:
    """FIXTURE_SOCKETS joined on the fixture tree: an owner in a container, one
    with a forked sibling (other_pids), a socket nobody holds."""
    return ports.join_owners(fixture_ctx(), FIXTURE_SOCKETS)


def test_join_on_fixture_tree() -> None:
    ctx = fixture_ctx()
    uid = (FIXTURES / "proc" / "812").stat().st_uid
    result = fixture_join()
    assert [(e["proto"], e["port"], e["address"]) for e in result] == [
        ("tcp", 8080, "0.0.0.0"), ("udp", 1900, "0.0.0.0"), ("udp", 1900, "::")]  # fmt: skip
    nginx, gmr, orphan = result
    assert nginx["owner"] is not None and nginx["owner"]["container_id"] == "4f3c2b1a" * 8
    assert gmr == {
        "proto": "udp", "family": "ipv4", "address": "0.0.0.0", "port": 1900,
        "device": None, "scope_id": None, "v6only": None,
        "inode": 81234, "uid": 115, "netns": "net:[4026531840]",
        "owner": {"pid": 812, "name": "gmediarender", "exe": "/usr/bin/gmediarender",
                  "user": owners.user_name(ctx, uid), "unit": "gmediarender.service",
                  "container_id": None},
        "owner_reason": None, "other_pids": [813],
        "sharing": {"reuse_addr": None, "reuse_port": None},
    }  # fmt: skip
    assert orphan["owner"] is None and orphan["owner_reason"] == fdtables.NO_HOLDER


def test_denied_holder_keeps_the_socket_with_a_reason() -> None:
    root = Path(tempfile.mkdtemp(prefix="netmedic-ports-"))
    try:
        os.chmod(root, 0o755)
        shutil.copytree(FIXTURES, root / "tree", symlinks=True)
        os.chmod(root / "tree" / "proc" / "900" / "fd", 0o000)
        ctx = Context(proc_root=root / "tree" / "proc", etc_root=root / "tree" / "etc")
        found = [netlink.DiagSocket("tcp", "ipv4", "0.0.0.0", 8080, 90000, 33, "LISTEN")]
        entry = as_nobody(lambda: ports.join_owners(ctx, found))[0]
    finally:
        os.chmod(root / "tree" / "proc" / "900" / "fd", 0o755)
        shutil.rmtree(root)
    assert entry["owner"] is None
    assert entry["owner_reason"] == "permission denied reading /proc/900/fd"
    assert (entry["port"], entry["inode"]) == (8080, 90000)


# --- real sockets ---------------------------------------------------------------


def test_real_sockets_have_their_owner_and_unit(farm: Farm) -> None:
    result = ports.collect(Context())
    found = ours(result, farm)
    assert set(found) == set(farm.sockets)  # every socket we opened, v4 and v6, tcp and udp
    netns = os.readlink("/proc/self/ns/net")
    for inode, entry in found.items():
        made = farm.sockets[inode]
        assert (entry["proto"], entry["address"], entry["port"]) == (
            made["proto"], made["address"], made["port"])  # fmt: skip
        assert entry["family"] == ("ipv6" if ":" in made["address"] else "ipv4")
        owner = entry["owner"]
        assert owner is not None
        assert [owner["pid"], *entry["other_pids"]] == made["pids"]
        cgroup = Path(f"/proc/{owner['pid']}/cgroup").read_text()
        assert (owner["unit"], owner["container_id"]) == owners.unit_of_cgroup(cgroup)
        assert (owner["user"], entry["uid"], entry["netns"]) == ("root", 0, netns)
        assert entry["sharing"] == {"reuse_addr": None, "reuse_port": None}


def test_unprivileged_reader_reports_root_sockets_held(farm: Farm) -> None:
    result = as_nobody(lambda: ports.collect(Context()))
    found = ours(result, farm)
    assert set(found) == set(farm.sockets)  # still listed: never shown as free
    for entry in found.values():
        assert entry["owner"] is None
        # Every root process's table is denied to nobody: the reason names those of uid 0.
        assert re.fullmatch(
            r"permission denied reading the fd tables of \d+ processes \(pids \d+, \.\.\. "
            r"\(\d+\) run as the socket's uid 0\)", entry["owner_reason"]
        ), entry["owner_reason"]


def test_sharing_on_declared_udp_ports() -> None:
    plan: List[Spec] = [
        ("udp", "127.0.0.1", {"SO_REUSEADDR": 1}),
        ("udp", "127.0.0.1", {}),
        ("udp", "::1", {"SO_REUSEPORT": 1}),
        ("udp", "127.0.0.1", {"SO_REUSEADDR": 1}),  # not declared
        ("tcp", "127.0.0.1", {"SO_REUSEADDR": 1}),  # TCP: never read
    ]
    with Farm([plan]) as farm:
        by_order = list(farm.sockets.items())
        declared = [{"port": s["port"], "proto": s["proto"]} for _i, s in by_order[:3]]
        declared.append({"port": by_order[4][1]["port"]})
        found = ours(ports.collect(Context(config={"ports": declared})), farm)
        sharing = [found[inode]["sharing"] for inode, _s in by_order]
        again = ours(ports.collect(Context()), farm)  # the farm's sockets, read again
    assert sharing == [
        {"reuse_addr": True, "reuse_port": False},
        {"reuse_addr": False, "reuse_port": False},
        {"reuse_addr": False, "reuse_port": True},
        {"reuse_addr": None, "reuse_port": None},
        {"reuse_addr": None, "reuse_port": None},
    ]
    # The unread ones are one dict, which the read ones are not, nor a later run's.
    assert sharing[3] is sharing[4] and all(s is not sharing[3] for s in sharing[:3])
    assert len(again) == len(by_order)
    assert all(entry["sharing"] is not sharing[3] for entry in again.values())


def test_time_wait_heavy_host_returns_only_bound_sockets(farm: Farm) -> None:
    before = ports.collect(Context())["sockets"]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    try:
        for _ in range(5000):
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
            client.close()
            server.close()
        with netlink.DiagClient() as client:
            mask = netlink.states_mask([netlink.TCP_TIME_WAIT])
            assert len(client.dump("tcp", "ipv4", mask)) >= 5000
        after = ports.collect(Context())["sockets"]
    finally:
        listener.close()
    assert len(after) - len(before) < 50  # the 5000 TIME_WAIT are not in the list
    assert ours({"sockets": after}, farm).keys() == farm.sockets.keys()


def test_psutil_fallback_agrees(farm: Farm) -> None:
    fast = ours(ports.collect(Context()), farm)
    slow = ports.collect_psutil(Context())
    keyed = {(e["proto"], e["family"], e["address"], e["port"]): e for e in slow}
    for inode, entry in fast.items():
        other = keyed[(entry["proto"], entry["family"], entry["address"], entry["port"])]
        # psutil reports one holder per socket (the first pid it met), not all of them.
        assert other["owner"]["pid"] in farm.sockets[inode]["pids"]
        assert {**other["owner"], "pid": 0} == {**entry["owner"], "pid": 0}
        assert (other["inode"], other["uid"], other["owner_reason"]) == (None, None, None)


# --- the JSON encoding (netmedic.output) -------------------------------------------


def test_entries_are_written_in_the_registrys_field_order(farm: Farm) -> None:
    entries = [*ports.collect(Context())["sockets"], *ports.collect_psutil(Context())]
    entries += fixture_join()
    assert ours({"sockets": entries}, farm)  # the farm's sockets are among them
    assert {tuple(entry) for entry in entries} == {SOCKET_FIELDS}
    owners_seen = [entry["owner"] for entry in entries if entry["owner"] is not None]
    assert {tuple(owner) for owner in owners_seen} == {OWNER_FIELDS}


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def test_sockets_json_gives_the_bytes_json_dumps_gives(farm: Farm) -> None:
    real = ports.collect(Context())["sockets"]
    base = next(entry for entry in real if entry["owner"] is not None)
    owner = base["owner"]
    odd: List[Any] = [  # what the builders can write, then what they never do
        {**base, "owner": None, "owner_reason": 'gone, with a "quote" and é'},
        {**base, "other_pids": [7, 9], "sharing": {"reuse_addr": True, "reuse_port": False}},
        {**base, "inode": None, "uid": None, "netns": None},  # psutil's; no netns link
        {**base, "port": 65535, "uid": 2**32 - 2, "address": "fe80::1%eth0"},
        {"port": 1, **{k: v for k, v in base.items() if k != "port"}},  # keys in another order
        {**base, "owner": {**owner, "name": None, "unit": "é.service", "exe": 'a"b\\c'}},
        {**base, "owner": {"name": "x", **owner}},  # owner keys in another order
        {**base, "owner": {**owner, "pid": True}},  # json writes true, not 1
        {**base, "owner": {**owner, "user": 1000}},  # not text
        {**base, "owner": {**owner, "extra": []}},
        {**base, "extra": 1},
        {**base, "address": 1},  # not text
        {**base, "address": ["::1"]},  # not hashable
        {**base, "other_pids": None},  # falsy, but not an empty list
        {**base, "sharing": {"reuse_port": None, "reuse_addr": None}},  # equal, other order
        {k: v for k, v in base.items() if k != "sharing"},
        "not a dict",
        None,
        [base],
    ]
    entries = [*real, *ports.collect_psutil(Context()), *fixture_join(), *odd]
    doc = {"ports": {"source": "netlink", "sockets": entries}, "units": None}
    assert output.compact_json(doc) == compact(doc)
    quote = json.encoder.encode_basestring_ascii
    for chunk in (1, 2, len(entries)):  # pieces of `chunk` entries: the same text
        pieces = list(output.sockets_json(entries, compact, quote, chunk))
        assert "".join(pieces) == compact(entries)
        assert len(pieces) == 1 + 2 * -(-len(entries) // chunk)
    assert list(output.sockets_json([], compact, quote)) == ["[", "", "]"]


def test_sockets_json_of_a_generator_with_fresh_owners() -> None:
    """Owners freed as a generator goes on may reuse an id: no tail is taken for another's."""
    base = fixture_join()[0]
    assert base["owner"] is not None

    def entries() -> Iterator[Dict[str, Any]]:
        for pid in range(100, 150):
            yield {**base, "port": pid, "owner": {**base["owner"], "pid": pid}}

    quote = json.encoder.encode_basestring_ascii
    assert "".join(output.sockets_json(entries(), compact, quote)) == compact(list(entries()))


def test_sockets_json_encodes_each_owner_once() -> None:
    entries = fixture_join()
    shared = {**entries[0], "port": 8081, "inode": 90001}  # the same owner object, twice
    seen: List[object] = []

    def encode(value: object) -> str:
        seen.append(value)
        return json.dumps(value, separators=(",", ":"))

    quoted: List[str] = []

    def quote(text: str) -> str:
        quoted.append(text)
        return json.encoder.encode_basestring_ascii(text)

    text = "".join(output.sockets_json([entries[0], shared], encode, quote, 1))
    assert json.loads(text) == [entries[0], shared]
    # The shared tail (netns, owner) is made once: the netns encoded, the owner's
    # texts quoted once each (its template), and the head's start once per address.
    assert seen == [entries[0]["netns"]]
    owner = entries[0]["owner"]
    assert owner is not None
    texts = [owner[key] for key in ("name", "exe", "user", "unit", "container_id")]
    assert [t for t in quoted if t in texts] == [t for t in texts if t is not None]
    assert quoted.count(entries[0]["address"]) == 1


# --- cross-check with ss --------------------------------------------------------

SS_LINE = re.compile(r"^(\S+)\s+\S+\s+\d+\s+\d+\s+(\S+)\s+\S+\s*(.*)$")
SS_PID = re.compile(r"pid=(\d+)")


def ss_owners(ports_of_interest: Set[Tuple[str, int]]) -> Set[Tuple[str, str, int, int]]:
    """(proto, address, port, pid) for every pid ``ss -tulpnH`` lists on our ports.

    ``udp UNCONN 0 0 [::1]:41000 [::]:* users:(("python",pid=9,fd=5),("python",pid=10,fd=5))``
    → ``("udp", "::1", 41000, 9)`` and ``("udp", "::1", 41000, 10)``.
    """
    out = subprocess.run(
        ["ss", "-tulpnH"], capture_output=True, text=True, check=True, env={"LANG": "C"}
    ).stdout
    seen = set()
    for line in out.splitlines():
        match = SS_LINE.match(line)
        assert match, line
        proto, local, users = match.groups()
        address, port = local.rsplit(":", 1)
        address = address.strip("[]").split("%")[0]
        if (proto, int(port)) in ports_of_interest:
            seen |= {(proto, address, int(port), int(pid)) for pid in SS_PID.findall(users)}
    return seen


def netmedic_owners(
    result: Dict[str, Any], ports_of_interest: Set[Tuple[str, int]]
) -> Set[Tuple[str, str, int, Optional[int]]]:
    seen: Set[Tuple[str, str, int, Optional[int]]] = set()
    for e in result["sockets"]:
        if (e["proto"], e["port"]) in ports_of_interest:
            pids = ([e["owner"]["pid"]] if e["owner"] else []) + e["other_pids"]
            seen |= {(e["proto"], e["address"], e["port"], pid) for pid in pids}
    return seen


def test_cross_check_with_ss_across_50_processes() -> None:
    addresses = ["127.0.0.1", "::1", "127.0.0.2"]
    plans: List[List[Spec]] = [
        [("tcp", addresses[i % 3], {}), ("udp", addresses[(i + 1) % 3], {}),
         ("tcp", addresses[(i + 2) % 3], {})]
        for i in range(50)
    ]  # fmt: skip
    with Farm(plans, share_every=7) as farm:
        wanted = farm.ports()
        ours_now = netmedic_owners(ports.collect(Context()), wanted)
        theirs = ss_owners(wanted)
        expected = {
            (s["proto"], s["address"], s["port"], pid)
            for s in farm.sockets.values()
            for pid in s["pids"]
        }
    assert len(farm.sockets) == 150
    assert ours_now == theirs == expected
