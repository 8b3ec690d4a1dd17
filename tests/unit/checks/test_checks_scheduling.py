"""gang_scheduling, gpu_sharing, dra_support, cluster_autoscaling: behaviour decides the verdict, never the
static part alone."""

import time

from checkfake import Fake, add_crds, detail, gpu_slice, node, outcome, run

from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import parse_quantity
from ansible_collections.k8s_ai.conformance.plugins.modules import (
    cluster_autoscaling,
    dra_support,
    gang_scheduling,
    gpu_sharing,
)

KUEUE = "kueue.x-k8s.io/v1beta2"


# ---- gang_scheduling ----------------------------------------------------------------------------
def kueue_cluster(controller=True, quota_reason=True):
    """Kueue CRDs Established; with controller=True a tiny Kueue: ClusterQueues turn Active, each Job gets a
    Workload, admitted (and its pods created and scheduled) when its requests fit 1 CPU, else QuotaReserved=False."""
    fake = Fake()
    add_crds(fake, gang_scheduling.KUEUE_CRDS)
    fake.add("v1", "nodes", node("n1"))
    if not controller:
        return fake

    def activate(obj):
        if obj.get("kind") == "ClusterQueue":
            obj["status"] = {"conditions": [{"type": "Active", "status": "True"}]}
    fake.on_get = lambda obj: activate(obj) or obj

    def job_created(method, path, query, body):
        if not path.endswith("/jobs"):
            return None
        status, job = Fake._serve(fake, method, path, {}, body)
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        spec = job["spec"]
        cpu = spec["template"]["spec"]["containers"][0]["resources"]["requests"].get("cpu", "0")
        fits = parse_quantity(cpu) * spec["parallelism"] <= 1
        if fits:
            conditions = [{"type": "QuotaReserved", "status": "True"}, {"type": "Admitted", "status": "True"}]
        elif quota_reason:
            conditions = [{"type": "QuotaReserved", "status": "False", "reason": "Pending",
                           "message": "couldn't assign flavors: insufficient quota for cpu"}]
        else:
            conditions = []
        fake.add(KUEUE, "workloads", {"apiVersion": KUEUE, "kind": "Workload", "metadata": {
            "name": "job-" + name, "ownerReferences": [{"kind": "Job", "name": name, "uid": "u"}]},
            "status": {"conditions": conditions}}, namespace=namespace)
        if fits:
            job["spec"]["suspend"] = False
            fake.store[("batch/v1", "jobs", namespace, name)] = job
            for i in range(spec["parallelism"]):
                fake.add("v1", "pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
                    "name": "%s-%d" % (name, i), "labels": {"batch.kubernetes.io/job-name": name}},
                    "spec": {"nodeName": "n1"}}, namespace=namespace)
        return status, job
    fake.route("POST", "/apis/batch/v1/namespaces/", job_created)
    return fake


def test_gang_scheduling_implemented_with_a_working_kueue():
    result = run(gang_scheduling, kueue_cluster())
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "3/3 pods scheduled" in detail(result, "fits the quota")
    assert "not admitted, 0 pods created" in detail(result, "over the quota")


def test_gang_scheduling_with_kueue_stopped_is_not_implemented():
    # Seen: Kueue's controller stopped and its webhooks deleted -> "Partially Implemented", because the static
    # part (CRDs Established) passed. Every behavioural part failed, so nothing about gang scheduling was seen.
    result = run(gang_scheduling, kueue_cluster(controller=False))
    assert outcome(result, "Kueue is installed") == "passed"
    assert outcome(result, "fits the quota") == "failed"
    assert outcome(result, "over the quota") == "failed"
    assert result["status"] == "Not Implemented" and result["verified"] is True
    assert "behaviour not observed" in result["notes"]


def test_gang_scheduling_negative_needs_kueues_refusal():
    # A Job we create suspended stays suspended with 0 pods without any Kueue: only Kueue's own verdict on the
    # Workload (QuotaReserved=False) proves refusal by the mechanism under test.
    result = run(gang_scheduling, kueue_cluster(quota_reason=False))
    assert outcome(result, "fits the quota") == "passed"
    assert outcome(result, "over the quota") == "failed"
    assert result["status"] == "Partially Implemented"


def test_gang_scheduling_check_mode_claims_nothing():
    fake = kueue_cluster()
    result = run(gang_scheduling, fake, check_mode=True)
    assert outcome(result, "Kueue is installed") == "passed"
    assert result["status"] == "Not Implemented" and result["verified"] is False
    assert not any(m == "POST" for m, _unused in fake.log)


# ---- gpu_sharing --------------------------------------------------------------------------------
def dra_cluster(scheduler=True, devices=2):
    """One node with `devices` DRA devices and a DeviceClass; scheduler=True allocates claims like kube-scheduler:
    a pod's claim gets one device, the pod a node, and the claim is reserved for every pod that uses it."""
    fake = Fake()
    fake.add("v1", "nodes", node("gpu-0"))
    fake.add("resource.k8s.io/v1", "resourceslices", gpu_slice("gpu-0", devices))
    fake.add("resource.k8s.io/v1", "deviceclasses", {"metadata": {"name": "gpu.example.com"}, "spec": {
        "selectors": [{"cel": {"expression": "device.driver == 'gpu.example.com'"}}]}})
    if not scheduler:
        return fake

    def schedule(obj):
        if obj.get("kind") != "Pod" or obj["spec"].get("nodeName"):
            return
        namespace = obj["metadata"]["namespace"]
        for ref in obj["spec"].get("resourceClaims") or []:
            claim = fake.store.get(("resource.k8s.io/v1", "resourceclaims", namespace, ref.get("resourceClaimName")))
            if claim is None:
                return
            request = claim["spec"]["devices"]["requests"][0]["exactly"]
            if request.get("count", 1) > devices:
                obj["status"] = {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                                 "message": "0/1 nodes are available: 1 cannot allocate all claims."}]}
                return
            status = claim.setdefault("status", {})
            status["allocation"] = {"devices": {"results": [
                {"request": "accel", "driver": "gpu.example.com", "pool": "gpu-0", "device": "gpu-0"}]}}
            status.setdefault("reservedFor", []).append({"resource": "pods", "name": obj["metadata"]["name"]})
        obj["spec"]["nodeName"] = "gpu-0"
        obj["status"] = {"conditions": [{"type": "PodScheduled", "status": "True"}]}
    fake.on_get = lambda obj: schedule(obj) or obj
    return fake


def test_gpu_sharing_implemented_when_two_pods_share_one_claim():
    result = run(gpu_sharing, dra_cluster())
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "share device gpu-0/gpu-0 on node gpu-0 via one claim" in detail(result, "shared by two pods")


def test_gpu_sharing_exposed_but_not_working_is_not_implemented():
    # A DeviceClass with devices is "a sharing mechanism exposed" (static); without allocation nothing was shared.
    result = run(gpu_sharing, dra_cluster(scheduler=False))
    assert outcome(result, "mechanism is exposed") == "passed"
    assert outcome(result, "shared by two pods") == "failed"
    assert result["status"] == "Not Implemented"


# ---- dra_support --------------------------------------------------------------------------------
def test_dra_support_negative_is_a_refusal_by_dra():
    result = run(dra_support, dra_cluster())
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "cannot allocate all claims" in detail(result, "more devices than any node")


def test_dra_support_unschedulable_for_another_reason_proves_nothing():
    fake = dra_cluster(scheduler=False)

    def unschedulable(obj):  # every pod refused, for a reason that has nothing to do with its claim
        if obj.get("kind") == "Pod":
            obj["status"] = {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                             "message": "0/1 nodes are available: 1 node(s) were unschedulable."}]}
        return obj
    fake.on_get = unschedulable
    result = run(dra_support, fake)
    assert outcome(result, "more devices than any node") == "failed"
    assert outcome(result, "gets a device and is scheduled") == "failed"
    assert result["status"] == "Not Implemented"


# ---- cluster_autoscaling ------------------------------------------------------------------------
def autoscaler_cluster(refuses=True, scales_impossible=False, scales_down=None):
    """A cluster-autoscaler Deployment and its events: TriggeredScaleUp for the scale-up pod; for the pod no node
    group can hold NotTriggerScaleUp (refuses) - or nothing at all, as when no autoscaler is really running.
    scales_down True/False: the scale-up pod runs on a node created for it, which goes away once the pod is
    deleted (True) or stays (False)."""
    fake = Fake()
    fake.add("apps/v1", "deployments", {"metadata": {"name": "cluster-autoscaler", "namespace": "kube-system"},
                                        "status": {"readyReplicas": 1}}, namespace="kube-system")
    fake.add("v1", "nodes", dict(node("gpu-0"), status={"allocatable": {"cpu": "8", "nvidia.com/gpu": "8"}}))

    def pod_created(method, path, query, body):
        if not path.endswith("/pods"):
            return None
        status, pod = Fake._serve(fake, method, path, {}, body)
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        reason = {"scale-up": "TriggeredScaleUp",
                  "impossible": "TriggeredScaleUp" if scales_impossible else "NotTriggerScaleUp" if refuses else None
                  }.get(name)
        if reason:
            fake.add("v1", "events", {"metadata": {"name": name + ".1"}, "involvedObject": {"name": name},
                                      "reason": reason, "source": {"component": "cluster-autoscaler"},
                                      "message": "pod didn't trigger scale-up: 1 max node group size reached"
                                      if reason == "NotTriggerScaleUp" else "pod triggered scale-up"},
                     namespace=namespace)
        if name == "scale-up" and scales_down is not None:
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            fake.add("v1", "nodes", dict(node("gpu-new"), metadata=dict(node("gpu-new")["metadata"],
                                                                        creationTimestamp=created)))
            stored = fake.store[("v1", "pods", namespace, name)]
            stored["spec"]["nodeName"] = "gpu-new"
        return status, pod

    def pod_deleted(method, path, query, body):
        if scales_down and path.endswith("/pods/scale-up"):
            fake.store.pop(("v1", "nodes", None, "gpu-new"), None)
    fake.route("POST", "/api/v1/namespaces/", pod_created)
    fake.route("DELETE", "/api/v1/namespaces/", pod_deleted)
    return fake


def test_cluster_autoscaling_implemented_when_scaling_is_observed():
    result = run(cluster_autoscaling, autoscaler_cluster(), probe_scale_up=True, scale_up_timeout=2)
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "refused it (NotTriggerScaleUp" in detail(result, "triggers no scale-up")


def test_cluster_autoscaling_negative_needs_the_autoscalers_refusal():
    # "no scale-up within the wait" also holds when nothing autoscales: the refusal must be the autoscaler's
    result = run(cluster_autoscaling, autoscaler_cluster(refuses=False), probe_scale_up=True, scale_up_timeout=2)
    assert outcome(result, "triggers a scale-up") == "passed"
    assert outcome(result, "triggers no scale-up") == "failed" and result["status"] == "Partially Implemented"
    result = run(cluster_autoscaling, autoscaler_cluster(scales_impossible=True), probe_scale_up=True,
                 scale_up_timeout=2)
    assert outcome(result, "triggers no scale-up") == "failed"


def test_cluster_autoscaling_scale_down_is_the_new_node_going_away():
    result = run(cluster_autoscaling, autoscaler_cluster(scales_down=True), probe_scale_up=True,
                 probe_scale_down=True, scale_up_timeout=2, scale_down_timeout=2)
    assert result["status"] == "Implemented", result["parts"]
    assert "ran on new node gpu-new" in detail(result, "removed once the pod is gone")
    result = run(cluster_autoscaling, autoscaler_cluster(scales_down=False), probe_scale_up=True,
                 probe_scale_down=True, scale_up_timeout=2, scale_down_timeout=2)
    assert outcome(result, "removed once the pod is gone") == "failed"
    assert result["status"] == "Partially Implemented"
    # not probed: an optional part, skipped
    result = run(cluster_autoscaling, autoscaler_cluster(), probe_scale_up=True, scale_up_timeout=2)
    assert outcome(result, "removed once the pod is gone") == "skipped" and result["status"] == "Implemented"


def test_cluster_autoscaling_not_probed_is_not_implemented():
    result = run(cluster_autoscaling, autoscaler_cluster())
    assert [p["outcome"] for p in result["parts"]] == ["passed", "skipped", "skipped", "skipped"]
    assert result["status"] == "Not Implemented" and "probe_scale_up=false" in result["notes"]
