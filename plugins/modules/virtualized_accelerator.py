#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: virtualized_accelerator
short_description: Prove virtualized accelerators (vGPU, SR-IOV functions) are exposed and allocatable
description:
  - "Checklist id C(virtualized_accelerator) (SHOULD): for accelerators that support virtualization (e.g. vGPU),
    provide mechanisms to expose and manage them, consistent with physical fractional GPUs; through DRA once the
    accelerator supports it."
  - Static part - virtualized devices are published - DRA devices whose attributes mark them virtual (vGPU type or
    profile, SR-IOV virtual function, vGPU product names) or device-plugin resources / node labels for vGPU.
  - Positive case - a ResourceClaim whose CEL selector picks the virtual device attribute is allocated and its pod
    scheduled (device plugins - a pod requesting the vGPU resource is scheduled).
  - No negative case - allocation exclusivity of virtual devices is the same DRA mechanism whose refusal
    C(secure_accelerator_access) proves; virtual devices published but never allocated are Not Implemented.
  - N/A only when the cluster has no accelerator at all, or when none is virtual and I(not_applicable_reason) states
    why the accelerators do not support virtualization; otherwise Not Implemented.
version_added: 0.1.0
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  not_applicable_reason:
    description:
      - Why the accelerators of this platform do not support virtualization. Used only when nothing virtual is found.
    type: str
"""

EXAMPLES = r"""
- name: Verify virtualized accelerators (bare-metal GPUs without vGPU)
  k8s_ai.conformance.virtualized_accelerator:
    kubeconfig: "{{ kubeconfig }}"
    not_applicable_reason: the H100 GPUs of this platform are passed through whole; no vGPU licence/host driver
"""

RETURN = r"""
result:
  description: The check result (docs/architecture.md); status, verified, parts, evidence, notes.
  returned: always
  type: dict
"""

import json  # noqa: E402
import re  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (  # noqa: E402
    claim_allocation,
    claim_manifest,
    pod_manifest,
    pod_scheduled,
)

DRA = "resource.k8s.io/v1"
VIRTUAL = re.compile(r"vgpu|virtual|sriov|\bvf\b|grid|mxgpu", re.IGNORECASE)


def verify(check):
    check.note("No negative case: allocation exclusivity of virtual devices is the same DRA mechanism proven by "
               "secure_accelerator_access.")
    check.static("virtualized accelerators are published", virtual_devices_published)
    check.positive("a claim selecting a virtual device is allocated and its pod scheduled", virtual_claim)


def virtual_devices_published(check):
    acc = check.accelerators
    if not any(d["devices"] for d in acc["drivers"].values()) and not acc["extended_resources"]:
        check.not_applicable("no accelerators found on this cluster (no DRA devices, no device-plugin resources)")
    found = []
    for driver, info in acc["drivers"].items():
        for attr, values in info["attributes"].items():
            hits = [v for v in values if isinstance(v, str) and VIRTUAL.search(v)]
            if VIRTUAL.search(attr) or hits:
                value = hits[0] if hits else values[0]
                found.append("%s: attribute %s=%s" % (driver, attr, value))
                check.facts.setdefault("selector", (driver, attr, value))
    for res in acc["extended_resources"]:
        if VIRTUAL.search(res):
            found.append("device plugin resource %s" % res)
            check.facts.setdefault("resource", res)
    for label, values in acc["node_label_hints"].items():
        enabled = [v for v in values if str(v).lower() not in ("false", "0", "none", "")]  # vgpu.present=false..
        if enabled and VIRTUAL.search(label):
            found.append("node label %s=%s" % (label, ",".join(map(str, enabled))))
    if not found and check.params.get("not_applicable_reason"):
        check.not_applicable(check.params["not_applicable_reason"])
    check.require(found, "no virtualized accelerator found (no vGPU/SR-IOV attribute, resource or node label); if "
                         "the accelerators do not support virtualization, state it with not_applicable_reason")
    return "; ".join(found)


def virtual_claim(check, probe):
    if check.facts.get("resource"):
        pod = probe.create(pod_manifest("vgpu", requests={check.facts["resource"]: 1}))
        probe.wait_for(pod, pod_scheduled, "pod requesting %s scheduled" % check.facts["resource"])
        return "pod requesting %s scheduled" % check.facts["resource"]
    check.require(check.facts.get("selector"), "no virtual device attribute to select")
    driver, attr, value = check.facts["selector"]
    domain, _unused, name = attr.rpartition("/")  # qualified attribute names keep their own domain
    expression = 'device.driver == %s && device.attributes[%s].%s == %s' % (
        json.dumps(driver), json.dumps(domain or driver), name, json.dumps(value))
    rc = probe.create(claim_manifest("virtual", device_class_for(check, driver), selectors=[expression],
                                     request="vgpu"))
    pod = probe.create(pod_manifest("virtual", claims={"vgpu": {"resourceClaimName": "virtual"}}))
    probe.wait_for(pod, pod_scheduled, "pod virtual scheduled")
    rc = probe.wait_for(rc, claim_allocation, "claim virtual (%s) allocated" % expression)
    return "claim selecting %s allocated %s" % (expression, claim_allocation(rc)[0]["device"])


def device_class_for(check, driver):
    classes = [dc["name"] for dc in check.accelerators["device_classes"] if driver in dc["drivers"]]
    check.require(classes, "no DeviceClass selects driver %s" % driver)
    return classes[0]


ARGUMENT_SPEC = {"not_applicable_reason": {"type": "str"}}


def main():
    run_check("virtualized_accelerator", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
