#!/usr/bin/env bash
# `make test`'s collection stage: netmedic.remediation as others get it.
#  1. build the tarball; install it three ways (the tarball, a requirements.yml entry for
#     it, the git checkout) into scratch collection paths;
#  2. ansible-doc every module, role and plugin by FQCN from the installed tarball;
#  3. from a directory outside the repository without ansible.cfg: a playbook applying
#     netmedic.remediation.netmedic_agent and netmedic.remediation.netmedic_facts on
#     localhost (then the role's state=absent), one importing netmedic.remediation.site
#     (--check), and netmedic.remediation.facts;
#  4. ansible-test sanity and units on the installed copy (what Galaxy imports);
#  5. antsibull-changelog lint, ansible-builder create (the context only, see
#     execution-environment.yml), `pip install .` giving the netmedic command.
# usage: scripts/collection.sh            (from a checkout with .venv: scripts/venv.sh test)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export PATH="$repo/.venv/bin:$PATH"
version=$(python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
scratch=$(mktemp -d /tmp/netmedic-collection.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# ansible-test's Pythons: the controller's (this venv's) for the controller-side tests,
# and every one the modules support (tests/config.yml) for compile and import.
controller_python=${NETMEDIC_CONTROLLER_PYTHON:-3.11}
target_pythons=${NETMEDIC_TARGET_PYTHONS:-3.9 3.10 3.11 3.12 3.13}

step() { echo "--- collection: $*"; }
# ansible-galaxy and ansible-doc print cryptography's DSA deprecation on every start.
quiet() { "$@" 2> >(grep -v -e 'CryptographyDeprecationWarning' -e 'from cryptography' >&2); }

step "build netmedic-remediation-$version.tar.gz"
quiet ansible-galaxy collection build --output-path "$scratch/dist" . >/dev/null
tarball=$scratch/dist/netmedic-remediation-$version.tar.gz
tar -tzf "$tarball" >"$scratch/contents"
for kept_out in molecule/ bench/ inventories/ agent/tests/ .venv/ .ansible/ playbooks/lab/; do
  if grep -q "^$kept_out" "$scratch/contents"; then
    echo "collection: $kept_out is in the tarball (galaxy.yml build_ignore)" >&2; exit 1
  fi
done
grep -qx "agent/netmedic/__init__.py" "$scratch/contents" \
  || { echo "collection: the agent (agent/netmedic) is not in the tarball" >&2; exit 1; }

step "install: the tarball, a requirements.yml entry, the git checkout"
# From a directory outside the repository (whose ansible.cfg finds the checkout's link),
# each into a scratch path of its own; --force: the machine may hold the collection elsewhere.
mkdir "$scratch/outside"
cd "$scratch/outside"
install_into() {  # install_into PATH SOURCE...: ansible-galaxy collection install SOURCE... into PATH
  local path=$scratch/$1 got; shift
  ANSIBLE_COLLECTIONS_PATH=$path quiet ansible-galaxy collection install --force -p "$path" "$@" >/dev/null
  got=$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["collection_info"]["version"])' \
    "$path/ansible_collections/netmedic/remediation/MANIFEST.json")
  [ "$got" = "$version" ] || { echo "collection: installing $* gave $got, not $version" >&2; return 1; }
}
install_into collections "$tarball"
printf -- '---\ncollections:\n  - name: %s\n    type: file\n' "$tarball" >"$scratch/requirements.yml"
install_into from-requirements -r "$scratch/requirements.yml"
install_into from-git "git+file://$repo,HEAD"

# Everything from here reads the installed tarball only: no ansible.cfg, no checkout.
installed=$scratch/collections/ansible_collections/netmedic/remediation
export ANSIBLE_COLLECTIONS_PATH=$scratch/collections

step "ansible-doc every module, role and plugin by FQCN"
doc() {  # doc TYPE COUNT: all COUNT plugins of TYPE listed, and rendered without a warning
  local type=$1 count=$2 names
  names=$(quiet ansible-doc -t "$type" -l netmedic.remediation --json \
    | python -c 'import json, sys; print(" ".join(sorted(json.load(sys.stdin))))')
  [ "$(wc -w <<<"$names")" -eq "$count" ] \
    || { echo "collection: ansible-doc lists $type '$names', not $count of them" >&2; return 1; }
  # shellcheck disable=SC2086 # one name per word
  if ! quiet ansible-doc -t "$type" $names >"$scratch/doc.txt" 2>&1 \
     || grep -q -e WARNING -e ERROR "$scratch/doc.txt"; then
    echo "collection: ansible-doc -t $type $names:" >&2; cat "$scratch/doc.txt" >&2; return 1
  fi
  echo "$type: $names"
}
doc module "$(find "$installed/plugins/modules" -name '*.py' | wc -l)"
doc role "$(find "$installed/roles" -mindepth 1 -maxdepth 1 -type d | wc -l)"
doc lookup "$(find "$installed/plugins/lookup" -name '*.py' | wc -l)"

step "outside the repository: netmedic_agent and netmedic_facts on localhost"
# The role installs for real: its command, /etc/netmedic and its logrotate file are fixed
# paths. On a machine that already has them this stage would overwrite someone's agent:
# it refuses instead. One run at a time (the paths are this machine's).
exec 8>/tmp/netmedic-collection-localhost.lock
flock 8
for path in /usr/local/bin/netmedic /etc/netmedic /etc/logrotate.d/netmedic; do
  if [ -e "$path" ]; then
    echo "collection: $path exists; the localhost test installs and removes the agent there," \
      "so it runs only where netmedic is not installed" >&2
    exit 1
  fi
done
cp "$repo/tests/collection/outside.yml" playbook.yml
printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' "$(command -v python)" >hosts
run_outside() {  # run_outside LOG ARGS...: ansible-playbook here; LOG keeps the output
  local log=$1; shift
  if ! ANSIBLE_CALLBACK_RESULT_FORMAT=yaml ansible-playbook -i hosts "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2; return 1
  fi
}
status=0
run_outside "$scratch/first.log" playbook.yml -e "netmedic_collection_version=$version" || status=1
if [ $status -eq 0 ]; then
  # The second run changes nothing (the role installs the same bundle and config).
  run_outside "$scratch/second.log" playbook.yml -e "netmedic_collection_version=$version" || status=1
  grep -Eq "localhost +: ok=[0-9]+ +changed=0 " "$scratch/second.log" \
    || { echo "collection: the second run changed something:" >&2; grep -E "changed:|localhost +:" "$scratch/second.log" >&2; status=1; }
fi
# Whatever happened: the role's state=absent removes what the run installed.
run_outside "$scratch/absent.log" playbook.yml -e netmedic_agent_state=absent || status=1
for path in /usr/local/bin/netmedic /etc/netmedic /etc/logrotate.d/netmedic "$scratch/agent"; do
  [ ! -e "$path" ] || { echo "collection: state=absent left $path" >&2; status=1; }
done
flock -u 8
[ $status -eq 0 ] || exit 1

step "outside the repository: the collection's playbooks on localhost"
# A playbook importing netmedic.remediation.site, in check mode: it diagnoses with a
# scratch copy of the agent the installed collection packs. Then facts.yml by its FQCN.
cp "$repo/tests/collection/site.yml" site.yml
run_outside "$scratch/site.log" site.yml --check -e netmedic_report_root="$scratch/reports/site"
run_outside "$scratch/facts.log" netmedic.remediation.facts -e netmedic_report_root="$scratch/reports/facts"
ls "$scratch"/reports/{site,facts}/*/localhost.json >/dev/null

step "ansible-test sanity and units on the installed collection"
# ansible-test fetches get-pip.py from ci-files.testing.ansible.com to start each virtual
# environment; its cache gets a stand-in that installs the same pip from the package index.
pip_version=$(python -c 'import types; from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="3.11"))["pip"])')
mkdir -p ~/.ansible/test/cache
cp "$repo/scripts/get_pip_offline.py" ~/.ansible/test/cache/"get_pip_${pip_version//./_}.py"
cd "$installed"
# ansible-test finds each Python as pythonX.Y on PATH: link the real interpreters (a pyenv
# shim answers to every name but runs only the versions pyenv has enabled).
python_for() {  # python_for X.Y: a working interpreter of that version
  local candidate
  for candidate in "$(command -v "python$1" || :)" ~/.pyenv/versions/"$1".*/bin/"python$1" "/usr/bin/python$1"; do
    if [ -x "$candidate" ] && "$candidate" -c '' 2>/dev/null; then echo "$candidate"; return; fi
  done
  echo "collection: no working python$1 (NETMEDIC_TARGET_PYTHONS and NETMEDIC_CONTROLLER_PYTHON" \
    "name the Pythons to test)" >&2
  return 1
}
mkdir "$scratch/bin"
for v in $(printf '%s\n' "$controller_python" $target_pythons | sort -uV); do
  interpreter=$(python_for "$v")
  ln -s "$interpreter" "$scratch/bin/python$v"
done
export PATH="$scratch/bin:$PATH"
# Controller-side tests once, on the controller's Python; compile and import (the ones that
# differ per Python) on every Python the modules support.
ansible-test sanity --venv --python "$controller_python" --color no \
  --skip-test compile --skip-test import
for v in $target_pythons; do
  ansible-test sanity --venv --python "$v" --color no --test compile --test import
done
ansible-test units --venv --python "$controller_python" --color no
cd "$scratch/outside"

step "changelog, execution environment, the agent as a Python package"
(cd "$repo" && antsibull-changelog lint)
# The context `ansible-builder build` would build: the base image's package manager and
# Python, the pinned ansible-core, this tarball installed by ansible-galaxy, the
# collection's Python and system packages for introspection to add.
cp "$tarball" "$repo/execution-environment.yml" "$repo/bindep.txt" "$repo/requirements-ee.txt" .
ansible-builder create --file execution-environment.yml --context "$scratch/ee" \
  --output-filename Containerfile >/dev/null
ee=$scratch/ee
core_pin=$(grep -o '^ansible-core==[0-9.]*' "$repo/requirements/runtime.txt")
ee_check() {  # ee_check WHAT FILE PATTERN: the generated context must have it
  grep -Eq -- "$3" "$ee/$2" || { echo "collection: the EE context lacks $1 ($2: /$3/)" >&2; exit 1; }
}
ee_check "the pinned ansible-core" Containerfile "ANSIBLE_INSTALL_REFS=\"$core_pin "
ee_check "the collection install" Containerfile "ansible-galaxy collection install .* -r requirements.yml"
ee_check "the tarball as a requirement" _build/requirements.yml "name: collections/netmedic-remediation-$version.tar.gz"
ee_check "psutil" _build/requirements.txt "^psutil"
ee_check "PyYAML" _build/requirements.txt "^PyYAML"
ee_check "tar" _build/bindep.txt "^tar "
cmp -s "$tarball" "$ee/_build/collections/netmedic-remediation-$version.tar.gz" \
  || { echo "collection: the EE context does not carry this tarball" >&2; exit 1; }
# The README's way to the command: a virtual environment and `pip install .` of the checkout.
python -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install --quiet --disable-pip-version-check "$repo" 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" >&2 || :; }
got=$("$scratch/venv/bin/netmedic" --version)
[ "$got" = "netmedic $version" ] \
  || { echo "collection: pip install . gives '$got', not 'netmedic $version'" >&2; exit 1; }
echo "collection: netmedic.remediation $version builds, installs and passes from outside the repository"
