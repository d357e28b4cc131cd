"""extensions/awx/netmedic.yml, the AWX workflow as code: ansible-playbook --syntax-check
resolves every awx.awx module (the collection comes with PyPI's `ansible`), each task
passes only options its module documents, and the workflow is check → approval → run
over site.yml. Not run: there is no AWX here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "extensions" / "awx" / "netmedic.yml"
BIN = Path(sys.executable).parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)


def tasks() -> List[Dict[str, Any]]:
    (play,) = yaml.safe_load(PLAYBOOK.read_text())
    return list(play["tasks"])


def test_syntax_check_resolves_the_awx_modules() -> None:
    out = run(str(BIN / "ansible-playbook"), "--syntax-check", str(PLAYBOOK))
    assert out.returncode == 0, out.stdout + out.stderr
    assert all(next(iter(k for k in t if k != "name")).startswith("awx.awx.") for t in tasks())


def test_every_task_passes_only_documented_options() -> None:
    modules = sorted({next(k for k in t if k != "name") for t in tasks()})
    out = run(str(BIN / "ansible-doc"), "--json", *modules)
    assert out.returncode == 0, out.stderr
    docs = json.loads(out.stdout)
    for task in tasks():
        module = next(k for k in task if k != "name")
        options = docs[module]["doc"]["options"]
        unknown = set(task[module]) - set(options)
        assert not unknown, f"{task['name']}: {module} has no option {sorted(unknown)}"


def test_workflow_is_check_then_approval_then_run_of_site_yml() -> None:
    (workflow,) = [t["awx.awx.workflow_job_template"] for t in tasks()
                   if "awx.awx.workflow_job_template" in t]  # fmt: skip
    templates = {t["awx.awx.job_template"]["name"]: t["awx.awx.job_template"]
                 for t in tasks() if "awx.awx.job_template" in t}  # fmt: skip
    assert templates["netmedic check"]["job_type"] == "check"
    assert templates["netmedic run"]["job_type"] == "run"
    assert templates["netmedic check"]["playbook"] == templates["netmedic run"]["playbook"]
    assert (ROOT / templates["netmedic run"]["playbook"]).is_file()
    assert (ROOT / templates["netmedic facts"]["playbook"]).is_file()
    nodes = {node["identifier"]: node for node in workflow["workflow_nodes"]}
    chain, node = [], nodes["check"]
    while True:
        chain.append((node["unified_job_template"]["type"], node["unified_job_template"]["name"]))
        following = node.get("related", {}).get("success_nodes", [])
        if not following:
            break
        node = nodes[following[0]["identifier"]]
    assert chain == [
        ("job_template", "netmedic check"),
        ("workflow_approval", "netmedic remediate approval"),
        ("job_template", "netmedic run"),
    ]
