"""Static parts and verdict wiring of the core check modules, in check mode against the fake API."""

import yaml
from fakeapi import FakeCluster
from test_accelerators import lab_cluster

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import COMMON_ARGUMENT_SPEC, Check
from ansible_collections.k8s_ai.conformance.plugins.modules import (
    cluster_autoscaling,
    dra_support,
    gpu_sharing,
    virtualized_accelerator,
)


def run(module, cluster, **params):
    options = yaml.safe_load(module.DOCUMENTATION).get("options") or {}
    values = {k: v.get("default") for k, v in COMMON_ARGUMENT_SPEC.items()}
    values.update({k: v.get("default") for k, v in options.items()}, **params)
    check = Check(module.__name__.rsplit(".", 1)[-1], values, check_mode=True, cluster=cluster)
    return check.run(module.verify)


def outcomes(result):
    return [(p["kind"], p["outcome"]) for p in result["parts"]]


def test_documentation_is_yaml_and_extends_the_cluster_fragment():
    for module in (cluster_autoscaling, dra_support, gpu_sharing, virtualized_accelerator):
        doc = yaml.safe_load(module.DOCUMENTATION)
        assert doc["module"] == module.__name__.rsplit(".", 1)[-1]
        assert doc["extends_documentation_fragment"] == ["k8s_ai.conformance.cluster"]
        yaml.safe_load(module.EXAMPLES)
        assert "result" in yaml.safe_load(module.RETURN)


def test_dra_support_static_passes_and_picks_the_busiest_class():
    result = run(dra_support, lab_cluster())
    assert outcomes(result) == [("static", "passed"), ("positive", "skipped"), ("negative", "skipped"),
                                ("positive", "skipped")]
    assert "DeviceClass gpu.nvidia.com -> driver gpu.nvidia.com: 14 devices on 2 nodes (max 8 per node)" in \
        result["parts"][0]["detail"]
    # check mode: the static part passed, but behaviour that was not probed is never claimed
    assert result["status"] == "Not Implemented" and result["verified"] is False
    assert "behaviour not probed" in result["summary"]


def test_dra_support_without_dra_api():
    cluster = lab_cluster()
    cluster.discovery = {"v1": cluster.discovery["v1"]}
    result = run(dra_support, cluster)
    assert result["parts"][0]["detail"].startswith("resource.k8s.io/v1 does not serve: DeviceClass")
    assert result["status"] == "Not Implemented"


def test_cluster_autoscaling_is_na_without_autoscaler():
    cluster = lab_cluster()
    cluster.discovery["apps/v1"] = [("deployments", "Deployment", True)]
    cluster.discovery["apiextensions.k8s.io/v1"] = [("customresourcedefinitions", "CustomResourceDefinition", False)]
    result = run(cluster_autoscaling, cluster)
    assert result["status"] == "N/A" and result["na_reason"] == "no cluster autoscaler on this platform (bare metal)"


def test_cluster_autoscaling_present_but_behaviour_not_probed_is_not_implemented():
    cluster = lab_cluster()
    cluster.discovery["apps/v1"] = [("deployments", "Deployment", True)]
    cluster.discovery["apiextensions.k8s.io/v1"] = [("customresourcedefinitions", "CustomResourceDefinition", False)]
    cluster.add("apps/v1", "deployments", {"metadata": {"name": "cluster-autoscaler", "namespace": "kube-system"},
                                           "status": {"readyReplicas": 1}}, namespace="kube-system")
    check_mode_result = run(cluster_autoscaling, cluster)
    assert check_mode_result["parts"][0]["outcome"] == "passed"
    values = {k: v.get("default") for k, v in COMMON_ARGUMENT_SPEC.items()}
    values.update(probe_scale_up=False, not_applicable_reason="x", scale_up_timeout=1)
    check = Check("cluster_autoscaling", values, cluster=cluster)
    result = check.run(cluster_autoscaling.verify)
    assert [p["outcome"] for p in result["parts"]] == ["passed", "skipped", "skipped", "skipped"]
    # an Available autoscaler whose scaling was not observed is not cluster autoscaling (not even partly)
    assert result["status"] == "Not Implemented" and "probe_scale_up=false" in result["parts"][1]["detail"]
    assert "behaviour not observed" in result["notes"]
    assert not any(m == "POST" for m, _unused in cluster.log)


def test_gpu_sharing_na_only_without_accelerators():
    result = run(gpu_sharing, FakeCluster())
    assert result["status"] == "N/A" and "no accelerators found" in result["na_reason"]
    result = run(gpu_sharing, lab_cluster())
    assert result["parts"][0]["outcome"] == "passed" and "DRA shared ResourceClaims" in result["parts"][0]["detail"]


def test_gpu_sharing_ignores_disabled_mig_labels():
    cluster = FakeCluster()
    cluster.add("v1", "nodes", {"metadata": {"name": "n", "labels": {"nvidia.com/mig.capable": "false"}},
                                "status": {"allocatable": {"nvidia.com/gpu": "8"}}})
    result = run(gpu_sharing, cluster)
    assert result["parts"][0]["outcome"] == "failed" and result["status"] == "Not Implemented"
    cluster.add("v1", "nodes", {"metadata": {"name": "m", "labels": {"nvidia.com/gpu.replicas": "4"}},
                                "status": {"allocatable": {"nvidia.com/gpu": "8"}}})
    result = run(gpu_sharing, cluster)
    assert result["parts"][0]["outcome"] == "passed" and "nvidia.com/gpu.replicas=4" in result["parts"][0]["detail"]


def test_virtualized_accelerator_verdicts():
    result = run(virtualized_accelerator, lab_cluster())
    assert result["status"] == "Not Implemented" and "not_applicable_reason" in result["notes"]
    result = run(virtualized_accelerator, lab_cluster(), not_applicable_reason="GPUs passed through whole")
    assert result["status"] == "N/A" and result["na_reason"] == "GPUs passed through whole"
    cluster = lab_cluster()
    cluster.add("resource.k8s.io/v1", "resourceslices", {"metadata": {"name": "v"}, "spec": {
        "driver": "gpu.nvidia.com", "nodeName": "gpu-2", "pool": {"name": "gpu-2"},
        "devices": [{"name": "vgpu-0", "attributes": {"type": {"string": "vgpu"}}}]}})
    result = run(virtualized_accelerator, cluster, not_applicable_reason="ignored when found")
    assert result["parts"][0]["outcome"] == "passed" and "attribute type=vgpu" in result["parts"][0]["detail"]
    assert result["status"] == "Not Implemented"  # check mode: found, but its allocation was not probed


def test_robust_controller_without_operators_runs_nothing_else():
    from ansible_collections.k8s_ai.conformance.plugins.modules import robust_controller

    cluster = lab_cluster()
    cluster.discovery["apiextensions.k8s.io/v1"] = [("customresourcedefinitions", "CustomResourceDefinition", False)]
    result = run(robust_controller, cluster)
    assert result["status"] == "Not Implemented" and len(result["parts"]) == 1
    assert "none of jobset, kueue, kuberay is installed" in result["parts"][0]["detail"]


def test_secure_access_probes_the_node_with_most_free_devices():
    from ansible_collections.k8s_ai.conformance.plugins.modules import secure_accelerator_access as sec

    cluster = lab_cluster()  # gpu-0 has 8 devices, gpu-1 has 6
    for i in range(4):  # another tenant holds 4 devices of gpu-0
        cluster.add("resource.k8s.io/v1", "resourceclaims", {"metadata": {"name": "c%d" % i}, "status": {"allocation": {
            "devices": {"results": [{"driver": "gpu.nvidia.com", "pool": "gpu-0", "device": "gpu-%d" % i}]}}}},
            namespace="team")
    check = Check("secure_accelerator_access", {"timeout": 1}, cluster=cluster)
    sec.accelerators_mediated(check)
    node, in_use = sec.freest_node(check, 2)
    assert node == "gpu-1" and in_use == set()  # 6 free beats 8 - 4 = 4
    try:
        sec.freest_node(check, 7)
        raise AssertionError("expected cannot_run")
    except Exception as exc:  # CannotRun: an error outcome, never a failure of the cluster
        assert exc.__class__.__name__ == "CannotRun" and "no node has 7 free devices" in str(exc)


def test_virtual_device_selector_uses_the_attribute_domain():
    cluster = lab_cluster()
    cluster.add("resource.k8s.io/v1", "resourceslices", {"metadata": {"name": "v"}, "spec": {
        "driver": "gpu.nvidia.com", "nodeName": "gpu-2", "pool": {"name": "gpu-2"},
        "devices": [{"name": "vf-0", "attributes": {"sriov.example.com/virtualFunction": {"bool": True}}}]}})
    check = Check("virtualized_accelerator", {"timeout": 1, "not_applicable_reason": None}, cluster=cluster)
    virtualized_accelerator.virtual_devices_published(check)
    assert check.facts["selector"] == ("gpu.nvidia.com", "sriov.example.com/virtualFunction", True)


def test_secure_access_names_a_device_only_by_a_whole_word():
    from ansible_collections.k8s_ai.conformance.plugins.modules import secure_accelerator_access as sec

    words = {"gpu-1": {"gpu-1", "nvidia1"}, "gpu-10": {"gpu-10"}}
    assert sec.names({"GPU_DEVICE_1=gpu-1"}, {"gpu-1", "gpu-10"}, words) == {"gpu-1"}
    assert sec.names({"GPU_DEVICE_10=gpu-10"}, {"gpu-1", "gpu-10"}, words) == {"gpu-10"}
    assert sec.names({"dev:nvidia1"}, {"gpu-1"}, words) == {"gpu-1"}
    assert sec.names({"dev:nvidia10", "PATH=/bin"}, {"gpu-1"}, words) == set()
