"""Docker containers behind declared ports, read from dockerd's data root (no CLI, no API).

AirConnect runs in Docker with host networking (its README; philippe44/AirConnect#549),
and #416 found ``dockerd`` itself holding 1900/udp for a container that publishes it.
A port's holder is then named by its container, not by a unit or "dockerd":

- a process in a container carries the container's id in its cgroup
  (owners.unit_of_cgroup): in its unit ``docker-<id>.scope`` (systemd cgroup driver,
  Docker's default with cgroup v2) and as ``container_id`` (``/docker/<id>`` with the
  cgroupfs driver; the outermost id on the path);
- dockerd keeps each container as ``<data-root>/containers/<id>/config.v2.json``
  (moby daemon/container: ``Name`` with a leading slash, ``State``) next to
  ``hostconfig.json`` (``PortBindings``), data-root ``/var/lib/docker`` unless
  ``/etc/docker/daemon.json`` sets ``data-root``.

Of the ids on a process's cgroup path, the one this host's dockerd keeps a
config.v2.json for is its container: the outermost when the agent runs on the
container host, the inner scope's when it runs inside a container with its own
Docker (a lab container). Podman and CRI scopes are left unnamed: their files differ.

Only sockets on declared ports (config ``ports``) are looked at, and only when the
config declares ports: the facts of other hosts do not change and cost nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from netmedic.context import Context
from netmedic.hostpaths import host_path

# Facts of one container as ports.containers reports it, by container name.
Container = Dict[str, Any]

DEFAULT_DATA_ROOT = "/var/lib/docker"
DAEMON_JSON = "/etc/docker/daemon.json"
_DOCKER_SCOPE = re.compile(r"docker-([0-9a-f]{64})\.scope")
# Processes that hold a published port for a container (moby's bridge driver
# reserves host ports in dockerd; docker-proxy relays them).
PORT_PUBLISHERS = ("dockerd", "docker-proxy")


def data_root(ctx: Context) -> Path:
    """dockerd's data root: ``data-root`` of daemon.json (``graph`` before 17.05), else the default.

    ``{"data-root": "/srv/docker"}`` → ``<root>/srv/docker``; none → ``<root>/var/lib/docker``.
    """
    try:
        settings = json.loads(host_path(ctx, DAEMON_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        settings = {}
    if not isinstance(settings, dict):
        settings = {}
    configured = settings.get("data-root") or settings.get("graph")
    return host_path(ctx, configured if isinstance(configured, str) else DEFAULT_DATA_ROOT)


def container_state(state: Mapping[str, Any]) -> str:
    """moby's ``State.StateString()`` of a config.v2.json ``State``.

    ``{"Running": True, "Restarting": True}`` → ``"restarting"``;
    ``{"Running": False, "StartedAt": "0001-01-01T00:00:00Z"}`` → ``"created"``.
    """
    if state.get("Running"):
        if state.get("Paused"):
            return "paused"
        return "restarting" if state.get("Restarting") else "running"
    if state.get("RemovalInProgress"):
        return "removing"
    if state.get("Dead"):
        return "dead"
    started = state.get("StartedAt")
    if not isinstance(started, str) or started.startswith("0001-01-01"):
        return "created"
    return "exited"


class Containers:
    """The containers of one data root, each file read at most once per collection."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_id: Dict[str, Optional[Tuple[str, Container]]] = {}
        self._listed = False

    def by_id(self, cid: str) -> Optional[Tuple[str, Container]]:
        """``(name, facts)`` of container ``cid``, None when dockerd keeps no such container."""
        if cid not in self._by_id:
            self._by_id[cid] = self._read(cid)
        return self._by_id[cid]

    def all(self) -> List[Tuple[str, Container]]:
        """Every container the data root holds (listed once, when a name must be looked up)."""
        if not self._listed:
            try:
                ids = [entry.name for entry in (self.root / "containers").iterdir()]
            except OSError:
                ids = []
            for cid in sorted(ids):
                self.by_id(cid)
            self._listed = True
        return [found for found in self._by_id.values() if found is not None]

    def _read(self, cid: str) -> Optional[Tuple[str, Container]]:
        """``<root>/containers/<id>/config.v2.json`` → ``("airconnect", {"id": ..., ...})``."""
        folder = self.root / "containers" / cid
        try:
            config = json.loads((folder / "config.v2.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):  # gone, unreadable or half-written: not named
            return None
        name = config.get("Name") if isinstance(config, dict) else None
        if not isinstance(name, str) or not name.strip("/"):
            return None
        state = config.get("State") if isinstance(config.get("State"), dict) else {}
        exit_code = state.get("ExitCode")
        return name.strip("/"), {
            "id": str(config.get("ID") or cid),
            "state": container_state(state),
            "exit_code": exit_code if isinstance(exit_code, int) else None,
            "published": _published(folder),
        }


def _published(folder: Path) -> List[str]:
    """The host ports a container publishes: hostconfig.json ``PortBindings``.

    ``{"PortBindings": {"1900/udp": [{"HostIp": "", "HostPort": "1900"}]}}`` → ``["1900/udp"]``.
    """
    try:
        bindings = json.loads((folder / "hostconfig.json").read_text(encoding="utf-8"))
        bindings = bindings.get("PortBindings") or {}
    except (OSError, ValueError, AttributeError):
        return []
    published = []
    for key, hosts in bindings.items() if isinstance(bindings, dict) else ():
        proto = key.partition("/")[2] or "tcp"
        for host in hosts if isinstance(hosts, list) else ():
            port = str((host or {}).get("HostPort") or key.partition("/")[0])
            if port.isdigit() and f"{port}/{proto}" not in published:
                published.append(f"{port}/{proto}")
    return published


def declared_ports(entries: Any) -> Set[Tuple[str, int]]:
    """(proto, port) of every declared port; a declaration without proto is both.

    ``[{"port": 1900, "proto": "udp"}, {"port": 8080}]``
    → ``{("udp", 1900), ("tcp", 8080), ("udp", 8080)}``.
    """
    wanted: Set[Tuple[str, int]] = set()
    for item in entries if isinstance(entries, list) else ():
        if isinstance(item, dict) and isinstance(item.get("port"), int):
            protos = [item["proto"]] if item.get("proto") in ("tcp", "udp") else ["tcp", "udp"]
            wanted.update((proto, item["port"]) for proto in protos)
    return wanted


def declared_container_owners(entries: Any) -> List[str]:
    """Names of containers declared as port owners: ``owner: {container: airconnect}``."""
    names: List[str] = []
    for item in entries if isinstance(entries, list) else ():
        owner = item.get("owner") if isinstance(item, dict) else None
        name = owner.get("container") if isinstance(owner, dict) else None
        if isinstance(name, str) and name and name not in names:
            names.append(name)
    return names


def candidate_ids(owner: Mapping[str, Any]) -> List[str]:
    """Container ids on an owner's cgroup path, its unit's scope first.

    ``{"unit": "docker-<a>.scope", "container_id": "<b>"}`` → ``["<a>", "<b>"]``.
    """
    found = _DOCKER_SCOPE.fullmatch(owner.get("unit") or "")
    ids = [found.group(1)] if found else []
    if owner.get("container_id") and owner["container_id"] not in ids:
        ids.append(owner["container_id"])
    return ids


def name_containers(ctx: Context, family: Dict[str, Any]) -> Dict[str, Any]:
    """Name the containers behind the declared ports' holders, in place; add ``containers``.

    An owner of a socket on a declared port gains ``container_name`` when it runs in a
    container dockerd keeps, or when it is dockerd/docker-proxy holding a port that
    exactly one container publishes. ``containers`` (by name: id, state, exit_code,
    published) lists those and the declared container owners found; it is left out
    when empty.
    """
    entries = ctx.setting("ports", [])
    declared = declared_ports(entries)
    store = Containers(data_root(ctx))
    named: Dict[str, Container] = {}
    for sock in _declared_sockets(family.get("sockets") or (), declared):
        found = _container_of(sock, store)
        if found is not None:
            sock["owner"]["container_name"] = found[0]
            named[found[0]] = found[1]
    wanted = [name for name in declared_container_owners(entries) if name not in named]
    if wanted:
        for name, facts in store.all():
            if name in wanted:
                named[name] = facts
    if named:
        family["containers"] = {name: named[name] for name in sorted(named)}
    return family


def _declared_sockets(
    sockets: Iterable[Dict[str, Any]], declared: Set[Tuple[str, int]]
) -> Iterable[Dict[str, Any]]:
    return (s for s in sockets if s.get("owner") and (s.get("proto"), s.get("port")) in declared)


def _container_of(sock: Mapping[str, Any], store: Containers) -> Optional[Tuple[str, Container]]:
    owner = sock["owner"]
    for cid in candidate_ids(owner):
        found = store.by_id(cid)
        if found is not None:
            return found
    if owner.get("name") in PORT_PUBLISHERS:
        where = f"{sock['port']}/{sock['proto']}"
        publishers = [found for found in store.all() if where in found[1]["published"]]
        if len(publishers) == 1:  # two publishers of one port: say neither, never guess
            return publishers[0]
    return None
