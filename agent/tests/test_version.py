"""One version for the agent and the collection that ships it: netmedic.__version__,
galaxy.yml, the facts document, ``netmedic --version``, the changelog's latest release and
the tarball execution-environment.yml installs."""

from __future__ import annotations

import subprocess
import sys

import yaml
from conftest import ROOT

import netmedic
from netmedic import api
from netmedic.context import Context


def test_the_collection_and_the_agent_have_one_version() -> None:
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))
    assert galaxy["version"] == netmedic.__version__


def test_the_execution_environment_installs_this_version_s_tarball() -> None:
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text(encoding="utf-8"))
    tarball = f"netmedic-remediation-{netmedic.__version__}.tar.gz"
    assert [c["name"] for c in ee["dependencies"]["galaxy"]["collections"]] == [
        f"collections/{tarball}"
    ]
    assert [f["src"] for f in ee["additional_build_files"]] == [tarball]


def test_the_changelog_s_latest_release_is_the_version() -> None:
    changelog = yaml.safe_load(
        (ROOT / "changelogs" / "changelog.yaml").read_text(encoding="utf-8")
    )
    releases = sorted(changelog["releases"], key=lambda v: tuple(map(int, v.split("."))))
    assert releases[-1] == netmedic.__version__
    # CHANGELOG.md is Markdown antsibull-changelog writes: "## v0\.2\.0" per release.
    heading = "## v" + netmedic.__version__.replace(".", "\\.") + "\n"
    assert heading in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_version_flag_and_every_facts_document_carry_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "netmedic", "--version"], capture_output=True, text=True,
        check=False, cwd=ROOT / "agent",
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, f"netmedic {netmedic.__version__}\n")
    assert api.collect(Context(only=["ephemeral"]))["agent_version"] == netmedic.__version__
