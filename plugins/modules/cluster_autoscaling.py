#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: cluster_autoscaling
short_description: Prove the cluster autoscaler scales accelerator node groups for pending pods (or N/A)
description:
  - "Checklist id C(cluster_autoscaling) (MUST, conditional): if the platform provides a cluster autoscaler or an
    equivalent, it scales node groups with specific accelerator types based on pending pods requesting them."
  - Static part - a cluster autoscaler (Deployment named/labelled cluster-autoscaler, status ConfigMap) or Karpenter
    (karpenter.sh CRDs and controller) is present and Available. When none is found the check is N/A with reason
    "no cluster autoscaler on this platform (bare metal)" (or I(not_applicable_reason)).
  - Positive case (opt-in, I(probe_scale_up); it adds a real node) - a pod requesting a whole node's worth of
    accelerators (device-plugin resource, or a DRA claim) triggers a scale-up - a TriggeredScaleUp/Nominated event,
    or the pod lands on a node created after the probe started.
  - Negative case (opt-in) - a pod requesting more accelerators than any node group offers is considered and
    refused by the autoscaler - its C(NotTriggerScaleUp) event (Karpenter - its C(FailedScheduling) event) - and
    no scale-up is triggered for it. "No new node within the wait" alone also holds with no autoscaler running, so
    it is not enough.
  - Scale-down (opt-in, I(probe_scale_down); required when probed) - the scale-up pod lands on the node added
    for it; once the pod is deleted the autoscaler removes that node again within I(scale_down_timeout) (it
    takes the autoscaler's scale-down delays, 10 minutes each by default).
  - Without I(probe_scale_up) the behavioural cases are skipped and an Available autoscaler alone is Not
    Implemented (behaviour not observed), with the reason in the notes.
version_added: 0.1.0
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  probe_scale_up:
    description: Run the behavioural cases (creates a real node on cloud platforms). Without it they are skipped.
    type: bool
    default: false
  accelerator_resource:
    description:
      - Extended resource the scale-up pod requests. Default - the accelerator resource discovered on nodes; without
        one, the pod asks for devices through a DRA ResourceClaim of the discovered DeviceClass.
    type: str
  node_selector:
    description: Node selector steering the scale-up pod to the accelerator node group.
    type: dict
    default: {}
  scale_up_timeout:
    description: Seconds to wait for the scale-up signal.
    type: int
    default: 600
  probe_scale_down:
    description: Also prove the scale-down (with I(probe_scale_up)) - the node added for the pod goes away.
    type: bool
    default: false
  scale_down_timeout:
    description: Seconds to wait for the new node to be Ready and running the pod, and again for its removal.
    type: int
    default: 1500
  not_applicable_reason:
    description: Reason reported when no autoscaler is found.
    type: str
    default: no cluster autoscaler on this platform (bare metal)
"""

EXAMPLES = r"""
- name: Verify cluster autoscaling (N/A on bare metal)
  k8s_ai.conformance.cluster_autoscaling:
    kubeconfig: "{{ kubeconfig }}"
"""

RETURN = r"""
result:
  description: The check result (docs/architecture.md); status, verified, parts, evidence, notes.
  returned: always
  type: dict
"""

import calendar  # noqa: E402
import time  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.accelerators import (  # noqa: E402
    pick_device_class,
)
from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import claim_manifest, pod_manifest  # noqa: E402

KARPENTER_CRDS = ["nodepools.karpenter.sh", "nodeclaims.karpenter.sh"]
SCALE_UP_REASONS = ("TriggeredScaleUp", "Nominated")
NO_SCALE_UP = "NotTriggerScaleUp"  # cluster-autoscaler: "pod didn't trigger scale-up: ..."


def refused_by_autoscaler(event):
    """The autoscaler looked at the pod and decided no node group can take it."""
    source = " ".join(str(x) for x in ((event.get("source") or {}).get("component"), event.get("reportingComponent"),
                                       event.get("reportingController")) if x).lower()
    return event.get("reason") == NO_SCALE_UP or (event.get("reason") == "FailedScheduling" and "karpenter" in source)


def verify(check):
    check.static("a cluster autoscaler (or Karpenter) is present and Available", autoscaler_present)
    check.positive("a pending pod requesting accelerators triggers a scale-up", scale_up)
    check.negative("a pod requesting more accelerators than any node group offers triggers no scale-up", no_scale_up)
    check.positive("the node added for the pod is removed once the pod is gone", scale_down,
                   required=check.params["probe_scale_up"] and check.params["probe_scale_down"])


def autoscaler_present(check):
    found = []
    for dep in check.cluster.iter_list("/apis/apps/v1/deployments"):
        meta = dep["metadata"]
        text = " ".join([meta["name"]] + list((meta.get("labels") or {}).values()))
        if "cluster-autoscaler" in text or "karpenter" in text:
            ready = (dep.get("status") or {}).get("readyReplicas") or 0
            found.append((meta["namespace"], meta["name"], ready))
    check.record("autoscaler Deployments", "list deployments (all namespaces), match cluster-autoscaler/karpenter",
                 response=["%s/%s ready=%d" % f for f in found])
    karpenter = not check.crds_established(KARPENTER_CRDS)
    if not found and not karpenter:
        check.not_applicable(check.params["not_applicable_reason"])
    check.require(any(ready for _unused, _unused, ready in found),
                  "autoscaler found but not Available: %s" % (found or KARPENTER_CRDS))
    status = check.read("cluster-autoscaler status",
                        "/api/v1/namespaces/kube-system/configmaps/cluster-autoscaler-status", missing_ok=True)
    health = ((status or {}).get("data") or {}).get("status", "")[:300]
    check.facts["autoscaler"] = "karpenter" if karpenter else "cluster-autoscaler"
    return "%s: %s%s" % (check.facts["autoscaler"], ", ".join("%s/%s" % f[:2] for f in found),
                         ("; status: " + health) if health else "")


def accelerator_pod(check, probe, name, whole_nodes=1):
    """Create a pending pod asking `whole_nodes` nodes' worth of accelerators (so it fits beside nothing):
    through the device-plugin resource when there is one, else through a DRA claim. Returns what it asked."""
    plugins = check.accelerators["extended_resources"]
    resource = check.params.get("accelerator_resource") or next(iter(sorted(plugins)), None)
    selector = check.params.get("node_selector") or {}
    if resource:
        count = whole_nodes * max(list((plugins.get(resource) or {}).get("nodes", {}).values()) or [1])
        pod = pod_manifest(name, requests={resource: count})
        asked = "%d %s" % (count, resource)
    else:
        device_class, driver = pick_device_class(check.accelerators)
        check.require(device_class, "no accelerator found (no device-plugin resource, no DRA DeviceClass)")
        count = whole_nodes * check.accelerators["drivers"][driver]["max_per_node"]
        probe.create(claim_manifest(name, device_class, count=count))
        pod = pod_manifest(name, claims={"accel": {"resourceClaimName": name}})
        asked = "%d devices of DeviceClass %s" % (count, device_class)
    pod["spec"]["nodeSelector"] = selector
    return probe.create(pod), asked


def node_created_after(check, name, started):
    node = check.cluster.get(check.cluster.path("v1", "nodes", name=name), missing_ok=True) if name else None
    created = (node or {}).get("metadata", {}).get("creationTimestamp")
    return bool(created) and calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")) >= started - 5


def events_of(probe, name):
    return probe.list("v1", "Event", field_selector="involvedObject.name=%s" % name)


def scale_up(check, probe):
    if not check.params["probe_scale_up"]:
        check.skip("scale-up not probed (probe_scale_up=false: it would add a real node)")
    check.require(check.facts.get("autoscaler"), "no Available autoscaler")
    started = time.time()
    pod, asked = accelerator_pod(check, probe, "scale-up")
    seen = probe.wait_until(
        lambda: (events_of(probe, "scale-up"), probe.get(pod)),
        lambda s: any(e.get("reason") in SCALE_UP_REASONS for e in s[0])
        or node_created_after(check, (s[1] or {}).get("spec", {}).get("nodeName"), started),
        "scale-up triggered for pod scale-up", timeout=check.params["scale_up_timeout"])
    check.facts["scale_up"] = {"pod": pod, "started": started}
    trigger = next((e for e in seen[0] if e.get("reason") in SCALE_UP_REASONS), {})
    return "pod asking %s triggered a scale-up (%s)" % (
        asked, "%s: %s" % (trigger["reason"], (trigger.get("message") or "")[:200]) if trigger else "a new node")


def no_scale_up(check, probe):
    if not check.params["probe_scale_up"]:
        check.skip("scale-up not probed (probe_scale_up=false)")
    check.require(check.facts.get("autoscaler"), "no Available autoscaler")
    pod, asked = accelerator_pod(check, probe, "impossible", whole_nodes=1000)
    window = min(120, check.params["scale_up_timeout"])
    events = probe.wait_until(lambda: events_of(probe, "impossible"), lambda evs: any(map(refused_by_autoscaler, evs)),
                              "the autoscaler refuses a scale-up for a pod asking %s (%s)" % (asked, NO_SCALE_UP),
                              timeout=window)
    check.require(not any(e.get("reason") in SCALE_UP_REASONS for e in events),
                  "a scale-up was triggered for a pod no node group can hold: %s" % sorted(
                      {e.get("reason") for e in events}))
    refusal = next(e for e in events if refused_by_autoscaler(e))
    probe.delete(pod)  # a pending pod left behind would hold back nothing, but the scale-down probe runs next
    return "pod asking %s: no scale-up, the autoscaler refused it (%s: %s)" % (
        asked, refusal.get("reason"), (refusal.get("message") or "")[:200])


def scale_down(check, probe):
    if not (check.params["probe_scale_up"] and check.params["probe_scale_down"]):
        check.skip("scale-down not probed (probe_scale_down=false: it takes the autoscaler's scale-down delays)")
    scaled = check.facts.get("scale_up")
    check.require(scaled, "no scale-up was observed, so there is no node to scale down")
    timeout = check.params["scale_down_timeout"]
    pod = probe.wait_for(scaled["pod"], lambda p: node_created_after(check, p["spec"].get("nodeName"),
                                                                     scaled["started"]),
                         "pod scale-up running on a node created for it", timeout=timeout)
    node = pod["spec"]["nodeName"]
    probe.delete(pod)
    gone_after = time.time()
    probe.wait_until(lambda: check.cluster.get(check.cluster.path("v1", "nodes", name=node), missing_ok=True),
                     lambda n: n is None, "node %s removed by the autoscaler" % node, timeout=timeout)
    return "pod scale-up ran on new node %s; %.0fs after the pod was deleted the node was gone" % (
        node, time.time() - gone_after)


ARGUMENT_SPEC = {
    "probe_scale_up": {"type": "bool", "default": False},
    "accelerator_resource": {"type": "str"},
    "node_selector": {"type": "dict", "default": {}},
    "scale_up_timeout": {"type": "int", "default": 600},
    "probe_scale_down": {"type": "bool", "default": False},
    "scale_down_timeout": {"type": "int", "default": 1500},
    "not_applicable_reason": {"type": "str", "default": "no cluster autoscaler on this platform (bare metal)"},
}


def main():
    run_check("cluster_autoscaling", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
