#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: ai_inference
short_description: Verify Gateway API traffic management for inference (weighted split, header routing)
description:
  - Checks the C(ai_inference) requirement (networking, MUST).
  - Static - the Gateway API CRDs (GatewayClass, Gateway, HTTPRoute) are Established and a GatewayClass is
    Accepted by its controller (the implementation); CRDs without an implementation are not support.
  - Positive - a Gateway of that class is Accepted (a throw-away one in the probe namespace, or I(gateway)).
  - Positive - an HTTPRoute with two weighted backendRefs and a header match (the model-name header used by
    OpenAI-protocol routers) is Accepted by the Gateway with ResolvedRefs=True.
  - Positive - traffic - two small echo backends are deployed; once the Gateway is Programmed with an address,
    I(requests) requests are sent through it (or through I(gateway_url)) from the controller, or, when the
    controller cannot reach the address (in-cluster addresses, no load balancer), from a client pod inside the
    cluster. The share of backend b must lie within 4 standard deviations of a binomial draw with the weights
    (at least +/- 10 points) and every request carrying the header must reach the header's backend. When the
    Gateway never gets an address, or no request could be sent, this part reports that it could not run - it is
    never passed on route status alone.
  - Negative - a rule whose second backend has weight 0 - I(requests) requests to it never reach that backend
    (an implementation that ignores weights spreads them over both).
  - Negative - an HTTPRoute whose backend Service does not exist gets ResolvedRefs=False with reason
    C(BackendNotFound) - the implementation looked the backend up (another reason, e.g. C(InvalidKind), fails).
  - Optional - a service mesh (Istio, Linkerd, Kuma, Cilium, ...) is installed.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  gateway_class:
    description: GatewayClass to use. Default - the first Accepted GatewayClass.
    type: str
  gateway:
    description:
      - C(namespace/name) of an existing Gateway to attach the probe routes to (its listener must allow routes from
        other namespaces). Default - a Gateway is created in the probe namespace.
    type: str
  gateway_url:
    description: Base URL used to send traffic (e.g. C(http://10.0.0.10:80)). Default - the Gateway's first address.
    type: str
  requests:
    description: Number of requests sent to measure the weighted split.
    type: int
    default: 200
  weights:
    description: Weights of the two backends in the split rule.
    type: list
    elements: int
    default: [80, 20]
  header_name:
    description: Header matched by the header rule (the model name header of OpenAI-protocol inference routers).
    type: str
    default: X-Gateway-Model-Name
  echo_image:
    description: Image of the echo backends (needs C(sh) and busybox C(httpd)).
    type: str
    default: busybox:1.36
"""

EXAMPLES = r"""
- name: Verify inference traffic management through the Gateway API
  k8s_ai.conformance.ai_inference:
    kubeconfig: "{{ kubeconfig }}"
    gateway_class: envoy-gateway
  delegate_to: localhost
"""

RETURN = r"""
result:
  description: Check result (docs/architecture.md schema).
  returned: always
  type: dict
  contains:
    status: {description: "Implemented, Partially Implemented, Not Implemented or N/A.", type: str, returned: always}
    verified:
      description: False when a part could not run (e.g. the Gateway was not reachable).
      type: bool
      returned: always
    parts: {description: "Static, positive and negative parts with outcome and detail.", type: list, returned: always}
    evidence: {description: "Objects created, route status, request counts.", type: list, returned: always}
"""

import math  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.gateway import (  # noqa: E402
    GW,
    Batch,
    accepted_gateway_class,
    create_gateway,
    echo_backend,
    parent_ref,
    programmed_address,
    route_condition,
    route_reason,
    send_traffic,
    wait_running,
)
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import has_condition  # noqa: E402

CRDS = ["gatewayclasses.gateway.networking.k8s.io", "gateways.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io"]
SPLIT_HOST = "split.ai-conformance.test"
MISSING_HOST = "missing.ai-conformance.test"
HEADER_VALUE = "model-b"
ZERO_PATH = "/zero-weight"
MESH_CRDS = {"virtualservices.networking.istio.io": "Istio", "serviceprofiles.linkerd.io": "Linkerd",
             "meshes.kuma.io": "Kuma", "ciliumenvoyconfigs.cilium.io": "Cilium", "meshes.consul.hashicorp.com":
             "Consul", "servicemeshes.maistra.io": "OpenShift Service Mesh"}
ARGUMENT_SPEC = {
    "gateway_class": {"type": "str"},
    "gateway": {"type": "str"},
    "gateway_url": {"type": "str"},
    "requests": {"type": "int", "default": 200},
    "weights": {"type": "list", "elements": "int", "default": [80, 20]},
    "header_name": {"type": "str", "default": "X-Gateway-Model-Name"},
    "echo_image": {"type": "str", "default": "busybox:1.36"},
}


def verify(check):
    check.static("Gateway API CRDs Established and a GatewayClass Accepted by an implementation", gateway_api)
    check.static("a service mesh is installed (optional integration)", service_mesh, required=False)
    check.positive("a Gateway of the class is Accepted", gateway_accepted)
    check.positive("an HTTPRoute with weighted backends and a header match is Accepted and resolved", route_accepted)
    check.positive("traffic splits by weight and follows the header match", traffic_follows_route)
    check.negative("a backend of weight 0 receives no request", zero_weight_gets_nothing)
    check.negative("an HTTPRoute to a missing backend gets ResolvedRefs=False", missing_backend_unresolved)


def evaluate_traffic(split_counts, header_counts, weights):
    """(ok, detail) for counts {"a": n, "b": n, "other": n} of the split and header requests."""
    total, header_total = sum(split_counts.values()), sum(header_counts.values())
    if not total or not header_total:
        return False, "no successful request"
    expected = float(weights[1]) / float(sum(weights))
    observed = float(split_counts.get("b", 0)) / total
    tolerance = max(0.1, 4 * math.sqrt(expected * (1 - expected) / total))
    problems = []
    if split_counts.get("other"):
        problems.append("%d split requests failed or hit neither backend" % split_counts["other"])
    if abs(observed - expected) > tolerance:
        problems.append("backend b got %.0f%% of the split traffic, expected %.0f%% +/- %.0f%%"
                        % (observed * 100, expected * 100, tolerance * 100))
    if header_counts.get("b", 0) != header_total:
        problems.append("%d of %d requests with the header did not reach backend b"
                        % (header_total - header_counts.get("b", 0), header_total))
    detail = "split a/b %d/%d of %d (b %.1f%%, expected %.0f%% +/- %.1f%%), header requests to b %d/%d" % (
        split_counts.get("a", 0), split_counts.get("b", 0), total, observed * 100, expected * 100, tolerance * 100,
        header_counts.get("b", 0), header_total)
    return not problems, ("; ".join(problems) + " (" + detail + ")") if problems else detail


def gateway_api(check):
    """The API alone is not support: an implementation must have accepted a GatewayClass."""
    bad = check.crds_established(CRDS)
    check.require(not bad, "missing or not Established: %s" % ", ".join(bad))
    missing = check.served(GW, ["GatewayClass", "Gateway", "HTTPRoute"])
    check.require(not missing, "%s does not serve %s" % (GW, ", ".join(missing)))
    return "Gateway API v1 served (GatewayClass, Gateway, HTTPRoute); %s" % accepted_gateway_class(check)


def service_mesh(check):
    crds = check.list("CRDs", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    names = {c["metadata"]["name"] for c in crds}
    found = sorted({mesh for crd, mesh in MESH_CRDS.items() if crd in names})
    check.require(found, "no service mesh API found (%s)" % ", ".join(sorted(set(MESH_CRDS.values()))))
    return ", ".join(found)


def gateway_accepted(check, probe):
    if check.params.get("gateway"):
        namespace, _unused, name = check.params["gateway"].partition("/")
        gateway = check.read("Gateway " + check.params["gateway"], check.cluster.path(GW, "gateways", namespace, name))
        check.require(has_condition(gateway, "Accepted"), "Gateway %s not Accepted" % check.params["gateway"])
    else:
        gateway = create_gateway(check, probe)
    check.facts["gateway"] = gateway
    return "Gateway %s/%s Accepted" % (gateway["metadata"]["namespace"], gateway["metadata"]["name"])


def route_accepted(check, probe):
    gateway = check.facts.get("gateway") or check.fail("no Accepted Gateway")
    weights = check.params["weights"]
    check.require(len(weights) == 2, "weights must list two integers, got %s" % weights)
    for name in ("a", "b"):
        echo_backend(probe, name, check.params["echo_image"], paths=[ZERO_PATH])
    header = {"type": "Exact", "name": check.params["header_name"], "value": HEADER_VALUE}
    route = probe.create({"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "split"}, "spec": {
        "parentRefs": [parent_ref(gateway)], "hostnames": [SPLIT_HOST], "rules": [
            {"matches": [{"headers": [header]}], "backendRefs": [{"name": "echo-b", "port": 80}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": ZERO_PATH}}],
             "backendRefs": [{"name": "echo-a", "port": 80, "weight": 1}, {"name": "echo-b", "port": 80, "weight": 0}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
             "backendRefs": [{"name": "echo-a", "port": 80, "weight": weights[0]},
                             {"name": "echo-b", "port": 80, "weight": weights[1]}]}]}})
    name = gateway["metadata"]["name"]
    route = probe.wait_for(route, lambda r: route_condition(r, name, "Accepted") and route_condition(
        r, name, "ResolvedRefs"), "HTTPRoute Accepted and ResolvedRefs")
    check.facts["route_ready"] = True
    return "HTTPRoute %s Accepted with ResolvedRefs=True by Gateway %s (weights %s, header %s=%s, %s weights 1/0)" % (
        route["metadata"]["name"], name, weights, check.params["header_name"], HEADER_VALUE, ZERO_PATH)


def traffic_follows_route(check, probe):
    check.require(check.facts.get("route_ready"), "the HTTPRoute was not ready; no traffic sent")
    wait_running(probe, ["echo-a", "echo-b"])
    base = programmed_address(check, probe, check.facts["gateway"])
    total = max(10, int(check.params["requests"]))
    batches = [Batch("split", SPLIT_HOST, {}, total),
               Batch("header", SPLIT_HOST, {check.params["header_name"]: HEADER_VALUE}, max(10, total // 5)),
               Batch("zero", SPLIT_HOST, {}, total, path=ZERO_PATH)]
    counts, where = send_traffic(check, probe, base, batches, ("a", "b"), check.params["echo_image"])
    check.facts["zero_counts"] = counts["zero"]
    ok, detail = evaluate_traffic(counts["split"], counts["header"], check.params["weights"])
    check.require(ok, detail)
    return "%s (through %s, from %s)" % (detail, base, where)


def zero_weight_gets_nothing(check, probe):
    counts = check.facts.get("zero_counts") or check.cannot_run("no traffic was sent (see the traffic part)")
    check.require(counts["a"] > 0, "no request to %s reached a backend (a %d, other %d): the rule was not served"
                  % (ZERO_PATH, counts["a"], counts["other"]))
    check.require(counts["b"] == 0, "backend b has weight 0 but received %d of %d requests to %s"
                  % (counts["b"], sum(counts.values()), ZERO_PATH))
    total = sum(counts.values())
    return "weights 1/0: a %d, b 0, other %d of %d requests to %s" % (counts["a"], counts["other"], total, ZERO_PATH)


def missing_backend_unresolved(check, probe):
    gateway = check.facts.get("gateway") or check.fail("no Accepted Gateway")
    route = probe.create({"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "missing-backend"}, "spec": {
        "parentRefs": [parent_ref(gateway)], "hostnames": [MISSING_HOST],
        "rules": [{"backendRefs": [{"name": "no-such-service", "port": 80}]}]}})
    name = gateway["metadata"]["name"]
    route = probe.wait_for(route, lambda r: route_condition(r, name, "ResolvedRefs", "False"),
                           "HTTPRoute ResolvedRefs=False")
    reason, message = route_reason(route, name, "ResolvedRefs")
    # The implementation looked the backend up and did not find it - not "a kind I do not support"
    check.require(reason == "BackendNotFound", "ResolvedRefs=False, but for %s, not BackendNotFound: %s"
                  % (reason, message[:120]))
    return "ResolvedRefs=False (%s): %s" % (reason, message[:120])


def main():
    run_check("ai_inference", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
