"""``netmedic diagnose --format prometheus`` read back by prometheus_client's own parser,
the table's Nagios performance data, and ``--output``'s atomic textfile."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netmedic import metrics
from netmedic.commands import cmd_diagnose
from netmedic.context import Context
from netmedic.diagnose import CRITICAL, UNKNOWN, Diagnosis, Finding

FIXTURES = Path(__file__).parent / "fixtures" / "diagnose"
SAVED = ["--config", str(FIXTURES / "config.yml")]

Samples = Dict[str, List[Tuple[Dict[str, str], float]]]


def diagnose(host: str, *extra: str, etc: Path) -> Tuple[int, str]:
    out = io.StringIO()
    args = ["--facts", str(FIXTURES / f"{host}.json"), *SAVED, *extra]
    return cmd_diagnose(args, out, Context(etc_root=etc)), out.getvalue()


def parse(text: str) -> Samples:
    """Every family the real parser reads, its type checked: name → [(labels, value)]."""
    parsed: Samples = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        assert family.documentation, family.name
        parsed[family.name] = [(sample.labels, sample.value) for sample in family.samples]
    return parsed


def value(samples: Samples, name: str, **labels: str) -> float:
    (found,) = [v for have, v in samples[name] if have == labels]
    return found


def test_incident_host_parses_with_every_finding_and_family(tmp_path: Path) -> None:
    code, text = diagnose("incidents", "--format", "prometheus", etc=tmp_path)
    _, as_json = diagnose("incidents", "--format", "json", etc=tmp_path)
    findings = json.loads(as_json)["findings"]
    samples = parse(text)
    assert code == CRITICAL and value(samples, "netmedic_status") == CRITICAL
    assert sorted((labels["id"], labels["subject"], labels["severity"], labels["role"], v)
                  for labels, v in samples["netmedic_finding"]) == sorted(
        (f["id"], f["subject"], f["severity"], f["remediation"]["role"], 1.0) for f in findings
    )  # fmt: skip
    by_severity = {s: sum(1 for f in findings if f["severity"] == s) for s in metrics.SEVERITIES}
    assert by_severity == {"critical": 1, "warning": 11, "info": 1}
    for severity, count in by_severity.items():
        assert value(samples, "netmedic_findings", severity=severity) == count
    # The fixture's ephemeral family: range 32768-60999, 25000 used, 24000 in TIME_WAIT.
    assert value(samples, "netmedic_ephemeral_port_range_size") == 28232
    assert value(samples, "netmedic_ephemeral_ports_used") == 25000
    assert value(samples, "netmedic_ephemeral_port_pressure_ratio") == 0.8855
    assert value(samples, "netmedic_tcp_time_wait_sockets") == 24000
    # 8080/tcp's owner is unreadable (permission denied), 22/tcp and 1900/udp are known.
    assert value(samples, "netmedic_sockets_owner_unreadable", proto="tcp") == 1
    assert value(samples, "netmedic_sockets_owner_unreadable", proto="udp") == 0
    assert value(samples, "netmedic_listening_sockets", proto="tcp") == 2
    assert value(samples, "netmedic_collection_duration_seconds") == 0.04
    assert value(samples, "netmedic_collected_timestamp_seconds") == 1714557600  # 2024-05-01T10
    assert {labels["family"]: v for labels, v in samples["netmedic_collection_errors"]} == {
        "config": 0, "ports": 0, "units": 0, "dns": 0, "processes": 0, "ephemeral": 0,
        "channels": 0,
    }  # fmt: skip


def test_failed_family_counts_its_error_and_has_no_samples(tmp_path: Path) -> None:
    code, text = diagnose("partial", "--format", "prometheus", etc=tmp_path)
    _, as_json = diagnose("partial", "--format", "json", etc=tmp_path)
    skipped = json.loads(as_json)["skipped"]
    samples = parse(text)
    assert value(samples, "netmedic_collection_errors", family="ports") == 1
    assert samples["netmedic_listening_sockets"] == []
    assert samples["netmedic_sockets_owner_unreadable"] == []
    assert value(samples, "netmedic_entries_not_evaluated") == len(skipped) > 0
    assert value(samples, "netmedic_status") == code


def test_label_values_and_help_are_escaped() -> None:
    subject = 'odd "unit"\\name\nsecond line'
    result = Diagnosis(findings=[
        Finding("x-y", "t", "warning", subject, [], "port_conflicts", {}, False),
    ])  # fmt: skip
    listing = metrics.host_metrics({"host": "h", "duration_ms": 5, "errors": []}, result)
    listing.append(metrics.Metric("netmedic_test", 'help with \\ and\nnewline "quoted"', []))
    listing[-1].add(0.25)
    text = metrics.exposition(listing)
    assert 'subject="odd \\"unit\\"\\\\name\\nsecond line"' in text
    samples = parse(text)
    assert samples["netmedic_finding"] == [(
        {"id": "x-y", "subject": subject, "severity": "warning", "role": "port_conflicts"}, 1.0,
    )]  # fmt: skip
    assert value(samples, "netmedic_test") == 0.25
    assert '\n# HELP netmedic_test help with \\\\ and\\nnewline "quoted"\n' in text


# Nagios plugin guidelines: 'label'=value[UOM];[warn];[crit];[min];[max]
PERFDATA = re.compile(r"^[a-z_]+=[0-9.]+(s)?;;;0$")


def test_table_status_line_carries_perfdata(tmp_path: Path) -> None:
    _, table = diagnose("incidents", etc=tmp_path)
    _, text = diagnose("incidents", "--format", "prometheus", etc=tmp_path)
    status, perf = table.splitlines()[0].split(" | ")
    assert status == "NETMEDIC CRITICAL - incidents: 1 critical, 11 warning, 1 info"
    pairs = perf.split(" ")
    assert all(PERFDATA.match(pair) for pair in pairs), pairs
    assert pairs == [
        "findings_critical=1;;;0", "findings_warning=11;;;0", "findings_info=1;;;0",
        "not_evaluated=0;;;0", "duration=0.04s;;;0", "ephemeral_pressure=0.8855;;;0",
        "owner_unreadable_tcp=1;;;0", "owner_unreadable_udp=0;;;0",
    ]  # fmt: skip
    # The same numbers as the exposition's.
    samples = parse(text)
    assert value(samples, "netmedic_ephemeral_port_pressure_ratio") == 0.8855


def test_output_replaces_the_file_whole(tmp_path: Path) -> None:
    textfile_dir = tmp_path / "textfile"
    textfile_dir.mkdir()
    target = textfile_dir / "netmedic.prom"
    target.write_text("old\n")
    before = os.stat(target).st_ino
    code, stdout = diagnose(
        "incidents", "--format", "prometheus", "--output", str(target), etc=tmp_path
    )
    assert (code, stdout) == (CRITICAL, "")
    _, expected = diagnose("incidents", "--format", "prometheus", etc=tmp_path)
    assert target.read_text() == expected
    assert os.stat(target).st_ino != before  # renamed over, not rewritten in place
    assert oct(os.stat(target).st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in textfile_dir.iterdir()) == ["netmedic.prom"]


def test_output_that_cannot_be_written_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-dir" / "netmedic.prom"
    code, stdout = diagnose("healthy", "--format", "prometheus", "--output", str(missing),
                            etc=tmp_path)  # fmt: skip
    assert (code, stdout) == (UNKNOWN, "")
    assert f"netmedic diagnose: --output {missing}: " in capsys.readouterr().err


def test_a_family_without_samples_still_parses() -> None:
    doc: Dict[str, Any] = {"host": "h", "duration_ms": 1, "errors": []}
    samples = parse(metrics.exposition(metrics.host_metrics(doc, Diagnosis())))
    assert samples["netmedic_finding"] == []
    assert value(samples, "netmedic_status") == 0
