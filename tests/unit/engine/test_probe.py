import json
import re
import time

import pytest
from fakeapi import FakeCluster

from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as pr
from ansible_collections.k8s_ai.conformance.plugins.module_utils.evidence import Evidence
from ansible_collections.k8s_ai.conformance.plugins.module_utils.results import PartFailed


def test_namespace_name_is_a_dns_label():
    name = pr.probe_namespace_name("ai-conformance-probe", "secure_accelerator_access")
    assert re.match(r"^ai-conformance-probe-secure-accelerator-access-[a-z0-9]{5}$", name)
    long = pr.probe_namespace_name("x" * 80, "check")
    assert len(long) <= 63 and re.match(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", long)


def test_labels_carry_owner_run_and_expiry():
    labels = pr.probe_labels("dra_support", "run-1", 1000.0, 900)
    assert labels["app.kubernetes.io/managed-by"] == "k8s-ai-conformance"
    assert labels["k8s-ai-conformance/probe"] == "true"
    assert labels["k8s-ai-conformance/check"] == "dra_support"
    assert labels["k8s-ai-conformance/created"] == "1000" and labels["k8s-ai-conformance/expires"] == "1900"


@pytest.mark.parametrize("labels,now,expired", [
    ({"k8s-ai-conformance/expires": "100"}, 101, True),
    ({"k8s-ai-conformance/expires": "100"}, 99, False),          # a concurrent run still alive
    ({"k8s-ai-conformance/created": "100"}, 100 + pr.MIN_LIFETIME + 1, True),
    ({"k8s-ai-conformance/created": "100"}, 200, False),
    ({"k8s-ai-conformance/expires": "garbage"}, 10 ** 10, False),
    ({}, 10 ** 10, False),                                        # undated: never ours to delete
])
def test_is_expired(labels, now, expired):
    assert pr.is_expired({"metadata": {"labels": labels}}, now) is expired


def ns(name, labels, terminating=False):
    meta = {"name": name, "labels": labels}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def test_garbage_collection_deletes_only_expired_probe_namespaces():
    cluster = FakeCluster()
    now = 10000
    old = pr.probe_labels("a", "r1", now - 2000, 900)
    live = pr.probe_labels("b", "r2", now - 100, 900)
    cluster.add("v1", "namespaces", ns("old", old))
    cluster.add("v1", "namespaces", ns("live", live))
    cluster.add("v1", "namespaces", ns("old-terminating", old, terminating=True))
    cluster.add("v1", "namespaces", ns("not-ours", {"k8s-ai-conformance/expires": "1"}))
    cluster.add("v1", "namespaces", ns("default", {}))
    evidence = Evidence()
    assert pr.collect_garbage(cluster, now=now, evidence=evidence) == ["old"]
    left = sorted(o["metadata"]["name"] for o in cluster.objects("namespaces"))
    assert left == ["default", "live", "not-ours", "old-terminating"]
    assert evidence.entries and evidence.entries[0]["response"] == ["old"]


def test_probe_creates_labelled_namespace_and_cleans_up_on_exception():
    cluster = FakeCluster()
    evidence = Evidence()
    with pytest.raises(RuntimeError), pr.Probe(cluster, "dra_support", evidence, timeout=5) as probe:
        claim = probe.create({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
                              "metadata": {"name": "c"}, "spec": {}})
        assert claim["metadata"]["namespace"] == probe.namespace
        assert claim["metadata"]["labels"]["k8s-ai-conformance/probe"] == "true"
        dc = probe.create({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "spec": {}})
        assert dc["metadata"]["name"].startswith("probe-")
        namespaces = cluster.objects("namespaces")
        assert [n["metadata"]["labels"]["app.kubernetes.io/managed-by"] for n in namespaces] == ["k8s-ai-conformance"]
        raise RuntimeError("boom")
    assert cluster.objects("namespaces") == [] and cluster.objects("resourceclaims") == []
    assert cluster.objects("deviceclasses") == []  # cluster-scoped probe objects are deleted too
    assert evidence.entries[-1]["title"] == "clean up probe objects"


def test_cleanup_errors_are_kept_not_raised():
    cluster = FakeCluster()
    probe = pr.Probe(cluster, "x", Evidence()).open()
    cluster.fail[("DELETE", "/api/v1/namespaces/")] = (403, {"message": "no"})
    probe.close()
    assert probe.cleanup_errors and "forbidden (403): not allowed to delete namespaces" in probe.cleanup_errors[0]


def test_wait_for_returns_when_condition_holds():
    cluster = FakeCluster()
    polls = []

    def evolve(obj):
        polls.append(1)
        if len(polls) >= 3:
            obj.setdefault("status", {})["conditions"] = [{"type": "PodScheduled", "status": "True"}]
            obj["spec"]["nodeName"] = "n1"
        return obj

    with pr.Probe(cluster, "x", Evidence(), timeout=5, poll_interval=0.01) as probe:
        pod = probe.create(pr.pod_manifest("p"))
        cluster.on_get = evolve
        pod = probe.wait_for(pod, pr.pod_scheduled, "pod scheduled")
        assert pod["spec"]["nodeName"] == "n1" and len(polls) == 3


def test_wait_for_timeout_is_a_failure_with_last_state():
    cluster = FakeCluster()
    evidence = Evidence()
    with pr.Probe(cluster, "x", evidence, timeout=0.2, poll_interval=0.05) as probe:
        pod = probe.create(pr.pod_manifest("p"))
        started = time.time()
        with pytest.raises(pr.WaitTimeout) as info:
            probe.wait_for(pod, pr.pod_scheduled, "pod scheduled")
        assert time.time() - started < 2
    assert isinstance(info.value, PartFailed)
    assert "not observed within 0s: pod scheduled; last state: Pod/p" in str(info.value)
    assert any(e.get("error") for e in evidence.entries if e["title"] == "wait: pod scheduled")


def test_stays_fails_when_the_condition_breaks():
    cluster = FakeCluster()
    with pr.Probe(cluster, "x", Evidence(), poll_interval=0.01) as probe:
        claim = probe.create({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": "c"}})
        probe.stays(claim, lambda c: not pr.claim_allocation(c), "claim unallocated", seconds=0.05)
        cluster.on_get = lambda o: dict(o, status={"allocation": {"devices": {"results": [{"device": "g0"}]}}})
        with pytest.raises(PartFailed, match="no longer true .*claim unallocated"):
            probe.stays(claim, lambda c: not pr.claim_allocation(c), "claim unallocated", seconds=1)


def test_try_create_returns_the_refusal():
    cluster = FakeCluster()
    with pr.Probe(cluster, "x", Evidence()) as probe:
        cluster.fail[("POST", "/apis/kueue.x-k8s.io/v1beta1/clusterqueues")] = (422, {
            "kind": "Status", "reason": "Invalid",
            "message": 'admission webhook "vclusterqueue.kb.io" denied the request: spec.cohort: Invalid value'})
        created, error = probe.try_create({"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue",
                                           "metadata": {"name": "bad"}, "spec": {}}, dry_run=True)
        assert created is None and error.status == 422 and "admission webhook" in error.server_message
        assert probe.cluster_scoped == []


def test_pod_manifest_wires_claims_and_tolerations():
    pod = pr.pod_manifest("p", claims={"gpu": {"resourceClaimName": "c"}}, requests={"nvidia.com/gpu": 1})
    spec = pod["spec"]
    assert spec["resourceClaims"] == [{"name": "gpu", "resourceClaimName": "c"}]
    assert spec["containers"][0]["resources"]["claims"] == [{"name": "gpu"}]
    assert spec["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert spec["tolerations"] == [{"operator": "Exists"}]


def test_pod_unschedulable_needs_the_scheduler_verdict():
    pod = {"spec": {}, "status": {"conditions": [{"type": "PodScheduled", "status": "False",
                                                  "reason": "Unschedulable"}]}}
    assert pr.pod_unschedulable(pod)
    assert not pr.pod_unschedulable({"spec": {}, "status": {}})  # pending but not yet judged
    assert not pr.pod_scheduled(pod)
    # a negative case names the refusal it needs: an Unschedulable pod without it proves nothing about DRA
    assert not pr.pod_unschedulable(pod, because=pr.CLAIMS_REFUSED)
    pod["status"]["conditions"][0]["message"] = "0/3 nodes are available: 3 cannot allocate all claims."
    assert pr.pod_unschedulable(pod, because=pr.CLAIMS_REFUSED)
    assert not pr.pod_unschedulable(pod, because="Insufficient nvidia.com/gpu")


def test_close_deletes_each_object_newest_first_then_swept_kinds_then_namespace():
    cluster = FakeCluster()
    evidence = Evidence()
    with pr.Probe(cluster, "x", evidence) as probe:
        probe.create({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": "c"}})
        probe.create(pr.pod_manifest("p"))
        # an object a controller made for the probe (e.g. a generated claim)
        cluster.add("resource.k8s.io/v1", "resourceclaims", {"metadata": {"name": "gen"}}, namespace=probe.namespace)
        probe.also_clean("resource.k8s.io/v1", "ResourceClaim")
        probe.also_clean("resource.k8s.io/v1", "ResourceClaim")  # registering twice is harmless
        ns = probe.namespace
    deletes = [path for method, path in cluster.log if method == "DELETE"]
    assert deletes == [
        "/api/v1/namespaces/%s/pods/p" % ns,
        "/apis/resource.k8s.io/v1/namespaces/%s/resourceclaims/c" % ns,
        "/apis/resource.k8s.io/v1/namespaces/%s/resourceclaims/gen" % ns,
        "/api/v1/namespaces/%s" % ns,
    ]
    assert cluster.store == {}


def test_open_waits_for_the_default_service_account_but_never_fails_on_it():
    cluster = FakeCluster()
    cluster.auto_service_accounts = False
    started = time.time()
    probe = pr.Probe(cluster, "x", Evidence(), timeout=1, poll_interval=0.1).open()
    assert 0.9 <= time.time() - started < 3  # waited (bounded by the timeout), then carried on
    gets = [p for m, p in cluster.log if m == "GET" and p.endswith("/serviceaccounts/default")]
    assert len(gets) >= 5 and gets[0] == "/api/v1/namespaces/%s/serviceaccounts/default" % probe.namespace
    probe.close()


def test_command_pod_and_claim_manifests():
    pod = pr.command_pod("srv", "exec httpd -f -p 8080", ports=[8080, {"name": "m", "containerPort": 9090}],
                         labels={"app": "srv"}, annotations={"a": "b"}, runtime_class="gvisor",
                         claims={"gpu": {"resourceClaimName": "c"}})
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["sh", "-c", "exec httpd -f -p 8080"] and container["image"] == pr.SHELL_IMAGE
    assert container["ports"] == [{"containerPort": 8080}, {"name": "m", "containerPort": 9090}]
    assert container["resources"]["requests"] == {"cpu": "10m", "memory": "16Mi"}
    assert container["resources"]["claims"] == [{"name": "gpu"}]
    assert pod["spec"]["tolerations"] == pr.TOLERATE_ALL and pod["spec"]["tolerations"] is not pr.TOLERATE_ALL
    assert pod["spec"]["runtimeClassName"] == "gvisor" and pod["metadata"]["annotations"] == {"a": "b"}
    assert pr.command_pod("p", ["/pause"], image=pr.PROBE_IMAGE)["spec"]["containers"][0]["command"] == ["/pause"]
    claim = pr.claim_manifest("c", "gpu.example.com", count=2, selectors=['device.driver == "x"'])
    exactly = claim["spec"]["devices"]["requests"][0]["exactly"]
    assert claim["kind"] == "ResourceClaim" and exactly == {
        "deviceClassName": "gpu.example.com", "allocationMode": "ExactCount", "count": 2,
        "selectors": [{"cel": {"expression": 'device.driver == "x"'}}]}
    assert pr.claim_manifest("c", "d")["spec"]["devices"]["requests"][0]["exactly"] == {"deviceClassName": "d"}
    template = pr.claim_template_manifest("t", "d")
    assert template["kind"] == "ResourceClaimTemplate" and template["spec"]["spec"]["devices"]["requests"]


class LogCluster(FakeCluster):
    def __init__(self, log):
        super().__init__()
        self.pod_log_text = log

    def _send(self, method, url_path, headers, body):
        if url_path.split("?")[0].endswith("/log"):
            self.log.append((method, url_path))
            if self.pod_log_text is None:
                return 400, b'{"kind":"Status","message":"container \\"probe\\" is waiting to start"}'
            return 200, self.pod_log_text.encode()
        return super()._send(method, url_path, headers, body)


def test_pod_logs_and_waiting_for_a_log_line():
    from ansible_collections.k8s_ai.conformance.plugins.module_utils.results import CannotRun

    cluster = LogCluster("starting\nRESULT=open\n")
    with pr.Probe(cluster, "x", Evidence(), timeout=1, poll_interval=0.05) as probe:
        assert probe.logs("client") == "starting\nRESULT=open\n"
        assert "RESULT=open" in probe.wait_for_log({"metadata": {"name": "client"}}, "RESULT=", "client result")
        cluster.pod_log_text = None  # the container never started: the command did not run
        with pytest.raises(CannotRun, match="left no 'RESULT=' line in its log .no real container ran"):
            probe.wait_for_log("client", "RESULT=", "client result", timeout=0.2)
        with pytest.raises(pr.WaitTimeout):  # where a missing line is the capability failing
            probe.wait_for_log("client", "RESULT=", "client result", timeout=0.2, cannot_run=False)
    assert any(e["title"] == "log of pod client" for e in probe.evidence.entries)


def test_denied_by_webhook_tells_the_operator_from_the_schema():
    from ansible_collections.k8s_ai.conformance.plugins.module_utils.client import ApiError

    webhook = ApiError("x", 400, body={"message": 'admission webhook "vjobset.kb.io" denied the request: bad'})
    schema = ApiError("x", 422, body={"message": 'JobSet "x" is invalid: spec.replicatedJobs: Required value'})
    broken = ApiError("x", 500, body={"message": 'Internal error occurred: failed calling webhook "vjobset"'})
    assert pr.denied_by_webhook(webhook) and not pr.denied_by_webhook(schema) and not pr.denied_by_webhook(broken)


class WatchingCluster(FakeCluster):
    """A fake whose watches stream the given events (a real client streams them from the server)."""

    def __init__(self, events):
        super().__init__()
        self.events = events
        self.watches = []

    def _stream(self, url_path, read_timeout):
        self.watches.append(url_path)
        lines = [(json.dumps(e) + "\n").encode() for e in self.events]
        return 200, iter(lines), lambda: None


def scheduled(pod, node="n1"):
    pod = json.loads(json.dumps(pod))
    pod.setdefault("status", {})["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    pod["spec"]["nodeName"] = node
    return pod


def test_wait_for_watches_from_the_current_version_and_ends_on_the_event():
    cluster = WatchingCluster([])
    evidence = Evidence()
    with pr.Probe(cluster, "x", evidence, timeout=5, poll_interval=0.01) as probe:
        pod = probe.create(pr.pod_manifest("p"))
        current = probe.get(pod)
        cluster.events = [{"type": "MODIFIED", "object": current},
                          {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "99"}}},
                          {"type": "MODIFIED", "object": scheduled(current)}]
        gets = sum(1 for m, _p in cluster.log if m == "GET")
        found = probe.wait_for(pod, pr.pod_scheduled, "pod scheduled")
    assert found["spec"]["nodeName"] == "n1"
    assert len(cluster.watches) == 1
    assert "watch=1" in cluster.watches[0] and "fieldSelector=metadata.name%3Dp" in cluster.watches[0]
    assert "/namespaces/%s/pods?" % probe.namespace in cluster.watches[0]
    assert sum(1 for m, _p in cluster.log if m == "GET") == gets + 1  # one GET, then only the watch
    assert any(e["action"].startswith("watch Pod/p") for e in evidence.entries if e["title"] == "wait: pod scheduled")


def test_an_expired_watch_falls_back_to_polling():
    cluster = WatchingCluster([{"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}])
    polls = []

    def evolve(obj):
        polls.append(1)
        return scheduled(obj) if len(polls) >= 3 else obj

    with pr.Probe(cluster, "x", Evidence(), timeout=5, poll_interval=0.01) as probe:
        pod = probe.create(pr.pod_manifest("p"))
        cluster.on_get = evolve
        found = probe.wait_for(pod, pr.pod_scheduled, "pod scheduled")
        assert found["spec"]["nodeName"] == "n1"
        assert probe.watch is False and len(cluster.watches) == 1


def test_a_watch_that_never_brings_the_condition_times_out_as_a_failure():
    cluster = WatchingCluster([])
    with pr.Probe(cluster, "x", Evidence(), timeout=0.3, poll_interval=0.01) as probe:
        pod = probe.create(pr.pod_manifest("p"))
        with pytest.raises(pr.WaitTimeout):
            probe.wait_for(pod, pr.pod_scheduled, "pod scheduled")
    assert 1 <= len(cluster.watches) <= 40  # a watch the server ends at once is not reopened in a busy loop


def test_on_nodes_uses_one_single_valued_term_per_node():
    # The API server accepts a matchFields requirement on metadata.name with exactly one value (422 otherwise,
    # seen on the lab); terms are ORed, so several nodes become several terms.
    pod = pr.on_nodes(pr.pod_manifest("x"), ["n1", "n2"])
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [n]}]} for n in ("n1", "n2")]
    one = pr.on_nodes(pr.pod_manifest("y"), "n3")["spec"]["affinity"]["nodeAffinity"]
    assert one["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"][0][
        "values"] == ["n3"]


def namespace_not_found(name):
    return (404, {"kind": "Status", "reason": "NotFound", "message": 'namespaces "%s" not found' % name,
                  "details": {"name": name, "kind": "namespaces"}})


def fail_first_posts(cluster, path, answer, times):
    """The API server answers `answer` to the first `times` POSTs under `path`, then serves them."""
    cluster.fail[("POST", path)] = answer
    send, posts = cluster._send, []

    def flaky(method, url_path, headers, body):
        if method == "POST" and url_path.startswith(path):
            posts.append(url_path)
            if len(posts) > times:
                cluster.fail.pop(("POST", path), None)
        return send(method, url_path, headers, body)
    cluster._send = flaky
    return posts


def test_create_waits_for_the_api_server_to_see_the_probes_new_namespace():
    cluster = FakeCluster()
    with pr.Probe(cluster, "cluster_autoscaling", Evidence(), timeout=5, poll_interval=0.01) as probe:
        path = "/api/v1/namespaces/%s/pods" % probe.namespace
        posts = fail_first_posts(cluster, path, namespace_not_found(probe.namespace), times=2)
        pod = probe.create(pr.pod_manifest("p"))
        assert pod["metadata"]["namespace"] == probe.namespace and len(posts) == 3
        created, error = probe.try_create(pr.pod_manifest("q"))
        assert created and error is None


@pytest.mark.parametrize("answer", [
    namespace_not_found("someone-elses"),                                      # not our namespace
    (404, {"kind": "Status", "reason": "NotFound", "message": "the server could not find the requested resource"}),
])
def test_other_not_found_answers_are_not_retried(answer):
    cluster = FakeCluster()
    with pr.Probe(cluster, "cluster_autoscaling", Evidence(), timeout=5, poll_interval=0.01) as probe:
        posts = fail_first_posts(cluster, "/api/v1/namespaces/%s/pods" % probe.namespace, answer, times=5)
        with pytest.raises(pr.ApiError):
            probe.create(pr.pod_manifest("p"))
        assert len(posts) == 1
        created, error = probe.try_create(pr.pod_manifest("q"))
        assert created is None and error.status == 404 and len(posts) == 2


def test_a_namespace_that_never_appears_is_an_error_after_the_settle_time(monkeypatch):
    monkeypatch.setattr(pr, "NAMESPACE_SETTLE", 0.05)
    cluster = FakeCluster()
    with pr.Probe(cluster, "cluster_autoscaling", Evidence(), timeout=5, poll_interval=0.01) as probe:
        posts = fail_first_posts(cluster, "/api/v1/namespaces/%s/pods" % probe.namespace,
                                 namespace_not_found(probe.namespace), times=10 ** 6)
        with pytest.raises(pr.ApiError) as raised:
            probe.create(pr.pod_manifest("p"))
        assert raised.value.status == 404 and len(posts) >= 2
