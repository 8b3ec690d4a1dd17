"""site.yml as `make demo` runs it (the lab's inventory), with the opt-in KubeRay switched on as well: it converges,
every Deployment and DaemonSet it manages is Available with real running pods on the lab's real nodes, a second
run and a check-mode run change nothing, and `<role>_state: absent` removes what those roles installed. At the end
the lab is converged again as the demo leaves it (KubeRay off). Kueue and JobSet are the lab's own as well (`make
lab` installs them and its tests rely on them): their absent path is not run here. Not here: accelerator_metrics
(DCGM's chart needs a GPU; the lab runs its own stand-in exporter), dra_driver's chart install (the lab runs the DRA
example driver itself; its chart path: test_dra_chart.py), gVisor (molecule `nodes`). Needs `make lab` with real
nodes. While KubeRay runs, robust_controller proves it under the verifier's least-privilege ClusterRole (a token of
its ServiceAccount, writes only in ai-conformance-probe-* namespaces)."""

import importlib
import json
import os
import uuid

import pytest
import yaml

from ..conftest import ROOT, run_site, serve_for_real_nodes
from .test_more_checks import assert_cleaned_up, run

robust_controller = importlib.import_module("ansible_collections.k8s_ai.conformance.plugins.modules.robust_controller")
CLUSTERROLE = os.path.join(ROOT, "roles", "verify", "files", "verifier-clusterrole.yaml")

REAL_LABEL = "lab.k8s-ai-conformance.io/real-node"
KUBERAY = {"kuberay_enabled": True, "kuberay_node_selector": {REAL_LABEL: "true"}, "kuberay_wait_timeout": 240}
# What site.yml runs on the lab, by namespace: the roles' own workloads (Envoy's per-Gateway Deployments come and go
# with Gateways, none exists here).
WORKLOADS = {
    "envoy-gateway-system": {"Deployment/envoy-gateway"},
    "jobset-system": {"Deployment/jobset-controller-manager"},
    "kueue-system": {"Deployment/kueue-controller-manager"},
    "ray-system": {"Deployment/kuberay-operator"},
    "observability": {"Deployment/otel-collector", "Deployment/prometheus-server", "Deployment/prometheus-adapter"},
}
REMOVABLE = ("gateway_api", "kuberay", "otel_collector", "monitoring", "metrics_adapter")


@pytest.fixture(scope="module")
def converged(lab):
    serve_for_real_nodes(lab, "kuberay.py", "KubeRay's operator cannot run")  # its image and CRDs (mirror)
    code, counts, out = run_site(extra=KUBERAY)
    assert code == 0, out
    try:
        yield counts
    finally:
        # as `make demo` leaves the lab: the inventory's components, KubeRay off (and its CRDs gone)
        run_site("--tags", "kuberay", extra=dict(KUBERAY, kuberay_state="absent", kuberay_remove_crds=True))
        code, _counts, out = run_site()
        assert code == 0, out


def managed(kubectl, namespace):
    found = {}
    for kind in ("Deployment", "DaemonSet"):
        proc = kubectl.run("get", kind.lower() + "s", "-n", namespace, "-o", "json", check=False)
        for item in json.loads(proc.stdout)["items"] if proc.returncode == 0 else []:
            found["%s/%s" % (kind, item["metadata"]["name"])] = item
    return found


def real_nodes(kubectl):
    return {n["metadata"]["name"] for n in kubectl.json("get", "nodes", "-l", REAL_LABEL + "=true")["items"]}


def test_every_workload_is_available_with_real_running_pods(converged, kubectl):
    reals = real_nodes(kubectl)
    assert reals, "the lab has no real nodes"
    for namespace, expected in WORKLOADS.items():
        found = managed(kubectl, namespace)
        assert set(found) == expected, (namespace, sorted(found))
        for name, workload in found.items():
            status = workload.get("status") or {}
            if name.startswith("Deployment/"):
                wanted = workload["spec"].get("replicas", 1)
                assert wanted >= 1 and status.get("readyReplicas") == wanted, (name, status)
                assert [c for c in status.get("conditions") or [] if c["type"] == "Available"
                        and c["status"] == "True"], (name, status)
            else:
                assert status.get("numberReady") == status.get("desiredNumberScheduled") >= 1, (name, status)
            selector = ",".join("%s=%s" % kv for kv in workload["spec"]["selector"]["matchLabels"].items())
            pods = kubectl.json("get", "pods", "-n", namespace, "-l", selector)["items"]
            running = [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get(
                "deletionTimestamp")]
            assert running, (name, [p["status"].get("phase") for p in pods])
            for pod in running:
                assert pod["spec"]["nodeName"] in reals, (name, pod["spec"]["nodeName"])  # kwok runs no container
                statuses = pod["status"].get("containerStatuses") or []
                assert statuses and all(s["ready"] and s.get("imageID") and s.get("containerID")
                                        for s in statuses), (name, statuses)


def test_robust_controller_proves_kuberay_under_the_least_privilege_clusterrole(
        converged, kubectl, lab_kubeconfig, tmp_path):
    with open(CLUSTERROLE) as handle:
        kubectl.run("apply", "-f", "-", input=handle.read())
    token = kubectl.run("-n", "ai-conformance", "create", "token", "ai-conformance-verifier",
                        "--duration=1h").stdout.strip()
    with open(lab_kubeconfig) as handle:
        cluster = dict(yaml.safe_load(handle)["clusters"][0]["cluster"])  # server and CA only: not the admin's keys
    kubeconfig = tmp_path / "verifier.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "verifier",
        "clusters": [{"name": "lab", "cluster": cluster}], "users": [{"name": "verifier", "user": {"token": token}}],
        "contexts": [{"name": "verifier", "context": {"cluster": "lab", "user": "verifier"}}]}))
    result = run(robust_controller, str(kubeconfig), operators=["kuberay"], timeout=120,
                 probe_namespace_prefix="ai-conformance-probe-lp%s" % uuid.uuid4().hex[:4])
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    for part in result["parts"]:
        detail = str(part.get("detail", ""))
        assert not ("cannot" in detail and "system:serviceaccount:ai-conformance" in detail), part  # no RBAC denial
        assert "ai-conformance-verifier-probe-scope" not in detail, part  # nor the probe-scope policy's
    assert token not in json.dumps(result)
    assert_cleaned_up(kubectl, result)


def test_a_second_run_and_check_mode_change_nothing(converged):
    code, counts, out = run_site(extra=KUBERAY)
    assert code == 0 and counts.get("changed") == "0", (counts, out)
    code, counts, out = run_site("--check", extra=KUBERAY)
    assert code == 0 and counts.get("changed") == "0", (counts, out)


def test_absent_removes_what_the_roles_installed(converged, kubectl):
    extra = dict(KUBERAY, kuberay_remove_crds=True, **{role + "_state": "absent" for role in REMOVABLE})
    code, counts, out = run_site("--tags", ",".join(REMOVABLE), extra=extra)
    assert code == 0 and int(counts.get("changed", 0)) > 0, (counts, out)
    for namespace in ("envoy-gateway-system", "ray-system", "observability"):
        assert managed(kubectl, namespace) == {}, (namespace, sorted(managed(kubectl, namespace)))
    assert kubectl.run("get", "crd", "rayclusters.ray.io", check=False).returncode != 0
    assert kubectl.run("get", "gatewayclass", "ai-gateway", check=False).returncode != 0
    apis = kubectl.run("get", "apiservices", "-o", "name").stdout
    assert "v1beta1.custom.metrics.k8s.io" not in apis, apis
    # the lab's own Kueue and JobSet are left as they were
    for namespace in ("kueue-system", "jobset-system"):
        assert set(managed(kubectl, namespace)) == WORKLOADS[namespace]
