"""dra_driver's "any other DRA driver by chart" path with a real Helm: the dra_driver role installs the DRA example
driver's own chart (v0.4.0, packaged by helm from its Go module into the lab mirror) through kubernetes.core.helm
and helm v3 built from its Go module (tests/lab/helm_chart.py). The chart's kubelet plugin DaemonSet runs on the
real nodes from the image the chart names (the lab's build under its upstream name), under its own driver name
(helm.example.com, beside the lab's own gpu.example.com plugin), and publishes ResourceSlices; dra_support then
proves allocation on that driver (a pod gets a device through the chart's DeviceClass). A second run changes
nothing; dra_driver_state: absent removes the release, its plugin and its slices.
Needs `make lab` with real nodes."""

import importlib
import json
import subprocess
import time

import pytest

from ..conftest import serve_for_real_nodes
from .test_monitoring import run_role
from .test_more_checks import part, run

dra_support = importlib.import_module("ansible_collections.k8s_ai.conformance.plugins.modules.dra_support")

REAL = {"lab.k8s-ai-conformance.io/real-node": "true"}
DRIVER = "helm.example.com"
NAMESPACE = "it-dra-example-driver"


def role_vars(built, lab_kubeconfig, **extra):
    out = {"dra_driver_kubeconfig": lab_kubeconfig, "dra_driver_helm_binary": built["helm"],
           "dra_driver_chart_ref": built["chart_url"], "dra_driver_chart_version": "0.4.0",
           "dra_driver_release_name": "it-dra-example", "dra_driver_namespace": NAMESPACE,
           "dra_driver_driver_name": DRIVER, "dra_driver_device_classes": [DRIVER],
           "dra_driver_gpu_node_selector": "lab.k8s-ai-conformance.io/real-node=true",
           "dra_driver_node_labels": {}, "dra_driver_wait_timeout": 240,
           "dra_driver_values": {"driverName": DRIVER,
                                 "kubeletPlugin": {"numDevices": 2, "nodeSelector": REAL,
                                                   # 51515 and 8080 are taken by the lab's own plugin's node
                                                   "containers": {"plugin": {"healthcheckPort": 51516,
                                                                             "metricsPort": 0}}}}}
    out.update(extra)
    return out


@pytest.fixture(scope="module")
def built(lab):
    return serve_for_real_nodes(lab, "helm_chart.py", "the chart's kubelet plugin cannot run")


@pytest.fixture(scope="module")
def installed(built, lab_kubeconfig, kubectl):
    started = time.time()
    code, counts, out = run_role("dra_driver", role_vars(built, lab_kubeconfig))
    seconds = round(time.time() - started, 1)
    try:
        yield {"code": code, "counts": counts, "out": out, "seconds": seconds}
    finally:
        gone, _counts, out_absent = run_role("dra_driver", role_vars(built, lab_kubeconfig,
                                                                     dra_driver_state="absent"))
        left = json.loads(subprocess.run([built["helm"], "list", "-n", NAMESPACE, "-o", "json", "--kubeconfig",
                                          kubectl.kubeconfig], capture_output=True, text=True, check=True).stdout)
        daemonsets = kubectl.json("get", "daemonsets", "-n", NAMESPACE)["items"]
        slices_left = slices(kubectl)
        kubectl.run("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", check=False)
        assert gone == 0, out_absent
        assert left == [] and daemonsets == [], (left, [d["metadata"]["name"] for d in daemonsets])
        assert slices_left == [], [s["metadata"]["name"] for s in slices_left]


def slices(kubectl):
    return [s for s in kubectl.json("get", "resourceslices")["items"] if s["spec"]["driver"] == DRIVER]


def test_the_role_installs_the_chart_with_a_real_helm(installed, built, kubectl):
    assert installed["code"] == 0, installed["out"]
    listed = json.loads(subprocess.run([built["helm"], "list", "-n", NAMESPACE, "-o", "json", "--kubeconfig",
                                        kubectl.kubeconfig], capture_output=True, text=True, check=True).stdout)
    assert [(r["name"], r["status"], r["chart"]) for r in listed] == [("it-dra-example", "deployed",
                                                                      "dra-example-driver-0.4.0")], listed
    pods = kubectl.json("get", "pods", "-n", NAMESPACE)["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running"]
    assert len(running) == 2 and all(p["spec"]["nodeName"].startswith("real-node-") for p in running), pods
    assert {p["spec"]["containers"][0]["image"] for p in running} == {built["image"]}
    published = slices(kubectl)
    assert sorted(s["spec"]["nodeName"] for s in published) == ["real-node-0", "real-node-1"], published
    assert all(len(s["spec"]["devices"]) == 2 for s in published), published
    print("\ndra_driver role with the chart: %s s" % installed["seconds"])


def test_dra_support_allocates_a_device_of_the_chart_installed_driver(installed, lab_kubeconfig):
    assert installed["code"] == 0, installed["out"]
    result = run(dra_support, lab_kubeconfig, device_class=DRIVER, command_node_selector=REAL)
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert DRIVER in json.dumps(result["evidence"])
    assert part(result, "gets a device and is scheduled")["outcome"] == "passed", result["parts"]


def test_a_second_run_changes_nothing(installed, built, lab_kubeconfig):
    again, counts, out = run_role("dra_driver", role_vars(built, lab_kubeconfig))
    assert again == 0 and counts.get("changed") == "0", out
