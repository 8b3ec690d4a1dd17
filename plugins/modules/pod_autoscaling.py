#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: pod_autoscaling
short_description: Prove the HorizontalPodAutoscaler scales accelerator pods up and down on a custom AI metric
description:
  - "Checklist id C(pod_autoscaling) (MUST): the HPA works for pods using accelerators, including scaling on custom
    metrics relevant to AI/ML workloads."
  - Static part - C(autoscaling/v2) serves HorizontalPodAutoscaler and the C(custom.metrics.k8s.io) APIService is
    Available and answers (the HPA API alone is not the capability); C(external.metrics.k8s.io) is reported as an
    optional part.
  - Positive case - the whole pipeline a user relies on, under real load - an inference server Deployment (llm-d's
    vLLM simulator, one request at a time; its pods hold an accelerator through a ResourceClaimTemplate when DRA
    offers one) asks to be scraped, an HPA targets I(custom_metric) (the adapter's name for vLLM's queue depth
    C(vllm:num_requests_waiting)) per pod. Before any load the HPA reads the metric and keeps one replica; a load
    pod then keeps requests queued, and the HPA scales the Deployment to two; when the load pod is gone the queue
    drains and the HPA scales back to one (scale-down stabilisation 0 s in the probe's HPA).
  - Negative case - an HPA on a metric that does not exist reports the failure (ScalingActive False,
    FailedGetPodsMetric) instead of scaling.
  - Without a custom metrics adapter the check is Not Implemented, and the notes say so. The positive case needs a
    monitoring system that scrapes pods annotated C(prometheus.io/scrape) (or see I(pod_monitor_labels) of
    ai_service_metrics) and an adapter rule that serves C(vllm:num_requests_waiting) per pod (metrics_adapter's
    default rules do).
version_added: 0.1.0
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  custom_metric:
    description: Pods metric (as the custom metrics API names it) of the inference server's request queue.
    type: str
    default: vllm_num_requests_waiting
  target_average_value:
    description: Target average value of the metric per pod (the load keeps about five requests waiting).
    type: str
    default: "2"
  inference_image:
    description: Image of the inference server (llm-d-inference-sim's command line, at C(/app/llm-d-inference-sim)).
    type: str
    default: ghcr.io/llm-d/llm-d-inference-sim:v0.10.2
  load_image:
    description: Image with C(sh) and C(wget) for the load pod.
    type: str
    default: busybox:1.36
  device_class:
    description: DeviceClass of the accelerator each server pod claims. Default - the class whose driver publishes
      most devices; none when the cluster has no DRA.
    type: str
  scale_timeout:
    description: Seconds to wait for each scaling step (scrape interval + adapter relist + HPA sync + a pod start).
    type: int
    default: 300
"""

EXAMPLES = r"""
- name: Verify pod autoscaling on the inference queue depth
  k8s_ai.conformance.pod_autoscaling:
    kubeconfig: "{{ kubeconfig }}"
    custom_metric: vllm_num_requests_waiting
"""

RETURN = r"""
result:
  description: The check result (docs/architecture.md); status, verified, parts, evidence, notes.
  returned: always
  type: dict
"""

import json  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.accelerators import (  # noqa: E402
    pick_device_class,
)
from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.inference import (  # noqa: E402
    INFERENCE_IMAGE,
    SCRAPE_ANNOTATIONS,
    SERVER_PORT,
    inference_pod,
)
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (  # noqa: E402
    SHELL_IMAGE,
    claim_template_manifest,
    command_pod,
    condition,
    has_condition,
    pod_manifest,
)

APISERVICES = "/apis/apiregistration.k8s.io/v1/apiservices/"
MISSING_METRIC = "k8s_ai_conformance_metric_that_does_not_exist"
SERVER = "inference-server"
LOAD_CLIENTS = 6  # one request served at a time (--max-num-seqs 1), so about five wait
REQUEST_S = "2s"  # --time-to-first-token: each request holds the server this long


def verify(check):
    check.static("autoscaling/v2 HPA served and the custom metrics API Available", custom_metrics_available)
    check.static("the external metrics API is Available", external_metrics_available, required=False)
    check.positive("an HPA scales inference pods with accelerators up under load and back down on %s"
                   % check.params["custom_metric"], hpa_scales_up_and_down)
    check.negative("an HPA on a metric that does not exist reports FailedGetPodsMetric", hpa_reports_missing_metric)


def available_apiservice(check, group):
    for version in ("v1beta2", "v1beta1"):
        svc = check.read("APIService %s.%s" % (version, group), APISERVICES + "%s.%s" % (version, group),
                         missing_ok=True)
        if svc:
            cond = condition(svc, "Available") or {}
            check.require(cond.get("status") == "True", "APIService %s.%s is not Available: %s %s" % (
                version, group, cond.get("reason", ""), cond.get("message", "")))
            return "%s/%s" % (group, version)
    check.fail("no APIService for %s: no metrics adapter (e.g. prometheus-adapter) is installed" % group)


def custom_metrics_available(check):
    check.require(not check.served("autoscaling/v2", ["HorizontalPodAutoscaler"]),
                  "autoscaling/v2 does not serve HorizontalPodAutoscaler")
    api = available_apiservice(check, "custom.metrics.k8s.io")
    listed = check.read("custom metrics listed", "/apis/" + api)
    metrics = sorted(r["name"][len("pods/"):] for r in listed.get("resources") or [] if r["name"].startswith("pods/"))
    check.facts["api"] = api
    return "autoscaling/v2 served; %s Available; pod metrics listed now: %s" % (
        api, ", ".join(metrics[:10]) or "none yet (an adapter lists a series once it has seen it)")


def external_metrics_available(check):
    return "%s Available" % available_apiservice(check, "external.metrics.k8s.io")


def server_deployment(check, probe):
    """The inference server Deployment (one replica, scraped) and its Service; its pods claim an accelerator."""
    for api_version, kind in (("apps/v1", "ReplicaSet"), ("v1", "Pod"), ("resource.k8s.io/v1", "ResourceClaim")):
        probe.also_clean(api_version, kind)  # made by controllers for our Deployment
    claims, described = None, SERVER
    device_class, _unused = pick_device_class(check.dra_devices, check.params.get("device_class"))
    if device_class:
        probe.create(claim_template_manifest(SERVER, device_class))
        claims = {"accel": {"resourceClaimTemplateName": SERVER}}
        described += " (each pod holds a %s device)" % device_class
    pod = inference_pod(SERVER, probe.namespace, check.params["inference_image"], annotations=SCRAPE_ANNOTATIONS,
                        extra_args=["--max-num-seqs", "1", "--time-to-first-token", REQUEST_S], claims=claims)
    probe.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": SERVER}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": SERVER}},
        "template": {"metadata": {"labels": pod["metadata"]["labels"], "annotations": SCRAPE_ANNOTATIONS},
                     "spec": pod["spec"]}}})
    svc = probe.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVER}, "spec": {
        "selector": {"app": SERVER}, "ports": [{"name": "http", "port": SERVER_PORT, "targetPort": SERVER_PORT}]}})
    return svc, described


def idle_deployment(probe, name):
    """A one-replica Deployment of pause pods (the negative's HPA target)."""
    pod = pod_manifest("x", labels={"app": name})
    pod["spec"]["restartPolicy"] = "Always"
    return probe.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": pod["spec"]}}})


def hpa(name, metric, target):
    """An HPA on the Deployment of the same name, between 1 and 2 replicas, acting at once in both directions (no
    stabilisation window)."""
    now = {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}]}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": 1, "maxReplicas": 2, "behavior": {"scaleUp": now, "scaleDown": now},
        "metrics": [{"type": "Pods", "pods": {"metric": {"name": metric},
                                              "target": {"type": "AverageValue", "averageValue": target}}}]}}


def load_pod(check, service_ip, model):
    """LOAD_CLIENTS loops of chat completions against the server's Service: requests queue while it serves one."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "load"}], "max_tokens": 1})
    loop = ("while true; do wget -q -O /dev/null --header 'Content-Type: application/json' --post-data '%s' "
            "http://%s:%d/v1/chat/completions || sleep 1; done" % (body, service_ip, SERVER_PORT))
    script = "i=0; while [ $i -lt %d ]; do (%s) & i=$((i+1)); done; wait" % (LOAD_CLIENTS, loop)
    return command_pod("load", script, image=check.params["load_image"], labels={"app": "load"})


def metric_value(obj):
    metrics = (obj.get("status") or {}).get("currentMetrics") or [{}]
    return ((metrics[0].get("pods") or {}).get("current") or {}).get("averageValue")


def replicas(obj):
    status = obj.get("status") or {}
    return status.get("currentReplicas"), status.get("desiredReplicas")


def hpa_scales_up_and_down(check, probe):
    check.require(check.facts.get("api"), "no custom metrics API")
    metric, timeout = check.params["custom_metric"], check.params["scale_timeout"]
    svc, described = server_deployment(check, probe)
    idle_deployment(probe, "missing-metric")
    missing = probe.create(hpa("missing-metric", MISSING_METRIC, "1"))
    check.facts["missing_hpa"] = missing  # the negative's HPA, started now so that the two waits overlap
    obj = probe.create(hpa(SERVER, metric, check.params["target_average_value"]))
    obj = probe.wait_for(obj, lambda h: has_condition(h, "ScalingActive") and metric_value(h) is not None,
                         "HPA %s reads %s of the idle server pod" % (SERVER, metric), timeout=timeout)
    idle, idle_replicas = metric_value(obj), replicas(obj)
    check.require(idle_replicas == (1, 1), "the idle server was scaled (current/desired %s/%s)" % idle_replicas)
    load = probe.create(load_pod(check, svc["spec"]["clusterIP"], probe.namespace))
    obj = probe.wait_for(obj, lambda h: replicas(h) == (2, 2), "HPA %s scales to 2 under load" % SERVER,
                         timeout=timeout)
    loaded = metric_value(obj)
    probe.delete(load)
    obj = probe.wait_for(obj, lambda h: replicas(h) == (1, 1), "HPA %s scales back to 1 once the load is gone"
                         % SERVER, timeout=timeout)
    return "%s: idle %s=%s -> 1 replica; under load %s per pod -> 2 replicas; load gone (%s) -> 1 replica" % (
        described, metric, idle, loaded, metric_value(obj))


def hpa_reports_missing_metric(check, probe):
    obj = check.facts.get("missing_hpa")
    check.require(obj, "not meaningful without the custom metrics API and the positive's probe")
    obj = probe.wait_for(obj, lambda h: has_condition(h, "ScalingActive", "False"),
                         "HPA missing-metric reports ScalingActive=False")
    cond = condition(obj, "ScalingActive")
    check.require(cond.get("reason") == "FailedGetPodsMetric",
                  "ScalingActive False for another reason: %s %s" % (cond.get("reason"), cond.get("message")))
    return "ScalingActive=False, FailedGetPodsMetric: %s" % (cond.get("message") or "")[:200]


ARGUMENT_SPEC = {
    "custom_metric": {"type": "str", "default": "vllm_num_requests_waiting"},
    "target_average_value": {"type": "str", "default": "2"},
    "inference_image": {"type": "str", "default": INFERENCE_IMAGE},
    "load_image": {"type": "str", "default": SHELL_IMAGE},
    "device_class": {"type": "str"},
    "scale_timeout": {"type": "int", "default": 300},
}


def main():
    run_check("pod_autoscaling", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
