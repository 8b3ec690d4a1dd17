# Unit tests, lint and the integration suite (on the lab). `make test` runs them all.
PYTEST := $(PY) -m pytest
RESULTS ?= $(ROOT)/.cache/test-results
PYTHON_PATHS := plugins tests bench

.PHONY: unit lint lint-python lint-yaml lint-ansible sanity sanity-venv integration integration-tests integration-pytest lab-down-tests
unit: deps
	mkdir -p $(RESULTS); $(PYTEST) -q -p no:cacheprovider -n 2 --junitxml=$(RESULTS)/unit.xml tests/unit

lint: lint-python lint-yaml lint-ansible sanity
lint-python: venv
	$(VENV)/bin/ruff check $(PYTHON_PATHS)
lint-yaml: venv
	$(VENV)/bin/yamllint -s .
lint-ansible: deps
	$(VENV)/bin/ansible-lint -q
SANITY_VENV := $(ROOT)/.venv-sanity
ANSIBLE_TEST_REQS := $(VENV)/lib/python3.11/site-packages/ansible_test/_data/requirements
sanity-venv: $(SANITY_VENV)/.installed
$(SANITY_VENV)/.installed: requirements-dev.txt | venv
	test -x $(SANITY_VENV)/bin/python || python3 -m venv $(SANITY_VENV)
	$(SANITY_VENV)/bin/pip install -q "$$(grep '^ansible-core==' requirements-dev.txt)" \
	  $$(for f in $(ANSIBLE_TEST_REQS)/sanity.*.txt; do echo -r $$f; done)
	touch $@
sanity: deps sanity-venv
	$(SANITY_VENV)/bin/python tests/tools/sanity.py

# The lab is started for the suite and always stopped, also when a test fails; then tests/lab_down proves
# that lab-down left nothing behind (containers, netns, routes, mounts, cgroups, rules, sysctls).
integration: deps
	$(MAKE) lab
	status=0; $(MAKE) integration-tests || status=$$?; $(MAKE) lab-down || status=1; \
	$(MAKE) lab-down-tests || status=1; exit $$status
lab-down-tests: venv
	mkdir -p $(RESULTS); $(PYTEST) -q -p no:cacheprovider --junitxml=$(RESULTS)/lab-down.xml tests/lab_down
# pytest on the lab, then the molecule scenarios (lab: site.yml on the lab; nodes: real Debian nodes in podman,
# which also create the gvisor RuntimeClass in the running lab). Each runs even when the one before failed.
INTEGRATION_PARTS ?= integration-pytest molecule-lab molecule-nodes
integration-tests:
	failed=""; for part in $(INTEGRATION_PARTS); do \
	  echo "--- make $$part"; $(MAKE) --no-print-directory $$part || failed="$$failed $$part"; done; \
	if [ -n "$$failed" ]; then echo "integration parts failed:$$failed"; exit 1; fi
integration-pytest:
	mkdir -p $(RESULTS); $(PYTEST) -q -p no:cacheprovider --junitxml=$(RESULTS)/integration.xml tests/integration

.PHONY: bench
bench: deps
	$(PY) bench/verify_bench.py
