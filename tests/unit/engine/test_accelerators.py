from fakeapi import FakeCluster

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as acc_mod


def slice_(name, driver, node, devices, **extra):
    spec = {"driver": driver, "pool": {"name": node, "generation": 1, "resourceSliceCount": 1}, "nodeName": node,
            "devices": devices}
    spec.update(extra)
    return {"metadata": {"name": name}, "spec": spec}


def gpu(i, product="NVIDIA H100", **extra):
    dev = {"name": "gpu-%d" % i, "attributes": {"type": {"string": "gpu"}, "productName": {"string": product},
                                                "gpu.nvidia.com/driverVersion": {"version": "570.1.0"}},
           "capacity": {"memory": {"value": "80Gi"}}}
    dev.update(extra)
    return dev


def lab_cluster():
    cluster = FakeCluster()
    cluster.add("resource.k8s.io/v1", "deviceclasses", {"metadata": {"name": "gpu.nvidia.com"}, "spec": {
        "selectors": [{"cel": {"expression": "device.driver == 'gpu.nvidia.com'"}}]}})
    cluster.add("resource.k8s.io/v1", "deviceclasses", {"metadata": {"name": "fpga"}, "spec": {
        "selectors": [{"cel": {"expression": 'device.driver == "fpga.example.com"'}}]}})
    for name, node, count in (("s0", "gpu-0", 8), ("s1", "gpu-1", 6)):
        cluster.add("resource.k8s.io/v1", "resourceslices",
                    slice_(name, "gpu.nvidia.com", node, [gpu(i) for i in range(count)]))
    cluster.add("resource.k8s.io/v1", "resourceslices", slice_("s2", "fpga.example.com", "fpga-0", [
        {"name": "f0", "consumesCounters": [{"counterSet": "x", "counters": {}}]}], sharedCounters=[{"name": "x"}]))
    cluster.add("v1", "nodes", {"metadata": {"name": "amd-0"}, "status": {"allocatable": {
        "cpu": "64", "memory": "1Ti", "amd.com/gpu": "4", "hugepages-2Mi": "0", "example.com/nic": "2"}}})
    cluster.add("v1", "nodes", {"metadata": {"name": "cpu-0"}, "status": {"allocatable": {"cpu": "8"}}})
    return cluster


def test_discover_counts_devices_per_driver_and_node():
    acc = acc_mod.discover(lab_cluster())
    assert acc["dra_api"] == "resource.k8s.io/v1"
    nv = acc["drivers"]["gpu.nvidia.com"]
    assert nv["devices"] == 14 and nv["nodes"] == {"gpu-0": 8, "gpu-1": 6} and nv["max_per_node"] == 8
    assert nv["attributes"]["type"] == ["gpu"] and nv["attributes"]["driverVersion"] == ["570.1.0"]
    assert nv["capacity"] == ["memory"]
    fpga = acc["drivers"]["fpga.example.com"]
    assert fpga["with_counters"] == 1 and fpga["shared_counter_sets"] == 1
    assert [dc["drivers"] for dc in acc["device_classes"]] == [["fpga.example.com"], ["gpu.nvidia.com"]]
    assert acc["extended_resources"] == {"amd.com/gpu": {"total": 4, "nodes": {"amd-0": 4}}}
    assert acc["nodes"] == 2


def test_pick_device_class_prefers_the_class_with_most_devices():
    acc = acc_mod.discover(lab_cluster())
    assert acc_mod.pick_device_class(acc) == ("gpu.nvidia.com", "gpu.nvidia.com")
    assert acc_mod.pick_device_class({"device_classes": [], "drivers": {}}) == (None, None)


def test_no_dra_api_still_reports_device_plugins():
    cluster = lab_cluster()
    cluster.discovery = {"v1": cluster.discovery["v1"]}
    acc = acc_mod.discover(cluster)
    assert acc["dra_api"] is None and acc["drivers"] == {} and "amd.com/gpu" in acc["extended_resources"]


def test_large_inventory_is_paged_and_summarised():
    cluster = FakeCluster()
    for n in range(300):
        devices = [gpu(i, product="P%d" % (n % 50)) for i in range(8)]
        sl = slice_("s%d" % n, "gpu.example.com", "node-%d" % n, devices)
        cluster.add("resource.k8s.io/v1", "resourceslices", sl)
    acc = acc_mod.discover(cluster)
    info = acc["drivers"]["gpu.example.com"]
    assert info["devices"] == 2400 and len(info["nodes"]) == 300 and info["max_per_node"] == 8
    assert len(info["attributes"]["productName"]) == acc_mod.MAX_VALUES   # bounded
    summary = acc_mod.summary(acc)
    assert summary["drivers"]["gpu.example.com"]["node_count"] == 300
    assert "nodes" not in summary["drivers"]["gpu.example.com"]


def test_accelerator_resource_names():
    assert acc_mod.is_accelerator_resource("nvidia.com/gpu")
    assert acc_mod.is_accelerator_resource("gpu.intel.com/i915")
    assert acc_mod.is_accelerator_resource("amd.com/gpu")
    assert not acc_mod.is_accelerator_resource("hugepages-1Gi")
    assert not acc_mod.is_accelerator_resource("example.com/nic")


def test_max_per_node_counts_devices_reachable_from_every_node():
    drivers = {}
    acc_mod.add_slice(drivers, slice_("a", "x.example.com", "n1", [gpu(0), gpu(1)]))
    acc_mod.add_slice(drivers, {"metadata": {"name": "b"}, "spec": {"driver": "x.example.com", "allNodes": True,
                                                                    "pool": {"name": "fabric"}, "devices": [gpu(9)]}})
    info = acc_mod.finish(drivers)["x.example.com"]
    assert info["nodes"] == {"n1": 2, "<all nodes>": 1} and info["max_per_node"] == 3
