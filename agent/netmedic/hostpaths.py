"""Map a host path (as configs and symlinks name it) into the context's roots.

Collectors see ``/etc``, ``/run`` and ``/proc`` through ``ctx.*_root``; paths
outside those live under the filesystem root, taken as ``etc_root``'s parent
(``/`` on a real host, the fixture tree in tests).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from netmedic.context import Context


def host_path(ctx: Context, path: str) -> Path:
    """Map one host path.

    ``"/var/run/gp.lock"`` → ``ctx.run_root / "gp.lock"``;
    ``"/usr/lib/x"`` → ``<root>/usr/lib/x``; a relative path is returned as is.
    """
    parts = PurePosixPath(path).parts
    if len(parts) >= 2 and parts[0] == "/":
        top = parts[1]
        rest = parts[2:]
        if top == "etc":
            return ctx.etc_root.joinpath(*rest)
        if top == "run":
            return ctx.run_root.joinpath(*rest)
        if top == "proc":
            return ctx.proc_root.joinpath(*rest)
        if top == "sys":
            return ctx.sys_root.joinpath(*rest)
        if top == "var" and rest[:1] == ("run",):  # /var/run is a symlink to /run
            return ctx.run_root.joinpath(*rest[1:])
        return ctx.etc_root.parent.joinpath(*parts[1:])
    return Path(path)
