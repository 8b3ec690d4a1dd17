# Component roles (site.yml) and the lab's artifact mirror.
#   make mirror         release-equivalent artifacts from the pinned Go modules -> .lab/mirror (idempotent, quick when built)
#   make unit-roles     offline tests of the component roles (variables, checksums, templating) and the mirror builder
#   make molecule-lab   molecule scenario `lab`: site.yml on the lab: converge, idempotence, check, verify, destroy
#   make site           site.yml against the lab inventory (ARGS="--tags kueue -e kueue_state=absent" ...)
.PHONY: mirror unit-roles molecule-lab site
mirror: venv
	$(PY) tests/lab/mirror/build.py --out .lab/mirror

unit-roles: deps
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/roles

molecule-lab: deps
	$(MAKE) mirror
	$(VENV)/bin/molecule test -s lab

site: deps
	$(VENV)/bin/ansible-playbook -i .lab/inventory playbooks/site.yml $(ARGS)
