#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: dra_support
short_description: Prove Dynamic Resource Allocation (DRA) works on the cluster
description:
  - "Checklist id C(dra_support) (MUST): support DRA APIs for fine-grained accelerator requests."
  - Static part - C(resource.k8s.io/v1) serves DeviceClass, ResourceClaim, ResourceClaimTemplate and ResourceSlice,
    and a DeviceClass selects devices that ResourceSlices publish (one part - the API alone is not DRA support).
  - Positive case - a pod whose ResourceClaim asks for one device of the discovered DeviceClass gets the claim
    allocated and is scheduled.
  - Negative case - a claim asking for more devices than any node has (C(ExactCount), max per node + 1) stays
    unallocated and its pod, restricted to a node with the most devices, unschedulable (restricted so that the
    scheduler does not search every node of a large cluster for an allocation that cannot exist).
  - Optional positive case - a pod using a ResourceClaimTemplate gets a generated claim allocated.
version_added: 0.1.0
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  device_class:
    description:
      - DeviceClass to probe with. Default - the class whose driver publishes the most devices.
    type: str
"""

EXAMPLES = r"""
- name: Verify DRA support
  k8s_ai.conformance.dra_support:
    kubeconfig: ~/.kube/config
  register: dra

- name: Show the verdict
  ansible.builtin.debug:
    msg: "{{ dra.result.summary }}"
"""

RETURN = r"""
result:
  description: The check result (docs/architecture.md); status, verified, parts, evidence, notes.
  returned: always
  type: dict
  sample:
    check: dra_support
    status: Implemented
    verified: true
    parts:
      - {name: resource.k8s.io/v1 serves the DRA kinds, kind: static, required: true, outcome: passed, detail: ...}
"""

from ansible_collections.k8s_ai.conformance.plugins.module_utils.accelerators import pick_device_class  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (  # noqa: E402
    CLAIMS_REFUSED,
    STAYS_AFTER_VERDICT,
    claim_allocation,
    claim_manifest,
    claim_template_manifest,
    condition,
    on_nodes,
    pod_manifest,
    pod_scheduled,
    pod_unschedulable,
)

DRA = "resource.k8s.io/v1"
DRA_KINDS = ["DeviceClass", "ResourceClaim", "ResourceClaimTemplate", "ResourceSlice"]


def verify(check):
    # One static part: the API without a DeviceClass and devices is not DRA support (Not Implemented, not Partial).
    check.static("resource.k8s.io/v1 serves the DRA kinds; a DeviceClass selects published devices", dra_usable)
    check.positive("a pod with a ResourceClaim for the DeviceClass gets a device and is scheduled", claim_allocated)
    check.negative("a claim for more devices than any node has stays unallocated, its pod unschedulable",
                   oversized_claim_refused)
    check.positive("a pod with a ResourceClaimTemplate gets a generated claim allocated", template_allocated,
                   required=False)


def dra_usable(check):
    missing = check.served(DRA, DRA_KINDS)
    check.require(not missing, "%s does not serve: %s" % (DRA, ", ".join(missing)))
    acc = check.dra_devices
    check.require(acc["device_classes"], "%s served, but no DeviceClass exists" % DRA)
    check.require(any(d["devices"] for d in acc["drivers"].values()), "no ResourceSlice publishes any device")
    name, driver = pick_device_class(acc)
    wanted = check.params.get("device_class")
    if wanted:
        known = {dc["name"]: dc for dc in acc["device_classes"]}
        check.require(wanted in known, "DeviceClass %s (parameter device_class) does not exist" % wanted)
        name, driver = wanted, (known[wanted]["drivers"] or [driver])[0]
    check.require(name, "no DeviceClass selects a driver that publishes devices (classes: %s; drivers: %s)"
                  % ([dc["name"] for dc in acc["device_classes"]], sorted(acc["drivers"])))
    info = acc["drivers"][driver]
    fullest = max(sorted(info["nodes"]), key=info["nodes"].get)  # a node with max_per_node devices
    check.facts.update(device_class=name, driver=driver, max_per_node=info["max_per_node"], fullest_node=fullest)
    return "%s serves %s; DeviceClass %s -> driver %s: %d devices on %d nodes (max %d per node)" % (
        DRA, ", ".join(DRA_KINDS), name, driver, info["devices"], len(info["nodes"]), info["max_per_node"])


def claim_allocated(check, probe):
    check.require(check.facts.get("device_class"), "no usable DeviceClass was found by the static part")
    rc = probe.create(claim_manifest("one-device", check.facts["device_class"]))
    pod = probe.create(pod_manifest("with-claim", claims={"accel": {"resourceClaimName": "one-device"}}))
    pod = probe.wait_for(pod, pod_scheduled, "pod with-claim scheduled")
    rc = probe.wait_for(rc, claim_allocation, "claim one-device allocated")
    devices = ["%s/%s/%s" % (r["driver"], r["pool"], r["device"]) for r in claim_allocation(rc)]
    return "claim allocated %s; pod scheduled on %s" % (", ".join(devices), pod["spec"]["nodeName"])


def oversized_claim_refused(check, probe):
    check.require(check.facts.get("device_class"), "no usable DeviceClass was found by the static part")
    too_many, node = check.facts["max_per_node"] + 1, check.facts["fullest_node"]
    rc = probe.create(claim_manifest("too-many", check.facts["device_class"], count=too_many))
    # On the node with the most devices only: judged there, the refusal is the same, and the scheduler does not
    # search every node of a large cluster for it (2,000 nodes: minutes, blocking every other pod meanwhile).
    pod = probe.create(on_nodes(pod_manifest("too-many", claims={"accel": {"resourceClaimName": "too-many"}}), node))
    # Unschedulable BECAUSE of its claim (the scheduler's DRA plugin), not for a reason that holds without DRA
    pod = probe.wait_for(pod, lambda p: pod_unschedulable(p, because=CLAIMS_REFUSED),
                         "pod too-many reported Unschedulable for its claim")
    probe.stays(rc, lambda c: not claim_allocation(c), "claim too-many stays unallocated", seconds=STAYS_AFTER_VERDICT)
    message = (condition(pod, "PodScheduled").get("message") or "")[:200]
    return "claim for %d devices (max per node %d) unallocated; pod on %s Unschedulable: %s" % (
        too_many, too_many - 1, node, message)


def template_allocated(check, probe):
    check.require(check.facts.get("device_class"), "no usable DeviceClass was found by the static part")
    template = claim_template_manifest("one-device", check.facts["device_class"])
    probe.also_clean(DRA, "ResourceClaim")  # the claim generated from the template
    probe.create(template)
    pod = probe.create(pod_manifest("with-template", claims={"accel": {"resourceClaimTemplateName": "one-device"}}))
    pod = probe.wait_for(pod, pod_scheduled, "pod with-template scheduled")
    statuses = pod.get("status", {}).get("resourceClaimStatuses") or []
    check.require(statuses and statuses[0].get("resourceClaimName"), "pod status names no generated claim")
    generated = {"apiVersion": DRA, "kind": "ResourceClaim", "metadata": {"name": statuses[0]["resourceClaimName"]}}
    generated = probe.wait_for(generated, claim_allocation, "generated claim allocated")
    return "generated claim %s allocated" % generated["metadata"]["name"]


ARGUMENT_SPEC = {"device_class": {"type": "str"}}


def main():
    run_check("dra_support", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
