"""bench/record.py: every bench script's result file, named by kind and start time."""

from __future__ import annotations

import calendar
import json
import os
from pathlib import Path

import pytest

import record


def test_write_result_stamps_the_run_and_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(record, "RESULTS", tmp_path / "results")
    started = calendar.timegm((2026, 12, 1, 13, 5, 43, 0, 0, 0))
    path = record.write_result("ports-medium", {"ratios": {"a": 1.5}}, started, (0.5, 0.4, 0.3))
    assert path == tmp_path / "results" / "ports-medium-20261201T130543Z.json"
    written = json.loads(path.read_text())
    assert written["ratios"] == {"a": 1.5}
    assert written["started"] == "2026-12-01T13:05:43Z"
    host = written["host"]
    assert (host["cpus"], host["kernel"]) == (os.cpu_count(), os.uname().release)
    assert host["loadavg_at_start"] == [0.5, 0.4, 0.3]
    assert len(host["loadavg_at_end"]) == 3


def test_write_result_keeps_the_order_the_script_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(record, "RESULTS", tmp_path)
    median = {"working tree": 73.1, "7150615": 89.5, "8a4bdd1": 77.3, "54d2cbb": 76.4}
    path = record.write_result("instructions-medium", {"median": median}, 0.0, (0, 0, 0))
    assert list(json.loads(path.read_text())["median"]) == list(median)  # --ref order
