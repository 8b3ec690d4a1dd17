import json

import pytest
from fakeapi import FakeCluster

from ansible_collections.k8s_ai.conformance.plugins.module_utils import check as check_mod
from ansible_collections.k8s_ai.conformance.plugins.module_utils.client import ApiError

PARAMS = {"kubeconfig": None, "context": None, "timeout": 2, "probe_namespace_prefix": "t", "validate_certs": True}


def run(verify, check_mode=False, cluster=None):
    cluster = cluster or FakeCluster()
    check = check_mod.Check("demo", dict(PARAMS), check_mode=check_mode, cluster=cluster)
    return check.run(verify), cluster


def test_outcomes_from_part_functions():
    def verify(check):
        check.static("passes", lambda c: "fine")
        check.static("fails", lambda c: c.fail("absent"))
        check.positive("errors", lambda c, p: c.cluster.get("/api/v1/namespaces/nope"))
        check.negative("bug", lambda c, p: {}["missing"])

    result, cluster = run(verify)
    outcomes = {p["name"]: (p["outcome"], p["detail"]) for p in result["parts"]}
    assert outcomes["passes"] == ("passed", "fine")
    assert outcomes["fails"] == ("failed", "absent")
    assert outcomes["errors"][0] == "error" and "not found (404): get namespaces nope" in outcomes["errors"][1]
    assert outcomes["bug"] == ("error", "internal error: KeyError: 'missing'")
    assert result["status"] == "Not Implemented" and result["verified"] is False
    assert cluster.objects("namespaces") == []  # the probe namespace was cleaned up
    assert result["api_requests"] == cluster.requests > 0
    json.dumps(result)  # the result is plain data


def test_check_mode_runs_static_only_and_never_creates_a_probe():
    calls = []

    def verify(check):
        check.static("api", lambda c: "served")
        check.positive("pos", lambda c, p: calls.append("pos"))
        check.negative("neg", lambda c, p: calls.append("neg"))

    result, cluster = run(verify, check_mode=True)
    assert calls == [] and not any(m == "POST" for m, _unused in cluster.log)
    assert [p["outcome"] for p in result["parts"]] == ["passed", "skipped", "skipped"]
    # behaviour that was not probed is not claimed: static parts alone never make it Implemented
    assert result["status"] == "Not Implemented" and result["verified"] is False
    assert "check mode" in result["notes"] and result["behavioural"] is True


def test_static_only_check_declares_its_reason_and_keeps_its_verdict_in_check_mode():
    def verify(check):
        check.static_only("faults are not injected on production nodes")
        check.static("conditions reported", lambda c: "fresh")

    for check_mode in (False, True):
        result, _unused = run(verify, check_mode=check_mode)
        assert result["status"] == "Implemented" and result["verified"] is True
        assert result["behavioural"] is False and result["static_only"].startswith("faults are not injected")
        assert "static-only requirement" in result["notes"]


def test_static_only_and_behavioural_parts_do_not_mix():
    def verify(check):
        check.static_only("no behaviour")
        check.positive("pos", lambda c, p: "ran")

    result, _unused = run(verify)
    assert result["status"] == "Not Implemented" and result["verified"] is False
    assert "static-only but declares the positive part" in result["parts"][-1]["detail"]

    def late(check):
        check.positive("pos", lambda c, p: "ran")
        check.static_only("too late")

    result, _unused = run(late)
    assert result["parts"][-1]["outcome"] == "error" and "cannot be static-only" in result["parts"][-1]["detail"]


def test_not_applicable_stops_the_check_with_reason():
    calls = []

    def verify(check):
        check.static("autoscaler present", lambda c: c.not_applicable("no cluster autoscaler (bare metal)"))
        check.positive("scales up", lambda c, p: calls.append(1))

    result, _unused = run(verify)
    assert result["status"] == "N/A" and result["na_reason"] == "no cluster autoscaler (bare metal)"
    assert calls == [] and len(result["parts"]) == 1


def test_unreachable_api_gives_error_part_and_runs_nothing():
    cluster = FakeCluster()
    cluster.fail[("GET", "/version")] = OSError("connection refused")
    calls = []
    result, _unused = run(lambda c: calls.append(1), cluster=cluster)
    assert calls == [] and result["verified"] is False and result["status"] == "Not Implemented"
    assert "cannot reach the API server" in result["parts"][0]["detail"]


def test_forbidden_probe_namespace_is_an_error_naming_the_verb():
    cluster = FakeCluster()
    cluster.fail[("POST", "/api/v1/namespaces")] = (403, {"message": 'User "x" cannot create resource "namespaces"'})

    def verify(check):
        check.static("api", lambda c: "ok")
        check.positive("pos", lambda c, p: p.namespace)

    result, _unused = run(verify, cluster=cluster)
    pos = result["parts"][1]
    assert pos["outcome"] == "error" and "forbidden (403): not allowed to create namespaces" in pos["detail"]
    assert result["status"] == "Not Implemented" and result["verified"] is False


def test_helpers_served_and_crds_established():
    cluster = FakeCluster()
    cluster.add("apiextensions.k8s.io/v1", "customresourcedefinitions", {"metadata": {"name": "a.x"}, "status": {
        "conditions": [{"type": "Established", "status": "True"}]}})
    cluster.add("apiextensions.k8s.io/v1", "customresourcedefinitions", {"metadata": {"name": "b.x"}, "status": {
        "conditions": [{"type": "Established", "status": "False"}]}})
    cluster.discovery = dict(cluster.discovery, **{"apiextensions.k8s.io/v1": [
        ("customresourcedefinitions", "CustomResourceDefinition", False)]})
    seen = {}

    def verify(check):
        seen["missing"] = check.served("resource.k8s.io/v1", ["DeviceClass", "Widget"])
        seen["bad"] = check.crds_established(["a.x", "b.x", "c.x"])

    result, _unused = run(verify, cluster=cluster)
    assert seen == {"missing": ["Widget"], "bad": ["b.x", "c.x"]}
    crd_evidence = [e for e in result["evidence"] if e["title"] == "CRDs Established"][0]
    assert crd_evidence["response"] == {"a.x": "Established", "b.x": "not Established", "c.x": "missing"}


class FakeModule:
    def __init__(self, argument_spec, supports_check_mode):
        self.params = {k: v.get("default") for k, v in argument_spec.items()}
        self.params.update(FakeModule.given)
        self.check_mode = False
        self.exited = None

    def exit_json(self, **kw):
        raise SystemExit(("exit", kw))

    def fail_json(self, **kw):
        raise SystemExit(("fail", kw))


def test_run_check_fails_on_bad_kubeconfig_with_result():
    FakeModule.given = {"kubeconfig": "/no/such/file"}
    with pytest.raises(SystemExit) as info:
        check_mod.run_check("demo", lambda c: None, module_class=FakeModule)
    kind, payload = info.value.code
    assert kind == "fail" and payload["msg"] == "kubeconfig: file /no/such/file does not exist"
    assert payload["result"]["verified"] is False and payload["result"]["check"] == "demo"


def test_api_error_exposes_reason():
    err = ApiError("x", status=422, body={"reason": "Invalid", "message": "admission webhook denied"})
    assert err.reason == "Invalid" and err.server_message == "admission webhook denied"


def test_parts_that_stop_early_create_no_probe_namespace():
    def verify(check):
        check.positive("needs a fact", lambda c, p: c.require(c.facts.get("x"), "no x found"))
        check.negative("opt-in", lambda c, p: c.skip("scale-up probe not enabled"))

    result, cluster = run(verify)
    assert not any(m == "POST" for m, _unused in cluster.log)
    assert [(p["outcome"], p["detail"]) for p in result["parts"]] == [
        ("failed", "no x found"), ("skipped", "scale-up probe not enabled")]
    assert result["status"] == "Not Implemented"


def test_verify_raising_outside_a_part_is_reported_not_raised():
    def verify(check):
        check.static("ok", lambda c: "fine")
        raise ValueError("bug in verify")

    result, _unused = run(verify)
    assert result["parts"][-1]["name"] == "check aborted"
    assert result["parts"][-1]["detail"] == "internal error: ValueError: bug in verify"
    assert result["verified"] is False


def test_unreachable_webhook_is_a_failure_of_the_cluster_not_an_error():
    cluster = FakeCluster()
    cluster.fail[("POST", "/apis/kueue.x-k8s.io/v1beta1/clusterqueues")] = (500, {
        "kind": "Status", "reason": "InternalError",
        "message": 'Internal error occurred: failed calling webhook "mclusterqueue.kb.io": connection refused'})

    def verify(check):
        check.positive("create", lambda c, p: p.create({"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue",
                                                        "metadata": {"name": "q"}}))

    result, _unused = run(verify, cluster=cluster)
    assert result["parts"][0]["outcome"] == "failed" and "failed calling webhook" in result["parts"][0]["detail"]
    assert result["verified"] is True
