"""cluster_autoscaling against the real cluster-autoscaler (1.33.0, kwok cloud provider, tests/lab/autoscaler.py).

The module installs the autoscaler into the running lab (its binary built from the upstream Go module, its image
under the upstream name), lets the check run as verify runs it on the lab (tests/lab/autoscaler.check_options),
and removes the autoscaler and every node it added afterwards, so no other test meets it. Asserted: the scale-up
is the autoscaler's own (its TriggeredScaleUp naming the lab's node group, or the node of that group it added,
whichever the check sees first), the oversized pod is refused by it
(NotTriggerScaleUp), and the node it added goes away once the probe pod is deleted. Control: with the autoscaler
scaled to zero, the same check cannot pass its scale-up part, so the positive depends on the autoscaler.
"""

import importlib
import os
import subprocess
import sys

import pytest

from .test_more_checks import ROOT, assert_cleaned_up, part, run  # links the collection

cluster_autoscaling = importlib.import_module("ansible_collections.k8s_ai.conformance.plugins.modules."
                                              "cluster_autoscaling")
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
autoscaler = importlib.import_module("autoscaler")  # tests/lab/autoscaler.py: its names, the lab's check options

SCRIPT = os.path.join(ROOT, "tests", "lab", "autoscaler.py")


def _autoscaler(action):
    proc = subprocess.run([sys.executable, SCRIPT, action], cwd=ROOT, capture_output=True, text=True, timeout=1800,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def real_autoscaler(lab):
    _autoscaler("install")
    yield autoscaler
    _autoscaler("uninstall")


@pytest.fixture(scope="module")
def result(real_autoscaler, lab_kubeconfig, kubectl):
    found = run(cluster_autoscaling, lab_kubeconfig, **real_autoscaler.check_options())
    assert_cleaned_up(kubectl, found)
    return found


def test_the_real_autoscaler_scales_a_gpu_node_group_up_and_back_down(result):
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    up = part(result, "triggers a scale-up")["detail"]
    # seen either as the autoscaler's TriggeredScaleUp event (naming the group) or as the new node, first wins
    assert "TriggeredScaleUp" in up and autoscaler.NODE_GROUP in up or "triggered a scale-up (a new node)" in up, up
    refused = part(result, "triggers no scale-up")["detail"]
    assert "NotTriggerScaleUp" in refused, refused
    down = part(result, "removed once the pod is gone")
    assert down["outcome"] == "passed" and autoscaler.NODE_GROUP in down["detail"], down


def test_no_node_of_the_group_is_left(result, kubectl):
    nodes = kubectl.json("get", "nodes", "-l", "%s=%s" % (autoscaler.GROUP_LABEL, autoscaler.NODE_GROUP))["items"]
    assert [n["metadata"]["name"] for n in nodes] == []


def test_without_a_running_autoscaler_the_scale_up_is_not_seen(result, real_autoscaler, lab_kubeconfig, kubectl):
    deployment = "deployment/%s" % real_autoscaler.NAME
    kubectl.run("scale", "-n", real_autoscaler.NAMESPACE, deployment, "--replicas=0")
    try:
        kubectl.run("wait", "-n", real_autoscaler.NAMESPACE, "--for=delete", "pod", "-l",
                    "app.kubernetes.io/name=%s" % real_autoscaler.NAME, "--timeout=60s", check=False)
        stopped = run(cluster_autoscaling, lab_kubeconfig, **dict(real_autoscaler.check_options(),
                                                                  scale_up_timeout=30, probe_scale_down=False))
        assert part(stopped, "triggers a scale-up")["outcome"] != "passed", stopped["parts"]
        assert stopped["status"] != "Implemented"
        assert_cleaned_up(kubectl, stopped)
    finally:
        kubectl.run("scale", "-n", real_autoscaler.NAMESPACE, deployment, "--replicas=1")
