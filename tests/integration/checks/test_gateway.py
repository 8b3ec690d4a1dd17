"""ai_inference against Envoy Gateway with a real Envoy on the lab's real nodes (tests/lab/gateway.py).

Envoy Gateway is installed the way `make demo` installs it: site.yml's gateway_api role with the lab's inventory
(release install.yaml from the lab's mirror, the images built here under their upstream names). The check then
creates its Gateway and routes, Envoy Gateway programs an Envoy Deployment for that Gateway, and a client pod sends
the requests through the Envoy's address. Asserted: the measured weighted split lies within the stated tolerance,
every header-matched request reaches its backend, a weight-0 backend receives nothing, a route to a missing Service
is refused by Envoy Gateway (ResolvedRefs=False, BackendNotFound), the Envoy serving a Gateway is upstream's Envoy
1.39.1 on a real node, and - controls - a GatewayClass no controller accepts is never support, and the measured
split is rejected when a different split is expected. Needs `make lab` (the fixtures fail otherwise).
"""

import json
import math
import time
import uuid

import pytest

from ..conftest import GATEWAY_CLASS
from .test_more_checks import ai_inference, assert_cleaned_up, part, run

REAL = {"lab.k8s-ai-conformance.io/real-node": "true"}
EG_NAMESPACE = "envoy-gateway-system"
ENVOY_IMAGE = "docker.io/envoyproxy/envoy:distroless-v1.39.1"
REQUESTS = 200
TIMEOUT = 240  # per awaited condition: the first Gateway of a node pulls the Envoy image from the lab's registry


@pytest.fixture(scope="module")
def result(envoy_gateway, lab_kubeconfig, kubectl):
    """One run of the check as verify runs it on the lab (its probe pods on the real nodes)."""
    found = run(ai_inference, lab_kubeconfig, gateway_class=GATEWAY_CLASS, timeout=TIMEOUT, requests=REQUESTS,
                command_node_selector=REAL)
    assert_cleaned_up(kubectl, found)
    return found


def counts(result):
    sent = [e for e in result["evidence"] if e["title"].startswith("send requests through the Gateway")]
    assert len(sent) == 1, [e["title"] for e in result["evidence"]]
    return sent[0]["response"]["counts"]


def test_traffic_through_the_real_envoy_splits_by_weight_and_follows_the_header(result):
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    measured = counts(result)
    split = measured["split"]
    assert sum(split.values()) == REQUESTS and split["other"] == 0, split
    # 80/20 within 4 standard deviations of a binomial draw (+/- 11.3 points for 200 requests)
    tolerance = 4 * math.sqrt(0.2 * 0.8 / REQUESTS)
    assert abs(split["b"] / REQUESTS - 0.2) <= tolerance, (split, tolerance)
    assert split["a"] > 0 and split["b"] > 0, split  # both backends really served
    assert measured["header"]["b"] == sum(measured["header"].values()) == REQUESTS // 5, measured["header"]
    assert "from a pod in the cluster" in part(result, "traffic splits")["detail"]  # the ClusterIP address


def test_measured_split_is_rejected_when_another_split_is_expected(result):
    """Control: the tolerance discriminates - the split Envoy produced is not a 50/50 one."""
    measured = counts(result)
    ok, detail = ai_inference.evaluate_traffic(measured["split"], measured["header"], [50, 50])
    assert not ok and "expected 50%" in detail, detail


def test_a_weight_zero_backend_receives_nothing(result):
    zero = counts(result)["zero"]
    assert zero["b"] == 0 and zero["a"] == REQUESTS and zero["other"] == 0, zero
    assert part(result, "weight 0")["outcome"] == "passed"


def test_a_route_to_a_missing_backend_is_refused_by_envoy_gateway(result):
    missing = part(result, "missing backend")
    assert missing["outcome"] == "passed" and "BackendNotFound" in missing["detail"], missing
    assert "no-such-service" in missing["detail"], missing  # Envoy Gateway's own message names the Service


def test_the_gateway_is_served_by_upstream_envoy_on_a_real_node(envoy_gateway, kubectl, namespace):
    gateway = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "it-envoy", "namespace": namespace},
               "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": [{"name": "http", "protocol": "HTTP",
                                                                          "port": 80}]}}
    kubectl.apply(gateway)
    kubectl.run("wait", "-n", namespace, "--for=condition=Programmed", "--timeout=%ds" % TIMEOUT, "gateway/it-envoy")
    selector = "gateway.envoyproxy.io/owning-gateway-name=it-envoy,gateway.envoyproxy.io/owning-gateway-namespace=" \
        + namespace
    pods = kubectl.json("get", "pods", "-n", EG_NAMESPACE, "-l", selector)["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    pod = pods[0]
    envoy = [c for c in pod["spec"]["containers"] if c["name"] == "envoy"][0]
    assert envoy["image"] == ENVOY_IMAGE
    node = kubectl.json("get", "node", pod["spec"]["nodeName"])
    assert node["metadata"]["labels"].get(list(REAL)[0]) == "true"  # a real node, not a kwok one
    version = kubectl.run("exec", "-n", EG_NAMESPACE, pod["metadata"]["name"], "-c", "envoy", "--",
                          "envoy", "--version").stdout
    assert "/1.39.1/Clean/RELEASE/BoringSSL" in version, version
    # The Gateway's address is the ClusterIP of the Service Envoy Gateway made for this Envoy.
    address = kubectl.json("get", "gateway", "-n", namespace, "it-envoy")["status"]["addresses"][0]["value"]
    services = kubectl.json("get", "services", "-n", EG_NAMESPACE, "-l", selector)["items"]
    assert [s["spec"]["clusterIP"] for s in services] == [address]


def test_a_gateway_class_without_a_controller_is_not_support(envoy_gateway, lab_kubeconfig, kubectl):
    """Control: the same check against a GatewayClass that no controller accepts never passes."""
    name = "it-gw-no-controller-%s" % uuid.uuid4().hex[:6]
    kubectl.apply({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": name},
                   "spec": {"controllerName": "example.invalid/no-controller"}})
    try:
        time.sleep(2)  # a controller that wanted it would have accepted it by now (Envoy Gateway does in < 1 s)
        found = run(ai_inference, lab_kubeconfig, gateway_class=name, timeout=20, command_node_selector=REAL)
    finally:
        kubectl.run("delete", "gatewayclass", name, "--wait=false", check=False)
    assert found["status"] == "Not Implemented", found["parts"]
    static = part(found, "CRDs Established")
    assert static["outcome"] == "failed" and "not Accepted by a controller" in static["detail"], static
    assert part(found, "traffic splits")["outcome"] != "passed"
    assert json.dumps(found)  # the result stays serialisable
