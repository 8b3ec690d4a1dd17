# k8s_ai.conformance — developer entry points. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(ROOT)/.lab/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/.collections
export ANSIBLE_ROLES_PATH := $(ROOT)/roles
export GOTOOLCHAIN := local
export GOFLAGS := -mod=mod
# Caches live in the user's stable cache dirs so a second build on this machine is warm.
export GOMODCACHE ?= $(HOME)/go/pkg/mod
export GOCACHE ?= $(HOME)/.cache/go-build
export PIP_CACHE_DIR ?= $(HOME)/.cache/pip

.PHONY: help venv collections deps test unit lint integration lab lab-down lab-status demo bench clean
help:
	@echo "make demo | test | unit | lint | integration | lab | lab-down | bench"

venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

collections: venv
	$(PY) tests/tools/install_collections.py $(ROOT)

deps: venv collections

include $(sort $(wildcard mk/*.mk))

# Every stage runs even when an earlier one failed, so one CI run shows every problem; the closing line
# sums the tests of all pytest runs (JUnit files in $(RESULTS)).
RESULTS := $(ROOT)/.cache/test-results
TEST_STAGES ?= unit lint integration
test: deps
	rm -rf $(RESULTS); mkdir -p $(RESULTS)
	failed=""; for stage in $(TEST_STAGES); do \
	  echo "=== make $$stage"; start=$$(date +%s); \
	  $(MAKE) --no-print-directory -k $$stage || failed="$$failed $$stage"; \
	  echo "=== make $$stage: $$(( $$(date +%s) - start ))s"; \
	done; \
	$(PY) tests/tools/summary.py $(RESULTS) $$failed
