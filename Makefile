# Thin wrappers over scripts/ (see README.md). Everything runs from this directory.
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: run test lint pytest collection molecule images lab lab-down bench bench-fleet venv

run:  ## Diagnose this machine and show the remediation plan (check mode, no changes)
	@scripts/venv.sh runtime
	$(VENV)/ansible-playbook playbooks/site.yml --check --diff

test:  ## Lint, pytest and every molecule scenario on bookworm and trixie
	@scripts/test.sh

lint:
	@scripts/venv.sh test
	$(VENV)/yamllint --strict . && $(VENV)/ansible-lint --profile production \
	  && $(VENV)/ruff check agent bench plugins tests scripts extensions && $(VENV)/mypy

pytest:
	@scripts/venv.sh test
	$(VENV)/pytest

collection:  ## Build the collection tarball, use it from outside the repository, ansible-test it
	@scripts/venv.sh test
	@scripts/collection.sh

images:
	@scripts/lab.sh images

molecule:  ## make molecule S="default" to run some scenarios
	@scripts/venv.sh test
	@scripts/lab.sh images >/dev/null
	@scripts/molecule.sh $(S)

lab:  ## The lab fleet: 12 containers, the five incidents planted, healed by site.yml (stays up)
	@scripts/venv.sh test
	@scripts/lab-fleet.sh up

lab-down:  ## Remove the lab fleet's containers (and stop the engine make lab started)
	@scripts/lab-fleet.sh down
	@scripts/lab.sh down

bench:  ## Port-owner benchmark against ss, psutil and listen_ports_facts
	@scripts/venv.sh test
	$(VENV)/python bench/compare_ports.py --preset medium

bench-fleet:  ## site.yml and facts.yml on the lab fleet against `ansible -m setup` (after make lab)
	@scripts/venv.sh test
	$(VENV)/python bench/compare_fleet.py --profile
