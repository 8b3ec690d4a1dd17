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
  - Positive - traffic - two small echo backends are deployed and I(requests) requests are sent through the
    Gateway's address (or I(gateway_url)) from the controller, or, when the controller cannot reach the address,
    from a client pod inside the cluster; the split must follow the weights and every request carrying the
    header must reach the header's backend. When the Gateway has no address, or no request could be sent, this
    part reports that it could not run - it is never passed on route status alone.
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
    default: 100
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
import time  # noqa: E402

try:
    from urllib.error import HTTPError, URLError
except ImportError:  # pragma: no cover
    HTTPError = URLError = None

from ansible.module_utils.urls import open_url  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import command_pod, has_condition  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.results import CannotRun  # noqa: E402

GW = "gateway.networking.k8s.io/v1"
CRDS = ["gatewayclasses.gateway.networking.k8s.io", "gateways.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io"]
SPLIT_HOST = "split.ai-conformance.test"
MISSING_HOST = "missing.ai-conformance.test"
HEADER_VALUE = "model-b"
MESH_CRDS = {"virtualservices.networking.istio.io": "Istio", "serviceprofiles.linkerd.io": "Linkerd",
             "meshes.kuma.io": "Kuma", "ciliumenvoyconfigs.cilium.io": "Cilium", "meshes.consul.hashicorp.com":
             "Consul", "servicemeshes.maistra.io": "OpenShift Service Mesh"}
ARGUMENT_SPEC = {
    "gateway_class": {"type": "str"},
    "gateway": {"type": "str"},
    "gateway_url": {"type": "str"},
    "requests": {"type": "int", "default": 100},
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
    check.negative("an HTTPRoute to a missing backend gets ResolvedRefs=False", missing_backend_unresolved)


# ---- pure logic ---------------------------------------------------------------------------------
def parent_status(route, gateway_name):
    """The route's status entry for a parent Gateway (by name), or None."""
    for parent in (route.get("status") or {}).get("parents") or []:
        if (parent.get("parentRef") or {}).get("name") == gateway_name:
            return parent
    return None


def parent_condition(route, gateway_name, cond_type, status="True"):
    parent = parent_status(route, gateway_name)
    return bool(parent) and has_condition({"status": parent}, cond_type, status)


def evaluate_traffic(split_counts, header_counts, weights):
    """(ok, detail) for counts {"a": n, "b": n, "other": n} of the split and header requests."""
    total = sum(split_counts.values())
    header_total = sum(header_counts.values())
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
    detail = "split a/b %d/%d (b %.0f%%, expected %.0f%%), header requests to b %d/%d" % (
        split_counts.get("a", 0), split_counts.get("b", 0), observed * 100, expected * 100,
        header_counts.get("b", 0), header_total)
    return not problems, ("; ".join(problems) + " (" + detail + ")") if problems else detail


# ---- parts --------------------------------------------------------------------------------------
def gateway_api(check):
    """The API alone is not support: an implementation must have accepted a GatewayClass."""
    return "%s; %s" % (gateway_api_crds(check), accepted_gateway_class(check))


def gateway_api_crds(check):
    bad = check.crds_established(CRDS)
    check.require(not bad, "missing or not Established: %s" % ", ".join(bad))
    missing = check.served(GW, ["GatewayClass", "Gateway", "HTTPRoute"])
    check.require(not missing, "%s does not serve %s" % (GW, ", ".join(missing)))
    return "Gateway API v1 served (GatewayClass, Gateway, HTTPRoute)"


def accepted_gateway_class(check):
    classes = check.list("GatewayClasses", check.cluster.path(GW, "gatewayclasses"))
    wanted = check.params.get("gateway_class")
    candidates = [c for c in classes if not wanted or c["metadata"]["name"] == wanted]
    check.require(candidates, "GatewayClass %s not found" % wanted if wanted else "no GatewayClass exists")
    accepted = [c for c in candidates if has_condition(c, "Accepted")]
    check.require(accepted, "GatewayClass %s not Accepted by a controller" % ", ".join(
        c["metadata"]["name"] for c in candidates))
    check.facts["gateway_class"] = accepted[0]["metadata"]["name"]
    return "GatewayClass %s Accepted (controller %s)" % (accepted[0]["metadata"]["name"],
                                                         accepted[0]["spec"].get("controllerName"))


def service_mesh(check):
    crds = check.list("CRDs", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    names = {c["metadata"]["name"] for c in crds}
    found = sorted({mesh for crd, mesh in MESH_CRDS.items() if crd in names})
    check.require(found, "no service mesh API found (%s)" % ", ".join(sorted(set(MESH_CRDS.values()))))
    return ", ".join(found)


def gateway_accepted(check, probe):
    given = check.params.get("gateway")
    if given:
        namespace, _unused, name = given.partition("/")
        gateway = check.read("Gateway %s" % given, check.cluster.path(GW, "gateways", namespace, name))
    else:
        gateway_class = check.facts.get("gateway_class") or check.fail("no Accepted GatewayClass")
        gateway = probe.create({"apiVersion": GW, "kind": "Gateway", "metadata": {"name": "inference"},
                                "spec": {"gatewayClassName": gateway_class, "listeners": [
                                    {"name": "http", "protocol": "HTTP", "port": 80,
                                     "allowedRoutes": {"namespaces": {"from": "Same"}}}]}})
        gateway = probe.wait_for(gateway, lambda g: has_condition(g, "Accepted"), "Gateway Accepted")
    check.require(has_condition(gateway, "Accepted"), "Gateway not Accepted")
    check.facts["gateway"] = gateway
    addresses = [a.get("value") for a in (gateway.get("status") or {}).get("addresses") or []]
    return "Gateway %s/%s Accepted, Programmed=%s, addresses %s" % (
        gateway["metadata"]["namespace"], gateway["metadata"]["name"],
        has_condition(gateway, "Programmed"), ", ".join(addresses) or "none")


def echo_backend(check, probe, name):
    """A pod answering 'backend=<name>' on port 8080 and a Service in front of it."""
    labels = {"app": "echo-" + name}
    probe.create(command_pod("echo-" + name, "mkdir -p /www && echo backend=%s > /www/index.html && "
                             "exec httpd -f -p 8080 -h /www" % name, image=check.params["echo_image"],
                             ports=[8080], labels=labels, restart_policy="Always"))
    probe.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo-" + name},
                  "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}})


def parent_ref(gateway):
    return {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway["metadata"]["name"],
            "namespace": gateway["metadata"]["namespace"]}


def route_accepted(check, probe):
    gateway = check.facts.get("gateway") or check.fail("no Accepted Gateway")
    weights = check.params["weights"]
    check.require(len(weights) == 2, "weights must list two integers, got %s" % weights)
    echo_backend(check, probe, "a")
    echo_backend(check, probe, "b")
    route = probe.create({"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "split"}, "spec": {
        "parentRefs": [parent_ref(gateway)], "hostnames": [SPLIT_HOST],
        "rules": [
            {"matches": [{"headers": [{"type": "Exact", "name": check.params["header_name"], "value": HEADER_VALUE}]}],
             "backendRefs": [{"name": "echo-b", "port": 80}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
             "backendRefs": [{"name": "echo-a", "port": 80, "weight": weights[0]},
                             {"name": "echo-b", "port": 80, "weight": weights[1]}]},
        ]}})
    name = gateway["metadata"]["name"]
    route = probe.wait_for(route, lambda r: parent_condition(r, name, "Accepted")
                           and parent_condition(r, name, "ResolvedRefs"), "HTTPRoute Accepted and ResolvedRefs")
    check.facts["route_ready"] = True
    return "HTTPRoute %s Accepted with ResolvedRefs=True by Gateway %s (weights %s, header %s=%s)" % (
        route["metadata"]["name"], name, weights, check.params["header_name"], HEADER_VALUE)


def gateway_base_url(check):
    if check.params.get("gateway_url"):
        return check.params["gateway_url"].rstrip("/")
    gateway = check.facts["gateway"]
    addresses = [a.get("value") for a in (gateway.get("status") or {}).get("addresses") or [] if a.get("value")]
    if not addresses:
        check.cannot_run("the Gateway has no address in its status (no data plane programmed?) and no gateway_url "
                         "was given: traffic could not be sent")
    port = next((lst.get("port") for lst in gateway["spec"].get("listeners") or []
                 if lst.get("protocol") == "HTTP"), 80)
    host = addresses[0] if ":" not in addresses[0] else "[%s]" % addresses[0]
    return "http://%s:%s" % (host, port)


def send(url, headers, timeout=3.0):
    """The backend name answering one request ('a', 'b'), 'other', or raise OSError when unreachable."""
    try:
        body = open_url(url, headers=headers, timeout=timeout, use_netrc=False).read().decode("utf-8", "replace")
    except HTTPError as exc:
        return "other", "HTTP %s" % exc.code
    for name in ("a", "b"):
        if "backend=%s" % name in body:
            return name, body.strip()[:80]
    return "other", body.strip()[:80]


def from_controller(check, base, total):
    """(split counts, header counts, samples) of requests sent from the controller; OSError when unreachable."""
    split, header, samples = {"a": 0, "b": 0, "other": 0}, {"a": 0, "b": 0, "other": 0}, []
    for _unused in range(total):
        name, sample = send(base + "/", {"Host": SPLIT_HOST})
        split[name] += 1
        if len(samples) < 5:
            samples.append(sample)
    for _unused in range(max(10, total // 5)):
        name, _sample = send(base + "/", {"Host": SPLIT_HOST, check.params["header_name"]: HEADER_VALUE})
        header[name] += 1
    return split, header, samples


def count_log(log):
    """Counts from the in-cluster client's log lines 'S <answer>' (split) and 'H <answer>' (with header)."""
    split, header = {"a": 0, "b": 0, "other": 0}, {"a": 0, "b": 0, "other": 0}
    for line in log.splitlines():
        kind, _unused, answer = line.partition(" ")
        target = split if kind == "S" else header if kind == "H" else None
        if target is not None:
            target["a" if "backend=a" in answer else "b" if "backend=b" in answer else "other"] += 1
    return split, header


def from_cluster(check, probe, base, total):
    """The same requests sent by a client pod inside the cluster (gateways often have in-cluster addresses only)."""
    fetch = 'timeout 3 wget -q -O - --header "Host: %s"' % SPLIT_HOST
    script = ('for i in $(seq %d); do r=$(%s %s/ 2>/dev/null | head -1); echo "S ${r:-none}"; done; '
              'for i in $(seq %d); do r=$(%s --header "%s: %s" %s/ 2>/dev/null | head -1); echo "H ${r:-none}"; done; '
              'echo "DO""NE"' % (total, fetch, base, max(10, total // 5), fetch, check.params["header_name"],
                                 HEADER_VALUE, base))
    pod = probe.create(command_pod("traffic-client", script, image=check.params["echo_image"]))
    try:
        text = probe.wait_for_log(pod, "DONE", "in-cluster client finished its requests")
    except CannotRun as exc:
        check.cannot_run("the Gateway at %s was not reachable from the controller, and %s" % (base, exc))
    split, header = count_log(text)
    return split, header, text.splitlines()[:5]


def traffic_follows_route(check, probe):
    check.require(check.facts.get("route_ready"), "the HTTPRoute was not ready; no traffic sent")
    for name in ("a", "b"):
        probe.wait_for({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "echo-" + name}},
                       lambda p: (p.get("status") or {}).get("phase") == "Running", "echo-%s running" % name)
    base = gateway_base_url(check)
    total = max(10, int(check.params["requests"]))
    started, where = time.time(), "the controller"
    try:
        split, header, samples = from_controller(check, base, total)
    except (URLError, OSError) as exc:
        if check.params.get("gateway_url"):  # the user's URL: no guessing
            check.cannot_run("the Gateway at %s could not be reached from the controller: %s" % (base, exc))
        check.note("the Gateway at %s was not reachable from the controller (%s); traffic sent from a pod"
                   % (base, exc))
        split, header, samples = from_cluster(check, probe, base, total)
        where = "a pod in the cluster"
    check.record("send requests through the Gateway from %s" % where, "GET %s/ (Host %s) x%d, with header x%d"
                 % (base, SPLIT_HOST, total, sum(header.values())),
                 response={"split": split, "header": header, "samples": samples}, duration_s=time.time() - started)
    ok, detail = evaluate_traffic(split, header, check.params["weights"])
    check.require(ok, detail)
    return "%s (from %s)" % (detail, where)


def missing_backend_unresolved(check, probe):
    gateway = check.facts.get("gateway") or check.fail("no Accepted Gateway")
    route = probe.create({"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "missing-backend"}, "spec": {
        "parentRefs": [parent_ref(gateway)], "hostnames": [MISSING_HOST],
        "rules": [{"backendRefs": [{"name": "no-such-service", "port": 80}]}]}})
    name = gateway["metadata"]["name"]
    route = probe.wait_for(route, lambda r: parent_condition(r, name, "ResolvedRefs", "False"),
                           "HTTPRoute ResolvedRefs=False")
    cond = [c for c in parent_status(route, name).get("conditions") or [] if c.get("type") == "ResolvedRefs"][0]
    # The implementation looked the backend up and did not find it - not "a kind I do not support"
    check.require(cond.get("reason") == "BackendNotFound", "ResolvedRefs=False, but for %s, not BackendNotFound: %s"
                  % (cond.get("reason"), cond.get("message", "")[:120]))
    return "ResolvedRefs=False (%s): %s" % (cond.get("reason"), cond.get("message", "")[:120])


def main():
    run_check("ai_inference", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
