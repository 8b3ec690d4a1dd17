#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: ai_service_metrics
short_description: Verify that a monitoring system discovers and collects an inference server's metrics
description:
  - Checks the C(ai_service_metrics) requirement (observability, MUST).
  - Static - a monitoring system with a Prometheus-compatible query API (Prometheus, Thanos, VictoriaMetrics,
    Mimir, ...) is found and answers a query (through the API server's service proxy, or I(prometheus_url)).
  - Positive - an inference server (vLLM's API and metric names; llm-d's vLLM simulator by default) annotated for
    scraping (C(prometheus.io/scrape)) and, where the Prometheus Operator is installed, selected by a PodMonitor,
    serves I(requests) chat completions; C(vllm:request_success_total) of its model then reads exactly that number
    in the query API within I(scrape_timeout).
  - Negative - discovery follows the workload's declaration - a control server started beside it, without scrape
    annotations (and not selected by the PodMonitor), serves as many requests and exposes the same counter (read
    from its own /metrics), and is not collected while observed as long again as the probe took to appear. (A
    metric that nobody exposes is absent from any query API, so it would prove nothing.)
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
  inference_image:
    description: Image of the inference server (llm-d-inference-sim's command line, at C(/app/llm-d-inference-sim)).
    type: str
    default: ghcr.io/llm-d/llm-d-inference-sim:v0.10.2
  requests:
    description: Chat completions sent to each server; the query must read exactly this many.
    type: int
    default: 3
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
from ansible_collections.k8s_ai.conformance.plugins.module_utils.inference import (  # noqa: E402
    INFERENCE_IMAGE,
    REQUESTS_METRIC,
    SCRAPE_ANNOTATIONS,
    SERVER_PORT,
    complete,
    inference_pod,
    pod_ready,
    served_counter,
)
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import WaitTimeout  # noqa: E402

ARGUMENT_SPEC = {
    "prometheus_service": {"type": "str"},
    "prometheus_url": {"type": "str"},
    "pod_monitor_labels": {"type": "dict", "default": {}},
    "inference_image": {"type": "str", "default": INFERENCE_IMAGE},
    "requests": {"type": "int", "default": 3},
    "scrape_timeout": {"type": "int", "default": 180},
}
QUERY_API_HINTS = ("prometheus", "thanos-query", "thanos-querier", "vmsingle", "vmselect", "victoria-metrics",
                   "mimir-query-frontend", "cortex-query-frontend")
NOT_QUERY_API = ("operator", "node-exporter", "kube-state-metrics", "alertmanager", "pushgateway", "adapter",
                 "blackbox", "config-reloader", "-operated-thanos", "kubelet", "coredns")


def verify(check):
    check.static("a monitoring system with a Prometheus-compatible query API answers", query_api_answers)
    check.static("Prometheus Operator discovery CRDs (PodMonitor) are served", pod_monitor_served, required=False)
    check.positive("an inference server's metrics are discovered and scraped: its requests show in a query",
                   requests_collected)
    check.negative("an inference server that does not ask to be scraped is not collected", unannotated_not_collected)


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


def collected(check, model):
    """(sum of REQUESTS_METRIC for `model` in the query API, the labels of a series) - (None, {}) while none."""
    result = query(check, '%s{model_name="%s"}' % (REQUESTS_METRIC, model))
    return (sum(float(r["value"][1]) for r in result), result[0]["metric"]) if result else (None, {})


def requests_collected(check, probe):
    check.require(check.facts.get("query_api"), "no monitoring query API")
    model, control = probe.namespace, probe.namespace + "-unannotated"
    image, count = check.params["inference_image"], check.params["requests"]
    pod = probe.create(inference_pod("inference-server", model, image, annotations=SCRAPE_ANNOTATIONS))
    # The negative's control server starts now, beside it: it gets the same time to be (wrongly) discovered.
    other = probe.create(inference_pod("inference-server-unannotated", control, image))
    if check.facts.get("pod_monitor"):
        probe.create({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {
            "name": "inference-server", "labels": dict(check.params["pod_monitor_labels"])},
            "spec": {"selector": {"matchLabels": {"app": "inference-server"}},
                     "podMetricsEndpoints": [{"port": "http", "path": "/metrics"}]}})
    started = time.time()
    for server, name in ((pod, model), (other, control)):
        probe.wait_for(server, pod_ready, "inference server %s ready" % server["metadata"]["name"])
        complete(check, Endpoint.pod(probe.namespace, server["metadata"]["name"], SERVER_PORT), name, count)
    # The simulator counts a request after answering it (seen: 2 of 3 right after the third answer): wait.
    try:
        check.facts["control_served"] = probe.wait_until(
            lambda: served_counter(check, Endpoint.pod(probe.namespace, other["metadata"]["name"], SERVER_PORT),
                                   REQUESTS_METRIC, control),
            lambda served: served == count, "%s{model_name=%s} = %d on the control server"
            % (REQUESTS_METRIC, control, count), timeout=30)
    except WaitTimeout as exc:  # the negative judges what it exposes; this part is about the annotated server
        check.facts["control_served"] = exc.last
    value, labels = probe.wait_until(lambda: collected(check, model), lambda v: v[0] == count,
                                     "query %s{model_name=%s} sums to %d" % (REQUESTS_METRIC, model, count),
                                     timeout=check.params["scrape_timeout"])
    check.facts["scraped"] = time.time() - started
    return "%d requests served, %d collected after %ds: %s{%s}" % (
        count, value, check.facts["scraped"], REQUESTS_METRIC, labels_text(labels))


def labels_text(labels):
    return ", ".join('%s="%s"' % (k, v) for k, v in sorted(labels.items()) if k != "__name__")


def unannotated_not_collected(check, probe):
    # "A metric nobody exposes is absent" holds for any query API; this one can fail: a monitoring system that
    # scrapes every pod, whether it asked or not, collects the control server's counter too.
    took = check.facts.get("scraped")
    check.require(took is not None, "not meaningful: the annotated server's requests were not collected")
    control = probe.namespace + "-unannotated"
    check.require(check.facts.get("control_served"), "not meaningful: the control server exposes no %s for %s"
                  % (REQUESTS_METRIC, control))
    seconds = max(5, min(60, int(took) + 1))
    probe.stays(None, lambda value: value[0] is None, "no series of %s{model_name=%s} (the server without scrape "
                "annotations/PodMonitor) for %ds" % (REQUESTS_METRIC, control, seconds), seconds=seconds,
                fetch=lambda: collected(check, control))
    return "the server without scrape annotations exposes %s = %g and was not collected within %ds (the annotated " \
           "one took %ds)" % (REQUESTS_METRIC, check.facts["control_served"], seconds, took)


def main():
    run_check("ai_service_metrics", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
