#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: ai_service_metrics
short_description: Verify that a monitoring system discovers and collects metrics from workloads
description:
  - Checks the C(ai_service_metrics) requirement (observability, MUST).
  - Static - a monitoring system with a Prometheus-compatible query API (Prometheus, Thanos, VictoriaMetrics,
    Mimir, ...) is found and answers a query (through the API server's service proxy, or I(prometheus_url)).
  - Positive - a probe workload exposing a uniquely labelled metric in the Prometheus text format, annotated for
    scraping (C(prometheus.io/scrape)) and, where the Prometheus Operator is installed, selected by a PodMonitor,
    is discovered - the metric shows up in the query API within I(scrape_timeout).
  - Negative - discovery follows the workload's declaration - a control pod exposing the same metric without
    scrape annotations (and not selected by the PodMonitor), started beside the probe, is not collected while
    observed as long again as the probe took to appear. (A metric that nobody exposes is absent from any query
    API, so it would prove nothing.)
  - Without a monitoring system the check is Not Implemented; no probe is deployed.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  prometheus_service:
    description: C(namespace/name:port) of the query API Service. Default - discovered by name.
    type: str
  prometheus_url:
    description: Base URL of a Prometheus-compatible query API reachable from the controller.
    type: str
  pod_monitor_labels:
    description: Labels added to the probe's PodMonitor so that the Prometheus instance selects it.
    type: dict
    default: {}
  probe_image:
    description: Image of the probe workload (needs C(sh) and busybox C(httpd)).
    type: str
    default: busybox:1.36
  scrape_timeout:
    description: Seconds to wait for the probe metric to appear (scrape interval plus discovery delay).
    type: int
    default: 180
"""

EXAMPLES = r"""
- name: Verify workload metrics discovery
  k8s_ai.conformance.ai_service_metrics:
    kubeconfig: "{{ kubeconfig }}"
    pod_monitor_labels: {release: kube-prometheus-stack}
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
    evidence: {description: Queries sent and answers., type: list, returned: always}
"""

import time  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.endpoints import (  # noqa: E402
    Endpoint,
    EndpointError,
    endpoint,
)
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import command_pod  # noqa: E402

ARGUMENT_SPEC = {
    "prometheus_service": {"type": "str"},
    "prometheus_url": {"type": "str"},
    "pod_monitor_labels": {"type": "dict", "default": {}},
    "probe_image": {"type": "str", "default": "busybox:1.36"},
    "scrape_timeout": {"type": "int", "default": 180},
}
QUERY_API_HINTS = ("prometheus", "thanos-query", "thanos-querier", "vmsingle", "vmselect", "victoria-metrics",
                   "mimir-query-frontend", "cortex-query-frontend")
NOT_QUERY_API = ("operator", "node-exporter", "kube-state-metrics", "alertmanager", "pushgateway", "adapter",
                 "blackbox", "config-reloader", "-operated-thanos", "kubelet", "coredns")
PROBE_METRIC = "ai_conformance_probe_requests_total"
SCRAPE_ANNOTATIONS = {"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}


def verify(check):
    check.static("a monitoring system with a Prometheus-compatible query API answers", query_api_answers)
    check.static("Prometheus Operator discovery CRDs (PodMonitor) are served", pod_monitor_served, required=False)
    check.positive("a workload exposing Prometheus metrics is discovered and scraped", probe_metric_collected)
    check.negative("a workload that does not ask to be scraped is not collected", unannotated_not_collected)


def is_query_service(svc):
    name = svc["metadata"]["name"].lower()
    if not any(h in name for h in QUERY_API_HINTS) or any(x in name for x in NOT_QUERY_API):
        return None
    for port in (svc.get("spec") or {}).get("ports") or []:
        if port.get("port") in (9090, 8428, 8481, 9009, 10902, 8080) or port.get("name") in ("web", "http-web",
                                                                                             "http", "query"):
            return str(port.get("port"))
    return None


def query(check, promql):
    """Run an instant query; return the API's data.result list (EndpointError when not answered)."""
    answer = check.facts["query_api"].get_json(check.cluster, "/api/v1/query", query={"query": promql})
    if answer.get("status") != "success":
        raise EndpointError("query %r failed: %s" % (promql, answer.get("error") or answer))
    return (answer.get("data") or {}).get("result") or []


def query_api_answers(check):
    api = endpoint(url=check.params.get("prometheus_url"), service=check.params.get("prometheus_service"),
                   option="prometheus_service")
    if api is None:
        found = [(s["metadata"]["namespace"], s["metadata"]["name"], is_query_service(s))
                 for s in check.list("Services (all namespaces)", "/api/v1/services") if is_query_service(s)]
        check.require(found, "no monitoring query API found (looked for Services named %s; set prometheus_service or "
                      "prometheus_url)" % ", ".join(QUERY_API_HINTS[:4]))
        api = Endpoint.service(*found[0])
    check.facts["query_api"] = api
    with check.evidence.step("query API answers", "GET %s" % api.location("/api/v1/query", {"query": "count(up)"})) \
            as step:
        result = query(check, "count(up)")
        step.response = result
    return "query API %s answers (count(up) = %s)" % (
        api.location(), (result[0].get("value") or [None, "?"])[1] if result else "no series")


def pod_monitor_served(check):
    missing = check.served("monitoring.coreos.com/v1", ["PodMonitor"])
    check.facts["pod_monitor"] = not missing
    check.require(not missing, "monitoring.coreos.com/v1 PodMonitor not served; discovery relies on annotations")
    return "PodMonitor served"


def exporter_pod(name, probe_id, image, scrape):
    """A pod exposing PROBE_METRIC{probe_id=...} 42 on :8080/metrics; scrape=True asks to be scraped."""
    script = ("mkdir -p /www && printf '# TYPE %s counter\\n%s{probe_id=\"%s\"} 42\\n' > /www/metrics && "
              "exec httpd -f -p 8080 -h /www" % (PROBE_METRIC, PROBE_METRIC, probe_id))
    return command_pod(name, script, image=image, ports=[{"name": "metrics", "containerPort": 8080}],
                       labels={"app": name}, annotations=SCRAPE_ANNOTATIONS if scrape else None,
                       restart_policy="Always")


def series(check, probe_id):
    return query(check, '%s{probe_id="%s"}' % (PROBE_METRIC, probe_id))


def probe_metric_collected(check, probe):
    check.require(check.facts.get("query_api"), "no monitoring query API")
    probe_id = probe.namespace
    pod = probe.create(exporter_pod("metrics-probe", probe_id, check.params["probe_image"], scrape=True))
    # The negative's control pod starts now, beside it: it gets the same time to be (wrongly) discovered.
    probe.create(exporter_pod("metrics-unannotated", probe_id + "-unannotated", check.params["probe_image"],
                              scrape=False))
    if check.facts.get("pod_monitor"):
        probe.create({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {
            "name": "metrics-probe", "labels": dict(check.params["pod_monitor_labels"])},
            "spec": {"selector": {"matchLabels": {"app": "metrics-probe"}},
                     "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics"}]}})
    started = time.time()
    probe.wait_for(pod, lambda p: (p.get("status") or {}).get("phase") == "Running", "metrics probe pod running")
    found = probe.wait_until(lambda: series(check, probe_id), bool,
                             "query %s{probe_id=%s} returns the probe's series" % (PROBE_METRIC, probe_id),
                             timeout=check.params["scrape_timeout"])
    value = (found[0].get("value") or [None, None])[1]
    check.require(value == "42", "series found but value %r, expected 42" % value)
    check.facts["scraped"] = time.time() - started
    return "probe metric scraped: %s = %s (labels %s)" % (PROBE_METRIC, value, found[0].get("metric"))


def unannotated_not_collected(check, probe):
    # "A metric nobody exposes is absent" holds for any query API; this one can fail: a monitoring system that
    # scrapes every pod, whether it asked or not, collects the control pod too.
    took = check.facts.get("scraped")
    check.require(took is not None, "not meaningful: the annotated workload's metric was not collected")
    control = probe.namespace + "-unannotated"
    seconds = max(5, min(60, int(took) + 1))
    probe.stays(None, lambda result: not result, "no series of the pod without scrape annotations/PodMonitor "
                "(probe_id=%s) for %ds" % (control, seconds), seconds=seconds, fetch=lambda: series(check, control))
    return "the pod without scrape annotations or PodMonitor was not collected within %ds (the annotated one took " \
           "%ds)" % (seconds, took)


def main():
    run_check("ai_service_metrics", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
