#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: robust_controller
short_description: Prove an AI operator with CRDs and a validating webhook works (JobSet, Kueue, KubeRay)
description:
  - "Checklist id C(robust_controller) (MUST): a complex AI operator with a CRD runs, its webhooks are operational
    and its custom resources are reconciled."
  - For each operator found (JobSet, then Kueue, then KubeRay; or those named in I(operators)) - static part - its
    CRDs are Established, a ValidatingWebhookConfiguration serves its API group and the webhook's backing pods are Ready
    (or the webhook is served from outside the cluster, which is noted). Kueue's webhooks for the kinds it queues
    (JobSets, RayClusters) do not count as the operator's own.
  - Positive case - a valid custom resource is accepted and reconciled (a JobSet gets its child Jobs; a probe
    ClusterQueue with a probe ResourceFlavor becomes Active; a RayCluster gets its head Pod and head Service from
    KubeRay).
  - Negative case - a custom resource that passes the CRD schema but breaks the operator's own rules is REJECTED by
    the operator's admission webhook (the error must come from the webhook, not schema validation). Sent with
    C(dryRun=All), so nothing is stored even if it were accepted. KubeRay's - a RayCluster with two worker groups
    of the same name (its webhook requires unique names; the CRD schema does not).
  - One fully working operator satisfies the requirement - its parts are the required ones; the parts of the other
    operators are reported as optional evidence (when none works completely, the first operator's are required).
version_added: 0.1.0
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  operators:
    description: Operators to probe, in order of preference (the first one present is required).
    type: list
    elements: str
    choices: [jobset, kueue, kuberay]
    default: [jobset, kueue, kuberay]
  ray_image:
    description:
      - Image of the probe RayCluster's head container. The operator's reconciliation (its head Pod and Service) is
        the proof, not Ray running, so a small image that is already on the nodes will do.
    type: str
    default: registry.k8s.io/pause:3.10
"""

EXAMPLES = r"""
- name: Verify the JobSet operator
  k8s_ai.conformance.robust_controller:
    kubeconfig: "{{ kubeconfig }}"
    operators: [jobset]

- name: Verify KubeRay (roles/kuberay) as the AI operator
  k8s_ai.conformance.robust_controller:
    kubeconfig: "{{ kubeconfig }}"
    operators: [kuberay]
"""

RETURN = r"""
result:
  description: The check result (docs/architecture.md); status, verified, parts, evidence, notes.
  returned: always
  type: dict
"""

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (  # noqa: E402
    denied_by_webhook,
    has_condition,
    pod_manifest,
    selector_matches,
)

JOBSET = "jobset.x-k8s.io/v1alpha2"
KUEUE_GROUP = "kueue.x-k8s.io"


def jobset(name, replicas=2, target=None):
    pod = pod_manifest("x", requests={"cpu": "1m"})
    template = {"spec": {"parallelism": 1, "completions": 1, "backoffLimit": 0,
                         "template": {"spec": pod["spec"]}}}
    spec = {"replicatedJobs": [{"name": "workers", "replicas": replicas, "template": template}]}
    if target:
        spec["successPolicy"] = {"operator": "All", "targetReplicatedJobs": [target]}
    return {"apiVersion": JOBSET, "kind": "JobSet", "metadata": {"name": name}, "spec": spec}


def jobset_reconciled(check, probe):
    probe.also_clean("batch/v1", "Job")  # the JobSet controller makes them
    probe.also_clean("v1", "Pod")
    probe.create(jobset("valid"))
    jobs = probe.wait_until(lambda: probe.list("batch/v1", "Job", "jobset.sigs.k8s.io/jobset-name=valid"),
                            lambda js: len(js) >= 2, "JobSet valid reconciled into its 2 child Jobs")
    return "JobSet valid accepted; controller created Jobs %s" % ", ".join(j["metadata"]["name"] for j in jobs)


def jobset_rejected(check, probe):
    return expect_webhook_rejection(check, probe, jobset("invalid", target="no-such-replicated-job"),
                                    "JobSet whose successPolicy targets a replicatedJob that does not exist")


def kueue_version(check):
    return next(v for v in ("kueue.x-k8s.io/v1beta2", "kueue.x-k8s.io/v1beta1")
                if "clusterqueues" in check.cluster.served_resources(v))


def cluster_queue(version, flavor, selector, resource_name="cpu"):
    return {"apiVersion": version, "kind": "ClusterQueue", "metadata": {"generateName": "probe-"},
            "spec": {"namespaceSelector": selector, "resourceGroups": [{
                "coveredResources": ["cpu"],
                "flavors": [{"name": flavor, "resources": [{"name": resource_name, "nominalQuota": "1"}]}]}]}}


def kueue_reconciled(check, probe):
    version = kueue_version(check)
    flavor = probe.create({"apiVersion": version, "kind": "ResourceFlavor", "metadata": {"generateName": "probe-"},
                           "spec": {}})
    # Only the probe namespace may use this queue: it never takes real workloads.
    only_probe = {"matchLabels": {"kubernetes.io/metadata.name": probe.namespace}}
    cq = probe.create(cluster_queue(version, flavor["metadata"]["name"], only_probe))
    probe.wait_for(cq, lambda q: has_condition(q, "Active"), "ClusterQueue %s Active" % cq["metadata"]["name"])
    return "ClusterQueue %s with ResourceFlavor %s accepted and reconciled to Active" % (
        cq["metadata"]["name"], flavor["metadata"]["name"])


def kueue_rejected(check, probe):
    version = kueue_version(check)
    bad = cluster_queue(version, "default-flavor", {}, resource_name="memory")
    return expect_webhook_rejection(check, probe, bad,
                                    "ClusterQueue whose flavor quota names memory where coveredResources says cpu")


def expect_webhook_rejection(check, probe, obj, what):
    created, error = probe.try_create(obj, title="create invalid %s (%s)" % (obj["kind"], what), dry_run=True)
    check.require(created is None, "the API server accepted an invalid %s: %s" % (obj["kind"], what))
    message = error.server_message
    check.require(denied_by_webhook(error), "rejected, but not by an admission webhook (HTTP %s): %s"
                  % (error.status, message[:300]))
    return "rejected by the webhook (HTTP %s): %s" % (error.status, message[:300])


RAY = "ray.io/v1"


def ray_cluster(check, name, worker_groups=()):
    head = pod_manifest("ray-head", image=check.params["ray_image"])["spec"]
    spec = {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": head}}}
    if worker_groups:
        worker = pod_manifest("ray-worker", image=check.params["ray_image"])["spec"]
        spec["workerGroupSpecs"] = [{"groupName": group, "replicas": 0, "minReplicas": 0, "maxReplicas": 1,
                                     "rayStartParams": {}, "template": {"spec": worker}} for group in worker_groups]
    return {"apiVersion": RAY, "kind": "RayCluster", "metadata": {"name": name}, "spec": spec}


def ray_reconciled(check, probe):
    probe.also_clean("v1", "Pod")  # the operator makes them (owned by the RayCluster, deleted with it too)
    probe.create(ray_cluster(check, "valid"))
    selector = "ray.io/cluster=valid,ray.io/node-type=head"
    pods = probe.wait_until(lambda: probe.list("v1", "Pod", selector), bool, "RayCluster valid's head Pod created")
    services = probe.wait_until(lambda: probe.list("v1", "Service", "ray.io/cluster=valid"), bool,
                                "RayCluster valid's head Service created")
    return "RayCluster valid accepted; the operator created head Pod %s and Service %s" % (
        pods[0]["metadata"]["name"], services[0]["metadata"]["name"])


def ray_rejected(check, probe):
    return expect_webhook_rejection(check, probe, ray_cluster(check, "invalid", worker_groups=("workers", "workers")),
                                    "RayCluster with two worker groups named workers")


OPERATORS = {
    # name: (API group, CRDs, positive part, negative part)
    "jobset": ("jobset.x-k8s.io", ["jobsets.jobset.x-k8s.io"], jobset_reconciled, jobset_rejected),
    "kueue": ("kueue.x-k8s.io", ["clusterqueues.kueue.x-k8s.io", "resourceflavors.kueue.x-k8s.io"],
              kueue_reconciled, kueue_rejected),
    "kuberay": ("ray.io", ["rayclusters.ray.io"], ray_reconciled, ray_rejected),
}


def verify(check):
    check.static("an AI operator's CRDs are Established (one of %s)" % ", ".join(check.params["operators"]),
                 operators_installed)
    tried = {}
    for op in check.facts.get("operators") or []:
        group, _unused, reconciled, rejected = OPERATORS[op]
        first = len(check.parts)
        check.static("%s: validating webhook registered and its pods Ready" % op,
                     lambda c, g=group: webhook_ready(c, g))
        check.positive("%s: a valid custom resource is accepted and reconciled" % op, reconciled)
        check.negative("%s: an invalid custom resource is rejected by the webhook" % op, rejected)
        tried[op] = check.parts[first:]
    # One fully working operator satisfies the requirement: its parts are the required ones, the others'
    # parts stay as optional evidence (the first operator's when none works completely).
    working = [op for op, ps in tried.items() if all(p["outcome"] == "passed" for p in ps)]
    chosen = (working or list(tried) or [None])[0]
    for op, ps in tried.items():
        for part in ps:
            part["required"] = op == chosen


def operators_installed(check):
    present = [op for op in check.params["operators"] if not check.crds_established(OPERATORS[op][1])]
    check.require(present, "none of %s is installed (CRDs missing or not Established)"
                  % ", ".join(check.params["operators"]))
    check.facts["operators"] = present
    return "installed: %s" % ", ".join(present)


def covers(config, group):
    return any(group in (rule.get("apiGroups") or []) for hook in config.get("webhooks") or []
               for rule in hook.get("rules") or [])


def webhook_ready(check, group):
    configs = check.list("list ValidatingWebhookConfigurations",
                         "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations")
    # Kueue registers webhooks for the kinds it queues (JobSets, RayClusters ... under the operators' own webhook
    # names): those are Kueue's, not the operator's, so a configuration that also covers Kueue's group is skipped.
    own = [cfg for cfg in configs if group == KUEUE_GROUP or not covers(cfg, KUEUE_GROUP)]
    hooks = [(cfg["metadata"]["name"], hook) for cfg in own for hook in cfg.get("webhooks") or []
             if covers({"webhooks": [hook]}, group)]
    others = sorted(cfg["metadata"]["name"] for cfg in configs if cfg not in own and covers(cfg, group))
    check.require(hooks, "no ValidatingWebhookConfiguration of the operator covers API group %s%s" % (
        group, " (only Kueue's for the kinds it queues: %s)" % ", ".join(others) if others else ""))
    notes = []
    for cfg_name, hook in hooks[:1]:
        service = (hook.get("clientConfig") or {}).get("service")
        if not service:
            notes.append("%s/%s is served from URL outside the cluster" % (cfg_name, hook["name"]))
            continue
        svc = check.read("webhook Service %s/%s" % (service["namespace"], service["name"]),
                         check.cluster.path("v1", "services", service["namespace"], service["name"]), missing_ok=True)
        check.require(svc, "webhook %s points at Service %s/%s, which does not exist"
                      % (hook["name"], service["namespace"], service["name"]))
        if svc["spec"].get("type") == "ExternalName":
            notes.append("webhook %s is served outside the cluster via ExternalName %s; its pods are not visible"
                         % (hook["name"], svc["spec"].get("externalName")))
            continue
        pods = check.list("pods behind webhook Service %s" % service["name"],
                          check.cluster.path("v1", "pods", service["namespace"]))
        backing = [p for p in pods if selector_matches({"matchLabels": svc["spec"].get("selector") or {"-": "-"}},
                                                       p["metadata"].get("labels"))]
        ready = [p for p in backing if has_condition(p, "Ready")]
        check.require(ready, "no Ready pod behind webhook Service %s/%s (%d pods match)"
                      % (service["namespace"], service["name"], len(backing)))
        notes.append("webhook %s served by %d/%d Ready pods" % (hook["name"], len(ready), len(backing)))
    return "%d webhooks cover %s; %s" % (len(hooks), group, "; ".join(notes))


ARGUMENT_SPEC = {
    "operators": {"type": "list", "elements": "str", "choices": ["jobset", "kueue", "kuberay"],
                  "default": ["jobset", "kueue", "kuberay"]},
    "ray_image": {"type": "str", "default": "registry.k8s.io/pause:3.10"}}


def main():
    run_check("robust_controller", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
