#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: multi_nic
short_description: Verify that pods can attach to multiple network interfaces (Multus or DRA network devices)
description:
  - Whitepaper check (multi-NIC / RDMA networking).
  - Static - a multi-network mechanism is installed - Multus NetworkAttachmentDefinitions exist, or a DRA driver
    publishes network devices (attributes such as C(ifName), C(rdma)).
  - Positive - a pod asking for an additional network (Multus annotation naming a NetworkAttachmentDefinition) runs
    and its C(k8s.v1.cni.cncf.io/network-status) annotation lists more than one interface. With DRA network devices
    only, a claimed network device is allocated and the claim's device status names an interface.
  - Negative - once a pod attached to a real network ran, a pod asking for a network that does not exist never
    becomes Running (without a working attachment first, pods that never run would pass it vacuously).
  - Needs a data plane (CNI); on simulated nodes the positive case cannot show interfaces and fails honestly.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  network:
    description: C(namespace/name) of the NetworkAttachmentDefinition to attach. Default - the first one found.
    type: str
"""

EXAMPLES = r"""
- name: Verify multi-NIC pods
  k8s_ai.conformance.multi_nic:
    kubeconfig: "{{ kubeconfig }}"
    network: default/rdma-net
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
    evidence: {description: "Networks, pods and annotations seen.", type: list, returned: always}
"""

import json  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import pod_manifest  # noqa: E402

NAD_API = "k8s.cni.cncf.io/v1"
NETWORKS = "k8s.v1.cni.cncf.io/networks"
STATUS = "k8s.v1.cni.cncf.io/network-status"
NETWORK_ATTRIBUTES = ("ifName", "rdma", "mac", "pciAddress", "interfaceName", "netDevice")
ARGUMENT_SPEC = {
    "network": {"type": "str"},
}


def verify(check):
    check.static("a multi-network mechanism is installed", mechanism_installed)
    check.positive("a pod attached to an additional network has more than one interface", pod_has_two_interfaces)
    check.negative("a pod asking for a non-existent network does not run", missing_network_refused)


def interfaces(pod):
    """Interfaces listed in the Multus network-status annotation ([] when absent/invalid)."""
    raw = ((pod or {}).get("metadata") or {}).get("annotations", {}).get(STATUS)
    try:
        return [i.get("interface") or i.get("name") for i in json.loads(raw or "[]")]
    except (ValueError, AttributeError):
        return []


def mechanism_installed(check):
    nads = []
    if not check.served(NAD_API, ["NetworkAttachmentDefinition"]):
        nads = check.list("NetworkAttachmentDefinitions", "/apis/%s/network-attachment-definitions" % NAD_API)
    given = check.params.get("network")
    if given:
        nads = [n for n in nads if "%s/%s" % (n["metadata"]["namespace"], n["metadata"]["name"]) == given]
        check.require(nads, "NetworkAttachmentDefinition %s not found" % given)
    dra = [d for d, info in (check.accelerators.get("drivers") or {}).items()
           if {a.split("/")[-1] for a in info.get("attributes") or {}} & set(NETWORK_ATTRIBUTES)]
    check.facts["nad"], check.facts["dra"] = (nads[0] if nads else None), dra
    check.require(nads or dra, "no NetworkAttachmentDefinition (Multus) and no DRA network device driver")
    return "NetworkAttachmentDefinitions: %s; DRA network drivers: %s" % (
        ", ".join("%s/%s" % (n["metadata"]["namespace"], n["metadata"]["name"]) for n in nads[:5]) or "none",
        ", ".join(dra) or "none")


def attached_pod(name, network):
    pod = pod_manifest(name)
    pod["metadata"]["annotations"] = {NETWORKS: network}
    return pod


def pod_has_two_interfaces(check, probe):
    nad = check.facts.get("nad")
    check.require(nad, "no NetworkAttachmentDefinition to attach (DRA-only network devices are verified by "
                       "high_performance_networking)")
    pod = probe.create(attached_pod("multi-nic", "%s/%s" % (nad["metadata"]["namespace"], nad["metadata"]["name"])))
    pod = probe.wait_for(pod, lambda p: (p.get("status") or {}).get("phase") == "Running" and len(interfaces(p)) > 1,
                         "pod Running with more than one interface in %s" % STATUS)
    check.facts["attached"] = True
    return "pod %s interfaces: %s" % (pod["metadata"]["name"], ", ".join(map(str, interfaces(pod))))


def missing_network_refused(check, probe):
    check.require(check.facts.get("attached"), "not meaningful: no pod attached to an additional network ran")
    pod = probe.create(attached_pod("missing-net", "ai-conformance-no-such-network"))
    probe.stays(pod, lambda p: (p.get("status") or {}).get("phase") != "Running", "pod is not Running", seconds=10)
    return "a pod asking for a non-existent network stayed non-Running"


def main():
    run_check("multi_nic", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
