"""accelerator_metrics: every accelerator a covered node advertises needs its series; a device's series follow a pod
that holds it (fake API)."""

from checkfake import Fake, detail, gpu_slice, node, outcome, run

from ansible_collections.k8s_ai.conformance.plugins.modules import accelerator_metrics

SERIES = ('DCGM_FI_DEV_GPU_UTIL{gpu="%(i)d",UUID="GPU-%(i)d",device="gpu-%(i)d",Hostname="%(node)s"%(pod)s} %(util)d\n'
          'DCGM_FI_DEV_FB_USED{gpu="%(i)d",UUID="GPU-%(i)d",device="gpu-%(i)d",Hostname="%(node)s"%(pod)s} %(mem)d\n')


def exposition(node_name, devices, held=None):
    return "".join(SERIES % {"i": i, "node": node_name, "util": 100 if i == held else 0, "mem": 40960 if i == held
                             else 0, "pod": ',pod="metrics-workload"' if i == held else ""} for i in range(devices))


def standin_cluster(advertised=2, exported=2, follows=True):
    """One node advertising `advertised` DRA devices, an exporter pod there publishing `exported` of them; once the
    probe's claim is allocated (gpu-1) and its pod Running, the exporter shows gpu-1 held (follows) or nothing."""
    fake = Fake({"discovery.k8s.io/v1": [("endpointslices", "EndpointSlice", True)]})
    fake.add("v1", "services", {"metadata": {"name": "accelerator-metrics-standin"},
                                "spec": {"ports": [{"name": "metrics", "port": 9400, "targetPort": "metrics"}]}},
             namespace="lab")
    fake.add("discovery.k8s.io/v1", "endpointslices", {
        "metadata": {"name": "x", "labels": {"kubernetes.io/service-name": "accelerator-metrics-standin"}},
        "ports": [{"name": "metrics", "port": 9400}],
        "endpoints": [{"nodeName": "n1", "targetRef": {"kind": "Pod", "name": "exporter-n1"}}]}, namespace="lab")
    fake.add("v1", "nodes", node("n1"))
    fake.add("resource.k8s.io/v1", "resourceslices", gpu_slice("n1", advertised))
    fake.add("resource.k8s.io/v1", "deviceclasses", {"metadata": {"name": "gpu.example.com"}, "spec": {"selectors": [
        {"cel": {"expression": "device.driver == 'gpu.example.com'"}}]}})
    state = {"held": None}

    def evolve(obj):
        kind = obj.get("kind")
        if kind == "ResourceClaim" or "devices" in (obj.get("spec") or {}):
            obj.setdefault("status", {})["allocation"] = {"devices": {"results": [
                {"driver": "gpu.example.com", "pool": "n1", "device": "gpu-1", "request": "accel"}]}}
        elif kind == "Pod" or "containers" in (obj.get("spec") or {}):
            obj.setdefault("status", {})["phase"] = "Running"
            obj["spec"].setdefault("nodeName", "n1")  # the scheduler's choice among the exporter nodes
            state["held"] = 1 if follows else None
        return obj
    fake.on_get = evolve

    def scrape(method, path, query, body):
        return 200, exposition("n1", exported, state["held"])
    fake.route("GET", "/api/v1/namespaces/lab/pods/", scrape)
    return fake


def test_every_advertised_accelerator_of_a_covered_node_needs_series():
    result = run(accelerator_metrics, standin_cluster(advertised=2, exported=2))
    assert outcome(result, "utilization and memory metrics exist") == "passed", result["parts"]
    assert "every accelerator advertised on n1 has both" in detail(result, "utilization and memory metrics exist")
    result = run(accelerator_metrics, standin_cluster(advertised=3, exported=2))
    assert outcome(result, "utilization and memory metrics exist") == "failed"
    assert "n1 advertises 3, metrics for 2" in detail(result, "utilization and memory metrics exist")
    assert result["status"] != "Implemented"


def test_device_metrics_follow_the_pod_holding_it():
    result = run(accelerator_metrics, standin_cluster())
    assert outcome(result, "follow a pod that holds it") == "passed", result["parts"]
    text = detail(result, "follow a pod that holds it")
    assert "device gpu-1 on n1" in text and "DCGM_FI_DEV_GPU_UTIL 0->100" in text and "pod=metrics-workload" in text
    result = run(accelerator_metrics, standin_cluster(follows=False))
    assert outcome(result, "follow a pod that holds it") == "failed"
    assert result["status"] == "Implemented"  # optional: never changes the verdict
