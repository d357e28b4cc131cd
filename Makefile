# Thin wrappers over scripts/ (see README.md). Everything runs from this directory.
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: run test lint pytest molecule images lab lab-down bench venv

run:  ## Diagnose this machine and show the remediation plan (check mode, no changes)
	@scripts/venv.sh runtime
	$(VENV)/ansible-playbook playbooks/site.yml --check --diff

test:  ## Lint, pytest and every molecule scenario on bookworm and trixie
	@scripts/test.sh

lint:
	@scripts/venv.sh test
	$(VENV)/yamllint --strict . && $(VENV)/ansible-lint --profile production \
	  && $(VENV)/ruff check agent bench library && $(VENV)/mypy

pytest:
	@scripts/venv.sh test
	$(VENV)/pytest

images:
	@scripts/lab.sh images

molecule:  ## make molecule S="default" to run some scenarios
	@scripts/venv.sh test
	@scripts/lab.sh images >/dev/null
	@scripts/molecule.sh $(S)

bench:  ## Port-owner benchmark against ss, psutil and listen_ports_facts
	@scripts/venv.sh test
	$(VENV)/python bench/compare_ports.py --preset medium
