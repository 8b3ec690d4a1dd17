"""Proofs that the real Kueue and JobSet controllers run against the lab with reachable webhooks."""

import time
import uuid

import pytest

from .test_lab import wait_for

KUEUE = "kueue.x-k8s.io/v1beta2"


@pytest.fixture
def queue(kubectl, namespace):
    """A ClusterQueue with 8 CPUs of quota and a LocalQueue pointing at it, removed afterwards."""
    suffix = uuid.uuid4().hex[:6]
    flavor, cluster_queue = "it-flavor-" + suffix, "it-cq-" + suffix
    kubectl.apply([
        {"apiVersion": KUEUE, "kind": "ResourceFlavor", "metadata": {"name": flavor}},
        {"apiVersion": KUEUE, "kind": "ClusterQueue", "metadata": {"name": cluster_queue},
         "spec": {"namespaceSelector": {}, "resourceGroups": [{"coveredResources": ["cpu", "memory"], "flavors": [
             {"name": flavor, "resources": [{"name": "cpu", "nominalQuota": "8"},
                                            {"name": "memory", "nominalQuota": "32Gi"}]}]}]}},
        {"apiVersion": KUEUE, "kind": "LocalQueue", "metadata": {"name": "it-queue", "namespace": namespace},
         "spec": {"clusterQueue": cluster_queue}},
    ])
    wait_for("ClusterQueue Active", lambda: [c for c in kubectl.json("get", "clusterqueue", cluster_queue)
                                             .get("status", {}).get("conditions", [])
                                             if c["type"] == "Active" and c["status"] == "True"])
    yield "it-queue"
    kubectl.run("delete", "namespace", namespace, "--wait=true", "--timeout=60s", check=False)
    kubectl.run("delete", "clusterqueue", cluster_queue, "--wait=false", check=False)
    kubectl.run("delete", "resourceflavor", flavor, "--wait=false", check=False)


def _pod_template(cpu):
    # Simulated pods: the kwok nodes run them (their image exists nowhere; no real node could).
    return {"spec": {"restartPolicy": "Never", "tolerations": [{"operator": "Exists"}],
                     "nodeSelector": {"type": "kwok"},
                     "containers": [{"name": "main", "image": "registry.invalid/trainer:1",
                                     "resources": {"requests": {"cpu": str(cpu), "memory": "1Gi"}}}]}}


def test_jobset_through_a_local_queue_is_admitted_and_its_jobs_created(kubectl, namespace, queue):
    jobset = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet",
              "metadata": {"name": "trainer", "labels": {"kueue.x-k8s.io/queue-name": queue}},
              "spec": {"replicatedJobs": [{"name": "workers", "replicas": 2, "template": {"spec": {
                  "parallelism": 2, "completions": 2, "backoffLimit": 0, "template": _pod_template(1)}}}]}}
    kubectl.apply(jobset, namespace)
    workload = wait_for("Workload admitted", lambda: [w for w in kubectl.json("get", "workloads", "-n", namespace)
                                                      ["items"] for c in w.get("status", {}).get("conditions", [])
                                                      if c["type"] == "Admitted" and c["status"] == "True"])
    assert workload[0]["metadata"]["ownerReferences"][0]["kind"] == "JobSet"

    def unsuspended_jobs():
        j = kubectl.json("get", "jobs", "-n", namespace)["items"]
        return j if len(j) == 2 and not any(x["spec"].get("suspend") for x in j) else None

    jobs = wait_for("2 child Jobs unsuspended", unsuspended_jobs)
    assert {j["metadata"]["labels"]["jobset.sigs.k8s.io/jobset-name"] for j in jobs} == {"trainer"}
    wait_for("4 pods Running", lambda: len([p for p in kubectl.json("get", "pods", "-n", namespace)["items"]
                                            if p["status"].get("phase") == "Running"]) == 4)


def test_workload_over_quota_stays_pending_and_creates_no_pod(kubectl, namespace, queue):
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "too-big", "labels": {"kueue.x-k8s.io/queue-name": queue}},
           "spec": {"suspend": True, "parallelism": 4, "completions": 4, "template": _pod_template(4)}}
    kubectl.apply(job, namespace)
    pending = wait_for("Workload pending", lambda: [w for w in kubectl.json("get", "workloads", "-n", namespace)
                                                    ["items"] for c in w.get("status", {}).get("conditions", [])
                                                    if c["type"] == "QuotaReserved" and c["status"] == "False"])
    assert "insufficient" in pending[0]["status"]["conditions"][0]["message"].lower() or pending
    time.sleep(3)
    assert kubectl.json("get", "job", "too-big", "-n", namespace)["spec"]["suspend"] is True
    assert kubectl.json("get", "pods", "-n", namespace)["items"] == []


def test_invalid_cluster_queue_is_rejected_by_kueues_webhook(kubectl):
    bad = {"apiVersion": KUEUE, "kind": "ClusterQueue", "metadata": {"name": "it-invalid-" + uuid.uuid4().hex[:6]},
           "spec": {"resourceGroups": [{"coveredResources": ["cpu"], "flavors": [
               {"name": "default", "resources": [{"name": "cpu", "nominalQuota": "-1"}]}]}]}}
    result = kubectl.create(bad, check=False)
    assert result.returncode != 0
    assert 'admission webhook "vclusterqueue.kb.io" denied the request' in result.stderr, result.stderr


def test_invalid_jobset_is_rejected_by_jobsets_webhook(kubectl, namespace):
    # Schema-valid, but its success policy names a replicated job that does not exist: only the
    # webhook knows that.
    bad = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "bad",
                                                                                    "namespace": namespace},
           "spec": {"successPolicy": {"operator": "All", "targetReplicatedJobs": ["missing"]},
                    "replicatedJobs": [{"name": "w", "replicas": 1, "template": {"spec": {
                        "template": _pod_template(1)}}}]}}
    result = kubectl.create(bad, check=False)
    assert result.returncode != 0
    # JobSet's webhook answers with an Invalid status the API server passes through; the CRD schema
    # cannot produce this message.
    assert "invalid replicatedJob name 'missing' does not appear in .spec.ReplicatedJobs" in result.stderr, \
        result.stderr
