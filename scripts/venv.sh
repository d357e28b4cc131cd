#!/usr/bin/env bash
# Create or refresh .venv from the pinned requirements; a no-op when they have not changed.
# usage: scripts/venv.sh runtime|test
set -euo pipefail
cd "$(dirname "$0")/.."
# The repository is the collection netmedic.remediation: ansible.cfg, molecule, ansible-lint
# and pytest find it here by FQCN (a relative link, so a moved checkout keeps it). The
# project's .ansible/collections is where ansible-lint looks, and a link to this directory
# there it uses as it is instead of building and installing a copy.
link=.ansible/collections/ansible_collections/netmedic/remediation
if [ "$(readlink "$link" 2>/dev/null)" != ../../../.. ]; then
  mkdir -p "$(dirname "$link")" && ln -sfn ../../../.. "$link"
fi
kind=${1:-runtime}
want=$(cat requirements/*.txt pyproject.toml | sha256sum | cut -c1-16)-$kind
stamp=.venv/.netmedic-stamp
if [ -x .venv/bin/python ] && { [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] || \
     { [ "$kind" = runtime ] && grep -q -- "$(echo "$want" | cut -d- -f1)-test" "$stamp" 2>/dev/null; }; }; then
  exit 0
fi
echo "venv: installing requirements/$kind.txt into .venv" >&2
python3 -m venv .venv
# This machine's pip config names local indexes that may be absent; drop that noise only.
.venv/bin/pip install --quiet --disable-pip-version-check -r "requirements/$kind.txt" -e . 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" >&2 || :; }
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || { echo "venv: pip install failed (exit $rc)" >&2; exit "$rc"; }
echo "$want" > "$stamp"
