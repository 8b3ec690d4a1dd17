#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: gang_scheduling
short_description: Prove all-or-nothing (gang) admission of distributed workloads with Kueue
description:
  - "Checklist id C(gang_scheduling) (MUST): a gang scheduling solution ensures all-or-nothing scheduling."
  - Static part - the Kueue CRDs are Established and an Active ClusterQueue admits workloads from the probe namespace
    (without one, and unless disabled, the probe makes its own ClusterQueue - the operation of Kueue is what is
    proven).
  - Positive case - a suspended Job (parallelism = completions = N) queued through a probe-owned LocalQueue that
    points at the ClusterQueue fits its quota; its Workload is admitted, the Job unsuspended and all N pods are
    created and scheduled.
  - Negative case - a Job asking for more than the ClusterQueue (and every queue it could borrow from) holds stays
    suspended, its Workload is not admitted, and NONE of its pods is ever created. It is queued on a probe-owned
    ClusterQueue, so a refused Job never holds back other users' workloads in a real (StrictFIFO) queue. The
    refusal must be Kueue's own (its Workload evaluated, C(QuotaReserved=False)) - a Job created suspended
    also stays suspended with no Kueue at all.
  - Established CRDs alone are not gang scheduling - with Kueue's controller stopped both cases fail and the
    check is Not Implemented (not Partially).
  - The Jobs, their Workloads and the LocalQueue live in the probe namespace and are deleted with it.
version_added: 0.1.0
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  cluster_queue:
    description: ClusterQueue to probe through. Default - an Active one whose namespaceSelector admits the probe.
    type: str
  pods:
    description: Number of pods (N) of the probe Jobs.
    type: int
    default: 3
  probe_cluster_queue:
    description:
      - When no ClusterQueue admits the probe namespace (and I(cluster_queue) is not set), probe through a
        probe-owned ResourceFlavor and ClusterQueue that only the probe namespace may use (deleted afterwards).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Verify gang scheduling through the team queue
  k8s_ai.conformance.gang_scheduling:
    kubeconfig: "{{ kubeconfig }}"
    cluster_queue: team-a
  register: gang
"""

RETURN = r"""
result:
  description: The check result (docs/architecture.md); status, verified, parts, evidence, notes.
  returned: always
  type: dict
"""

import math  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (  # noqa: E402
    STAYS_AFTER_KUEUE_VERDICT,
    condition,
    has_condition,
    parse_quantity,
    pod_manifest,
    selector_matches,
)

KUEUE_CRDS = ["clusterqueues.kueue.x-k8s.io", "localqueues.kueue.x-k8s.io", "workloads.kueue.x-k8s.io",
              "resourceflavors.kueue.x-k8s.io"]
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def verify(check):
    check.static("Kueue is installed and a ClusterQueue admits the probe namespace (or a probe-owned one)",
                 kueue_ready)
    check.positive("a Job of N pods that fits the quota is admitted and all N pods are scheduled", gang_fits)
    check.negative("a Job of N pods over the quota stays suspended and none of its pods is created", gang_too_big)


def kueue_ready(check):
    bad = check.crds_established(KUEUE_CRDS)
    check.require(not bad, "not Established: %s" % ", ".join(bad))
    version = next((v for v in ("kueue.x-k8s.io/v1beta2", "kueue.x-k8s.io/v1beta1")
                    if "ClusterQueue" in {r.get("kind") for r in check.cluster.served_resources(v).values()}), None)
    check.require(version, "kueue.x-k8s.io serves neither v1beta2 nor v1beta1")
    check.facts["kueue"] = version
    return "%s Established (%s); %s" % (", ".join(KUEUE_CRDS), version, cluster_queue_found(check))


def cluster_queue_found(check):
    queues = check.list("list ClusterQueues", check.cluster.path(check.facts["kueue"], "clusterqueues"))
    wanted = check.params.get("cluster_queue")
    labels = check.probe_namespace_labels()

    def admits_probe(q):
        if wanted:
            return q["metadata"]["name"] == wanted
        return selector_matches(q["spec"].get("namespaceSelector"), labels)

    usable = [q for q in queues if has_condition(q, "Active") and admits_probe(q)]
    if not usable and not wanted and check.params["probe_cluster_queue"]:
        check.facts["cluster_queue"] = None  # the behavioural parts make their own
        return "no ClusterQueue admits the probe namespace (found: %s); probing through a probe-owned one" % (
            [q["metadata"]["name"] for q in queues])
    check.require(usable, "no Active ClusterQueue%s admits the probe namespace (found: %s)" % (
        " named %s" % wanted if wanted else "", [q["metadata"]["name"] for q in queues]))
    queue = max(usable, key=lambda q: len(q["spec"].get("resourceGroups") or []))
    check.facts["cluster_queue"] = queue
    covered = sorted({r for g in queue["spec"].get("resourceGroups") or [] for r in g.get("coveredResources") or []})
    return "ClusterQueue %s is Active, covers %s" % (queue["metadata"]["name"], ", ".join(covered))


def quota_plan(check, queue):
    """(resource, requests per pod that fit, requests per pod that can never fit, pods) for a ClusterQueue."""
    n = check.params["pods"]
    groups = queue["spec"].get("resourceGroups") or []
    covered = [r for g in groups for r in g.get("coveredResources") or []]
    resource = next((r for r in ("cpu", "memory", "pods") if r in covered), covered[0] if covered else None)
    check.require(resource, "ClusterQueue %s covers no resource" % queue["metadata"]["name"])
    # Upper bound of what could ever be lent: every ClusterQueue's and Cohort's quota for the resource, summed.
    every = check.cluster.list(check.cluster.path(check.facts["kueue"], "clusterqueues"))
    if "cohorts" in check.cluster.served_resources(check.facts["kueue"]):
        every += check.cluster.list(check.cluster.path(check.facts["kueue"], "cohorts"))
    total = sum(parse_quantity(res.get("nominalQuota", 0)) + parse_quantity(res.get("borrowingLimit", 0))
                for q in every for g in q["spec"].get("resourceGroups") or [] for f in g.get("flavors") or []
                for res in f.get("resources") or [] if res.get("name") == resource)
    small = {"cpu": "10m", "memory": "8Mi"}
    fits = {r: small[r] for r in ("cpu", "memory") if r in covered}
    if resource == "pods":
        return resource, fits, None, int(total) + 1  # negative: more pods than all queues allow
    unit = 0.001 if resource == "cpu" else 1.0
    per_pod = math.ceil((total + unit) / n / unit) * unit
    too_big = dict(fits, **{resource: ("%dm" % round(per_pod * 1000)) if resource == "cpu" else str(int(per_pod))})
    return resource, fits, too_big, n


def job(name, queue, n, requests):
    pod = pod_manifest("x", requests=requests)
    template = {"metadata": {"labels": {"k8s-ai-conformance/job": name}}, "spec": pod["spec"]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": {QUEUE_LABEL: queue}},
            "spec": {"parallelism": n, "completions": n, "suspend": True, "backoffLimit": 0, "template": template}}


def local_queue(check, probe, own=False):
    """(LocalQueue name, ClusterQueue) for a probe Job: the cluster's queue, or a probe-owned one (own=True,
    or when none is usable). Each is made once per check; the LocalQueues live in the probe namespace."""
    kueue = check.facts["kueue"]
    probe.also_clean(kueue, "Workload")  # Kueue makes them for our Jobs
    probe.also_clean("v1", "Pod")  # the Job controller makes them
    own = own or not check.facts["cluster_queue"]
    queues = check.facts.setdefault("queues", {})
    if own not in queues:
        queue = probe_cluster_queue(check, probe, kueue) if own else check.facts["cluster_queue"]
        name = "probe-own" if own else "probe"
        probe.create({"apiVersion": kueue, "kind": "LocalQueue", "metadata": {"name": name},
                      "spec": {"clusterQueue": queue["metadata"]["name"]}})
        queues[own] = (name, queue)
    return queues[own]


def probe_cluster_queue(check, probe, kueue):
    """A ClusterQueue only the probe namespace may use (1 CPU, 1Gi), with its own ResourceFlavor."""
    flavor = probe.create({"apiVersion": kueue, "kind": "ResourceFlavor", "metadata": {"generateName": "probe-"},
                           "spec": {}})
    queue = probe.create({"apiVersion": kueue, "kind": "ClusterQueue", "metadata": {"generateName": "probe-"}, "spec": {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": probe.namespace}},
        "resourceGroups": [{"coveredResources": ["cpu", "memory"], "flavors": [{
            "name": flavor["metadata"]["name"],
            "resources": [{"name": "cpu", "nominalQuota": "1"}, {"name": "memory", "nominalQuota": "1Gi"}]}]}]}})
    return probe.wait_for(queue, lambda q: has_condition(q, "Active"), "probe ClusterQueue Active")


def workload_of(probe, kueue, job_name):
    for wl in probe.list(kueue, "Workload"):
        owners = wl["metadata"].get("ownerReferences") or []
        if any(o.get("kind") == "Job" and o.get("name") == job_name for o in owners):
            return wl
    return None


def job_pods(probe, name):
    return probe.list("v1", "Pod", label_selector="batch.kubernetes.io/job-name=%s" % name)


def gang_fits(check, probe):
    check.require("cluster_queue" in check.facts, "no usable ClusterQueue was found by the static part")
    n = check.params["pods"]
    lq, queue = local_queue(check, probe)
    _unused, fits, _unused, _unused = quota_plan(check, queue)
    probe.create(job("gang-fits", lq, n, fits))
    kueue = check.facts["kueue"]
    wl = probe.wait_until(lambda: workload_of(probe, kueue, "gang-fits"), lambda w: has_condition(w, "Admitted"),
                          "Workload of Job gang-fits Admitted")
    pods = probe.wait_until(lambda: job_pods(probe, "gang-fits"),
                            lambda ps: len([p for p in ps if p["spec"].get("nodeName")]) >= n,
                            "all %d pods of Job gang-fits created and scheduled" % n)
    nodes = sorted({p["spec"]["nodeName"] for p in pods})
    return "via ClusterQueue %s: Workload %s admitted; %d/%d pods scheduled on %s" % (
        queue["metadata"]["name"], wl["metadata"]["name"], len(pods), n, ", ".join(nodes))


def gang_too_big(check, probe):
    check.require("cluster_queue" in check.facts, "no usable ClusterQueue was found by the static part")
    # Refused on a probe-owned queue: an inadmissible Job at the head of a real StrictFIFO queue would hold
    # back other users' workloads while we watch it.
    lq, queue = local_queue(check, probe, own=True)
    resource, fits, too_big, n = quota_plan(check, queue)
    probe.create(job("gang-too-big", lq, n, too_big or fits))
    kueue = check.facts["kueue"]
    wl = probe.wait_until(lambda: workload_of(probe, kueue, "gang-too-big"),
                          lambda w: has_condition(w, "QuotaReserved", "False"),
                          "Workload of Job gang-too-big evaluated and refused quota (QuotaReserved=False)")
    gang = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "gang-too-big"}}
    probe.stays(gang, lambda j: j and j["spec"].get("suspend") and not job_pods(probe, "gang-too-big")
                and not has_condition(workload_of(probe, kueue, "gang-too-big"), "Admitted"),
                "Job gang-too-big stays suspended, not admitted, with 0 pods", seconds=STAYS_AFTER_KUEUE_VERDICT)
    refused = condition(wl, "QuotaReserved") or {}
    message = "%s: %s" % (refused.get("reason"), (refused.get("message") or "")[:200])
    asked = ("%s per pod" % too_big[resource]) if too_big else "pods"
    return "via probe-owned ClusterQueue %s: %d pods asking %s %s: not admitted, 0 pods created (%s)" % (
        queue["metadata"]["name"], n, asked, resource, message)


ARGUMENT_SPEC = {
    "cluster_queue": {"type": "str"},
    "pods": {"type": "int", "default": 3},
    "probe_cluster_queue": {"type": "bool", "default": True},
}


def main():
    run_check("gang_scheduling", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
