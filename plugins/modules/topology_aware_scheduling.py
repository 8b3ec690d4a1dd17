#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: topology_aware_scheduling
short_description: Verify topology-aware scheduling (Kueue TAS) keeps a workload's pods within a topology domain
description:
  - Whitepaper check (topology-aware scheduling).
  - Static - Kueue's Topology API is served (topology-aware scheduling, TAS).
  - Static (optional, informational) - nodes carry topology labels - the levels of existing Topology objects, or
    well-known topology labels (zone, rack, block, network layers, NVLink clique). Labels alone are not the
    capability; the probe below uses I(level), the node itself by default.
  - Positive - with a throw-away Topology (level I(level)), ResourceFlavor, ClusterQueue and LocalQueue, a Job of
    two pods that requires one domain of that level is admitted and both pods land in the same domain.
  - Negative - a Job of two pods that cannot fit together in any single domain (each asks for 60% of the
    largest node's CPU) is not admitted, although the queue's quota would allow it - Kueue evaluates its Workload
    and refuses it (C(QuotaReserved=False)), and it stays unadmitted; a Workload nobody evaluates fails the case.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  level:
    description: Node label of the topology level the probe requires (the lowest level, a node by default).
    type: str
    default: kubernetes.io/hostname
  node_labels:
    description: Node labels of the probe ResourceFlavor (which nodes the probe may use).
    type: dict
    default: {kubernetes.io/os: linux}
"""

EXAMPLES = r"""
- name: Verify topology-aware scheduling on the GPU nodes
  k8s_ai.conformance.topology_aware_scheduling:
    kubeconfig: "{{ kubeconfig }}"
    node_labels: {nvidia.com/gpu.present: "true"}
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
    evidence: {description: "Topology, queues, workloads and pod placement.", type: list, returned: always}
"""

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (  # noqa: E402
    LABEL_PROBE,
    STAYS_AFTER_KUEUE_VERDICT,
    TOLERATE_ALL,
    condition,
    has_condition,
)

KUEUE_VERSIONS = ("kueue.x-k8s.io/v1beta2", "kueue.x-k8s.io/v1beta1", "kueue.x-k8s.io/v1alpha1")
TOPOLOGY_LABEL_HINTS = ("topology.kubernetes.io/", "topology.", "rack", "block", "network-node-layer",
                        "gpu.clique", "superpod", "spine", "leaf")
REQUIRED_TOPOLOGY = "kueue.x-k8s.io/podset-required-topology"
ARGUMENT_SPEC = {
    "level": {"type": "str", "default": "kubernetes.io/hostname"},
    "node_labels": {"type": "dict", "default": {"kubernetes.io/os": "linux"}},
}


def verify(check):
    check.static("Kueue's Topology API is served", topology_api_served)
    check.static("nodes carry topology labels", nodes_have_topology_labels, required=False)
    check.positive("a Job requiring one topology domain is admitted with all pods in one domain", packed_job_admitted)
    check.negative("a Job that fits no single domain is not admitted", too_wide_job_refused)


def kueue_version(check, kind):
    for version in KUEUE_VERSIONS:
        if any(r.get("kind") == kind for r in check.cluster.served_resources(version).values()):
            return version
    return None


def topology_labels(labels):
    return sorted(k for k in labels or {}
                  if k != "kubernetes.io/hostname" and any(h in k for h in TOPOLOGY_LABEL_HINTS))


def cpu_millis(quantity):
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def topology_api_served(check):
    versions = {k: kueue_version(check, k) for k in ("Topology", "ResourceFlavor", "ClusterQueue", "LocalQueue")}
    missing = [k for k, v in versions.items() if not v]
    check.require(not missing, "Kueue does not serve %s" % ", ".join(missing))
    check.facts["kueue"] = versions
    return "served: %s" % ", ".join("%s (%s)" % (k, v) for k, v in versions.items())


def nodes_have_topology_labels(check):
    nodes = check.nodes()
    check.facts["nodes"] = nodes
    levels = []
    if check.facts.get("kueue"):
        api = check.facts["kueue"]["Topology"]
        for topo in check.list("Topologies", check.cluster.path(api, "topologies")):
            if (topo["metadata"].get("labels") or {}).get(LABEL_PROBE) == "true":
                continue  # another run's probe, not the cluster's configuration
            levels += [lvl.get("nodeLabel") for lvl in (topo.get("spec") or {}).get("levels") or []]
    wanted = sorted(set(levels)) or None
    labelled = {}
    for node in nodes:
        labels = node["metadata"].get("labels") or {}
        keys = [k for k in wanted if k in labels] if wanted else topology_labels(labels)
        if keys:
            labelled[node["metadata"]["name"]] = keys
    check.require(labelled, "no node carries %s" % (("the Topology levels " + ", ".join(wanted)) if wanted
                                                    else "a topology label (zone, rack, block, ...)"))
    keys = sorted({k for v in labelled.values() for k in v})
    return "%d of %d nodes carry %s%s" % (len(labelled), len(nodes), ", ".join(keys[:6]),
                                          " (levels of existing Topologies)" if wanted else "")


def queue_setup(check, probe):
    """Topology, ResourceFlavor, ClusterQueue, LocalQueue for the probe; returns the LocalQueue name."""
    if "queue" in check.facts:
        return check.facts["queue"]
    if "queue_error" in check.facts:  # an earlier part tried and could not: do not half-create twice
        raise check.facts["queue_error"]
    versions = check.facts.get("kueue") or check.fail("Kueue's Topology API is not served")
    try:
        return _create_queue(check, probe, versions)
    except Exception as exc:
        check.facts["queue_error"] = exc
        raise


def _create_queue(check, probe, versions):
    name = probe.namespace
    probe.create({"apiVersion": versions["Topology"], "kind": "Topology", "metadata": {"name": name},
                  "spec": {"levels": [{"nodeLabel": check.params["level"]}]}})
    probe.create({"apiVersion": versions["ResourceFlavor"], "kind": "ResourceFlavor", "metadata": {"name": name},
                  "spec": {"nodeLabels": dict(check.params["node_labels"]), "topologyName": name,
                           "tolerations": [{"operator": "Exists"}]}})
    cq = probe.create({"apiVersion": versions["ClusterQueue"], "kind": "ClusterQueue", "metadata": {"name": name},
                       "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}},
                                "resourceGroups": [{"coveredResources": ["cpu"], "flavors": [
                                    {"name": name, "resources": [{"name": "cpu", "nominalQuota": "100000"}]}]}]}})
    probe.wait_for(cq, lambda c: has_condition(c, "Active"), "ClusterQueue Active")
    probe.create({"apiVersion": versions["LocalQueue"], "kind": "LocalQueue", "metadata": {"name": "tas"},
                  "spec": {"clusterQueue": name}})
    check.facts["queue"] = "tas"
    return "tas"


def tas_job(name, queue, level, cpu):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": name, "labels": {"kueue.x-k8s.io/queue-name": queue}}, "spec": {
        "parallelism": 2, "completions": 2, "suspend": True, "template": {
            "metadata": {"annotations": {REQUIRED_TOPOLOGY: level}},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0, "tolerations": TOLERATE_ALL,
                     "containers": [{"name": "worker", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"cpu": cpu}}}]}}}}


def workload_of(check, probe, job):
    api = check.facts["kueue"]["ClusterQueue"]
    for wl in probe.list(api, "Workload"):
        if any(r.get("uid") == job["metadata"]["uid"] for r in wl["metadata"].get("ownerReferences") or []):
            return wl
    return None


def admitted(wl):
    return bool(wl) and has_condition(wl, "Admitted")


def packed_job_admitted(check, probe):
    queue = queue_setup(check, probe)
    job = probe.create(tas_job("packed", queue, check.params["level"], "100m"))
    wl = probe.wait_until(lambda: workload_of(check, probe, job), admitted, "Workload of the Job admitted")
    selector = "batch.kubernetes.io/job-name=packed"
    pods = probe.wait_until(lambda: probe.list("v1", "Pod", label_selector=selector),
                            lambda items: len(items) == 2 and all(p["spec"].get("nodeName") for p in items),
                            "both pods scheduled")
    nodes = {p["spec"]["nodeName"] for p in pods}
    domains = set()
    for node in check.facts.get("nodes") or []:
        if node["metadata"]["name"] in nodes:
            domains.add((node["metadata"].get("labels") or {}).get(check.params["level"]))
    check.require(len(domains) == 1, "pods spread over %d %s domains: %s" % (len(domains), check.params["level"],
                                                                             ", ".join(map(str, domains))))
    return "Workload %s admitted; both pods in %s=%s" % (wl["metadata"]["name"], check.params["level"], domains.pop())


def too_wide_job_refused(check, probe):
    queue = queue_setup(check, probe)
    selected = [n for n in check.facts.get("nodes") or [] if all(
        (n["metadata"].get("labels") or {}).get(k) == v for k, v in check.params["node_labels"].items())]
    check.require(selected, "no node matches node_labels %s" % check.params["node_labels"])
    largest = max(cpu_millis((n.get("status") or {}).get("allocatable", {}).get("cpu", "0")) for n in selected)
    cpu = "%dm" % (largest * 6 // 10)
    job = probe.create(tas_job("too-wide", queue, check.params["level"], cpu))
    # Kueue's own verdict (QuotaReserved=False) first: a Workload nobody evaluates also "stays unadmitted"
    wl = probe.wait_until(lambda: workload_of(check, probe, job), lambda w: has_condition(w, "QuotaReserved", "False"),
                          "Workload of too-wide evaluated and refused (QuotaReserved=False)")
    wl = probe.stays(wl, lambda w: not admitted(w), "Workload stays unadmitted", seconds=STAYS_AFTER_KUEUE_VERDICT,
                     fetch=lambda: workload_of(check, probe, job))
    refused = condition(wl, "QuotaReserved") or {}
    return "2 pods x %s CPU (largest node %dm) not admitted: %s" % (cpu, largest, (refused.get("message") or "")[:200])


def main():
    run_check("topology_aware_scheduling", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
