"""How roles/netmedic_agent runs the agent: its wrapper's command and its bytecode.

bench/compare_ports.py and bench/diagnose_scaling.py time this argv and
agent/tests/test_wrapper.py runs it, so none can drift from what targets run:
change the template and all follow.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
# Targets run the agent with the system Python, from source on PYTHONPATH (the wrapper
# template), not through the venv's console script: Debian's build is also the faster one.
TARGET_PYTHON = "/usr/bin/python3"
TEMPLATE = REPO / "roles/netmedic_agent/templates/netmedic.sh.j2"


def add_python_option(parser: argparse.ArgumentParser) -> None:
    """``--python``: the interpreter to time the agent with, targets' by default
    (this one where /usr/bin/python3 is missing)."""
    parser.add_argument(
        "--python",
        default=TARGET_PYTHON if os.path.exists(TARGET_PYTHON) else sys.executable,
        help=f"interpreter for netmedic (default: {TARGET_PYTHON}, as on targets)",
    )


_EXEC = re.compile(r'\bexec (.+?) "\$@"', re.DOTALL)


def wrapper_command(python: str, *args: str, template: Path = TEMPLATE) -> List[str]:
    """The wrapper's ``exec`` line as an argv, with ``python`` for its interpreter.

    ``PYTHONPATH=... exec /usr/bin/python3 -B -S -c \\`` + ``'import sys; ...' "$@"``
    with ``("/opt/py", "facts")`` → ``["/opt/py", "-B", "-S", "-c", "import sys; ...",
    "facts"]``. PYTHONPATH is the caller's to set (the template's is a variable).
    """
    text = template.read_text(encoding="utf-8").replace("\\\n", " ")
    match = _EXEC.search(text)
    if match is None:
        raise ValueError(f"{template}: no 'exec ... \"$@\"' line")
    argv = shlex.split(match.group(1))
    return [python, *argv[1:], *args]


def compile_agent(python: str, agent: Path) -> None:
    """Bytecode as the role's handler compiles it (roles/netmedic_agent/handlers/main.yml).

    checked-hash: the pyc is valid while the source hashes alike, as on targets,
    and it is what ``-B`` runs read (they never write bytecode themselves).
    """
    subprocess.run(
        [python, "-m", "compileall", "-q", "--invalidation-mode", "checked-hash",
         str(agent / "netmedic")],
        check=True,
    )  # fmt: skip


def checkout(ref: Optional[str], into: Path) -> Dict[str, Path]:
    """The agent directory (for PYTHONPATH) and wrapper template of ``ref``; None: this tree.

    A ref's agent runs with its own wrapper command, as that commit's role ran it.
    """
    if ref is None:
        return {"agent": REPO / "agent", "template": TEMPLATE}
    template = TEMPLATE.relative_to(REPO)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "agent/netmedic", str(template)],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return {"agent": into / "agent", "template": into / template}


def resolve(ref: str) -> str:
    """The commit ``ref`` names, for the record (``main`` moves)."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()
