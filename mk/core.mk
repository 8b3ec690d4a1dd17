# Unit tests, lint and the integration suite (on the lab). `make test` runs them all.
PYTEST := $(PY) -m pytest
PYTHON_PATHS := plugins tests bench

.PHONY: unit lint lint-python lint-yaml lint-ansible sanity integration integration-tests
unit: deps
	$(PYTEST) -q -p no:cacheprovider tests/unit

lint: lint-python lint-yaml lint-ansible sanity
lint-python: venv
	$(VENV)/bin/ruff check $(PYTHON_PATHS)
lint-yaml: venv
	$(VENV)/bin/yamllint -s .
lint-ansible: deps
	$(VENV)/bin/ansible-lint -q
sanity: deps
	$(PY) tests/tools/sanity.py

# The lab is started for the suite and always stopped, also when a test fails.
integration: deps
	$(MAKE) lab
	status=0; $(MAKE) integration-tests || status=$$?; $(MAKE) lab-down; exit $$status
integration-tests:
	$(PYTEST) -q -p no:cacheprovider tests/integration

.PHONY: bench
bench: deps
	$(PY) bench/verify_bench.py
