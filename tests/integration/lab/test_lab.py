"""Proofs that the lab is what it claims to be: a real control plane, real DRA allocation by the real
scheduler on simulated GPU nodes, realistic pod lifecycles and a checksummed artifact mirror."""

import hashlib
import json
import os
import time
import urllib.request

import pytest

GPU_CLASS = "gpu.nvidia.com"


def wait_for(what, predicate, timeout=60, interval=0.5):
    deadline = time.time() + timeout
    value = None
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, value))


def claim_template(name, count):
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate", "metadata": {"name": name},
            "spec": {"spec": {"devices": {"requests": [{"name": "gpus", "exactly": {
                "deviceClassName": GPU_CLASS, "allocationMode": "ExactCount", "count": count}}]}}}}


def pod_with_claim(name, template):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "registry.invalid/cuda-sample:1",
                                     "resources": {"claims": [{"name": "gpus"}]}}],
                     "resourceClaims": [{"name": "gpus", "resourceClaimTemplateName": template}],
                     "tolerations": [{"operator": "Exists"}]}}


def allocated_devices(kubectl, namespace):
    claims = kubectl.json("get", "resourceclaims", "-n", namespace)["items"]
    out = {}
    for claim in claims:
        results = (claim.get("status", {}).get("allocation") or {}).get("devices", {}).get("results", [])
        out[claim["metadata"]["name"]] = [(r["driver"], r["pool"], r["device"]) for r in results]
    return out


def test_server_is_the_pinned_kubernetes(kubectl, lab):
    version = json.loads(kubectl.run("version", "-o", "json").stdout)["serverVersion"]
    assert version["gitVersion"] == lab["versions"]["KUBERNETES_VERSION"]
    groups = kubectl.run("api-versions").stdout.split()
    assert "resource.k8s.io/v1" in groups


def test_simulated_gpu_nodes_look_like_nvidia_nodes(kubectl, lab):
    nodes = kubectl.json("get", "nodes")["items"]
    gpu = [n for n in nodes if n["metadata"]["labels"].get("nvidia.com/gpu.present") == "true"]
    cpu = [n for n in nodes if "nvidia.com/gpu.present" not in n["metadata"]["labels"]]
    assert len(gpu) == lab["gpu_nodes"] and len(cpu) >= lab["cpu_nodes"]
    for node in nodes:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", node["metadata"]["name"]
    slices = kubectl.json("get", "resourceslices")["items"]
    by_node = {s["spec"]["nodeName"]: s for s in slices if s["spec"]["driver"] == GPU_CLASS}
    assert sorted(by_node) == sorted(n["metadata"]["name"] for n in gpu)
    for node_slice in by_node.values():
        devices = node_slice["spec"]["devices"]
        assert len(devices) == lab["gpus_per_node"]
        for device in devices:
            attrs = device["attributes"]
            assert attrs["type"]["string"] == "gpu"
            assert attrs["uuid"]["string"].startswith("GPU-")
            assert "version" in attrs["driverVersion"] and "string" in attrs["productName"]
            assert device["capacity"]["memory"]["value"] == "80Gi"
    uuids = [d["attributes"]["uuid"]["string"] for s in by_node.values() for d in s["spec"]["devices"]]
    assert len(uuids) == len(set(uuids))
    assert kubectl.json("get", "deviceclass", GPU_CLASS)["spec"]["selectors"]


def test_scheduler_allocates_a_claim_and_the_pod_runs(kubectl, namespace):
    kubectl.apply([claim_template("one-gpu", 1), pod_with_claim("trainer", "one-gpu")], namespace)

    def running_pod():
        p = kubectl.json("get", "pod", "trainer", "-n", namespace)
        return p if p["status"].get("phase") == "Running" else None

    pod = wait_for("pod Running", running_pod)
    devices = wait_for("claim allocated", lambda: [d for v in allocated_devices(kubectl, namespace).values()
                                                   for d in v])
    assert len(devices) == 1
    driver, pool, _device = devices[0]
    assert driver == GPU_CLASS
    assert pool == pod["spec"]["nodeName"], "the device must come from the node the pod was scheduled to"


def test_claim_for_more_gpus_than_a_node_has_stays_unallocated(kubectl, namespace, lab):
    too_many = lab["gpus_per_node"] + 1
    kubectl.apply([claim_template("too-many", too_many), pod_with_claim("greedy", "too-many")], namespace)

    def unschedulable():
        pod = kubectl.json("get", "pod", "greedy", "-n", namespace)
        return [c for c in pod["status"].get("conditions", [])
                if c["type"] == "PodScheduled" and c["status"] == "False" and c.get("reason") == "Unschedulable"]
    condition = wait_for("pod reported Unschedulable", unschedulable)
    assert "claim" in condition[0].get("message", "").lower() or "device" in condition[0].get("message", "").lower()
    time.sleep(3)  # give the scheduler time to (wrongly) retry
    assert allocated_devices(kubectl, namespace) and not any(allocated_devices(kubectl, namespace).values())
    assert not kubectl.json("get", "pod", "greedy", "-n", namespace)["spec"].get("nodeName")


def test_two_claims_never_receive_the_same_device(kubectl, namespace):
    kubectl.apply([claim_template("one-gpu", 1)] + [pod_with_claim("worker-%d" % i, "one-gpu") for i in range(4)],
                  namespace)

    def four_allocated():
        c = allocated_devices(kubectl, namespace)
        return c if len(c) == 4 and all(c.values()) else None

    claims = wait_for("4 claims allocated", four_allocated)
    devices = [d for v in claims.values() for d in v]
    assert len(devices) == 4 and len(set(devices)) == 4


def _job(name, annotations=None):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {
                "metadata": {"annotations": annotations or {}},
                "spec": {"restartPolicy": "Never", "tolerations": [{"operator": "Exists"}],
                         "containers": [{"name": "main", "image": "registry.invalid/trainer:1"}]}}}}


def test_job_pods_keep_running_until_deleted_or_their_run_time_ends(kubectl, namespace):
    kubectl.apply([_job("long"), _job("short", {"lab.k8s-ai-conformance.io/run-for": "2s"})], namespace)
    wait_for("short job Complete", lambda: [c for c in kubectl.json("get", "job", "short", "-n", namespace)["status"]
                                            .get("conditions", []) if c["type"] == "Complete"], timeout=60)
    pods = kubectl.json("get", "pods", "-n", namespace, "-l", "job-name=long")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Running"]
    assert not kubectl.json("get", "job", "long", "-n", namespace)["status"].get("succeeded")


def test_mirror_serves_artifacts_with_matching_checksums(lab):
    mirror = os.path.join(os.path.dirname(lab["kubeconfig"]), "mirror")
    artifacts = [os.path.join(d, f) for d, _unused, files in os.walk(mirror) for f in files
                 if not f.endswith((".sha256", ".sha512")) and f != "SHA256SUMS" and not f.startswith(".")]
    if not artifacts:
        pytest.fail("the mirror under %s is empty" % mirror)
    for path in artifacts:
        rel = os.path.relpath(path, mirror)
        body = urllib.request.urlopen("%s/%s" % (lab["mirror_url"], rel), timeout=30).read()
        algorithm = "sha256" if os.path.exists(path + ".sha256") else "sha512"
        assert os.path.exists(path + "." + algorithm), "%s has no checksum file" % rel
        expected = urllib.request.urlopen("%s/%s.%s" % (lab["mirror_url"], rel, algorithm), timeout=10).read()
        assert hashlib.new(algorithm, body).hexdigest() == expected.decode().split()[0], rel
