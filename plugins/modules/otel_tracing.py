#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: otel_tracing
short_description: Verify that an OpenTelemetry collector accepts traces over OTLP
description:
  - Whitepaper check (OpenTelemetry tracing for AI services).
  - Static - an OpenTelemetry collector is deployed - OpenTelemetryCollector objects of the OpenTelemetry
    Operator, or a Service exposing an OTLP/HTTP port (C(4318) or a port named C(otlp-http)); I(otlp_service) or
    I(otlp_url) override discovery.
  - Static (optional) - the operator's Instrumentation API (auto-instrumentation) is served.
  - Positive - a trace (one span) sent as OTLP/HTTP JSON to C(/v1/traces) is accepted (HTTP 200, no rejected spans).
  - Negative - a malformed OTLP payload is rejected (HTTP 4xx).
  - Whether the trace reaches a tracing backend depends on the collector's pipeline and is not verified.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  otlp_service:
    description: C(namespace/name:port) of the collector's OTLP/HTTP Service port. Default - discovered.
    type: str
  otlp_url:
    description: OTLP/HTTP base URL reachable from the controller (e.g. C(http://otel.example:4318)).
    type: str
"""

EXAMPLES = r"""
- name: Verify OpenTelemetry tracing
  k8s_ai.conformance.otel_tracing:
    kubeconfig: "{{ kubeconfig }}"
    otlp_service: observability/otel-collector:4318
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
    evidence: {description: Collectors found and OTLP answers., type: list, returned: always}
"""

import binascii  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.endpoints import Endpoint, endpoint  # noqa: E402

OTEL_APIS = ("opentelemetry.io/v1beta1", "opentelemetry.io/v1alpha1")
ARGUMENT_SPEC = {
    "otlp_service": {"type": "str"},
    "otlp_url": {"type": "str"},
}


def verify(check):
    check.static("an OpenTelemetry collector with an OTLP/HTTP endpoint is deployed", collector_found)
    check.static("OpenTelemetry auto-instrumentation API is served", instrumentation_served, required=False)
    check.positive("an OTLP trace is accepted by the collector", trace_accepted)
    check.negative("a malformed OTLP payload is rejected", malformed_rejected)


def otlp_port(svc):
    for port in (svc.get("spec") or {}).get("ports") or []:
        name = str(port.get("name") or "")
        if port.get("port") == 4318 or ("otlp" in name and "http" in name):
            return str(port.get("port"))
    return None


def trace_payload():
    now = int(time.time() * 1e9)
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "ai-conformance-probe"}}]},
        "scopeSpans": [{"scope": {"name": "k8s_ai.conformance"}, "spans": [{
            "traceId": binascii.hexlify(os.urandom(16)).decode(), "spanId": binascii.hexlify(os.urandom(8)).decode(),
            "name": "ai-conformance-probe", "kind": 1, "startTimeUnixNano": str(now - 1000000),
            "endTimeUnixNano": str(now)}]}]}]}


def post(check, body):
    """(HTTP status, answer) of a POST to /v1/traces; EndpointError (could not run) when it cannot be reached."""
    return check.facts["otlp"].post_json(check.cluster, "/v1/traces", body)


def collector_found(check):
    if check.params.get("otlp_url"):
        check.facts["otlp"] = endpoint(url=check.params["otlp_url"])
        return "OTLP URL given: %s" % check.params["otlp_url"]
    collectors = []
    for api in OTEL_APIS:
        if "opentelemetrycollectors" in check.cluster.served_resources(api):
            collectors = check.list("OpenTelemetryCollectors", check.cluster.path(api, "opentelemetrycollectors"))
            break
    given = endpoint(service=check.params.get("otlp_service"), option="otlp_service")
    if given:
        check.facts["otlp"] = given
        return "OTLP/HTTP at %s; OpenTelemetryCollectors: %s" % (
            given.description, ", ".join(c["metadata"]["name"] for c in collectors) or "none")
    found = [(s["metadata"]["namespace"], s["metadata"]["name"], otlp_port(s))
             for s in check.list("Services (all namespaces)", "/api/v1/services") if otlp_port(s)]
    check.require(found, "no Service with an OTLP/HTTP port (4318); OpenTelemetryCollectors: %s" % (
        ", ".join(c["metadata"]["name"] for c in collectors) or "none"))
    namespace, name, port = found[0]
    check.facts["otlp"] = Endpoint.service(namespace, name, port)
    return "OTLP/HTTP at %s/%s:%s; OpenTelemetryCollectors: %s" % (
        namespace, name, port, ", ".join(c["metadata"]["name"] for c in collectors) or "none")


def instrumentation_served(check):
    apis = [api for api in OTEL_APIS if "instrumentations" in check.cluster.served_resources(api)]
    check.require(apis, "Instrumentation (auto-instrumentation) API not served")
    return "Instrumentation served by %s" % apis[0]


def trace_accepted(check, probe):
    check.require(check.facts.get("otlp"), "no OTLP endpoint")
    body = trace_payload()
    with check.evidence.step("export one span over OTLP/HTTP", "POST %s" % check.facts["otlp"].location("/v1/traces"),
                             request=body) as step:
        status, answer = post(check, body)
        step.response = {"status": status, "body": answer}
    check.require(status == 200, "collector answered HTTP %s: %s" % (status, str(answer)[:200]))
    rejected = ((answer if isinstance(answer, dict) else {}).get("partialSuccess") or {}).get("rejectedSpans")
    check.require(not rejected or str(rejected) == "0", "collector rejected %s span(s)" % rejected)
    check.facts["accepted"] = True
    return "span accepted (HTTP 200)"


def malformed_rejected(check, probe):
    check.require(check.facts.get("accepted"), "not meaningful: the collector did not accept a valid trace")
    body = {"resourceSpans": "ai-conformance: not an OTLP list"}
    with check.evidence.step("export a malformed payload", "POST %s" % check.facts["otlp"].location("/v1/traces"),
                             request=body) as step:
        status, answer = post(check, body)
        step.response = {"status": status, "body": answer}
    check.require(400 <= status < 500, "malformed payload answered HTTP %s" % status)
    return "malformed payload rejected (HTTP %s)" % status


def main():
    run_check("otel_tracing", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
