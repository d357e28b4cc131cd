"""psutil and PyYAML from the system's site directories, which ``python3 -S`` leaves out.

roles/netmedic_agent's wrapper starts the agent with ``-S``: site.py's start-up
(``.pth`` hooks such as setuptools' ``_distutils_hack``, ``sitecustomize``) is
work ``netmedic facts --only ports``, a path that needs only the standard
library, has no use for. psutil and PyYAML are OS packages installed in those
site directories (Debian/Ubuntu: ``/usr/lib/python3/dist-packages``;
RHEL/Fedora: ``/usr/lib64/python3.X/site-packages``), so every import of them
is preceded by :func:`add_site_dirs`.
"""

from __future__ import annotations

import sys

_site_dirs_added = False


def add_site_dirs() -> None:
    """Put the site directories on ``sys.path``: ``site.main()`` once under ``-S``.

    Under ``python3 -S``, ``/usr/lib/python3/dist-packages`` is absent from
    ``sys.path`` before the first call and present after it (a venv's
    interpreter adds its own ``site-packages``, as site.py does at start-up).
    Without ``-S`` (the venv's console script, ``python3 -m netmedic``) site.py
    has run already and this does nothing.
    """
    global _site_dirs_added  # noqa: PLW0603 - run site.main() at most once
    if not sys.flags.no_site or _site_dirs_added:
        return
    import site  # noqa: PLC0415 - only on the paths that need psutil or yaml

    site.main()
    _site_dirs_added = True
