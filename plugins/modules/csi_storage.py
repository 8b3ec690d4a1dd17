#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: csi_storage
short_description: Verify CSI storage for AI workloads (driver registered, dynamic provisioning works)
description:
  - Whitepaper check (CSI storage for datasets, checkpoints and model weights).
  - Static - a CSI driver is registered (CSIDriver object, listed in the nodes' CSINode objects).
  - Static - a StorageClass provisions through that CSI driver.
  - Positive - a PersistentVolumeClaim of that StorageClass, used by a pod, becomes Bound (dynamic provisioning).
  - Optional negative - once a claim was provisioned, a claim naming a StorageClass that does not exist stays
    Pending. It shows provisioning is bound to the class asked for, but it is Kubernetes' PV controller that
    leaves such a claim alone, with or without a CSI driver, so it never carries the verdict. No required
    negative exists - a refusal that only the CSI driver produces (capacity, topology, parameters) is
    driver-specific.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  storage_class:
    description: StorageClass to probe. Default - the default StorageClass if it is CSI-backed, else the first CSI one.
    type: str
  size:
    description: Size of the probe claim.
    type: str
    default: 1Gi
"""

EXAMPLES = r"""
- name: Verify CSI storage
  k8s_ai.conformance.csi_storage:
    kubeconfig: "{{ kubeconfig }}"
    storage_class: fast-nvme
  delegate_to: localhost
"""

RETURN = r"""
result:
  description: Check result (docs/architecture.md schema).
  returned: always
  type: dict
  contains:
    status: {description: "Implemented, Partially Implemented, Not Implemented or N/A.", type: str, returned: always}
    verified: {description: False when a part could not run., type: bool, returned: always}
    parts: {description: Parts with outcome and detail., type: list, returned: always}
    evidence: {description: "Drivers, classes and claims seen.", type: list, returned: always}
"""

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import pod_manifest  # noqa: E402

DEFAULT_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
ARGUMENT_SPEC = {
    "storage_class": {"type": "str"},
    "size": {"type": "str", "default": "1Gi"},
}


def verify(check):
    check.static("a CSI driver is registered", csi_driver_registered)
    check.static("a StorageClass provisions through a CSI driver", csi_storage_class)
    check.positive("a claim of that StorageClass used by a pod becomes Bound", claim_bound)
    check.negative("a claim naming a missing StorageClass stays Pending", missing_class_pending, required=False)


def pick_class(classes, drivers, wanted=None):
    """The StorageClass to probe: wanted, else the CSI-backed default, else the first CSI-backed one."""
    csi = [c for c in classes if c.get("provisioner") in drivers]
    if wanted:
        return next((c for c in csi if c["metadata"]["name"] == wanted), None)
    default = [c for c in csi if (c["metadata"].get("annotations") or {}).get(DEFAULT_ANNOTATION) == "true"]
    return (default or csi or [None])[0]


def csi_driver_registered(check):
    drivers = [d["metadata"]["name"] for d in check.list("CSIDrivers", "/apis/storage.k8s.io/v1/csidrivers")]
    check.require(drivers, "no CSIDriver object: no CSI driver is installed")
    on_nodes = {}
    for node in check.list("CSINodes", "/apis/storage.k8s.io/v1/csinodes"):
        for driver in (node.get("spec") or {}).get("drivers") or []:
            on_nodes.setdefault(driver.get("name"), []).append(node["metadata"]["name"])
    check.facts["drivers"] = drivers
    registered = [d for d in drivers if on_nodes.get(d)]
    check.require(registered, "CSIDriver(s) %s are not registered on any node (CSINode)" % ", ".join(drivers))
    return ", ".join("%s on %d node(s)" % (d, len(on_nodes[d])) for d in registered)


def csi_storage_class(check):
    classes = check.list("StorageClasses", "/apis/storage.k8s.io/v1/storageclasses")
    chosen = pick_class(classes, check.facts.get("drivers") or [], check.params.get("storage_class"))
    check.require(chosen, "no StorageClass%s provisions through a CSI driver (classes: %s)" % (
        " named %s" % check.params["storage_class"] if check.params.get("storage_class") else "",
        ", ".join("%s->%s" % (c["metadata"]["name"], c.get("provisioner")) for c in classes) or "none"))
    check.facts["storage_class"] = chosen
    return "StorageClass %s (provisioner %s, binding %s)" % (chosen["metadata"]["name"], chosen["provisioner"],
                                                             chosen.get("volumeBindingMode", "Immediate"))


def pvc(name, storage_class, size):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
        "resources": {"requests": {"storage": size}}}}


def claim_bound(check, probe):
    sc = check.facts.get("storage_class") or check.fail("no CSI StorageClass")
    claim = probe.create(pvc("data", sc["metadata"]["name"], check.params["size"]))
    pod = pod_manifest("consumer")
    pod["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    probe.create(pod)
    claim = probe.wait_for(claim, lambda c: (c.get("status") or {}).get("phase") == "Bound", "claim Bound")
    check.facts["bound"] = True
    return "claim Bound to %s (%s)" % (claim["spec"].get("volumeName"), (claim.get("status") or {}).get("capacity"))


def missing_class_pending(check, probe):
    check.require(check.facts.get("bound"), "not meaningful: no claim of the CSI StorageClass was provisioned")
    claim = probe.create(pvc("no-class", "ai-conformance-no-such-class", check.params["size"]))
    probe.stays(claim, lambda c: (c.get("status") or {}).get("phase", "Pending") == "Pending", "claim stays Pending",
                seconds=5)
    return "claim with StorageClass ai-conformance-no-such-class stayed Pending"


def main():
    run_check("csi_storage", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
