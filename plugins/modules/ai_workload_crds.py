#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: ai_workload_crds
short_description: Verify the AI workload APIs (JobSet, Kueue, LeaderWorkerSet) are installed and reconciled
description:
  - Whitepaper check (AI workload CRDs - JobSet, Kueue, LeaderWorkerSet).
  - Static - the JobSet CRD and the Kueue CRDs (ClusterQueue, LocalQueue, ResourceFlavor, Workload) are Established.
  - Static (optional) - the LeaderWorkerSet CRD is Established.
  - Positive - a JobSet with one replicated job of I(replicas) replicas is reconciled - its controller creates one
    child Job per replica.
  - Negative - an invalid JobSet (a success policy naming a replicated job that does not exist) is rejected by the
    JobSet admission webhook (server-side dry run); a refusal by anything else (schema, CEL, a webhook that
    cannot be called) fails the case, since it holds without the JobSet operator.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  replicas:
    description: Replicas of the probe JobSet's replicated job.
    type: int
    default: 2
"""

EXAMPLES = r"""
- name: Verify AI workload CRDs
  k8s_ai.conformance.ai_workload_crds:
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
    evidence: {description: "CRDs, JobSet and child Jobs, webhook answer.", type: list, returned: always}
"""

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import TOLERATE_ALL, denied_by_webhook  # noqa: E402

JOBSET = "jobset.x-k8s.io/v1alpha2"
JOBSET_CRD = "jobsets.jobset.x-k8s.io"
KUEUE_CRDS = ["clusterqueues.kueue.x-k8s.io", "localqueues.kueue.x-k8s.io", "resourceflavors.kueue.x-k8s.io",
              "workloads.kueue.x-k8s.io"]
LWS_CRD = "leaderworkersets.leaderworkerset.x-k8s.io"
ARGUMENT_SPEC = {
    "replicas": {"type": "int", "default": 2},
}


def verify(check):
    check.static("the JobSet CRD is Established", lambda c: crds(c, [JOBSET_CRD]))
    check.static("the Kueue CRDs are Established", lambda c: crds(c, KUEUE_CRDS))
    check.static("the LeaderWorkerSet CRD is Established", lambda c: crds(c, [LWS_CRD]), required=False)
    check.positive("a JobSet is reconciled into one child Job per replica", jobset_reconciled)
    check.negative("an invalid JobSet is rejected by the JobSet webhook", invalid_jobset_rejected)


def crds(check, names):
    bad = check.crds_established(names)
    check.require(not bad, "missing or not Established: %s" % ", ".join(bad))
    return "Established: %s" % ", ".join(names)


def jobset(name, replicas, success_target=None):
    pod = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0, "tolerations": TOLERATE_ALL,
           "containers": [{"name": "worker", "image": "registry.k8s.io/pause:3.10",
                           "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}}}]}
    spec = {"replicatedJobs": [{"name": "workers", "replicas": replicas, "template": {"spec": {
        "parallelism": 1, "completions": 1, "backoffLimit": 0, "template": {"spec": pod}}}}]}
    if success_target:
        spec["successPolicy"] = {"operator": "All", "targetReplicatedJobs": [success_target]}
    return {"apiVersion": JOBSET, "kind": "JobSet", "metadata": {"name": name}, "spec": spec}


def jobset_reconciled(check, probe):
    check.require(not check.served(JOBSET, ["JobSet"]), "%s JobSet not served" % JOBSET)
    replicas = max(1, check.params["replicas"])
    created = probe.create(jobset("probe", replicas))
    selector = "jobset.sigs.k8s.io/jobset-name=%s" % created["metadata"]["name"]
    jobs = probe.wait_until(lambda: probe.list("batch/v1", "Job", label_selector=selector),
                            lambda items: len(items) >= replicas, "%d child Jobs created" % replicas)
    owned = [j for j in jobs if any(r.get("kind") == "JobSet" and r.get("name") == created["metadata"]["name"]
                                    for r in j["metadata"].get("ownerReferences") or [])]
    check.require(len(owned) == replicas, "%d of %d Jobs are owned by the JobSet" % (len(owned), len(jobs)))
    return "JobSet %s -> Jobs %s" % (created["metadata"]["name"], ", ".join(j["metadata"]["name"] for j in owned))


def invalid_jobset_rejected(check, probe):
    check.require(not check.served(JOBSET, ["JobSet"]), "%s JobSet not served" % JOBSET)
    created, error = probe.try_create(jobset("invalid", 1, success_target="no-such-replicated-job"),
                                      title="create a JobSet whose success policy names a missing job (dry run)",
                                      dry_run=True)
    check.require(created is None, "the invalid JobSet was admitted: the JobSet webhook did not reject it")
    message = error.server_message or str(error)
    if "failed calling webhook" in message:  # refused because the webhook is down, not because it validated
        check.fail("the JobSet webhook could not be called (the cluster's webhook is broken): %s" % message[:300])
    # Refused by the CRD's schema or CEL rules is refused without the operator: only its webhook's verdict counts
    check.require(denied_by_webhook(error), "rejected, but not by the JobSet admission webhook (HTTP %s): %s"
                  % (error.status, message[:300]))
    return "rejected by the webhook (%s): %s" % (error.status, message[:200])


def main():
    run_check("ai_workload_crds", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
