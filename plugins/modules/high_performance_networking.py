#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: high_performance_networking
short_description: Verify that high-performance network devices are managed and exposed (DRA, e.g. DRANET)
description:
  - Checks the C(high_performance_networking) requirement (networking, SHOULD, checklist 1.36).
  - Context - if no high-performance network device is advertised at all (no DRA network devices, no RDMA/SR-IOV
    device-plugin resources, no NetworkAttachmentDefinitions), the check is N/A and says so; that cannot tell
    an absent NIC from an unexposed one, so the reason names what was looked for.
  - Static - network devices are published through DRA ResourceSlices with their characteristics as attributes
    (interface name, RDMA, PCI address, NUMA node, ...) so that scheduling can use them (SHOULD use DRA).
  - Positive - a pod with a ResourceClaim for one network device of the discovered DeviceClass gets the device
    allocated and is scheduled.
  - Positive (optional) - a pod claiming two network devices gets both (multiple interfaces in one pod).
  - Negative - a claim selecting a network device by an attribute value no device has stays unallocated and its
    pod unschedulable.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  device_class:
    description: DeviceClass of the network devices. Default - a DeviceClass whose driver publishes network devices.
    type: str
"""

EXAMPLES = r"""
- name: Verify high-performance networking through DRA
  k8s_ai.conformance.high_performance_networking:
    kubeconfig: "{{ kubeconfig }}"
  delegate_to: localhost
"""

RETURN = r"""
result:
  description: Check result (docs/architecture.md schema); N/A with na_reason when no such device is advertised.
  returned: always
  type: dict
  contains:
    status: {description: "Implemented, Partially Implemented, Not Implemented or N/A.", type: str, returned: always}
    verified: {description: False when a part could not run., type: bool, returned: always}
    parts: {description: Parts with outcome and detail., type: list, returned: always}
    evidence: {description: "Devices, claims and pods seen.", type: list, returned: always}
"""

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (  # noqa: E402
    CLAIMS_REFUSED,
    STAYS_AFTER_VERDICT,
    claim_allocation,
    claim_manifest,
    pod_manifest,
    pod_scheduled,
    pod_unschedulable,
)

NETWORK_ATTRIBUTES = ("ifName", "rdma", "mac", "pciAddress", "encapsulation", "mtu", "sriov", "linkSpeed",
                      "interfaceName", "netDevice", "rdmaDevice", "ibDevice", "nodeGuid")
NIC_RESOURCE_HINTS = ("rdma/", "nvidia.com/rdma", "mellanox.com/", "nvidia.com/hostdev", "openshift.io/sriov",
                      "intel.com/sriov", "intel.com/intel_sriov", "amd.com/nic", "hca", "infiniband", "roce", "efa")
ARGUMENT_SPEC = {
    "device_class": {"type": "str"},
}


def verify(check):
    check.static("high-performance network devices are advertised", devices_advertised)
    check.static("network devices are exposed through DRA with their characteristics", dra_characteristics)
    check.positive("a pod claiming a network device gets it allocated and is scheduled", nic_claim_allocated)
    check.positive("a pod can attach two network devices (multiple interfaces)", two_nics_allocated, required=False)
    check.negative("a claim for a network device no node has stays unallocated", impossible_nic_refused)


def network_drivers(acc):
    """{driver: [network attributes it publishes]} from the accelerator discovery summary."""
    out = {}
    for driver, info in (acc.get("drivers") or {}).items():
        attrs = [a.split("/")[-1] for a in (info.get("attributes") or {})]
        hits = sorted({a for a in attrs if a in NETWORK_ATTRIBUTES})
        if hits and info.get("devices"):
            out[driver] = hits
    return out


def nic_resources(nodes):
    found = {}
    for node in nodes:
        for name, qty in ((node.get("status") or {}).get("allocatable") or {}).items():
            if any(h in name.lower() for h in NIC_RESOURCE_HINTS) and str(qty) not in ("0", ""):
                found.setdefault(name, []).append(node["metadata"]["name"])
    return found


def devices_advertised(check):
    drivers = network_drivers(check.accelerators)
    resources = nic_resources(check.nodes())
    nads = []
    if not check.served("k8s.cni.cncf.io/v1", ["NetworkAttachmentDefinition"]):
        nads = check.list("NetworkAttachmentDefinitions", "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions")
    check.facts["net_drivers"] = drivers
    if not (drivers or resources or nads):
        check.not_applicable("no high-performance network device is advertised: no DRA ResourceSlice publishes "
                             "network devices (attributes %s), no node offers RDMA/SR-IOV device-plugin resources, "
                             "no NetworkAttachmentDefinition exists" % ", ".join(NETWORK_ATTRIBUTES[:4]))
    return "DRA network drivers: %s; device-plugin resources: %s; NetworkAttachmentDefinitions: %d" % (
        ", ".join(drivers) or "none", ", ".join(resources) or "none", len(nads))


def dra_characteristics(check):
    drivers = check.facts.get("net_drivers") or {}
    check.require(drivers, "network devices are not published through DRA (only device plugins or Multus)")
    acc = check.accelerators
    wanted = check.params.get("device_class")
    for dc in acc.get("device_classes") or []:
        if (wanted and dc["name"] == wanted) or (not wanted and set(dc["drivers"]) & set(drivers)):
            check.facts["device_class"], check.facts["driver"] = dc["name"], (dc["drivers"] or list(drivers))[0]
            break
    check.require(check.facts.get("device_class"), "no DeviceClass selects the network driver(s) %s"
                  % ", ".join(drivers))
    driver = check.facts["driver"]
    return "driver %s publishes %d devices with %s (DeviceClass %s)" % (
        driver, acc["drivers"].get(driver, {}).get("devices", 0), ", ".join(drivers.get(driver, [])),
        check.facts["device_class"])


def claim_and_pod(check, probe, name, selector=None, count=1):
    claim = probe.create(claim_manifest(name, check.facts["device_class"], count=count,
                                        selectors=[selector] if selector else None, request="nic"))
    pod = probe.create(pod_manifest(name, claims={"nic": {"resourceClaimName": name}}))
    return claim, pod


def nic_claim_allocated(check, probe):
    check.require(check.facts.get("device_class"), "no DeviceClass for network devices")
    claim, pod = claim_and_pod(check, probe, "nic")
    pod = probe.wait_for(pod, pod_scheduled, "pod with a network device claim scheduled")
    results = claim_allocation(probe.get(claim))
    check.require(results, "pod scheduled but the claim shows no allocation")
    return "allocated %s on %s" % (", ".join("%s/%s" % (r.get("driver"), r.get("device")) for r in results),
                                   pod["spec"]["nodeName"])


def two_nics_allocated(check, probe):
    check.require(check.facts.get("device_class"), "no DeviceClass for network devices")
    most = (check.accelerators["drivers"].get(check.facts["driver"]) or {}).get("max_per_node", 0)
    check.require(most >= 2, "no node has two network devices of driver %s" % check.facts["driver"])
    claim, pod = claim_and_pod(check, probe, "two-nics", count=2)
    pod = probe.wait_for(pod, pod_scheduled, "pod with two network devices scheduled")
    results = claim_allocation(probe.get(claim))
    check.require(len(results) == 2, "claim shows %d allocated devices, expected 2" % len(results))
    return "two interfaces allocated on %s: %s" % (pod["spec"]["nodeName"], ", ".join(r.get("device") for r in results))


def impossible_nic_refused(check, probe):
    check.require(check.facts.get("device_class"), "no DeviceClass for network devices")
    driver = check.facts["driver"]
    expression = 'device.driver == "%s" && "ifName" in device.attributes["%s"] && ' \
                 'device.attributes["%s"].ifName == "ai-conformance-no-such-if"' % (driver, driver, driver)
    claim, pod = claim_and_pod(check, probe, "no-such-nic", expression)
    probe.wait_for(pod, lambda p: pod_unschedulable(p, because=CLAIMS_REFUSED),
                   "pod with an impossible network claim unschedulable for its claim")
    probe.stays(claim, lambda c: not claim_allocation(c), "claim stays unallocated", seconds=STAYS_AFTER_VERDICT)
    return "claim for ifName=ai-conformance-no-such-if stays unallocated, pod unschedulable"


def main():
    run_check("high_performance_networking", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
