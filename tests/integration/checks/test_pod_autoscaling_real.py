"""pod_autoscaling on the lab's real nodes with the real pipeline: Prometheus 3.16.0 (roles/monitoring), prometheus-
adapter 0.12.0 (roles/metrics_adapter, install: manifests; both built from their Go modules) serving
custom.metrics.k8s.io, and the HPA controller of the lab's kube-controller-manager 1.35.4. llm-d's vLLM simulator
pods (claiming a device of the real nodes' DRA driver) are scaled up under real load and back down on
vllm:num_requests_waiting. The control can fail the verdict: with the adapter stopped the check is Not Implemented.
Needs `make lab` with real nodes (the images are built by it)."""

import importlib
import json

import pytest

from .test_monitoring import LAB_VARS, run_role
from .test_more_checks import assert_cleaned_up, part, run

# importable once test_more_checks has put the collection on the path
pod_autoscaling = importlib.import_module("ansible_collections.k8s_ai.conformance.plugins.modules.pod_autoscaling")

REAL = {"lab.k8s-ai-conformance.io/real-node": "true"}
ADAPTER_VARS = {"metrics_adapter_install": "manifests", "metrics_adapter_metrics_relist_interval": "10s",
                "metrics_adapter_node_selector": REAL, "metrics_adapter_wait_timeout": 180}
APISERVICE = "v1beta1.custom.metrics.k8s.io"
OPTIONS = {"command_node_selector": REAL, "device_class": "gpu.example.com", "timeout": 120, "scale_timeout": 240}


@pytest.fixture(scope="module")
def adapter(lab_kubeconfig, kubectl):
    """The site's Prometheus and prometheus-adapter, as make demo's site.yml installs them."""
    code, _counts, out = run_role("monitoring", dict(LAB_VARS, monitoring_kubeconfig=lab_kubeconfig))
    assert code == 0, out
    code, counts, out = run_role("metrics_adapter", dict(ADAPTER_VARS, metrics_adapter_kubeconfig=lab_kubeconfig))
    assert code == 0, out
    yield counts
    # metrics_adapter_state: absent removes what it installed (and later tests meet no adapter, as on a fresh lab)
    code, _counts, out = run_role("metrics_adapter", dict(ADAPTER_VARS, metrics_adapter_kubeconfig=lab_kubeconfig,
                                                          metrics_adapter_state="absent"))
    assert code == 0, out
    assert kubectl.run("get", "apiservice", APISERVICE, check=False).returncode != 0
    assert not kubectl.json("get", "deployments", "-n", "observability", "-l",
                            "app.kubernetes.io/name=prometheus-adapter")["items"]


def test_adapter_role_serves_custom_metrics_from_a_real_node_idempotently(adapter, lab_kubeconfig, kubectl):
    again, counts, out = run_role("metrics_adapter", dict(ADAPTER_VARS, metrics_adapter_kubeconfig=lab_kubeconfig))
    assert again == 0 and counts.get("changed") == "0", out
    checked, counts, out = run_role("metrics_adapter", dict(ADAPTER_VARS, metrics_adapter_kubeconfig=lab_kubeconfig),
                                    check=True)
    assert checked == 0 and counts.get("changed") == "0", out
    pods = kubectl.json("get", "pods", "-n", "observability", "-l", "app.kubernetes.io/name=prometheus-adapter")
    running = [p for p in pods["items"] if p["status"].get("phase") == "Running"]
    assert running and all(p["spec"]["nodeName"].startswith("real-node-") for p in running), pods["items"]
    served = json.loads(kubectl.run("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta1").stdout)
    assert served["groupVersion"] == "custom.metrics.k8s.io/v1beta1", served


def test_hpa_scales_inference_pods_up_and_down_through_the_real_adapter(adapter, lab_kubeconfig, kubectl):
    result = run(pod_autoscaling, lab_kubeconfig, **OPTIONS)
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    positive = part(result, "up under load and back down")["detail"]
    assert "-> 2 replicas" in positive and "-> 1 replica" in positive, positive
    assert "each pod holds a gpu.example.com device" in positive, positive
    negative = part(result, "does not exist")["detail"]
    assert negative.startswith("ScalingActive=False, FailedGetPodsMetric"), negative
    assert_cleaned_up(kubectl, result)


def test_without_the_adapter_running_pod_autoscaling_is_not_implemented(adapter, lab_kubeconfig, kubectl):
    kubectl.run("scale", "deployment", "prometheus-adapter", "-n", "observability", "--replicas=0")
    try:
        kubectl.run("wait", "--for=condition=Available=false", "apiservice/" + APISERVICE, "--timeout=120s")
        result = run(pod_autoscaling, lab_kubeconfig, **OPTIONS)
        assert result["status"] == "Not Implemented", result["parts"]
        assert part(result, "custom metrics API Available")["outcome"] == "failed", result["parts"]
    finally:
        kubectl.run("scale", "deployment", "prometheus-adapter", "-n", "observability", "--replicas=1")
        kubectl.run("wait", "--for=condition=Available", "apiservice/" + APISERVICE, "--timeout=180s")
