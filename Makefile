# vmguard.hardening: the two commands of the README, and the steps they are made of.
#   make demo   set up, start libvirt, build or reuse the golden image, boot the lab, run the play
#   make test   lint, ansible-test sanity, unit tests, Molecule scenarios (what CI runs)
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup services services-stop demo demo-down test lint sanity unit integration faults molecule bench build clean

help:
	@echo "make demo       set everything up and run vmguard on a local two-guest lab"
	@echo "make demo-down  remove the demo lab (domains, overlays, networks, keys)"
	@echo "make test       lint + ansible-test sanity + unit tests + Molecule (what CI runs)"
	@echo "make setup      only install packages and the Python toolchain"
	@echo "make build      build the collection tarball"

setup:
	@scripts/setup.sh

services: setup
	@scripts/services.sh start

services-stop:
	@scripts/services.sh stop

demo: services
	@scripts/demo.sh up

demo-down: services
	@scripts/demo.sh down

test: services
	@scripts/test.sh

lint: setup
	@VMGUARD_TEST_STAGES=lint scripts/test.sh

sanity: setup
	@VMGUARD_TEST_STAGES=sanity scripts/test.sh

unit: setup
	@VMGUARD_TEST_STAGES=unit scripts/test.sh

faults: setup
	@VMGUARD_TEST_STAGES=faults scripts/test.sh

molecule: services
	@VMGUARD_TEST_STAGES=molecule scripts/test.sh

build: setup
	@. scripts/common.sh && activate && ansible-galaxy collection build --force --output-path "$$VMGUARD_CACHE/dist" .

clean:
	rm -rf .cache/dist .cache/ansible-test tests/output

integration: services
	@VMGUARD_TEST_STAGES=integration scripts/test.sh

bench: services
	@. scripts/common.sh && activate && python bench/bench_audit_domains.py && python bench/bench_revert_quarantine.py && python bench/bench_fleet_scale.py && python bench/bench_vsphere.py
