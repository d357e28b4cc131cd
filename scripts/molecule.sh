#!/usr/bin/env bash
# Run molecule scenarios on every lab distro, several (distro, scenario) pairs at once.
# usage: scripts/molecule.sh [scenario ...]     (default: every molecule/*/molecule.yml)
# NETMEDIC_JOBS pairs run concurrently (default 4: scenarios mostly wait on systemd).
# A scenario with a `distros` file runs on the distros it lists (of these) only.
# Needs .lab/images.env from `scripts/lab.sh images`. Logs: .lab/logs/<distro>-<scenario>.log
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source .lab/images.env
distros=${NETMEDIC_DISTROS:-bookworm trixie}
jobs=${NETMEDIC_JOBS:-4}
if [ $# -gt 0 ]; then scenarios=("$@"); else
  mapfile -t scenarios < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' \
    | xargs -n1 basename | sort)
fi
[ ${#scenarios[@]} -gt 0 ] || { echo "molecule: no scenarios found" >&2; exit 1; }
mkdir -p .lab/logs
# Verdicts of this invocation only (several may run at once).
results=$(mktemp -d .lab/results.XXXXXX)
trap 'rm -rf "$results"' EXIT
export NETMEDIC_RESULTS=$results
# Container names carry this checkout's id: another checkout's run of the same scenario
# would otherwise destroy ours (docker names are global to the engine).
NETMEDIC_CHECKOUT=$(pwd -P | sha1sum | cut -c1-6)
export NETMEDIC_CHECKOUT
export PATH="$PWD/.venv/bin:$PATH"

run_pair() {  # run_pair DISTRO SCENARIO: one `molecule test`, its verdict in .lab/results
  local distro=$1 scenario=$2 image_var="NETMEDIC_IMAGE_$1" start=$SECONDS
  local log=".lab/logs/${distro}-${scenario}.log"
  if MOLECULE_DISTRO=$distro NETMEDIC_IMAGE=${!image_var} \
     MOLECULE_EPHEMERAL_DIRECTORY="$PWD/.lab/molecule/${distro}/${scenario}" \
     molecule test -s "$scenario" >"$log" 2>&1; then
    echo "molecule: PASS ${scenario} on ${distro} ($((SECONDS - start)) s)" | tee "$NETMEDIC_RESULTS/${distro}-${scenario}.pass"
  else
    echo "molecule: FAIL ${scenario} on ${distro} ($((SECONDS - start)) s), last lines of $log:" \
      | tee "$NETMEDIC_RESULTS/${distro}-${scenario}.fail"
    tail -n 40 "$log" | sed "s/^/  [${distro}\/${scenario}] /"
  fi
}
export -f run_pair
export "${!NETMEDIC_IMAGE_@}"

pairs=()
for scenario in "${scenarios[@]}"; do
  only=$(grep -vhE '^\s*(#|$)' "molecule/$scenario/distros" 2>/dev/null || echo "$distros")
  for distro in $distros; do
    if grep -qxF "$distro" <<<"$(tr ' ' '\n' <<<"$only")"; then pairs+=("$distro $scenario"); fi
  done
done
[ ${#pairs[@]} -gt 0 ] || { echo "molecule: no scenario runs on ${distros}" >&2; exit 1; }
printf '%s\n' "${pairs[@]}" | xargs -P "$jobs" -L 1 bash -c 'run_pair "$@"' _

passed=$(find "$results" -name '*.pass' | wc -l)
failed=$(find "$results" -name '*.fail' | wc -l)
expected=${#pairs[@]}
# The plain closing line CI reads, e.g. "molecule: 14 passed, 0 failed".
echo "molecule: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ] && [ "$passed" -eq "$expected" ]
