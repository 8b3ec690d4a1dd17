# The node side: gVisor role + accelerator_node_facts on real Debian "nodes" (podman containers).
#   make nodes-deps      apt packages: podman, runc (crun cannot run systemd on this host's hybrid cgroups), debootstrap
#   make nodes-image     debootstrap'd bookworm node image (cached rootfs under ~/.cache/k8s-ai-conformance/nodes)
#   make runsc           runsc + containerd-shim-runsc-v1 from the gVisor Go module -> .lab/mirror/gvisor/<v>/x86_64
#   make containerd2     containerd 2.x from its Go module (the second node: config version 3)
#   make molecule-nodes  molecule scenario `nodes`: create, prepare, converge, idempotence, check, verify, side_effect,
#                        destroy; with the lab up (.lab/kubeconfig answers) the RuntimeClass is created there too
#   make unit-nodes      unit tests of the node facts parsers only
NODES_DIR := $(ROOT)/tests/lab/nodes
NODES_CACHE ?= $(HOME)/.cache/k8s-ai-conformance
NODES_GO := $(NODES_DIR)/go
NODES_MIRROR_PID := $(ROOT)/.lab/nodes-mirror.pid
GVISOR_MODULE_VERSION = $(shell sed -n 's/^[[:space:]]*gvisor\.dev\/gvisor \(v[^ ]*\).*/\1/p' $(NODES_GO)/go.mod | head -n1)
# The lab's release name for that build: the pseudo-version's date-hash part (the go branch has no releases).
GVISOR_LAB_VERSION = $(patsubst v0.0.0-%,%,$(GVISOR_MODULE_VERSION))
GVISOR_BUILD = $(NODES_CACHE)/gvisor/$(GVISOR_LAB_VERSION)
GVISOR_MIRROR = $(ROOT)/.lab/mirror/gvisor/$(GVISOR_LAB_VERSION)/x86_64
NODES_CONTAINERD_GO := $(NODES_DIR)/containerd
CONTAINERD2_VERSION = $(shell sed -n 's/^[[:space:]]*github\.com\/containerd\/containerd\/v2 \(v[^ ]*\).*/\1/p' $(NODES_CONTAINERD_GO)/go.mod | head -n1)
CONTAINERD2 = $(NODES_CACHE)/containerd/$(CONTAINERD2_VERSION)/containerd

.PHONY: nodes-deps nodes-image runsc containerd2 molecule-nodes molecule-nodes-run nodes-mirror-up nodes-mirror-down unit-nodes
nodes-deps:
	@missing=""; for p in podman:podman runc:runc debootstrap:debootstrap; do \
	  command -v $${p%%:*} >/dev/null 2>&1 || [ -x /usr/sbin/$${p%%:*} ] || missing="$$missing $${p#*:}"; done; \
	if [ -n "$$missing" ]; then echo "apt-get install$$missing"; \
	  (apt-get install -y -q $$missing || (apt-get update -q && apt-get install -y -q $$missing)) >/dev/null; fi

nodes-image: nodes-deps
	bash $(NODES_DIR)/build-image.sh

# CGO_ENABLED=0 static binaries; GOCACHE/GOMODCACHE (Makefile) make a rebuild take seconds.
runsc: $(GVISOR_MIRROR)/runsc.sha512 $(GVISOR_MIRROR)/containerd-shim-runsc-v1.sha512
$(GVISOR_BUILD)/runsc $(GVISOR_BUILD)/containerd-shim-runsc-v1 &: $(NODES_GO)/go.mod $(NODES_GO)/go.sum
	mkdir -p $(GVISOR_BUILD)
	cd $(NODES_GO) && CGO_ENABLED=0 nice go build -trimpath \
	  -ldflags "-s -w -X gvisor.dev/gvisor/runsc/version.version=$(GVISOR_LAB_VERSION)" \
	  -o $(GVISOR_BUILD)/runsc gvisor.dev/gvisor/runsc
	cd $(NODES_GO) && CGO_ENABLED=0 nice go build -trimpath -ldflags "-s -w" \
	  -o $(GVISOR_BUILD)/containerd-shim-runsc-v1 gvisor.dev/gvisor/shim
	touch $(GVISOR_BUILD)/runsc $(GVISOR_BUILD)/containerd-shim-runsc-v1
$(GVISOR_MIRROR)/%.sha512: $(GVISOR_BUILD)/%
	mkdir -p $(GVISOR_MIRROR)
	cp -f $< $(GVISOR_MIRROR)/$*
	cd $(GVISOR_MIRROR) && sha512sum $* > $*.sha512.tmp && mv $*.sha512.tmp $*.sha512

containerd2: $(CONTAINERD2)
$(CONTAINERD2): $(NODES_CONTAINERD_GO)/go.mod $(NODES_CONTAINERD_GO)/go.sum
	mkdir -p $(dir $@)
	cd $(NODES_CONTAINERD_GO) && CGO_ENABLED=0 nice go build -trimpath \
	  -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD2_VERSION)" \
	  -o $@ github.com/containerd/containerd/v2/cmd/containerd

# Serve .lab/mirror (the same tree the lab's mirror serves) on a free loopback port for the run, so the
# scenario does not depend on the lab being up, or staying up, while it runs.
nodes-mirror-up:
	@mkdir -p .lab/mirror; rm -f .lab/nodes-mirror.log; \
	(cd .lab/mirror && exec setsid $(PY) -u -m http.server --bind 127.0.0.1 0 >$(ROOT)/.lab/nodes-mirror.log 2>&1) & \
	echo $$! > $(NODES_MIRROR_PID); \
	for i in $$(seq 100); do port=$$(sed -n 's/.* port \([0-9]*\).*/\1/p' .lab/nodes-mirror.log | head -n1); \
	  [ -n "$$port" ] && break; sleep 0.1; done; \
	[ -n "$$port" ] || { echo "nodes mirror did not start" >&2; exit 1; }; \
	echo "http://127.0.0.1:$$port" > .lab/nodes-mirror.url; echo "mirror: http://127.0.0.1:$$port (.lab/mirror)"
nodes-mirror-down:
	@if [ -f $(NODES_MIRROR_PID) ]; then kill $$(cat $(NODES_MIRROR_PID)) 2>/dev/null || true; rm -f $(NODES_MIRROR_PID); fi

molecule-nodes: venv nodes-image runsc containerd2
	$(PY) tests/tools/install_collections.py $(ROOT)
	$(MAKE) nodes-mirror-up
	status=0; $(MAKE) molecule-nodes-run || status=$$?; $(MAKE) nodes-mirror-down; exit $$status
molecule-nodes-run:
	kubeconfig=""; if [ -f .lab/kubeconfig ] && [ -x .lab/bin/kubectl ] && \
	  timeout 10 .lab/bin/kubectl --kubeconfig .lab/kubeconfig get --raw /readyz >/dev/null 2>&1; then \
	  kubeconfig=$(ROOT)/.lab/kubeconfig; fi; \
	NODES_KUBECONFIG=$$kubeconfig \
	NODES_MIRROR_URL=$$(cat .lab/nodes-mirror.url) NODES_GVISOR_VERSION=$(GVISOR_LAB_VERSION) NODES_CONTAINERD2=$(CONTAINERD2) \
	NODES_OCI_RUNTIME=$$(command -v runc || echo /usr/sbin/runc) \
	  $(VENV)/bin/molecule test -s nodes

unit-nodes: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/node
