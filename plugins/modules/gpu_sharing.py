#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: gpu_sharing
short_description: Prove at least one GPU sharing strategy is exposed and works
description:
  - "Checklist id C(gpu_sharing) (SHOULD): for accelerators that support static sharing, provide at least one
    sharing strategy (hardware partitions as schedulable resources, or software sharing / oversubscription)."
  - Static part - a sharing mechanism is exposed - DRA (a ResourceClaim shared by several pods; partitionable devices
    with shared counters; devices allowing multiple allocations; MIG-like device types) or device plugins (MIG
    resources, time-slicing/sharing node labels, shared resource names).
  - Positive case - one ResourceClaim referenced by two pods - both pods are scheduled onto the node of the one
    allocated device and the claim is reserved for both (software sharing). With device plugins only - two pods
    requesting the shared/partition resource are both scheduled.
  - Optional positive case - a claim selecting a partition device (e.g. a MIG device) is allocated.
  - No negative case - sharing is opt-in (a pod that does not ask to share is not refused anything), and that
    separate claims never share a device is the negative case of C(secure_accelerator_access).
  - A sharing mechanism that is exposed (static part) but never observed sharing is Not Implemented.
  - N/A only when the cluster has no accelerator at all, or when no sharing mechanism is found and
    I(not_applicable_reason) states why the accelerators do not support sharing.
version_added: 0.1.0
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  not_applicable_reason:
    description:
      - Why the accelerators of this platform do not support static sharing. Used only when no mechanism is found;
        without it that case is reported Not Implemented.
    type: str
"""

EXAMPLES = r"""
- name: Verify GPU sharing
  k8s_ai.conformance.gpu_sharing:
    kubeconfig: "{{ kubeconfig }}"
"""

RETURN = r"""
result:
  description: The check result (docs/architecture.md); status, verified, parts, evidence, notes.
  returned: always
  type: dict
"""

import json  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.accelerators import (  # noqa: E402
    pick_device_class,
)
from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (  # noqa: E402
    claim_allocation,
    claim_manifest,
    pod_manifest,
    pod_scheduled,
)

DRA = "resource.k8s.io/v1"
PARTITION_WORDS = ("mig", "partition", "slice")


def verify(check):
    check.note("No negative case here: sharing is opt-in, and that separate claims never share a device is proven "
               "by secure_accelerator_access.")
    check.static("a GPU sharing mechanism is exposed", sharing_exposed)
    check.positive("one ResourceClaim shared by two pods: both scheduled on the shared device", shared_claim)
    check.positive("a claim for a partition device (e.g. MIG) is allocated", partition_claim, required=False)


def sharing_exposed(check):
    acc = check.accelerators
    if not any(d["devices"] for d in acc["drivers"].values()) and not acc["extended_resources"]:
        check.not_applicable("no accelerators found on this cluster (no DRA devices, no device-plugin resources)")
    found = []
    name, driver = pick_device_class(acc)
    if name:
        found.append("DRA shared ResourceClaims (DeviceClass %s)" % name)
        check.facts.update(device_class=name, driver=driver)
    for drv, info in acc["drivers"].items():
        if info["with_counters"] or info["shared_counter_sets"]:
            found.append("%s: %d partitionable devices consuming shared counters" % (drv, info["with_counters"]))
        if info["multi_allocatable"]:
            found.append("%s: %d devices allow multiple allocations" % (drv, info["multi_allocatable"]))
        for value in info["attributes"].get("type", []):
            if any(word in str(value).lower() for word in PARTITION_WORDS):
                found.append("%s: devices of type %s" % (drv, value))
                check.facts.setdefault("partition", (drv, value))
    for res in acc["extended_resources"]:
        if "mig-" in res or "shared" in res or any(w in res for w in PARTITION_WORDS):
            found.append("device plugin resource %s" % res)
            check.facts.setdefault("shared_resource", res)
    for label, values in acc["node_label_hints"].items():
        enabled = [v for v in values if str(v).lower() not in ("false", "0", "1", "none", "")]  # mig.capable=false..
        if enabled and any(w in label.lower() for w in ("mig", "replicas", "sharing", "slic")):
            found.append("node label %s=%s" % (label, ",".join(map(str, enabled))))
    if not found and check.params.get("not_applicable_reason"):
        check.not_applicable(check.params["not_applicable_reason"])
    check.require(found, "no sharing mechanism found (no DRA device class, no partition/MIG/time-slicing indicator)")
    return "; ".join(found)


def shared_claim(check, probe):
    if not check.facts.get("device_class"):
        return plugin_sharing(check, probe)
    rc = probe.create(claim_manifest("shared", check.facts["device_class"]))
    pods = [probe.create(pod_manifest(name, claims={"accel": {"resourceClaimName": "shared"}}))
            for name in ("sharer-a", "sharer-b")]
    nodes = {probe.wait_for(p, pod_scheduled, "pod %s scheduled" % p["metadata"]["name"])["spec"]["nodeName"]
             for p in pods}
    rc = probe.wait_for(rc, lambda c: len((c.get("status") or {}).get("reservedFor") or []) >= 2,
                        "claim shared reserved for both pods")
    devices = ["%s/%s" % (r["pool"], r["device"]) for r in claim_allocation(rc)]
    check.require(len(devices) == 1 and len(nodes) == 1,
                  "expected one device on one node, got devices %s on nodes %s" % (devices, sorted(nodes)))
    return "pods sharer-a and sharer-b share device %s on node %s via one claim" % (devices[0], nodes.pop())


def plugin_sharing(check, probe):
    resource = check.facts.get("shared_resource")
    check.require(resource, "no DRA device class and no shared/partition device-plugin resource to probe with")
    for name in ("sharer-a", "sharer-b"):
        pod = probe.create(pod_manifest(name, requests={resource: 1}))
        probe.wait_for(pod, pod_scheduled, "pod %s (%s: 1) scheduled" % (name, resource))
    return "two pods requesting %s are both scheduled" % resource


def partition_claim(check, probe):
    check.require(check.facts.get("partition"), "no DRA partition device type (MIG-like) is published")
    driver, value = check.facts["partition"]
    classes = [dc["name"] for dc in check.accelerators["device_classes"] if driver in dc["drivers"]]
    check.require(classes, "no DeviceClass selects driver %s, which publishes the %s devices" % (driver, value))
    # The driver test first: && short-circuits, so other drivers' devices never hit a missing attribute.
    selector = "device.driver == %s && device.attributes[%s].type == %s" % (
        json.dumps(driver), json.dumps(driver), json.dumps(value))
    rc = probe.create(claim_manifest("partition", classes[0], selectors=[selector], request="part"))
    probe.create(pod_manifest("partition", claims={"part": {"resourceClaimName": "partition"}}))
    rc = probe.wait_for(rc, claim_allocation, "claim partition (%s) allocated" % selector)
    return "claim for %s (DeviceClass %s) allocated %s" % (selector, classes[0], claim_allocation(rc)[0]["device"])


ARGUMENT_SPEC = {"not_applicable_reason": {"type": "str"}}


def main():
    run_check("gpu_sharing", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
