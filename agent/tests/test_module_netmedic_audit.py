"""plugins/modules/netmedic_audit.py: one JSON line per action; a fix that changed nothing
is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

from conftest import run_module


def audit(tmp_path: Path, log: Path, check: bool = False, **args: Any) -> Dict[str, Any]:
    return run_module("netmedic_audit", tmp_path, check=check, path=str(log), **args)


def lines(log: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_a_record_carries_the_run_and_who_ran_it(tmp_path: Path) -> None:
    log = tmp_path / "log" / "actions.jsonl"
    run = {"run_id": "r1", "controller_user": "ops", "awx_job_id": "42"}
    done = audit(tmp_path, log, role="unit_ordering", action="write-dropin", finding="x", **run)
    assert done["changed"]
    (record,) = lines(log)
    assert record["run_id"] == "r1" and record["controller_user"] == "ops"
    assert record["awx_job_id"] == "42" and record["result"] == "ok"
    assert record == done["record"]


def test_check_mode_writes_nothing(tmp_path: Path) -> None:
    log = tmp_path / "actions.jsonl"
    done = audit(tmp_path, log, check=True, role="r", action="a")
    assert not done["changed"] and done["record"]["role"] == "r" and not log.exists()


def test_a_failed_fix_without_any_change_in_its_run_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "actions.jsonl"
    remediate = {"role": "site", "action": "remediate", "finding": "x", "result": "failed"}
    audit(tmp_path, log, run_id="r1", **remediate)
    # In run r2 the role changed something for x before failing: an attempt.
    audit(tmp_path, log, run_id="r2", role="unit_ordering", action="write-dropin", finding="x")
    audit(tmp_path, log, run_id="r2", **remediate)
    # Without a run id nothing can be told apart: failed stays failed.
    audit(tmp_path, log, **remediate)
    assert [r["result"] for r in lines(log)] == ["refused", "ok", "failed", "failed"]
