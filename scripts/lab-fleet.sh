#!/usr/bin/env bash
# The lab fleet: systemd containers with the five incidents planted, healed by site.yml.
#   scripts/lab-fleet.sh up     create the fleet (inventories/lab), plant, then site.yml --check →
#                               site.yml (with one host that does not exist) → facts.yml →
#                               site.yml again → verify; then the target-set guards and the loop
#                               breaker: the audit log rotated, the VPN incident planted again,
#                               escalated, and an incident playbook (globalprotect_reap.yml) run
#   scripts/lab-fleet.sh down   remove the fleet's containers
# NETMEDIC_LAB_LIMIT limits the fleet (an ansible --limit pattern; make test uses a smaller one).
# Reports: .lab/fleet/{site-check,site,after,site-again,site-escalate,incident}/ ; logs: .lab/fleet/<step>.log
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
out=.lab/fleet
limit=${NETMEDIC_LAB_LIMIT:-all}
# Every host of the fleet at once: they mostly wait on systemd and on the containers.
export ANSIBLE_FORKS=${ANSIBLE_FORKS:-12}

down() {
  docker info >/dev/null 2>&1 || return 0  # no engine, no fleet
  local ids; ids=$(docker ps -aq --filter label=netmedic.lab=fleet)
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
}

step() {  # step NAME PLAYBOOK [ARGS...]: one ansible-playbook run, logged, with its wall time
  local name=$1 start=$SECONDS; shift
  if ansible-playbook -i inventories/lab --limit "$limit" "$@" >"$out/$name.log" 2>&1; then
    echo "lab: ${name} ok ($((SECONDS - start)) s)"
  else
    echo "lab: ${name} FAILED ($((SECONDS - start)) s), last lines of $out/$name.log:"
    tail -n 40 "$out/$name.log" | sed "s/^/  [$name] /"
    return 1
  fi
}

refused() {  # refused NAME REGEX PLAYBOOK [ARGS...]: the run must fail, saying REGEX
  local name=$1 expect=$2 start=$SECONDS; shift 2
  if ansible-playbook -i inventories/lab "$@" >"$out/$name.log" 2>&1; then
    echo "lab: ${name} FAILED: the run was not refused ($out/$name.log)"; return 1
  fi
  grep -Eq "$expect" "$out/$name.log" \
    || { echo "lab: ${name} FAILED: refused without saying /$expect/ ($out/$name.log)"; return 1; }
  echo "lab: ${name} ok, refused ($((SECONDS - start)) s)"
}

unhealed() {  # unhealed NAME HOST PLAYBOOK [ARGS...]: the run fails for HOST alone, unreachable
  local name=$1 host=$2 start=$SECONDS; shift 2
  if ansible-playbook -i inventories/lab "$@" >"$out/$name.log" 2>&1; then
    echo "lab: ${name} FAILED: the run passed although ${host} does not exist ($out/$name.log)"; return 1
  fi
  local recap failed; recap=$(sed -n '/^PLAY RECAP/,$p' "$out/$name.log")
  failed=$(grep -E 'failed=[1-9]|unreachable=[1-9]' <<<"$recap" | awk '{print $1}' | tr '\n' ' ')
  if [ "$failed" != "$host " ]; then
    echo "lab: ${name} FAILED: expected only ${host} to fail, the recap says: ${failed:-none}"
    tail -n 40 "$out/$name.log" | sed "s/^/  [$name] /"; return 1
  fi
  # ... and every other host of the fleet ran (a run refused up front fails only ${host} too).
  local want; want=$(ansible -i inventories/lab lab --limit "$limit" --list-hosts | tail -n +2 | wc -l)
  if [ "$(grep -c ' : ok=' <<<"$recap")" -ne $((want + 1)) ]; then
    echo "lab: ${name} FAILED: the recap does not list the ${want} fleet hosts besides ${host}"
    tail -n 40 "$out/$name.log" | sed "s/^/  [$name] /"; return 1
  fi
  echo "lab: ${name} ok, only ${host} failed ($((SECONDS - start)) s)"
}

changed_hosts() {  # the PLAY RECAP lines of a log that report a change or a failure
  sed -n '/^PLAY RECAP/,$p' "$1" | grep -E 'changed=[1-9]|failed=[1-9]|unreachable=[1-9]' || true
}

up() {
  scripts/lab.sh images >/dev/null
  set -a; source .lab/images.env; set +a
  down
  rm -rf "$out"; mkdir -p "$out"
  step create playbooks/lab/create.yml
  step plant playbooks/lab/plant.yml
  # The plan first: hosts without an agent are diagnosed with a scratch copy of it.
  step site-check playbooks/site.yml --check --diff -e netmedic_report_dir="$PWD/$out/site-check"
  # The fixing run, with one more host in the fleet that does not exist: it must be
  # reported unreachable and fail the run, while every other host is healed.
  local missing="$out/missing-host.yml"
  printf 'all:\n  children:\n    lab:\n      hosts:\n        nm-lab-missing: {netmedic_distro: bookworm}\n' > "$missing"
  # (It is one host more than the lab declares: netmedic_max_hosts grows with it.)
  unhealed site "nm-lab-missing" playbooks/site.yml -i "$missing" --limit "$limit,nm-lab-missing" \
    -e netmedic_report_dir="$PWD/$out/site" -e netmedic_max_hosts=13
  step facts-after playbooks/facts.yml -e netmedic_report_dir="$PWD/$out/after"
  step site-again playbooks/site.yml -e netmedic_report_dir="$PWD/$out/site-again"
  local again; again=$(changed_hosts "$out/site-again.log")
  if [ -n "$again" ]; then
    echo "lab: the second site.yml run changed something:"; echo "$again"; return 1
  fi
  echo "lab: the second site.yml run changed nothing on any host"
  step verify playbooks/lab/verify.yml -e lab_reports="$PWD/$out"
  # A target set that is empty or larger than the inventory allows is refused.
  refused refuse-empty "leaves us with no hosts to target" playbooks/site.yml --limit nm-lab-no-such-host
  refused refuse-too-many "hosts targeted; the inventory allows 1 to 1 \\(netmedic_max_hosts\\)" \
    playbooks/site.yml --limit "$limit" -e netmedic_max_hosts=1
  # The loop breaker: rotate the audit log, plant the VPN incident again; with max_fixes 1
  # it is escalated (the fix recorded before the rotation still counts).
  limit="$limit:&lab_lingering_vpn"
  step rotate-audit playbooks/lab/rotate-audit.yml
  step replant playbooks/lab/plant.yml
  step site-escalate playbooks/site.yml -e netmedic_report_dir="$PWD/$out/site-escalate" \
    -e '{"netmedic_policy": {"auto": ["process_reaper"], "allow_destructive": ["lingering-client-processes"],
         "max_fixes": 1, "window_hours": 24}}'
  step verify-escalation playbooks/lab/verify-escalation.yml -e lab_reports="$PWD/$out"
  # An incident playbook is site.yml for its finding: under the lab's own policy (3 fixes
  # a day) it fixes the lingering processes again and records its remediate line.
  step incident playbooks/globalprotect_reap.yml -e netmedic_targets=lab_lingering_vpn \
    -e netmedic_report_dir="$PWD/$out/incident"
  step verify-incident playbooks/lab/verify-incident.yml -e lab_reports="$PWD/$out"
  echo "=== the fleet report of the fixing run ($out/site/summary.md)"
  cat "$out/site/summary.md"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
