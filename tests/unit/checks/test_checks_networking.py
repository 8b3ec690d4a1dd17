"""ai_inference, advanced_inference_ingress, high_performance_networking, multi_nic, network_policy,
disaggregated_inference: verdicts on a fake API (and a local HTTP server standing in for a gateway)."""

import itertools
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from checkfake import Fake, add_crds, detail, gpu_slice, node, outcome, run

from ansible_collections.k8s_ai.conformance.plugins.module_utils import gateway
from ansible_collections.k8s_ai.conformance.plugins.modules import (
    advanced_inference_ingress,
    ai_inference,
    disaggregated_inference,
    high_performance_networking,
    multi_nic,
    network_policy,
)


# ---- ai_inference -------------------------------------------------------------------------------
def test_traffic_evaluation():
    ok, text = ai_inference.evaluate_traffic({"a": 80, "b": 20, "other": 0}, {"a": 0, "b": 20, "other": 0}, [80, 20])
    assert ok, text
    ok, text = ai_inference.evaluate_traffic({"a": 50, "b": 50, "other": 0}, {"a": 0, "b": 20, "other": 0}, [80, 20])
    assert not ok and "expected 20%" in text
    ok, text = ai_inference.evaluate_traffic({"a": 80, "b": 20, "other": 0}, {"a": 3, "b": 17, "other": 0}, [80, 20])
    assert not ok and "3 of 20 requests with the header" in text
    assert ai_inference.evaluate_traffic({"a": 0, "b": 0, "other": 0}, {}, [80, 20])[0] is False


def gateway_cluster(address=None, resolve_missing=False, missing_reason="BackendNotFound"):
    fake = Fake()
    add_crds(fake, ai_inference.CRDS)
    fake.add("gateway.networking.k8s.io/v1", "gatewayclasses", {
        "metadata": {"name": "eg"}, "spec": {"controllerName": "example.com/gateway"},
        "status": {"conditions": [{"type": "Accepted", "status": "True"}]}})

    def controller(obj):
        kind = obj.get("kind")
        if kind == "Gateway":
            obj["status"] = {"conditions": [{"type": "Accepted", "status": "True"},
                                            {"type": "Programmed", "status": "True"}],
                             "addresses": [{"type": "IPAddress", "value": address}] if address else []}
        elif kind == "HTTPRoute":
            missing = any(b["name"] == "no-such-service" for r in obj["spec"]["rules"] for b in r["backendRefs"])
            resolved = "True" if (not missing or resolve_missing) else "False"
            obj["status"] = {"parents": [{"parentRef": {"name": "inference"}, "conditions": [
                {"type": "Accepted", "status": "True"},
                {"type": "ResolvedRefs", "status": resolved, "reason": "ResolvedRefs" if resolved == "True"
                 else missing_reason}]}]}
        elif kind == "Pod":
            obj["status"] = {"phase": "Running"}
    fake.on_get = lambda obj: controller(obj) or obj
    return fake


@pytest.fixture
def fake_gateway():
    """A local HTTP server that routes like a Gateway would: header -> b, the zero-weight path -> a (or 1:1 when
    weights are ignored), otherwise 4 a : 1 b (or 1:1 if skewed)."""
    state = {"skewed": False, "ignore_zero": False}
    counter = itertools.count()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            if self.headers.get("X-Gateway-Model-Name") == ai_inference.HEADER_VALUE:
                name = "b"
            elif self.path.startswith(ai_inference.ZERO_PATH):
                name = ("b" if next(counter) % 2 else "a") if state["ignore_zero"] else "a"
            else:
                n = next(counter)
                name = ("b" if n % 2 else "a") if state["skewed"] else ("b" if n % 5 == 4 else "a")
            body = ("backend=%s\n" % name).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = "http://127.0.0.1:%d" % server.server_address[1]
    yield state
    server.shutdown()


def test_ai_inference_implemented_when_traffic_really_splits(fake_gateway):
    result = run(ai_inference, gateway_cluster(), gateway_url=fake_gateway["url"], requests=50)
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "header requests to b 10/10" in detail(result, "traffic splits")
    assert "a 50, b 0, other 0 of 50" in detail(result, "weight 0")


def test_ai_inference_zero_weight_backend_that_gets_requests_fails(fake_gateway):
    fake_gateway["ignore_zero"] = True  # an implementation that ignores weights spreads them over both backends
    result = run(ai_inference, gateway_cluster(), gateway_url=fake_gateway["url"], requests=50)
    assert outcome(result, "traffic splits") == "passed"
    assert outcome(result, "weight 0") == "failed" and "received 25 of 50" in detail(result, "weight 0")
    assert result["status"] == "Partially Implemented"


def test_ai_inference_skewed_split_fails(fake_gateway):
    fake_gateway["skewed"] = True
    result = run(ai_inference, gateway_cluster(), gateway_url=fake_gateway["url"], requests=50)
    assert outcome(result, "traffic splits") == "failed"
    assert result["status"] == "Partially Implemented"


def test_ai_inference_without_data_plane_is_not_passed():
    result = run(ai_inference, gateway_cluster(address=None))
    assert outcome(result, "Accepted and resolved") == "passed"
    assert outcome(result, "traffic splits") == "error"  # route status alone never passes the traffic part
    assert "no address" in detail(result, "traffic splits")
    assert outcome(result, "weight 0") == "error"  # nothing sent: could not run either
    assert result["verified"] is False and result["status"] == "Not Implemented"
    result = run(ai_inference, gateway_cluster(address="127.0.0.1"), gateway_url="http://127.0.0.1:1")
    assert outcome(result, "traffic splits") == "error" and "could not be reached" in detail(result, "traffic")


def test_ai_inference_negative_and_absent():
    result = run(ai_inference, gateway_cluster(resolve_missing=True), gateway_url="http://127.0.0.1:1")
    assert outcome(result, "missing backend") == "failed"
    # refused for another reason than a missing backend: not the lookup under test
    result = run(ai_inference, gateway_cluster(missing_reason="InvalidKind"), gateway_url="http://127.0.0.1:1")
    assert outcome(result, "missing backend") == "failed" and "not BackendNotFound" in detail(result, "missing")
    result = run(ai_inference, Fake())
    assert outcome(result, "CRDs Established") == "failed" and result["status"] == "Not Implemented"
    crds_only = Fake()
    add_crds(crds_only, ai_inference.CRDS)
    result = run(ai_inference, crds_only)  # the API without an implementation is not support
    assert "no GatewayClass exists" in detail(result, "CRDs Established")
    assert result["status"] == "Not Implemented"


def test_ai_inference_check_mode_creates_nothing():
    fake = gateway_cluster()
    result = run(ai_inference, fake, check_mode=True)
    assert not any(m == "POST" for m, _unused in fake.log)
    assert [p["outcome"] for p in result["parts"]][2:] == ["skipped"] * 5 and result["verified"] is False
    assert outcome(result, "service mesh") == "failed"  # optional: no mesh in the fake


# ---- advanced_inference_ingress -----------------------------------------------------------------
def test_inference_pool_manifest_follows_the_api_version():
    v1 = advanced_inference_ingress.pool_manifest("inference.networking.k8s.io/v1", "p", "srv")
    assert v1["spec"]["targetPorts"] == [{"number": 8000}] and v1["spec"]["endpointPickerRef"]["name"] == "p-epp"
    old = advanced_inference_ingress.pool_manifest("inference.networking.x-k8s.io/v1alpha2", "p", "srv")
    assert old["spec"]["targetPortNumber"] == 8000 and old["spec"]["selector"] == {"app": "srv"}


def test_advanced_inference_ingress_absent_api():
    result = run(advanced_inference_ingress, Fake())
    assert outcome(result, "InferencePool API") == "failed" and result["status"] == "Not Implemented"
    assert outcome(result, "inference request") == "skipped"  # opt-in (inference_url): never passed


def gaie_cluster(missing_reason="BackendNotFound"):
    fake = Fake({"inference.networking.k8s.io/v1": [("inferencepools", "InferencePool", True)]})
    fake.add("gateway.networking.k8s.io/v1", "gatewayclasses", {
        "metadata": {"name": "eg"}, "status": {"conditions": [{"type": "Accepted", "status": "True"}]}})

    def controller(obj):
        if obj.get("kind") == "Gateway":
            obj["status"] = {"conditions": [{"type": "Accepted", "status": "True"}]}
        elif obj.get("kind") == "HTTPRoute":
            found = obj["spec"]["rules"][0]["backendRefs"][0]["name"] != "no-such-pool"
            obj["status"] = {"parents": [{"parentRef": {"name": "inference"}, "conditions": [
                {"type": "Accepted", "status": "True"},
                {"type": "ResolvedRefs", "status": "True" if found else "False",
                 "reason": "ResolvedRefs" if found else missing_reason}]}]}
    fake.on_get = lambda obj: controller(obj) or obj
    return fake


def test_advanced_inference_ingress_negative_needs_the_pool_lookup():
    result = run(advanced_inference_ingress, gaie_cluster())
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert outcome(result, "inference request") == "skipped"  # optional, opt-in
    # a gateway that refuses every InferencePool backend as an unknown kind proves nothing by refusing this one
    result = run(advanced_inference_ingress, gaie_cluster(missing_reason="InvalidKind"))
    assert outcome(result, "missing InferencePool") == "failed" and "not BackendNotFound" in detail(
        result, "missing InferencePool")
    assert result["status"] == "Partially Implemented"


def test_a_gateway_without_inference_pool_support_is_not_implemented_even_when_a_picker_answers():
    """Envoy Gateway's answer to every InferencePool backendRef is InvalidKind: the positive part fails at once (no
    wait for a ResolvedRefs=True that never comes), and an answer from an endpoint picker's own proxy (optional,
    inference_service) does not make the requirement Implemented."""
    fake = gaie_cluster(missing_reason="InvalidKind")
    resolve = fake.on_get

    def invalid_kind_for_every_pool(obj):
        obj = resolve(obj)
        if obj.get("kind") == "HTTPRoute":
            obj["status"]["parents"][0]["conditions"][1].update(status="False", reason="InvalidKind")
        return obj
    fake.on_get = invalid_kind_for_every_pool
    asked = []

    def completions(method, path, query, body):
        asked.append(body)
        return 200, {"model": body["model"], "choices": [{"text": "hello"}]}
    fake.route("POST", "/api/v1/namespaces/picker/services/picker-epp:8081/proxy/v1/completions", completions)
    result = run(advanced_inference_ingress, fake, model="m", inference_service="picker/picker-epp:8081")
    assert outcome(result, "resolved by a Gateway") == "failed"
    assert "does not route to InferencePools" in detail(result, "resolved by a Gateway")
    assert outcome(result, "inference request") == "passed" and asked == [
        {"model": "m", "prompt": "Say hello", "max_tokens": 8}]
    assert result["status"] == "Not Implemented", result["parts"]


# ---- high_performance_networking / multi_nic ---------------------------------------------------
def test_no_network_devices_is_na_with_reason():
    fake = Fake()
    fake.add("v1", "nodes", node("n1"))
    fake.add("resource.k8s.io/v1", "resourceslices", gpu_slice("n1"))
    result = run(high_performance_networking, fake)
    assert result["status"] == "N/A" and "no high-performance network device" in result["na_reason"]


def test_dra_network_devices_are_recognised():
    nic = gpu_slice("n1", driver="dra.net")
    for dev in nic["spec"]["devices"]:
        dev["attributes"] = {"dra.net/ifName": {"string": "eth1"}, "dra.net/rdma": {"bool": True}}
    fake = Fake()
    fake.add("resource.k8s.io/v1", "resourceslices", nic)
    fake.add("resource.k8s.io/v1", "deviceclasses", {"metadata": {"name": "rdma"}, "spec": {"selectors": [
        {"cel": {"expression": "device.driver == 'dra.net'"}}]}})
    result = run(high_performance_networking, fake, check_mode=True)
    assert outcome(result, "are advertised") == "passed"
    assert outcome(result, "through DRA") == "passed" and "rdma" in detail(result, "through DRA")


def test_multi_nic_interfaces_and_absence():
    pod = {"metadata": {"annotations": {multi_nic.STATUS: '[{"name":"default","interface":"eth0"},'
                                                          '{"name":"ns/rdma","interface":"net1"}]'}}}
    assert multi_nic.interfaces(pod) == ["eth0", "net1"]
    assert multi_nic.interfaces({"metadata": {"annotations": {multi_nic.STATUS: "not json"}}}) == []
    result = run(multi_nic, Fake())
    assert result["status"] == "Not Implemented" and outcome(result, "mechanism") == "failed"


def multus_cluster(attaches=True):
    """A NetworkAttachmentDefinition; pods run; with attaches=True Multus lists a second interface, and a pod
    asking for a network that does not exist never runs."""
    fake = Fake({"k8s.cni.cncf.io/v1": [("network-attachment-definitions", "NetworkAttachmentDefinition", True)]})
    fake.add("k8s.cni.cncf.io/v1", "network-attachment-definitions", {"metadata": {"name": "rdma"}}, namespace="net")

    def kubelet(obj):
        if obj.get("kind") != "Pod":
            return
        wanted = obj["metadata"].get("annotations", {}).get(multi_nic.NETWORKS)
        if attaches and wanted != "net/rdma":
            obj["status"] = {"phase": "Pending"}  # Multus: cannot find the network-attachment-definition
            return
        obj["status"] = {"phase": "Running"}
        if attaches:
            obj["metadata"]["annotations"][multi_nic.STATUS] = '[{"interface":"eth0"},{"interface":"net1"}]'
    fake.on_get = lambda obj: kubelet(obj) or obj
    return fake


def test_multi_nic_negative_only_counts_after_a_real_attachment():
    result = run(multi_nic, multus_cluster())
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    # no attachment ever shown: a pod that is not Running proves nothing about Multus refusing a network
    result = run(multi_nic, multus_cluster(attaches=False))
    assert outcome(result, "more than one interface") == "failed"
    assert outcome(result, "non-existent network") == "failed" and result["status"] == "Not Implemented"


# ---- network_policy -----------------------------------------------------------------------------
def test_deny_all_egress_recognition():
    assert network_policy.is_deny_all_egress({"spec": {"podSelector": {}, "policyTypes": ["Egress"]}})
    assert not network_policy.is_deny_all_egress({"spec": {"podSelector": {}, "policyTypes": ["Egress"],
                                                           "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}})
    assert not network_policy.is_deny_all_egress({"spec": {"podSelector": {"matchLabels": {"a": "b"}},
                                                           "policyTypes": ["Egress"]}})


def test_network_policy_without_data_plane_could_not_run():
    fake = Fake()

    def kubelet(obj):
        if obj.get("kind") == "Pod":
            obj["status"] = {"phase": "Running", "podIP": "10.0.0.9"}
    fake.on_get = lambda obj: kubelet(obj) or obj
    fake.route("GET", "/api/v1/namespaces/", lambda m, p, q, b: (404, {"message": "no log"}) if p.endswith("/log")
               else None)
    result = run(network_policy, fake)
    assert outcome(result, "blocks a request") == "error"
    assert "left no 'ATTEMPTS=done' line in its log" in detail(result, "blocks a request")
    assert outcome(result, "permits the request") == "failed"  # never passed without an enforced deny
    assert result["verified"] is False and result["status"] == "Not Implemented"


def client_log(token, seen):
    """A client pod's log as the check's script writes it: one RESULT line per attempt, then the end marker."""
    lines = ["RESULT=open:%s" % token if attempt == "open" else "RESULT=blocked" for attempt in seen]
    return "\n".join(lines + ["ATTEMPTS=done", ""])


def network_with(enforced, denied_seen=None):
    """A fake cluster whose client pods log what a data plane with (or without) enforcement would show;
    denied_seen: the attempts of the client under the deny (default: all blocked when enforced)."""
    fake = Fake()

    def kubelet(obj):
        if obj.get("kind") == "Pod":
            obj["status"] = {"phase": "Running", "podIP": "10.0.0.9"}
    fake.on_get = lambda obj: kubelet(obj) or obj
    attempts = network_policy.ATTEMPTS

    def log(m, p, q, b):
        if not p.endswith("/log"):
            return None
        namespace = p.split("/")[4]
        token = "token-" + namespace[-5:]
        if "client-denied" in p and enforced:
            return 200, client_log(token, denied_seen or ["blocked"] * attempts)
        return 200, client_log(token, ["open"] * attempts)
    fake.route("GET", "/api/v1/namespaces/", log)
    return fake


def test_network_policy_without_enforcement_is_not_implemented():
    result = run(network_policy, network_with(enforced=False))
    assert outcome(result, "blocks a request") == "failed"
    assert "no NetworkPolicy enforcement" in detail(result, "blocks a request")
    assert outcome(result, "permits the request") == "failed"  # an allow rule alone proves nothing
    assert result["status"] == "Not Implemented"


def test_network_policy_enforced_deny_and_allow_is_implemented():
    result = run(network_policy, network_with(enforced=True))
    assert outcome(result, "blocks a request") == "passed" and outcome(result, "permits the request") == "passed"
    assert result["status"] == "Implemented"


def test_network_policy_judges_the_last_attempts_once_the_enforcer_caught_up():
    # kube-router on the lab: the first request of a new pod under a deny went through, the next ones were refused
    late = ["open", "open"] + ["blocked"] * (network_policy.ATTEMPTS - 2)
    result = run(network_policy, network_with(enforced=True, denied_seen=late))
    assert outcome(result, "blocks a request") == "passed", detail(result, "blocks a request")
    assert "open, open, blocked" in detail(result, "blocks a request")


def test_network_policy_attempts_that_do_not_settle_are_not_a_refusal():
    flapping = ["blocked", "open"] * (network_policy.ATTEMPTS // 2)
    result = run(network_policy, network_with(enforced=True, denied_seen=flapping))
    assert outcome(result, "blocks a request") == "failed"
    assert outcome(result, "permits the request") == "failed"
    assert result["status"] == "Not Implemented"


# ---- disaggregated_inference --------------------------------------------------------------------
def test_phase_detection_and_absent_solution():
    keys = disaggregated_inference.ARGUMENT_SPEC["role_labels"]["default"]
    assert disaggregated_inference.phase_of({"llm-d.ai/role": "prefill"}, keys) == "prefill"
    assert disaggregated_inference.phase_of({"component": "vllm-decode-worker"}, keys) == "decode"
    assert disaggregated_inference.phase_of({"app": "decode"}, keys) is None
    result = run(disaggregated_inference, Fake())
    assert result["status"] == "Not Implemented"
    assert outcome(result, "prefill scales up") == "failed"  # generic scaling never stands in for a solution


def test_disaggregated_phases_running_from_pods():
    fake = Fake()
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    for name, role, owner in (("p-0", "prefill", "prefill-lws"), ("d-0", "decode", "decode-lws")):
        fake.add("v1", "pods", {"metadata": {"name": name, "labels": {"llm-d.ai/role": role}, "ownerReferences": [
            {"kind": "StatefulSet", "name": owner}]}, "status": ready}, namespace="llm")
    result = run(disaggregated_inference, fake, check_mode=True)
    assert outcome(result, "is installed") == "passed" and outcome(result, "separate components") == "skipped"
    assert result["status"] == "Not Implemented"  # check mode: the running solution was not observed
    result = run(disaggregated_inference, fake)
    assert outcome(result, "separate components") == "passed"
    assert outcome(result, "prefill scales up") == "failed"  # optional: the fake has no Deployment controller
    # the installed solution's phases were seen running apart; the probe's own groups never carry the verdict
    assert result["status"] == "Implemented"
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    fake.add("v1", "pods", {"metadata": {"name": "d-1", "labels": {"llm-d.ai/role": "decode"}, "ownerReferences": [
        {"kind": "StatefulSet", "name": "prefill-lws"}]}, "status": ready}, namespace="llm")
    result = run(disaggregated_inference, fake)
    assert outcome(result, "separate components") == "failed" and result["status"] == "Not Implemented"


def nic_cluster(impossible_allocates=False):
    nic = gpu_slice("n1", count=2, driver="dra.net")
    for i, dev in enumerate(nic["spec"]["devices"]):
        dev["attributes"] = {"dra.net/ifName": {"string": "eth%d" % (i + 1)}, "dra.net/rdma": {"bool": True}}
    fake = Fake()
    fake.add("v1", "nodes", node("n1"))
    fake.add("resource.k8s.io/v1", "resourceslices", nic)
    fake.add("resource.k8s.io/v1", "deviceclasses", {"metadata": {"name": "rdma"}, "spec": {"selectors": [
        {"cel": {"expression": "device.driver == 'dra.net'"}}]}})

    def scheduler(obj):
        name = obj["metadata"]["name"]
        can = impossible_allocates or name != "no-such-nic"
        if obj.get("kind") == "ResourceClaim" and can:
            count = obj["spec"]["devices"]["requests"][0]["exactly"]["count"]
            obj["status"] = {"allocation": {"devices": {"results": [
                {"request": "nic", "driver": "dra.net", "pool": "n1", "device": "gpu-%d" % i} for i in range(count)]}}}
        elif obj.get("kind") == "Pod":
            if can:
                obj["spec"]["nodeName"] = "n1"
                obj["status"] = {"conditions": [{"type": "PodScheduled", "status": "True"}]}
            else:
                obj["status"] = {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                                 "message": "0/1 nodes are available: 1 cannot allocate all claims."}]}
    fake.on_get = lambda obj: scheduler(obj) or obj
    return fake


def test_high_performance_networking_behaviour():
    result = run(high_performance_networking, nic_cluster())
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert outcome(result, "two network devices") == "passed"
    result = run(high_performance_networking, nic_cluster(impossible_allocates=True))
    assert outcome(result, "no node has stays unallocated") == "failed"
    assert result["status"] == "Partially Implemented"


def test_in_cluster_client_log_counts():
    batches = [gateway.Batch("split", "h", {}, 3), gateway.Batch("header", "h", {"X": "y"}, 2)]
    log = "split backend=a\nsplit backend=b\nsplit none\nheader backend=b\nheader backend=a\nnoise\nDONE\n"
    counts = gateway.count_lines(log.splitlines(), batches, ("a", "b"))
    assert counts == {"split": {"a": 1, "b": 1, "other": 1}, "header": {"a": 1, "b": 1, "other": 0}}


def test_in_cluster_client_script_quotes_and_warms_up():
    script = gateway.client_script("http://10.0.0.1:80", [gateway.Batch("header", "h.test", {"X-M": "it's"}, 7)],
                                   ("a", "b"))
    assert "--header 'Host: h.test' --header 'X-M: it'\"'\"'s' 'http://10.0.0.1:80/'" in script
    assert "until f " in script and "$(seq 7)" in script and 'echo "header ${r:-none}"' in script


def test_ai_inference_falls_back_to_an_in_cluster_client():
    """The Gateway's address is not reachable from the controller (nothing listens on 127.0.0.1:80 here): a
    client pod inside the cluster sends the requests and its log is counted."""
    lines = (["split backend=%s" % ("b" if i % 5 == 4 else "a") for i in range(50)] + ["header backend=b"] * 10
             + ["zero backend=a"] * 50 + ["DONE"])
    fake = gateway_cluster(address="127.0.0.1")
    fake.route("GET", "/api/v1/namespaces/", lambda m, p, q, b: (200, "\n".join(lines))
               if p.endswith("/traffic-client/log") else None)
    result = run(ai_inference, fake, requests=50)
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "from a pod in the cluster" in detail(result, "traffic splits")
    assert "not reachable from the controller" in result["notes"]

    fake = gateway_cluster(address="127.0.0.1")  # no log: the client never ran
    result = run(ai_inference, fake, requests=50)
    assert outcome(result, "traffic splits") == "error" and "traffic-client left no 'DONE' line" in detail(
        result, "traffic splits")
