#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: confidential_computing
short_description: Verify confidential computing for AI workloads (TEE nodes, confidential RuntimeClass)
description:
  - Whitepaper check (confidential computing).
  - Static - a RuntimeClass with a confidential-containers handler exists (C(kata-qemu-tdx), C(kata-qemu-snp),
    C(kata-cc*), C(*coco*), C(enclave-cc), ...) or the one named by I(runtime_class).
  - Static - nodes advertise a trusted execution environment (labels from Node Feature Discovery such as
    C(feature.node.kubernetes.io/cpu-security.tdx.enabled), C(...sev.snp.enabled), C(...sgx.enabled), or
    GPU confidential-computing labels such as C(nvidia.com/cc.capable)).
  - Positive - a pod with that RuntimeClass is admitted, scheduled onto a TEE node and runs.
  - Negative (optional) - the same pod pinned to a node without a TEE is not scheduled (needs a RuntimeClass
    node selector and a non-TEE node).
  - Remote attestation is not verified; the notes say so.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  runtime_class:
    description: Confidential RuntimeClass to probe. Default - the first RuntimeClass with a confidential handler.
    type: str
"""

EXAMPLES = r"""
- name: Verify confidential containers
  k8s_ai.conformance.confidential_computing:
    kubeconfig: "{{ kubeconfig }}"
    runtime_class: kata-qemu-snp
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
    evidence: {description: "RuntimeClasses, TEE nodes and probe pods.", type: list, returned: always}
"""

import re  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (  # noqa: E402
    STAYS_AFTER_VERDICT,
    pod_manifest,
    pod_unschedulable,
)

CC_HANDLER = re.compile(r"(tdx|snp|sev|coco|(^|[-_])cc($|[-_])|enclave|sgx|confidential)", re.I)
TEE_LABEL = re.compile(r"(cpu-security\.(tdx|sev|sgx)[a-z.]*enabled|/tdx|/sev|/snp|cc\.capable|cc\.ready|"
                       r"confidential)", re.I)
ARGUMENT_SPEC = {
    "runtime_class": {"type": "str"},
}


def verify(check):
    check.static("a confidential-containers RuntimeClass exists", cc_runtime_class)
    check.static("nodes advertise a trusted execution environment", tee_nodes)
    check.positive("a pod with the confidential RuntimeClass runs on a TEE node", cc_pod_runs)
    check.negative("the confidential pod is not scheduled onto a node without a TEE", non_tee_refused,
                   required=False)
    check.note("remote attestation of the TEE is not verified by this check")


def tee_labels(labels):
    return sorted(k for k, v in (labels or {}).items() if TEE_LABEL.search(k) and str(v).lower() not in ("false", "0"))


def cc_runtime_class(check):
    classes = check.list("RuntimeClasses", "/apis/node.k8s.io/v1/runtimeclasses")
    wanted = check.params.get("runtime_class")
    found = [rc for rc in classes if (rc["metadata"]["name"] == wanted if wanted else CC_HANDLER.search(
        rc.get("handler") or ""))]
    check.require(found, "no confidential RuntimeClass (have: %s)" % (", ".join(
        "%s->%s" % (rc["metadata"]["name"], rc.get("handler")) for rc in classes) or "none"))
    check.facts["runtime_class"] = found[0]
    return "RuntimeClass %s (handler %s)" % (found[0]["metadata"]["name"], found[0].get("handler"))


def tee_nodes(check):
    nodes = check.nodes()
    tee = {n["metadata"]["name"]: tee_labels(n["metadata"].get("labels")) for n in nodes}
    tee = {k: v for k, v in tee.items() if v}
    check.facts["tee_nodes"] = tee
    check.facts["other_nodes"] = [n["metadata"]["name"] for n in nodes if n["metadata"]["name"] not in tee]
    check.require(tee, "no node carries a TEE capability label (e.g. feature.node.kubernetes.io/"
                       "cpu-security.tdx.enabled, nvidia.com/cc.capable)")
    return "; ".join("%s: %s" % (k, ", ".join(v)) for k, v in sorted(tee.items())[:8])


def cc_pod(check, name, node=None):
    pod = pod_manifest(name)
    pod["spec"]["runtimeClassName"] = check.facts["runtime_class"]["metadata"]["name"]
    if node:
        pod["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    return pod


def cc_pod_runs(check, probe):
    check.require(check.facts.get("runtime_class") and check.facts.get("tee_nodes"),
                  "needs a confidential RuntimeClass and TEE nodes")
    pod = probe.wait_for(probe.create(cc_pod(check, "confidential")),
                         lambda p: (p.get("status") or {}).get("phase") == "Running", "confidential pod running")
    node = pod["spec"].get("nodeName")
    check.require(node in check.facts["tee_nodes"], "pod ran on %s, which advertises no TEE" % node)
    return "pod runs with RuntimeClass %s on TEE node %s" % (pod["spec"]["runtimeClassName"], node)


def non_tee_refused(check, probe):
    rc = check.facts.get("runtime_class") or check.fail("no confidential RuntimeClass")
    check.require((rc.get("scheduling") or {}).get("nodeSelector"),
                  "the RuntimeClass has no node selector, so nothing keeps it off nodes without a TEE")
    others = check.facts.get("other_nodes") or check.fail("every node advertises a TEE; nothing to refuse")
    pod = probe.create(cc_pod(check, "pinned-non-tee", others[0]))
    # refused by the RuntimeClass's node selector, not for some other reason a pod may stay pending
    probe.wait_for(pod, lambda p: pod_unschedulable(p, because=("node affinity", "selector")),
                   "pod pinned to a non-TEE node Unschedulable by node selector")
    probe.stays(pod, lambda p: not p["spec"].get("nodeName"), "pod stays unscheduled", seconds=STAYS_AFTER_VERDICT)
    return "pod pinned to non-TEE node %s stayed unscheduled (node selector of the RuntimeClass)" % others[0]


def main():
    run_check("confidential_computing", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
