#!/usr/bin/env bash
# `make test`: everything, on a fresh Debian/Ubuntu machine, as root.
# Stages: setup (venv, browser engine, docker engine, images) → lint → pytest →
# collection (the tarball built, installed and used from outside the repository,
# ansible-test sanity and units) → run (`make run` on this machine) → molecule (both
# distros) → lab (the fleet, planted and healed).
# Every stage prints its wall time; any failure fails the run with its reason.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
declare -a summary=()
status=0

stage() {  # stage NAME COMMAND...
  local name=$1 start=$SECONDS; shift
  echo "=== ${name}"
  if "$@"; then
    summary+=("$(printf '%-10s ok     %5d s' "$name" $((SECONDS - start)))")
  else
    summary+=("$(printf '%-10s FAILED %5d s' "$name" $((SECONDS - start)))")
    status=1
  fi
}

report() {
  echo "=== stage times"
  printf '%s\n' "${summary[@]}"
  [ $status -eq 0 ] && echo "make test: all stages passed" || echo "make test: FAILED (see above)"
}

lint() {
  local rc=0
  yamllint --strict . || rc=1
  ansible-lint --profile production || rc=1
  ruff check agent bench plugins tests scripts extensions || rc=1
  mypy || rc=1
  return $rc
}

# The lab fleet at its reduced size (NETMEDIC_LAB_LIMIT=all for all 12 hosts), removed
# whatever the outcome; its logs and reports stay in .lab/fleet/.
lab() {
  local rc=0
  NETMEDIC_LAB_LIMIT=${NETMEDIC_LAB_LIMIT:-lab_small} scripts/lab-fleet.sh up || rc=1
  scripts/lab-fleet.sh down
  return $rc
}

# need COMMAND PACKAGE: install Debian's PACKAGE when COMMAND is missing.
need() {
  command -v "$1" >/dev/null && return 0
  echo "setup: installing $2 (for $1)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$2" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q "$2" >/dev/null; }
}

# The report's page is tested in a real browser engine (agent/tests/test_report.py);
# ansible-rulebook (molecule/eda) runs its rules on a JVM, Java 17 or later.
setup() {
  scripts/venv.sh test && need chromium-headless-shell chromium-headless-shell \
    && need java default-jre-headless && scripts/lab.sh images
}

# The engine we start is ours to stop; one that was already running is left alone.
trap 'scripts/lab.sh down' EXIT

stage setup setup
if [ $status -ne 0 ]; then
  echo "make test: setup failed, so lint, pytest and the container suite cannot run" >&2
  report; exit 1
fi
stage lint lint
stage pytest pytest
stage collection scripts/collection.sh
stage run make run
stage molecule scripts/molecule.sh
stage lab lab
report
exit $status
