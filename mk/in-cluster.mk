# Verify inside the cluster (roles/verify_in_cluster) on the lab's real nodes. See docs/in-cluster.md.
#   make verifier-image           the verifier image without podman build (tests/lab/verifier.py; cold ~1.5 min, warm s)
#   make integration-in-cluster   the Job on a real node + a real sonobuoy run of the plugin (also part of
#                                 `make integration-pytest`, which runs every folder of tests/integration)
.PHONY: verifier-image integration-in-cluster
verifier-image: venv
	$(PY) tests/lab/verifier.py build

integration-in-cluster: deps
	$(PY) -m pytest -q -p no:cacheprovider tests/integration/in_cluster
