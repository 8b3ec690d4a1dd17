#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: pod_autoscaling
short_description: Prove the HorizontalPodAutoscaler scales accelerator pods on custom metrics
description:
  - "Checklist id C(pod_autoscaling) (MUST): the HPA works for pods using accelerators, including scaling on custom
    metrics relevant to AI/ML workloads."
  - Static part - C(autoscaling/v2) serves HorizontalPodAutoscaler and the C(custom.metrics.k8s.io) APIService is
    Available and lists a pod metric (one part - the HPA API alone is not the capability);
    C(external.metrics.k8s.io) is reported as an optional part.
  - Positive case - an HPA on a Deployment whose pods hold an accelerator (a ResourceClaimTemplate of the discovered
    DeviceClass, when DRA is present) with a custom Pods metric reports AbleToScale and ScalingActive, reads the
    metric and computes the desired replicas.
  - Negative case - an HPA on a metric that does not exist reports the failure (ScalingActive False,
    FailedGetPodsMetric) instead of scaling.
  - Without a custom metrics adapter the check is Not Implemented, and the notes say so.
version_added: 0.1.0
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  custom_metric:
    description: Pods metric to scale on. Default - the first C(pods/*) metric the custom metrics API lists.
    type: str
  target_average_value:
    description: Target average value of the metric per pod.
    type: str
    default: "1"
"""

EXAMPLES = r"""
- name: Verify pod autoscaling on a custom metric
  k8s_ai.conformance.pod_autoscaling:
    kubeconfig: "{{ kubeconfig }}"
    custom_metric: gpu_utilization
"""

RETURN = r"""
result:
  description: The check result (docs/architecture.md); status, verified, parts, evidence, notes.
  returned: always
  type: dict
"""

from ansible_collections.k8s_ai.conformance.plugins.module_utils.accelerators import (  # noqa: E402
    pick_device_class,
)
from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (  # noqa: E402
    claim_template_manifest,
    condition,
    has_condition,
    pod_manifest,
)

APISERVICES = "/apis/apiregistration.k8s.io/v1/apiservices/"
MISSING_METRIC = "k8s_ai_conformance_metric_that_does_not_exist"


def verify(check):
    # One part: the HPA API alone is not the capability; without a custom metrics API it is Not Implemented.
    check.static("autoscaling/v2 HPA served and the custom metrics API Available with a pod metric",
                 custom_metrics_available)
    check.static("the external metrics API is Available", external_metrics_available, required=False)
    check.positive("an HPA on accelerator pods reads the custom metric and computes replicas", hpa_scales)
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
    wanted = check.params.get("custom_metric")
    check.require(metrics or wanted, "%s lists no pods/* metric" % api)
    check.require(not wanted or wanted in metrics, "metric %s is not listed by %s (listed: %s)"
                  % (wanted, api, ", ".join(metrics[:20])))
    check.facts["metric"] = wanted or metrics[0]
    return "autoscaling/v2 served; %s Available; %d pod metrics, using %s" % (api, len(metrics), check.facts["metric"])


def external_metrics_available(check):
    return "%s Available" % available_apiservice(check, "external.metrics.k8s.io")


def deployment(check, probe, name):
    """A one-replica Deployment whose pods each hold an accelerator when DRA offers one."""
    for api_version, kind in (("apps/v1", "ReplicaSet"), ("v1", "Pod"), ("resource.k8s.io/v1", "ResourceClaim")):
        probe.also_clean(api_version, kind)  # made by controllers for our Deployment
    claims = None
    device_class, _unused = pick_device_class(check.dra_devices)
    if device_class:
        probe.create(claim_template_manifest(name, device_class))
        claims = {"accel": {"resourceClaimTemplateName": name}}
    pod = pod_manifest("x", labels={"app": name}, claims=claims)
    pod["spec"]["restartPolicy"] = "Always"
    dep = probe.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": pod["spec"]}}})
    # A ready pod before the HPA exists lets its first sync read the metric (else it waits a sync period).
    probe.wait_for(dep, lambda d: (d.get("status") or {}).get("readyReplicas"), "Deployment %s has a ready pod" % name)
    return name + (" (pods hold a %s device)" % device_class if device_class else "")


def hpa(name, metric, target):
    """An HPA named like the Deployment it scales (one HPA per Deployment: two would be AmbiguousSelector)."""
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": 1, "maxReplicas": 2,
        "metrics": [{"type": "Pods", "pods": {"metric": {"name": metric},
                                              "target": {"type": "AverageValue", "averageValue": target}}}]}}


def started_hpa(check, probe, name, metric, target="1"):
    """Deployment + HPA, made once per check. The HPA controller first looks at a new HPA one sync period
    (15 s by default) after it appears, so the positive part starts both HPAs and the two waits overlap."""
    started = check.facts.setdefault("hpas", {})
    if name not in started:
        described = deployment(check, probe, name)
        started[name] = (probe.create(hpa(name, metric, target)), described)
    return started[name]


def hpa_scales(check, probe):
    check.require(check.facts.get("metric"), "no custom metric to scale on (no custom metrics API)")
    obj, target = started_hpa(check, probe, "on-metric", check.facts["metric"], check.params["target_average_value"])
    started_hpa(check, probe, "missing-metric", MISSING_METRIC)  # for the negative part, in parallel
    obj = probe.wait_for(obj, lambda h: has_condition(h, "AbleToScale") and has_condition(h, "ScalingActive")
                         and (h.get("status") or {}).get("currentMetrics"),
                         "HPA on-metric AbleToScale, ScalingActive and reading %s" % check.facts["metric"])
    status = obj["status"]
    value = status["currentMetrics"][0].get("pods", {}).get("current", {}).get("averageValue")
    return "HPA on Deployment %s: %s averages %s per pod; desired replicas %s" % (
        target, check.facts["metric"], value, status.get("desiredReplicas"))


def hpa_reports_missing_metric(check, probe):
    check.require(check.facts.get("metric"), "no custom metrics API: the failure case is only meaningful beside it")
    obj, _unused = started_hpa(check, probe, "missing-metric", MISSING_METRIC)
    obj = probe.wait_for(obj, lambda h: has_condition(h, "ScalingActive", "False"),
                         "HPA missing-metric reports ScalingActive=False")
    cond = condition(obj, "ScalingActive")
    check.require(cond.get("reason") == "FailedGetPodsMetric",
                  "ScalingActive False for another reason: %s %s" % (cond.get("reason"), cond.get("message")))
    return "ScalingActive=False, FailedGetPodsMetric: %s" % (cond.get("message") or "")[:200]


ARGUMENT_SPEC = {
    "custom_metric": {"type": "str"},
    "target_average_value": {"type": "str", "default": "1"},
}


def main():
    run_check("pod_autoscaling", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
