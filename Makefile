# One entry point for setting up, testing and demonstrating the collection.
# `make test` and `make demo` set up everything they need on a fresh machine.

SHELL := /bin/bash
PYTHON ?= python3
IGW_CACHE ?= $(HOME)/.cache/igw-migration
export IGW_SANDBOX_CACHE := $(IGW_CACHE)
VENV := .venv
VENV_BIN := $(VENV)/bin
SANDBOX_PY := PYTHONPATH=$(CURDIR)/tests/sandbox $(CURDIR)/$(VENV_BIN)/python -m igw_sandbox
SCENARIO ?= alpha-basic
NAME ?= default
# Empty: keep the flavour and delay of a running sandbox; a new one starts as old with 2 s.
FLAVOUR ?=
PROGRAMMING_DELAY ?=

.PHONY: help venv collection test lint sanity unit integration molecule collection-build docs \
        sandbox-build sandbox-up sandbox-seed sandbox-down sandbox-status demo bench clean

help:
	@echo "make demo          build (or reuse) the sandbox and run the zero-downtime migration on it"
	@echo "make test          set up everything and run every test suite"
	@echo "make bench         run the benchmarks on the sandbox and rewrite docs/benchmarks.md (not part of make test)"
	@echo "make venv          create .venv from the pinned requirements (cached outside the repo)"
	@echo "make docs          render the collection's documentation site into build/docs (offline)"
	@echo "make sandbox-up    start the local GKE-like sandbox (FLAVOUR=old|new NAME=... PROGRAMMING_DELAY=2 or LOW:HIGH, e.g. 2:8)"
	@echo "make sandbox-seed  seed a scenario (SCENARIO=alpha-basic)"
	@echo "make sandbox-down  stop the sandbox"

venv: $(VENV_BIN)/ansible-playbook collection

$(VENV_BIN)/ansible-playbook: requirements.txt requirements/dev.txt hack/venv.sh
	@hack/venv.sh "$(PYTHON)" "$(IGW_CACHE)" "$(VENV)"

# ansible and ansible-test find the collection through this path (see ansible.cfg).
collection:
	@mkdir -p .collections/ansible_collections/inference_gateway
	@ln -sfn ../../.. .collections/ansible_collections/inference_gateway/migration

test: venv
	@hack/run-suites.sh

lint: venv
	@hack/run-suites.sh lint

sanity: venv
	@hack/run-suites.sh sanity

unit: venv
	@hack/run-suites.sh unit

integration: venv
	@hack/run-suites.sh integration

molecule: venv
	@hack/run-suites.sh molecule

docs: venv
	@hack/docs-build.sh

sandbox-build: venv
	@cd tests/sandbox && $(CURDIR)/$(VENV_BIN)/python -m igw_sandbox.build

sandbox-up: venv
	@$(SANDBOX_PY) up --name $(NAME) $(if $(FLAVOUR),--flavour $(FLAVOUR)) $(if $(PROGRAMMING_DELAY),--programming-delay $(PROGRAMMING_DELAY))

sandbox-seed: venv
	@$(SANDBOX_PY) seed --name $(NAME) $(SCENARIO)

sandbox-status: venv
	@$(SANDBOX_PY) status --name $(NAME)

sandbox-down: venv
	@$(SANDBOX_PY) down --name $(NAME)

demo: venv
	@hack/demo.sh

bench: venv sandbox-build
	@PYTHONPATH=$(CURDIR)/tests/sandbox $(VENV_BIN)/python benchmarks/run.py

clean:
	rm -rf .collections build reports
