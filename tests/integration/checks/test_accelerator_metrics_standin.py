"""accelerator_metrics on the lab's real nodes against the lab's accelerator metrics STAND-IN (tests/lab/
metrics_standin.py: OUR exporter with the DCGM exporter's metric and label names, no GPU measured), which `make lab`
runs as a DaemonSet on the real nodes. What this proves: the check discovers an exporter it was not told about, reads
every exporter pod through the API server, finds per-device utilisation and memory for every device the node's DRA
driver advertises, and sees a device's series follow the pod that holds it. It does NOT prove that any real exporter
measures a GPU. The control can fail the verdict: with the exporter gone the check is Not Implemented."""

import json
import os
import sys

import pytest

from .test_more_checks import accelerator_metrics, assert_cleaned_up, part, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lab"))
import lab  # noqa: E402  (tests/lab)
import metrics_standin  # noqa: E402

NAMESPACE, NAME = metrics_standin.NAMESPACE, metrics_standin.NAME
NOWHERE = "lab.k8s-ai-conformance.io/no-such-node"
OPTIONS = {"command_node_selector": {"lab.k8s-ai-conformance.io/real-node": "true"}, "timeout": 90}


@pytest.fixture
def standin(kubectl):
    found = kubectl.run("get", "daemonset", NAME, "-n", NAMESPACE, check=False)
    if found.returncode != 0:
        pytest.skip("the lab runs no accelerator metrics stand-in (no real nodes)")
    kubectl.run("rollout", "status", "daemonset/" + NAME, "-n", NAMESPACE, "--timeout=120s")
    return "%s/%s:9400" % (NAMESPACE, NAME)


def test_accelerator_metrics_discovers_and_reads_the_standin_on_every_real_node(standin, lab_kubeconfig, kubectl):
    result = run(accelerator_metrics, lab_kubeconfig, **OPTIONS)
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert standin.split(":")[0] in part(result, "exporter is found")["detail"], result["parts"]
    per_device = part(result, "for every accelerator")["detail"]
    assert "DCGM_FI_DEV_GPU_UTIL" in per_device and "DCGM_FI_DEV_FB_USED" in per_device, per_device
    assert part(result, "follow a pod that holds it")["outcome"] == "passed", result["parts"]
    assert part(result, "more accelerators than the cluster advertises")["outcome"] == "passed", result["parts"]
    assert_cleaned_up(kubectl, result)


def test_without_the_exporter_accelerator_metrics_is_not_implemented(standin, lab_kubeconfig, kubectl):
    nowhere = {"spec": {"template": {"spec": {"nodeSelector": {NOWHERE: "true"}}}}}
    kubectl.run("patch", "daemonset", NAME, "-n", NAMESPACE, "--type=merge", "-p", json.dumps(nowhere))
    kubectl.run("delete", "service", NAME, "-n", NAMESPACE)
    try:
        kubectl.run("wait", "--for=delete", "pod", "-l", "app.kubernetes.io/name=" + NAME, "-n", NAMESPACE,
                    "--timeout=120s")
        result = run(accelerator_metrics, lab_kubeconfig, **OPTIONS)
        assert result["status"] == "Not Implemented", result["parts"]
        assert part(result, "exporter is found")["outcome"] == "failed", result["parts"]
    finally:
        back = [{"op": "remove", "path": "/spec/template/spec/nodeSelector/" + NOWHERE.replace("/", "~1")}]
        kubectl.run("patch", "daemonset", NAME, "-n", NAMESPACE, "--type=json", "-p", json.dumps(back))
        kubectl.apply([obj for _path, obj in metrics_standin.objects(lab) if obj["kind"] == "Service"])
        kubectl.run("rollout", "status", "daemonset/" + NAME, "-n", NAMESPACE, "--timeout=120s")
