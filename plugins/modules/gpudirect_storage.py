#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: gpudirect_storage
short_description: Verify GPUDirect Storage (direct storage-to-accelerator DMA) is enabled on accelerator nodes
description:
  - Whitepaper check (GPUDirect Storage).
  - Context - without accelerators in the cluster the check is N/A (stated).
  - Static (node side, needs I(node_facts)) - every accelerator node has the direct-storage kernel module loaded
    (C(nvidia_fs) for NVIDIA GPUDirect Storage by default, see I(kernel_modules)).
  - Static (optional) - a CSI driver of a parallel/RDMA-capable file system used for direct storage access is
    installed (Lustre, GPFS/Spectrum Scale, WEKA, BeeGFS, VAST, DDN, NFS over RDMA, ...).
  - Static-only by design - a direct-storage transfer is not exercised (it needs a real accelerator and file
    system); the result says C(static_only) with that reason in its notes. Without I(node_facts) the node part
    reports that it could not run (Not Implemented, not verified).
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  node_facts:
    description: Node facts keyed by node name (schema of C(accelerator_node_facts)); C(kernel_modules) is used.
    type: dict
    default: {}
  kernel_modules:
    description: Kernel modules any one of which enables direct storage access on an accelerator node.
    type: list
    elements: str
    default: [nvidia_fs]
"""

EXAMPLES = r"""
- name: Verify GPUDirect Storage on the GPU hosts
  k8s_ai.conformance.gpudirect_storage:
    kubeconfig: "{{ kubeconfig }}"
    node_facts: "{{ accelerator_facts_by_node }}"
  delegate_to: localhost
"""

RETURN = r"""
result:
  description: Check result (docs/architecture.md schema).
  returned: always
  type: dict
  contains:
    status: {description: "Implemented, Partially Implemented, Not Implemented or N/A.", type: str, returned: always}
    verified: {description: False when a part could not run (no node facts)., type: bool, returned: always}
    parts: {description: Parts with outcome and detail., type: list, returned: always}
    evidence: {description: "Kernel modules per node, CSI drivers.", type: list, returned: always}
"""

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402

STORAGE_HINTS = ("lustre", "gpfs", "spectrumscale", "weka", "beegfs", "vast", "ddn", "exa", "nfs", "rdma", "daos",
                 "hammerspace", "pure", "netapp", "trident")
ARGUMENT_SPEC = {
    "node_facts": {"type": "dict", "default": {}},
    "kernel_modules": {"type": "list", "elements": "str", "default": ["nvidia_fs"]},
}


STATIC_ONLY = ("a GPUDirect Storage transfer needs a real accelerator and a direct-access file system, which a "
               "probe cannot bring: the requirement is shown by its enabling configuration, the direct-storage "
               "kernel module loaded on every accelerator node (node facts)")


def verify(check):
    check.static_only(STATIC_ONLY)
    check.static("the direct-storage kernel module is loaded on every accelerator node", modules_loaded)
    check.static("a CSI driver for a direct-access file system is installed", storage_driver, required=False)


def module_coverage(node_facts, modules):
    """(nodes with a module, nodes without) among the accelerator nodes of node_facts."""
    loaded, missing = [], []
    for node, facts in sorted((node_facts or {}).items()):
        facts = facts or {}
        if not facts.get("accelerators") and not facts.get("driver_version"):
            continue
        found = [m for m in modules if m in (facts.get("kernel_modules") or [])]
        (loaded if found else missing).append("%s%s" % (facts.get("node_name") or node,
                                                        (" (%s)" % ", ".join(found)) if found else ""))
    return loaded, missing


def modules_loaded(check):
    acc = check.accelerators
    if not acc.get("drivers") and not acc.get("extended_resources"):
        check.not_applicable("the cluster advertises no accelerator (no DRA devices, no device-plugin resources)")
    if not check.params.get("node_facts"):
        check.cannot_run("node facts are needed to see loaded kernel modules: add the accelerator hosts to the "
                         "accelerator_nodes inventory group")
    loaded, missing = module_coverage(check.params["node_facts"], check.params["kernel_modules"])
    check.record("direct-storage kernel modules", "node_facts kernel_modules",
                 response={"loaded": loaded, "missing": missing, "modules": check.params["kernel_modules"]})
    check.require(loaded or missing, "node_facts hold no accelerator node")
    check.require(not missing, "%s not loaded on %s" % (" / ".join(check.params["kernel_modules"]),
                                                        ", ".join(missing[:8])))
    return "loaded on %s" % ", ".join(loaded[:8])


def storage_driver(check):
    drivers = [d["metadata"]["name"] for d in check.list("CSIDrivers", "/apis/storage.k8s.io/v1/csidrivers")]
    found = [d for d in drivers if any(h in d.lower() for h in STORAGE_HINTS)]
    check.require(found, "no CSI driver of a direct-access file system (have: %s)" % (", ".join(drivers) or "none"))
    return ", ".join(found)


def main():
    run_check("gpudirect_storage", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
