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
    By default a probe pod sends it to the collector Service's cluster DNS name, as an instrumented AI service
    would (I(send_from=pod)); with I(send_from=controller) or I(otlp_url) it is sent from the controller.
  - Negative - a malformed OTLP payload, sent the same way, is rejected (HTTP 4xx).
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
    description:
      - OTLP/HTTP base URL reachable from the controller (e.g. C(http://otel.example:4318)).
      - The payloads are then sent from the controller, whatever I(send_from) says.
    type: str
  send_from:
    description:
      - C(pod) - a probe pod (I(probe_image)) posts to the collector Service's cluster DNS name.
      - C(controller) - the controller posts through the API server's service proxy.
    type: str
    choices: [pod, controller]
    default: pod
  probe_image:
    description: Image of the sender pods (C(sh), C(timeout), C(cat), C(tr), C(head), busybox C(wget) with C(-S)).
    type: str
    default: busybox:1.36
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
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.endpoints import Endpoint, endpoint  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import SHELL_IMAGE, command_pod  # noqa: E402

OTEL_APIS = ("opentelemetry.io/v1beta1", "opentelemetry.io/v1alpha1")
ARGUMENT_SPEC = {
    "otlp_service": {"type": "str"},
    "otlp_url": {"type": "str"},
    "send_from": {"type": "str", "choices": ["pod", "controller"], "default": "pod"},
    "probe_image": {"type": "str", "default": SHELL_IMAGE},
}
# One POST of $PAYLOAD to $OTLP_URL; -S puts the status line on stderr for success and error alike. The markers
# are joined by the shell, so nothing but the script's output looks like a result.
SENDER = ("timeout 10 wget -S -q -O /tmp/answer --header 'Content-Type: application/json' "
          "--post-data \"$PAYLOAD\" \"$OTLP_URL\" 2>/tmp/headers; echo EXIT\"=$?\"; "
          "echo ANSWER\"=$(cat /tmp/answer /tmp/headers 2>/dev/null | tr '\\n' ' ' | head -c 600)\"; "
          "echo SENT\"=done\"")


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


def send(check, probe, name, title, body):
    """(HTTP status, answer) of one POST of `body` to /v1/traces, from a probe pod (status None: the collector
    could not be reached from it) or from the controller (EndpointError, could not run, when unreachable)."""
    otlp = check.facts["otlp"]
    if not from_pod(check):
        with check.evidence.step(title, "POST %s" % otlp.location("/v1/traces"), request=body) as step:
            status, answer = otlp.post_json(check.cluster, "/v1/traces", body)
            step.response = {"status": status, "body": answer}
        return status, answer
    url = otlp.in_cluster + "/v1/traces"
    pod = probe.create(command_pod(name, SENDER, image=check.params["probe_image"],
                                   env={"OTLP_URL": url, "PAYLOAD": json.dumps(body)}))
    status, answer = wget_answer(probe.wait_for_log(pod, "SENT=done", "the sender pod posted its payload"))
    check.evidence.add(title, "POST %s from pod %s" % (url, pod["metadata"]["name"]), request=body,
                       response={"status": status, "body": answer})
    return status, answer


def from_pod(check):
    """Whether the payloads go from a probe pod: asked for, and the endpoint is a Service a pod can address."""
    return check.params["send_from"] == "pod" and bool(check.facts["otlp"].in_cluster)


def wget_answer(log):
    """(last HTTP status busybox wget -S saw or None, the answer: decoded JSON when it is JSON) of SENDER's log."""
    text = (re.findall(r"^ANSWER=(.*)$", log, re.M) or [""])[-1].strip()
    codes = re.findall(r"HTTP/\d(?:\.\d)? (\d{3})", text)
    status = int(codes[-1]) if codes else None
    try:
        return status, json.loads(text.split("  HTTP/")[0].strip())
    except ValueError:
        return status, text


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
    status, answer = send(check, probe, "send-span", "export one span over OTLP/HTTP", trace_payload())
    check.require(status is not None, "the collector could not be reached from a pod: %s" % str(answer)[:300])
    check.require(status == 200, "collector answered HTTP %s: %s" % (status, str(answer)[:200]))
    rejected = ((answer if isinstance(answer, dict) else {}).get("partialSuccess") or {}).get("rejectedSpans")
    check.require(not rejected or str(rejected) == "0", "collector rejected %s span(s)" % rejected)
    check.facts["accepted"] = True
    return "span accepted (HTTP 200)%s" % sent_how(check)


def malformed_rejected(check, probe):
    check.require(check.facts.get("accepted"), "not meaningful: the collector did not accept a valid trace")
    status, answer = send(check, probe, "send-malformed", "export a malformed payload",
                          {"resourceSpans": "ai-conformance: not an OTLP list"})
    check.require(status is not None and 400 <= status < 500, "malformed payload answered HTTP %s: %s"
                  % (status, str(answer)[:200]))
    return "malformed payload rejected (HTTP %s)%s" % (status, sent_how(check))


def sent_how(check):
    return " from a probe pod to %s" % check.facts["otlp"].in_cluster if from_pod(check) else " from the controller"


def main():
    run_check("otel_tracing", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
