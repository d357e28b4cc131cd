#!/usr/bin/env bash
# Run molecule scenarios on every lab distro, the distros side by side.
# usage: scripts/molecule.sh [scenario ...]     (default: every molecule/*/molecule.yml)
# Needs .lab/images.env from `scripts/lab.sh images`. Logs: .lab/logs/<distro>-<scenario>.log
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source .lab/images.env
distros=${NETMEDIC_DISTROS:-bookworm trixie}
if [ $# -gt 0 ]; then scenarios=("$@"); else
  mapfile -t scenarios < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' \
    | xargs -n1 basename | sort)
fi
[ ${#scenarios[@]} -gt 0 ] || { echo "molecule: no scenarios found" >&2; exit 1; }
mkdir -p .lab/logs
export PATH="$PWD/.venv/bin:$PATH"

# One lane per distro: scenarios in a lane run one after another.
lane() {
  local distro=$1 failed=0 image_var="NETMEDIC_IMAGE_$1"
  for scenario in "${scenarios[@]}"; do
    local log=".lab/logs/${distro}-${scenario}.log" start=$SECONDS
    if MOLECULE_DISTRO=$distro NETMEDIC_IMAGE=${!image_var} \
       MOLECULE_EPHEMERAL_DIRECTORY="$PWD/.lab/molecule/${distro}/${scenario}" \
       molecule test -s "$scenario" >"$log" 2>&1; then
      echo "molecule: PASS ${scenario} on ${distro} ($((SECONDS - start)) s)"
    else
      echo "molecule: FAIL ${scenario} on ${distro} ($((SECONDS - start)) s), last lines of $log:"
      tail -n 40 "$log" | sed "s/^/  [${distro}/${scenario}] /"
      failed=1
    fi
  done
  return $failed
}

pids=()
for distro in $distros; do lane "$distro" & pids+=($!); done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
