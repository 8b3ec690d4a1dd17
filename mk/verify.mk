# Verify the cluster and write the report (roles/verify, playbooks/verify.yml, playbooks/validate.yml).
#   make demo                 lab -> site.yml (when present) -> verify.yml on the lab -> where the report is
#   make verify               verify.yml against the running lab (VERIFY_ARGS for extra ansible-playbook args)
#   make validate             validate every PRODUCT.yaml under $(REPORT_DIR) with validate.go's rules, offline
#                             (PRODUCT=path for one file; VALIDATE_ARGS="--na-rule pending", "--online", "--strict")
#   make unit-report          unit tests of the catalog, report writers and validator only
#   make integration-verify   integration tests of the verify role against the running lab
REPORT_DIR ?= $(ROOT)/ai-conformance-report
VALIDATE_ARGS ?=
LAB_INVENTORY ?= $(ROOT)/.lab/inventory
LAB_KUBECONFIG ?= $(ROOT)/.lab/kubeconfig
VERIFY_ARGS ?=
# Decided by the shell when the recipe line runs: `make lab` writes the inventory during the same make run,
# after make has expanded (and cached the directory listing for) every line of the recipe.
VERIFY_INVENTORY = $$([ -f $(LAB_INVENTORY) ] && echo -i $(LAB_INVENTORY))
VERIFY_METADATA ?= $(ROOT)/tests/integration/verify/lab-metadata.yml

.PHONY: demo verify validate unit-report integration-verify
demo: deps
	$(MAKE) lab
	@test -f $(LAB_INVENTORY) || { echo "make lab wrote no $(LAB_INVENTORY): see .lab/*.log" >&2; exit 1; }
	@if [ -f playbooks/site.yml ]; then \
	  echo "== site.yml: installing the stack on the lab"; \
	  $(VENV)/bin/ansible-playbook -i $(LAB_INVENTORY) playbooks/site.yml && \
	  $(MAKE) --no-print-directory lab-controllers LAB_ARGS=--no-install; \
	else echo "== playbooks/site.yml not present: verifying the lab as it is"; fi
	@# The real cluster-autoscaler (kwok cloud provider, a GPU node group) for cluster_autoscaling: demo only, so
	@# the integration tests' fresh labs start without one (their own test installs and removes it).
	@if grep -q 'real-node' $(LAB_INVENTORY); then echo "== cluster-autoscaler: installing on the lab"; \
	  $(PY) tests/lab/autoscaler.py install; fi
	@echo "== verify.yml: proving the requirements on the lab"
	@# The lab has no data plane, so some MUSTs are truthfully Not Implemented there: the demo reports
	@# them and does not fail for them (verify_fail_on_must=false); it fails only when verify itself fails.
	status=0; $(VENV)/bin/ansible-playbook -i $(LAB_INVENTORY) playbooks/verify.yml \
	  -e verify_kubeconfig=$(LAB_KUBECONFIG) -e verify_report_dir=$(REPORT_DIR) -e @$(VERIFY_METADATA) \
	  -e verify_fail_on_must=false $(VERIFY_ARGS) || status=$$?; \
	echo; echo "== report:"; ls -d $(REPORT_DIR)/v*/* 2>/dev/null | sed 's|$$|/report.html|'; \
	echo "   (PRODUCT.yaml, evidence/, junit.xml, report.json, whitepaper.md beside it)"; exit $$status

verify: deps
	$(VENV)/bin/ansible-playbook $(VERIFY_INVENTORY) playbooks/verify.yml \
	  -e verify_kubeconfig=$(LAB_KUBECONFIG) -e verify_report_dir=$(REPORT_DIR) -e @$(VERIFY_METADATA) $(VERIFY_ARGS)

validate: venv
	@if [ -n "$(PRODUCT)" ]; then set -- "$(PRODUCT)"; else set -- $$(find $(REPORT_DIR) -name PRODUCT.yaml 2>/dev/null); fi; \
	if [ $$# -eq 0 ]; then echo "no PRODUCT.yaml under $(REPORT_DIR) (make demo, or PRODUCT=path)"; exit 1; fi; \
	PYTHONPATH=$(ROOT)/.collections $(PY) -m ansible_collections.k8s_ai.conformance.plugins.module_utils.validate $(VALIDATE_ARGS) "$$@"

unit-report: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/report

integration-verify: deps
	$(PY) -m pytest -q -p no:cacheprovider tests/integration/verify
