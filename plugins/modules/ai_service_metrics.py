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
  - Negative - a metric name the probe does not expose is absent from the query API.
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

import json  # noqa: E402

try:
    from urllib.parse import urlencode
except ImportError:  # pragma: no cover
    urlencode = None

from ansible.module_utils.urls import open_url  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.client import ClusterError  # noqa: E402

TOLERATE_ALL = [{"operator": "Exists"}]  # probe pods may land on tainted accelerator nodes
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
ABSENT_METRIC = "ai_conformance_probe_never_exposed_total"


def verify(check):
    check.static("a monitoring system with a Prometheus-compatible query API answers", query_api_answers)
    check.static("Prometheus Operator discovery CRDs (PodMonitor) are served", pod_monitor_served, required=False)
    check.positive("a workload exposing Prometheus metrics is discovered and scraped", probe_metric_collected)
    check.negative("a metric the workload does not expose is absent", absent_metric_not_found)


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
    """Run an instant query; return the API's data.result list (raise ClusterError when not answered)."""
    base = check.facts["query_base"]
    if base.startswith(("http://", "https://")):
        url = "%s/api/v1/query?%s" % (base.rstrip("/"), urlencode({"query": promql}))
        try:
            answer = json.loads(open_url(url, timeout=10, use_netrc=False).read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise ClusterError("query API %s did not answer: %s" % (base, exc)) from None
    else:
        answer = check.cluster.get(base + "/api/v1/query", query={"query": promql})
    if answer.get("status") != "success":
        raise ClusterError("query %r failed: %s" % (promql, answer.get("error") or answer))
    return (answer.get("data") or {}).get("result") or []


def query_api_answers(check):
    if check.params.get("prometheus_url"):
        check.facts["query_base"] = check.params["prometheus_url"]
    else:
        given = check.params.get("prometheus_service")
        if given:
            namespace, _unused, rest = given.partition("/")
            name, _unused, port = rest.partition(":")
            check.require(namespace and name and port, "prometheus_service must be namespace/name:port, got %r" % given)
            found = [(namespace, name, port)]
        else:
            found = [(s["metadata"]["namespace"], s["metadata"]["name"], is_query_service(s))
                     for s in check.list("Services (all namespaces)", "/api/v1/services") if is_query_service(s)]
        check.require(found, "no monitoring query API found (looked for Services named %s; set prometheus_service or "
                      "prometheus_url)" % ", ".join(QUERY_API_HINTS[:4]))
        namespace, name, port = found[0]
        check.facts["query_base"] = "/api/v1/namespaces/%s/services/%s:%s/proxy" % (namespace, name, port)
    with check.evidence.step("query API answers", "GET %s/api/v1/query?query=up" % check.facts["query_base"]) as step:
        result = query(check, "count(up)")
        step.response = result
    return "query API %s answers (count(up) = %s)" % (
        check.facts["query_base"], (result[0].get("value") or [None, "?"])[1] if result else "no series")


def pod_monitor_served(check):
    missing = check.served("monitoring.coreos.com/v1", ["PodMonitor"])
    check.facts["pod_monitor"] = not missing
    check.require(not missing, "monitoring.coreos.com/v1 PodMonitor not served; discovery relies on annotations")
    return "PodMonitor served"


def probe_metric_collected(check, probe):
    check.require(check.facts.get("query_base"), "no monitoring query API")
    probe_id = probe.namespace
    labels = {"app": "metrics-probe"}
    script = ("mkdir -p /www && printf '# TYPE %s counter\\n%s{probe_id=\"%s\"} 42\\n' > /www/metrics && "
              "exec httpd -f -p 8080 -h /www" % (PROBE_METRIC, PROBE_METRIC, probe_id))
    pod = probe.create({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "metrics-probe", "labels": labels,
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080",
                            "prometheus.io/path": "/metrics"}},
        "spec": {"terminationGracePeriodSeconds": 1, "tolerations": TOLERATE_ALL, "containers": [{
            "name": "exporter", "image": check.params["probe_image"], "command": ["sh", "-c", script],
            "ports": [{"name": "metrics", "containerPort": 8080}],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}})
    if check.facts.get("pod_monitor"):
        probe.create({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {
            "name": "metrics-probe", "labels": dict(check.params["pod_monitor_labels"])},
            "spec": {"selector": {"matchLabels": labels}, "podMetricsEndpoints": [{"port": "metrics",
                                                                                   "path": "/metrics"}]}})
    probe.wait_for(pod, lambda p: (p.get("status") or {}).get("phase") == "Running", "metrics probe pod running")
    promql = '%s{probe_id="%s"}' % (PROBE_METRIC, probe_id)
    found = probe.wait_until(lambda: query(check, promql), bool,
                             "query %s returns the probe's series" % promql, timeout=check.params["scrape_timeout"])
    value = (found[0].get("value") or [None, None])[1]
    check.require(value == "42", "series found but value %r, expected 42" % value)
    check.facts["scraped"] = True
    return "probe metric scraped: %s = %s (labels %s)" % (PROBE_METRIC, value, found[0].get("metric"))


def absent_metric_not_found(check, probe):
    check.require(check.facts.get("scraped"), "not meaningful: the probe's own metric was not collected")
    promql = '%s{probe_id="%s"}' % (ABSENT_METRIC, probe.namespace)
    with check.evidence.step("query a metric the probe does not expose", "query " + promql) as step:
        result = query(check, promql)
        step.response = result
    check.require(not result, "the query API returned series for a metric nobody exposes: %s" % result[:2])
    return "%s: no series" % promql


def main():
    run_check("ai_service_metrics", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
