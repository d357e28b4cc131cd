#!/usr/bin/env bash
# Build (or reuse) the systemd lab image for one Debian release.
# usage: build.sh bookworm|trixie      prints the image reference it made or found
# The tag is a hash of the package list and this script, so a second run reuses it.
set -euo pipefail
distro=${1:?usage: build.sh bookworm|trixie}
here=$(cd "$(dirname "$0")" && pwd)
mirror=${NETMEDIC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The tag hashes everything that goes into the image: packages, this script, rootfs/.
tag=$( (cd "$here" && find packages.txt build.sh rootfs -type f -o -type l | LC_ALL=C sort \
        | while read -r f; do echo "$f"; if [ -L "$f" ]; then readlink "$f"; else cat "$f"; fi; done) \
      | sha256sum | cut -c1-12)
image="netmedic-lab:${distro}-${tag}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

packages=$(grep -vE '^\s*(#|$)' "$here/packages.txt" | paste -sd, -)
root=$(mktemp -d "/var/tmp/netmedic-${distro}.XXXXXX")
cleanup() { umount "$root/proc" 2>/dev/null || true; rm -rf "$root"; }
trap cleanup EXIT

echo "building $image (debootstrap $distro)" >&2
debootstrap --variant=minbase --include="$packages" "$distro" "$root" "$mirror" >&2
# Fixture daemons are started by the scenarios that plant them, not at boot.
chroot "$root" systemctl disable dnsmasq.service minidlna.service prometheus-node-exporter.service >&2
chroot "$root" systemctl mask systemd-firstboot.service getty@tty1.service >&2
# Lab-only units (writable per-netns sysctls); see the comments in rootfs/.
cp -a "$here/rootfs/." "$root/"
# An image's machine-id must be empty so each container gets its own.
: > "$root/etc/machine-id"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
# A Dockerfile (not `docker import`) so the image can carry STOPSIGNAL: systemd
# halts cleanly on SIGRTMIN+3, which makes container restarts fast.
ctx=$(mktemp -d "/var/tmp/netmedic-ctx.XXXXXX")
trap 'cleanup; rm -rf "$ctx"' EXIT
tar -C "$root" -cf "$ctx/rootfs.tar" .
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
ADD rootfs.tar /
ENV container=docker
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" >&2
echo "$image"
