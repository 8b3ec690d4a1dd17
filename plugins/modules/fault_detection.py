#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: fault_detection
short_description: Verify that accelerator node faults are detected and reported through the API
description:
  - Whitepaper check (fault detection for accelerator nodes).
  - Static - a fault detector (node-problem-detector or an equivalent, e.g. a GPU health monitor) reports node
    conditions beyond the kubelet's own (Ready, MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable) on
    every accelerator node (nodes with DRA devices or device-plugin accelerators).
  - Static - the detector is alive - those conditions were refreshed within I(max_age) seconds (read, not probed,
    so it also runs in check mode).
  - Optional - device-level health reaches the scheduler - the DRA device taint API (DeviceTaintRule) is served or
    ResourceSlices carry device taints.
  - Static-only by design - faults are not injected (that would disturb the workloads on production accelerator
    nodes), so no positive/negative case exists; the result says C(static_only) with that reason in its notes.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  max_age:
    description: Maximum age in seconds of the last heartbeat of a detector condition.
    type: int
    default: 900
"""

EXAMPLES = r"""
- name: Verify accelerator fault detection
  k8s_ai.conformance.fault_detection:
    kubeconfig: "{{ kubeconfig }}"
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
    evidence: {description: Node conditions per accelerator node., type: list, returned: always}
"""

import calendar  # noqa: E402
import time  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402

KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")
TAINT_APIS = ("resource.k8s.io/v1beta2", "resource.k8s.io/v1alpha3", "resource.k8s.io/v1")
ARGUMENT_SPEC = {
    "max_age": {"type": "int", "default": 900},
}


STATIC_ONLY = ("faults are not injected: breaking a production accelerator node to watch it being reported would "
               "disturb the workloads on it, so detection is shown by a detector's conditions on every accelerator "
               "node and their fresh heartbeats (a live detector), not by an observed fault")


def verify(check):
    check.static_only(STATIC_ONLY)
    check.static("a fault detector reports conditions on every accelerator node", detector_conditions)
    check.static("the detector is alive: its conditions are fresh", conditions_fresh)
    check.static("device health reaches the scheduler (DRA device taints)", device_taints, required=False)


def parse_time(text):
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return None


def detector_conditions_of(node):
    return [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS]


def accelerator_nodes(acc):
    nodes = set()
    for info in (acc.get("drivers") or {}).values():
        nodes |= {n for n in info.get("nodes") or {} if not n.startswith("<")}
    for info in (acc.get("extended_resources") or {}).values():
        nodes |= set(info.get("nodes") or {})
    return nodes


def detector_conditions(check):
    wanted = accelerator_nodes(check.accelerators)
    check.require(wanted, "no accelerator node found (no DRA devices or device-plugin accelerators)")
    nodes = [n for n in check.nodes() if n["metadata"]["name"] in wanted]
    by_node = {n["metadata"]["name"]: detector_conditions_of(n) for n in nodes}
    check.record("detector conditions per accelerator node", "node status.conditions",
                 response={k: ["%s=%s" % (c.get("type"), c.get("status")) for c in v] for k, v in by_node.items()})
    missing = sorted(k for k, v in by_node.items() if not v)
    check.require(not missing, "no fault-detector condition on %d of %d accelerator nodes: %s"
                  % (len(missing), len(by_node), ", ".join(missing[:8])))
    check.facts["by_node"] = by_node
    types = sorted({c.get("type") for v in by_node.values() for c in v})
    faulty = sorted(k for k, v in by_node.items() if any(c.get("status") == "True" for c in v))
    return "%d accelerator nodes report %s%s" % (len(by_node), ", ".join(types[:8]),
                                                 ("; fault reported on %s" % ", ".join(faulty[:5])) if faulty else "")


def conditions_fresh(check):
    by_node = check.facts.get("by_node") or check.fail("no detector conditions")
    now, stale = time.time(), []
    for node, conds in sorted(by_node.items()):
        newest = max([parse_time(c.get("lastHeartbeatTime")) or 0 for c in conds] or [0])
        if now - newest > check.params["max_age"]:
            stale.append("%s (last heartbeat %s)" % (node, time.strftime("%H:%M:%SZ", time.gmtime(newest))
                                                     if newest else "never"))
    check.require(not stale, "stale detector conditions on %s" % ", ".join(stale[:8]))
    return "detector conditions refreshed within %ds on %d node(s)" % (check.params["max_age"], len(by_node))


def device_taints(check):
    for api in TAINT_APIS:
        if "devicetaintrules" in check.cluster.served_resources(api):
            return "DeviceTaintRule served by %s" % api
    check.fail("DeviceTaintRule API not served (DRADeviceTaints feature off)")


def main():
    run_check("fault_detection", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
