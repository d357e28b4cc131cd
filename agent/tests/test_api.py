"""netmedic.api: the config read once and from where, the facts and diagnosis it returns."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any, List

import pytest
from conftest import FIXTURES, fixture_ctx

from netmedic import api, config
from netmedic.context import Context

MALFORMED = FIXTURES / "config" / "malformed"
GOOD = FIXTURES / "config" / "good"
SAVED = FIXTURES / "diagnose"


def config_errors(document: Any) -> List[Any]:
    return [error for error in document["errors"] if error["family"] == "config"]


def test_collect_reports_a_malformed_config_once_and_goes_on() -> None:
    doc = api.collect(fixture_ctx(MALFORMED, only=["processes"]))
    assert doc["processes"] == {"profiles": []}
    (error,) = doc["errors"]
    assert (error["family"], error["type"]) == ("config", "ConfigError")
    assert error["message"].startswith("/etc/netmedic/config.yml: invalid YAML")


def test_collect_hands_the_host_config_to_the_collectors() -> None:
    doc = api.collect(fixture_ctx(GOOD, only=["units", "dns"]))
    assert doc["errors"] == []
    assert doc["units"]["requested"][0] == "snap.multipass.multipassd.service"
    assert doc["dns"]["probe"]["timeout_s"] == 1.5


def test_collect_uses_the_callers_config_instead_of_the_file() -> None:
    ctx = fixture_ctx(MALFORMED, only=["units"], config={"units": ["given.service"]})
    doc = api.collect(ctx)
    assert doc["errors"] == []  # the malformed file was never read
    assert doc["units"]["requested"][0] == "given.service"


def test_only_ports_reads_no_config_and_imports_no_yaml() -> None:
    sys.modules.pop("yaml", None)
    doc = api.collect(fixture_ctx(MALFORMED, proc_root=Path("/proc"), only=["ports"]))
    assert doc["errors"] == []
    assert "yaml" not in sys.modules


def test_the_config_is_read_once_per_diagnosis(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: List[Path] = []
    real = config.load_config

    def counting(etc_root: Path) -> Any:
        reads.append(etc_root)
        return real(etc_root)

    monkeypatch.setattr(config, "load_config", counting)
    host = api.diagnose_host(fixture_ctx(MALFORMED, only=["processes", "channels"]))
    assert reads == [MALFORMED / "etc"]
    assert len(config_errors(host.facts)) == 1
    assert host.config == {}
    assert {s["id"] for s in host.diagnosis.skipped} >= {"declared-port-held-by-other"}


def test_a_named_config_file_wins_and_a_bad_one_is_named(tmp_path: Path) -> None:
    saved = {"schema_version": 2, "host": "h", "errors": []}
    named = tmp_path / "config.yml"
    named.write_text("units: [from-the-file.service]\n")
    host = api.diagnose_host(fixture_ctx(MALFORMED), facts=saved, config_path=str(named))
    assert host.config == {"units": ["from-the-file.service"]}
    assert host.facts["errors"] == []
    named.write_text("units: {\n")
    host = api.diagnose_host(fixture_ctx(MALFORMED), facts=saved, config_path=str(named))
    (error,) = config_errors(host.facts)
    assert error["message"].startswith(f"{named}: invalid YAML")
    assert saved["errors"] == []  # the caller's document is not changed
    with pytest.raises(api.ConfigUnreadable, match=f"{tmp_path / 'absent.yml'}: cannot read"):
        api.diagnose_host(Context(), facts=saved, config_path=str(tmp_path / "absent.yml"))


def test_check_of_a_saved_document(tmp_path: Path) -> None:
    import json  # noqa: PLC0415

    facts = json.loads((SAVED / "incidents.json").read_text())
    config_path = str(SAVED / "config.yml")
    present = api.check(Context(), "declared-port-held-by-other", facts=facts,
                        config_path=config_path)  # fmt: skip
    assert (present.state, present.exit_code) == ("present", 1)
    assert present.findings and present.to_dict()["id"] == "declared-port-held-by-other"
    one = api.check(Context(), "declared-port-held-by-other", subject="no/such",
                    facts=facts, config_path=config_path)  # fmt: skip
    assert (one.state, one.exit_code, one.subject) == ("absent", 0, "no/such")
    unknown = api.check(Context(), "no-such-entry", facts=facts, config_path=config_path)
    assert (unknown.state, unknown.exit_code) == ("unknown id", 3)


def test_results_are_values() -> None:
    facts = {"schema_version": 2, "host": "h", "errors": []}
    first = api.diagnose_host(Context(), facts=facts, config_path=str(SAVED / "config.yml"))
    second = api.diagnose_host(Context(), facts=facts, config_path=str(SAVED / "config.yml"))
    assert first == second
    assert repr(first).startswith("HostDiagnosis(facts={")
    with pytest.raises(TypeError):
        hash(first)


def test_probe_bind_classifies_a_held_port() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = api.probe_bind(Context(), "tcp", port, "127.0.0.1")
    assert result.status == "in_use"
    with pytest.raises(ValueError, match="PORT must be a number from 1 to 65535"):
        api.probe_bind(Context(), "tcp", 0)
    with pytest.raises(ValueError, match="protocol must be tcp or udp"):
        api.probe_bind(Context(), "sctp", 80)


def test_installed_config_is_the_host_file_whatever_the_caller_passes() -> None:
    given = {"units": ["given.service"]}
    config, error = api.installed_config(fixture_ctx(GOOD, config=given))
    assert error is None and config["units"] == ["snap.multipass.multipassd.service"]
    config, error = api.installed_config(fixture_ctx(MALFORMED, config=given))
    assert config == {}
    assert error is not None and error.startswith("/etc/netmedic/config.yml: invalid YAML")
    assert api.installed_config(fixture_ctx(FIXTURES / "no-such-root")) == ({}, None)
