# The lab: a real control plane (built from upstream Go modules) with simulated GPU nodes. See tests/lab/README.md.
LAB_PY := $(PY) tests/lab/lab.py
LAB_ARGS ?=

.PHONY: lab lab-build lab-down lab-status lab-controllers
lab: venv
	$(LAB_PY) up $(LAB_ARGS)
lab-build: venv
	$(LAB_PY) build
lab-down: venv
	$(LAB_PY) down
lab-status: venv
	$(LAB_PY) status
lab-controllers: venv
	$(LAB_PY) controllers $(LAB_ARGS)
