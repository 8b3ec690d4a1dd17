#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: disaggregated_inference
short_description: Verify that a disaggregated (prefill/decode) inference solution is installed and running
description:
  - Checks the C(disaggregated_inference) requirement (networking, SHOULD, checklist 1.36).
  - Static - a disaggregated serving solution is installed - its API (LeaderWorkerSet, llm-d, NVIDIA Dynamo,
    KServe LLMInferenceService, RoleBasedGroup, OME) is served, or prefill/decode workloads are present.
  - Positive - the installed solution runs prefill and decode as separate components - ready pods of both roles
    exist and belong to different controllers (so each phase scales separately). Roles are found by label
    (I(role_labels)). This observation of the running solution is the required behavioural part.
  - Optional positive - separate scaling - the probe creates a prefill and a decode group (LeaderWorkerSets when
    served, Deployments otherwise), scales prefill up and observes that decode keeps its size.
  - Optional negative - scaling the probe's decode group to zero leaves its prefill group untouched.
  - The two probe cases exercise the platform's scaling primitives on groups the probe made, not the installed
    solution, and a Deployment never scales its neighbour, so they are optional evidence and never carry the
    verdict. No required negative exists - a refusal that only a disaggregated serving stack would produce is
    specific to each stack.
  - Serving quality (tail latency, throughput) is not measured; the notes say so.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  role_labels:
    description: Pod label keys whose values name the serving phase (C(prefill) / C(decode)).
    type: list
    elements: str
    default: [llm-d.ai/role, role, app.kubernetes.io/component, nvidia.com/dynamo-sub-component-type,
              rolebasedgroup.workloads.x-k8s.io/role, component]
  namespace:
    description: Namespace to look for prefill/decode pods in. Default - all namespaces.
    type: str
"""

EXAMPLES = r"""
- name: Verify disaggregated inference (llm-d deployed in namespace llm-d)
  k8s_ai.conformance.disaggregated_inference:
    kubeconfig: "{{ kubeconfig }}"
    namespace: llm-d
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
    evidence: {description: "APIs, pods and probe objects seen.", type: list, returned: always}
"""

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402

SOLUTION_CRDS = {
    "leaderworkersets.leaderworkerset.x-k8s.io": "LeaderWorkerSet",
    "dynamographdeployments.nvidia.com": "NVIDIA Dynamo",
    "llminferenceservices.serving.kserve.io": "KServe LLMInferenceService",
    "rolebasedgroups.workloads.x-k8s.io": "RoleBasedGroup (SGLang)",
    "inferenceservices.ome.io": "OME",
    "modelservices.llm-d.ai": "llm-d ModelService",
}
LWS = "leaderworkerset.x-k8s.io/v1"
ARGUMENT_SPEC = {
    "role_labels": {"type": "list", "elements": "str", "default": [
        "llm-d.ai/role", "role", "app.kubernetes.io/component", "nvidia.com/dynamo-sub-component-type",
        "rolebasedgroup.workloads.x-k8s.io/role", "component"]},
    "namespace": {"type": "str"},
}


def verify(check):
    check.static("a disaggregated inference solution is installed", solution_installed)
    check.positive("prefill and decode run as separate components with ready pods", phases_running)
    check.positive("prefill scales up while decode keeps its size", prefill_scales_alone, required=False)
    check.negative("scaling decode to zero leaves prefill untouched", decode_scale_independent, required=False)
    check.note("serving performance (throughput, tail latency) of the disaggregated deployment is not measured")


def phase_of(labels, keys):
    """'prefill', 'decode' or None from a pod's labels."""
    for key in keys:
        value = str((labels or {}).get(key, "")).lower()
        for phase in ("prefill", "decode"):
            if phase in value:
                return phase
    return None


def owner(pod):
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return "%s/%s" % (refs[0].get("kind"), refs[0].get("name")) if refs else "none"


def pod_ready(pod):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def solution_installed(check):
    crds = check.list("CRDs", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    names = {c["metadata"]["name"] for c in crds}
    found = [label for crd, label in SOLUTION_CRDS.items() if crd in names]
    check.facts["lws"] = "leaderworkersets.leaderworkerset.x-k8s.io" in names
    ns = check.params.get("namespace")
    path = check.cluster.path("v1", "pods", ns) if ns else "/api/v1/pods"
    keys = check.params["role_labels"]
    pods = [p for p in check.cluster.iter_list(path) if phase_of(p["metadata"].get("labels"), keys)]
    check.facts["phase_pods"] = pods
    check.record("pods labelled with a serving phase", "GET %s (role labels %s)" % (path, check.params["role_labels"]),
                 response=["%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods])
    check.require(found or pods, "no disaggregated serving API (%s) and no prefill/decode pods"
                  % ", ".join(sorted(SOLUTION_CRDS.values())))
    check.facts["solution"] = True
    return "APIs: %s; %d prefill/decode pod(s)" % (", ".join(found) or "none", len(pods))


def phases_running(check, probe):
    pods = check.facts.get("phase_pods") or []
    by_phase = {"prefill": [], "decode": []}
    for pod in pods:
        by_phase[phase_of(pod["metadata"].get("labels"), check.params["role_labels"])].append(pod)
    ready = {k: [p for p in v if pod_ready(p)] for k, v in by_phase.items()}
    check.require(ready["prefill"] and ready["decode"], "ready pods: prefill %d, decode %d"
                  % (len(ready["prefill"]), len(ready["decode"])))
    owners = {k: {owner(p) for p in v} for k, v in ready.items()}
    check.require(not owners["prefill"] & owners["decode"], "prefill and decode share a controller: %s"
                  % ", ".join(owners["prefill"] & owners["decode"]))
    return "prefill: %d ready (%s); decode: %d ready (%s)" % (
        len(ready["prefill"]), ", ".join(sorted(owners["prefill"])), len(ready["decode"]),
        ", ".join(sorted(owners["decode"])))


def group(check, name, replicas):
    labels = {"app": "probe-" + name, "role": name}
    template = {"metadata": {"labels": labels}, "spec": {
        "terminationGracePeriodSeconds": 0, "tolerations": [{"operator": "Exists"}],
        "containers": [{"name": name, "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}}}]}}
    if check.facts.get("lws"):
        return {"apiVersion": LWS, "kind": "LeaderWorkerSet", "metadata": {"name": name}, "spec": {
            "replicas": replicas, "leaderWorkerTemplate": {"size": 2, "workerTemplate": template}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": labels}, "template": template}}


def ready_replicas(obj):
    return ((obj or {}).get("status") or {}).get("readyReplicas", 0)


def scale(check, probe, obj, replicas):
    path = check.cluster.object_path(obj, probe.namespace)
    with check.evidence.step("scale %s to %d" % (obj["metadata"]["name"], replicas), "PATCH " + path) as step:
        step.response = check.cluster.patch(path, {"spec": {"replicas": replicas}})


def prefill_scales_alone(check, probe):
    check.require(check.facts.get("solution"), "not run: no disaggregated inference solution is installed")
    prefill = probe.create(group(check, "prefill", 1))
    decode = probe.create(group(check, "decode", 1))
    for obj in (prefill, decode):
        probe.wait_for(obj, lambda o: ready_replicas(o) >= 1, "%s ready" % obj["metadata"]["name"])
    scale(check, probe, prefill, 2)
    probe.wait_for(prefill, lambda o: ready_replicas(o) >= 2, "prefill scaled to 2 ready replicas")
    decode = probe.get(decode)
    check.require(decode["spec"]["replicas"] == 1, "decode changed to %s replicas" % decode["spec"]["replicas"])
    check.facts["groups"] = (prefill, decode)
    return "prefill 1 -> 2 ready (%s), decode stayed at 1" % ("LeaderWorkerSets" if check.facts.get("lws")
                                                              else "Deployments")


def decode_scale_independent(check, probe):
    prefill, decode = check.facts.get("groups") or check.fail("the probe groups were not created")
    scale(check, probe, decode, 0)
    probe.wait_for(decode, lambda o: (o.get("status") or {}).get("replicas", 0) == 0, "decode scaled to 0")
    probe.stays(prefill, lambda o: ready_replicas(o) >= 2, "prefill keeps 2 ready replicas", seconds=3)
    return "decode 1 -> 0 while prefill kept 2 ready replicas"


def main():
    run_check("disaggregated_inference", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
