#!/usr/bin/env bash
# The container lab's engine and images (see ../shared/LAB.md for why it looks like this).
#   scripts/lab.sh up      install docker.io + debootstrap if missing, start dockerd if none answers
#   scripts/lab.sh images  build or reuse the bookworm and trixie images; writes .lab/images.env
#   scripts/lab.sh down    stop the dockerd this script started (never one it found running)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .lab
distros=${NETMEDIC_DISTROS:-bookworm trixie}

need_packages() {
  local missing=()
  for pkg in docker.io debootstrap; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || { echo "lab: need root to install ${missing[*]}" >&2; exit 1; }
  echo "lab: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

engine_up() {
  need_packages
  if docker info >/dev/null 2>&1; then return 0; fi
  # No bridge, no iptables: lab containers use network_mode none and `docker exec`.
  nohup /usr/sbin/dockerd --bridge=none --iptables=false --ip6tables=false \
    >.lab/dockerd.log 2>&1 &
  echo $! > .lab/dockerd.pid
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && { echo "lab: dockerd started (pid $(cat .lab/dockerd.pid))" >&2; return 0; }
    kill -0 "$(cat .lab/dockerd.pid)" 2>/dev/null || break
    sleep 0.5
  done
  echo "lab: dockerd did not come up; last lines of .lab/dockerd.log:" >&2
  tail -n 20 .lab/dockerd.log >&2
  exit 1
}

engine_down() {
  [ -f .lab/dockerd.pid ] || return 0
  local pid; pid=$(cat .lab/dockerd.pid)
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f .lab/dockerd.pid
}

images() {
  # Several runs may ask at once (parallel scenarios, developers): build each image once.
  exec 9>.lab/images.lock
  flock 9
  : > .lab/images.env.tmp
  for distro in $distros; do
    image=$(molecule/images/build.sh "$distro")
    echo "NETMEDIC_IMAGE_${distro}=${image}" >> .lab/images.env.tmp
  done
  mv .lab/images.env.tmp .lab/images.env
  cat .lab/images.env
}

case "${1:-}" in
  up) engine_up ;;
  down) engine_down ;;
  images) engine_up; images ;;
  *) echo "usage: $0 up|images|down" >&2; exit 2 ;;
esac
