#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: advanced_inference_ingress
short_description: Verify a Gateway API Inference Extension (InferencePool) implementation
description:
  - Checks the C(advanced_inference_ingress) requirement (networking, SHOULD, checklist 1.36).
  - Static - the InferencePool API of the Gateway API Inference Extension is served
    (C(inference.networking.k8s.io/v1), or the older C(inference.networking.x-k8s.io/v1alpha2)) and a
    GatewayClass is Accepted.
  - Positive - an HTTPRoute whose backendRef is an InferencePool (model server pods selected by label, an endpoint
    picker reference) is Accepted by a Gateway with ResolvedRefs=True - the gateway implementation routes to
    InferencePools. A gateway that answers C(InvalidKind) does not know the kind, so the part fails at once.
  - Negative - an HTTPRoute to an InferencePool that does not exist gets ResolvedRefs=False with reason
    C(BackendNotFound) - the implementation looked the pool up. A gateway that does not know InferencePools at
    all answers C(InvalidKind) for every pool, missing or not, so that reason fails the case.
  - Optional - with I(model) and I(inference_url) (or I(inference_service)), an OpenAI-style completion request
    through the inference gateway (or an endpoint picker's own proxy) is answered. It says nothing about a Gateway
    routing to InferencePools, so it never makes the requirement Implemented alone. Model-aware routing decisions
    (e.g. KV-cache aware) need a real endpoint picker and model servers and are otherwise not verified (said in
    the notes).
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  gateway_class:
    description: GatewayClass to use. Default - the first Accepted GatewayClass.
    type: str
  inference_url:
    description: URL of an OpenAI-compatible endpoint behind the inference gateway (e.g. C(http://gw/v1/completions)).
    type: str
  inference_service:
    description:
      - C(namespace/name:port) of a Service in front of the inference gateway or endpoint picker, reached through the
        API server's service proxy; the request goes to C(/v1/completions) there. I(inference_url) wins.
    type: str
  model:
    description: Model name sent in the optional request.
    type: str
"""

EXAMPLES = r"""
- name: Verify the Gateway API Inference Extension
  k8s_ai.conformance.advanced_inference_ingress:
    kubeconfig: "{{ kubeconfig }}"
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
    evidence: {description: Objects created and their status., type: list, returned: always}
"""

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.endpoints import endpoint  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (  # noqa: E402
    PROBE_IMAGE,
    command_pod,
    condition,
    has_condition,
)

GW = "gateway.networking.k8s.io/v1"
POOL_APIS = ("inference.networking.k8s.io/v1", "inference.networking.x-k8s.io/v1alpha2")
ARGUMENT_SPEC = {
    "gateway_class": {"type": "str"},
    "inference_url": {"type": "str"},
    "inference_service": {"type": "str"},
    "model": {"type": "str"},
}


def verify(check):
    check.static("the InferencePool API is served and a GatewayClass is Accepted by an implementation", gaie_served)
    check.positive("an HTTPRoute to an InferencePool is Accepted and resolved by a Gateway", pool_route_resolved)
    check.negative("an HTTPRoute to a missing InferencePool gets ResolvedRefs=False", missing_pool_unresolved)
    check.positive("an inference request through the gateway is answered", inference_answered, required=False)


def pool_manifest(api_version, name, app):
    """An InferencePool in the shape of its API version."""
    if api_version.endswith("/v1"):
        spec = {"selector": {"matchLabels": {"app": app}}, "targetPorts": [{"number": 8000}],
                "endpointPickerRef": {"name": name + "-epp", "port": {"number": 9002}}}
    else:
        spec = {"selector": {"app": app}, "targetPortNumber": 8000, "extensionRef": {"name": name + "-epp"}}
    return {"apiVersion": api_version, "kind": "InferencePool", "metadata": {"name": name}, "spec": spec}


def route_condition(route, gateway_name, cond_type, status="True"):
    for parent in (route.get("status") or {}).get("parents") or []:
        if (parent.get("parentRef") or {}).get("name") == gateway_name:
            return has_condition({"status": parent}, cond_type, status)
    return False


def route_reason(route, gateway_name, cond_type):
    for parent in (route.get("status") or {}).get("parents") or []:
        if (parent.get("parentRef") or {}).get("name") == gateway_name:
            return (condition({"status": parent}, cond_type) or {}).get("reason")
    return None


def gaie_served(check):
    """The API alone is not support: a gateway implementation must have accepted a GatewayClass."""
    return "%s; %s" % (inference_pool_served(check), accepted_gateway_class(check))


def inference_pool_served(check):
    for api in POOL_APIS:
        if not check.served(api, ["InferencePool"]):
            check.facts["pool_api"] = api
            extra = [k for k in ("InferenceObjective", "InferenceModel") if not check.served(api, [k])]
            return "InferencePool served by %s%s" % (api, (" (also %s)" % ", ".join(extra)) if extra else "")
    check.fail("no InferencePool API served (%s)" % ", ".join(POOL_APIS))


def accepted_gateway_class(check):
    check.require(not check.served(GW, ["GatewayClass", "Gateway", "HTTPRoute"]), "Gateway API v1 not served")
    classes = check.list("GatewayClasses", check.cluster.path(GW, "gatewayclasses"))
    wanted = check.params.get("gateway_class")
    accepted = [c for c in classes if has_condition(c, "Accepted") and (not wanted or c["metadata"]["name"] == wanted)]
    check.require(accepted, "no Accepted GatewayClass%s" % (" named %s" % wanted if wanted else ""))
    check.facts["gateway_class"] = accepted[0]["metadata"]["name"]
    return "GatewayClass %s Accepted" % accepted[0]["metadata"]["name"]


def gateway(check, probe):
    if "gateway" not in check.facts:
        gw = probe.create({"apiVersion": GW, "kind": "Gateway", "metadata": {"name": "inference"}, "spec": {
            "gatewayClassName": check.facts["gateway_class"],
            "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}})
        check.facts["gateway"] = probe.wait_for(gw, lambda g: has_condition(g, "Accepted"), "Gateway Accepted")
    return check.facts["gateway"]


def route_to_pool(check, probe, name, pool_name, hostname):
    api = check.facts["pool_api"]
    gw = gateway(check, probe)
    return probe.create({"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": name}, "spec": {
        "parentRefs": [{"name": gw["metadata"]["name"]}], "hostnames": [hostname],
        "rules": [{"backendRefs": [{"group": api.split("/")[0], "kind": "InferencePool", "name": pool_name}]}]}})


def pool_route_resolved(check, probe):
    check.require(check.facts.get("pool_api") and check.facts.get("gateway_class"),
                  "needs the InferencePool API and an Accepted GatewayClass")
    labels = {"app": "model-server"}
    probe.create(command_pod("model-server", ["/pause"], image=PROBE_IMAGE, ports=[8000], labels=labels,
                             restart_policy="Always"))
    pool = probe.create(pool_manifest(check.facts["pool_api"], "pool", "model-server"))
    route = route_to_pool(check, probe, "to-pool", pool["metadata"]["name"], "pool.ai-conformance.test")
    name = check.facts["gateway"]["metadata"]["name"]
    route = probe.wait_for(route, lambda r: route_condition(r, name, "Accepted") and (route_condition(
        r, name, "ResolvedRefs") or route_reason(r, name, "ResolvedRefs") == "InvalidKind"),
        "HTTPRoute to the InferencePool Accepted and ResolvedRefs (or refused as an unknown kind)")
    check.require(route_condition(route, name, "ResolvedRefs"), "ResolvedRefs=False (InvalidKind): the gateway "
                  "implementation of GatewayClass %s does not route to InferencePools" % check.facts["gateway_class"])
    pool = probe.get(pool) or pool
    pool_parents = [(p.get("parentRef") or {}).get("name") for p in (pool.get("status") or {}).get("parents") or []
                    if has_condition({"status": p}, "Accepted")]
    check.note("model-aware routing through the endpoint picker is verified only with inference_url and model")
    return "HTTPRoute %s -> InferencePool %s resolved by Gateway %s; pool Accepted by %s" % (
        route["metadata"]["name"], pool["metadata"]["name"], name, ", ".join(pool_parents) or "no parent yet")


def missing_pool_unresolved(check, probe):
    check.require(check.facts.get("pool_api") and check.facts.get("gateway_class"),
                  "needs the InferencePool API and an Accepted GatewayClass")
    route = route_to_pool(check, probe, "to-missing-pool", "no-such-pool", "missing.ai-conformance.test")
    name = check.facts["gateway"]["metadata"]["name"]
    route = probe.wait_for(route, lambda r: route_condition(r, name, "ResolvedRefs", "False"),
                           "HTTPRoute to a missing InferencePool has ResolvedRefs=False")
    reason = route_reason(route, name, "ResolvedRefs")
    check.require(reason == "BackendNotFound", "ResolvedRefs=False, but for %s, not BackendNotFound: the gateway did "
                  "not look the InferencePool up" % reason)
    return "ResolvedRefs=False (BackendNotFound) for a missing InferencePool"


def inference_answered(check, probe):
    model = check.params.get("model")
    ep = endpoint(url=check.params.get("inference_url"), service=check.params.get("inference_service"),
                  option="inference_service")
    if not (ep and model):
        check.skip("not run: set model and inference_url (or inference_service) to send a request through the gateway")
    path = "" if ep.is_url else "/v1/completions"
    body = {"model": model, "prompt": "Say hello", "max_tokens": 8}
    status, answer = ep.post_json(check.cluster, path, body, timeout=60)
    check.record("inference request", "POST " + ep.location(path), request=body,
                 response={"status": status, "answer": answer})
    check.require(status == 200 and isinstance(answer, dict) and answer.get("choices"),
                  "HTTP %s, answer has no choices: %s" % (status, str(answer)[:200]))
    return "model %s answered through %s" % (answer.get("model") or model, ep.location(path))


def main():
    run_check("advanced_inference_ingress", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
