"""The kuberay role and robust_controller on a complex AI operator, KubeRay, on the lab's real nodes: the role applies
the release's CRDs (fetched from the lab's mirror, checksum verified) and runs the operator (tests/lab/kuberay.py: the
upstream ray-operator module v1.5.0, under quay.io/kuberay/operator) with its RayCluster webhook and a certificate
it made; robust_controller proves the webhook and the reconciliation (a RayCluster gets its head Pod and Service), and
a RayCluster whose worker groups share a name is refused by the webhook. A second run changes nothing. The control:
the same operator without its webhook - the same check then finds no webhook and sees the invalid RayCluster
accepted. Needs `make lab` with real nodes."""

import importlib
import os
import tempfile
import time

import pytest
import yaml

from ..conftest import LAB, ROOT, image_ids, serve_for_real_nodes
from .test_monitoring import run_role
from .test_more_checks import assert_cleaned_up, part, run

robust_controller = importlib.import_module("ansible_collections.k8s_ai.conformance.plugins.modules.robust_controller")

REAL = {"lab.k8s-ai-conformance.io/real-node": "true"}
NAMESPACE = "it-ray-system"
DOWNLOADS = tempfile.mkdtemp(prefix="it-kuberay-downloads-")


def role_vars(built, lab_kubeconfig, **extra):
    # the CRDs' URL is the role's own default under the mirror (the lab serves them where kuberay.py put them)
    out = {"kuberay_kubeconfig": lab_kubeconfig, "kuberay_namespace": NAMESPACE,
           "kuberay_mirror_url": built["mirror_url"], "kuberay_download_dir": str(DOWNLOADS),
           "kuberay_node_selector": REAL, "kuberay_wait_timeout": 240}
    out.update(extra)
    return out


@pytest.fixture(scope="module")
def built(lab):
    return serve_for_real_nodes(lab, "kuberay.py", "the operator cannot run")


def operator_pods(kubectl):
    return kubectl.json("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=kuberay-operator")["items"]


def test_check_mode_on_a_cluster_without_kuberay_changes_nothing(built, lab_kubeconfig, kubectl):
    """Runs first (before `installed`): check mode reports what it would do and leaves the cluster as it was."""
    code, counts, out = run_role("kuberay", role_vars(built, lab_kubeconfig), check=True)
    assert code == 0, out
    assert kubectl.run("get", "crd", "rayclusters.ray.io", check=False).returncode != 0
    assert kubectl.run("get", "namespace", NAMESPACE, check=False).returncode != 0


@pytest.fixture(scope="module")
def installed(built, lab_kubeconfig, kubectl):
    started = time.time()
    code, counts, out = run_role("kuberay", role_vars(built, lab_kubeconfig))
    seconds = round(time.time() - started, 1)
    try:
        yield {"code": code, "counts": counts, "out": out, "seconds": seconds}
    finally:
        gone, _counts, out_absent = run_role("kuberay", role_vars(built, lab_kubeconfig, kuberay_state="absent",
                                                                  kuberay_remove_crds=True))
        left = kubectl.run("get", "deployments,services,secrets,serviceaccounts", "-n", NAMESPACE, "-o", "name",
                           "-l", "app.kubernetes.io/name=kuberay", check=False).stdout.split()
        crds = kubectl.run("get", "crd", "rayclusters.ray.io", "-o", "name", check=False).stdout.split()
        kubectl.run("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", check=False)
        assert gone == 0, out_absent
        assert left == [] and crds == [], (left, crds)


def test_the_role_runs_the_operator_with_its_webhook(installed, built, kubectl):
    assert installed["code"] == 0, installed["out"]
    pods = [p for p in operator_pods(kubectl) if p["status"].get("phase") == "Running"]
    assert len(pods) == 1 and pods[0]["spec"]["nodeName"].startswith("real-node-"), pods
    ids = image_ids(os.path.join(LAB, "images-on-demand", "kuberay-operator.tar"))
    assert built["digest"] == ids[0]
    assert pods[0]["status"]["containerStatuses"][0]["imageID"].endswith(ids), ids  # the lab's build
    for crd in ("rayclusters.ray.io", "rayjobs.ray.io", "rayservices.ray.io"):
        assert kubectl.json("get", "crd", crd)["status"]["acceptedNames"]["kind"].startswith("Ray")
    hook = kubectl.json("get", "validatingwebhookconfiguration", NAMESPACE + "-kuberay-validating-webhook")
    assert [w["name"] for w in hook["webhooks"]] == ["vraycluster.kb.io"]
    assert hook["webhooks"][0]["clientConfig"]["caBundle"], hook  # the CA of the certificate the role made
    print("\nkuberay role: %s s" % installed["seconds"])


def test_robust_controller_proves_kuberay(installed, lab_kubeconfig, kubectl):
    assert installed["code"] == 0, installed["out"]
    result = run(robust_controller, lab_kubeconfig, operators=["kuberay"])
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "Ready pods" in part(result, "kuberay: validating webhook registered")["detail"]
    reconciled = part(result, "kuberay: a valid custom resource is accepted and reconciled")
    assert reconciled["outcome"] == "passed" and "head Pod" in reconciled["detail"], reconciled
    refused = part(result, "kuberay: an invalid custom resource is rejected by the webhook")
    assert refused["outcome"] == "passed", refused
    # the webhook's own rule: worker group names must be unique (its message then quotes the whole group)
    assert 'admission webhook "vraycluster.kb.io" denied the request' in refused["detail"], refused
    assert "spec.workerGroupSpecs[1]: Invalid value" in refused["detail"], refused
    assert_cleaned_up(kubectl, result)


def test_a_second_run_changes_nothing(installed, built, lab_kubeconfig):
    again, counts, out = run_role("kuberay", role_vars(built, lab_kubeconfig))
    assert again == 0 and counts.get("changed") == "0", out  # the certificate Secret is kept, not made anew
    checked, counts, out = run_role("kuberay", role_vars(built, lab_kubeconfig), check=True)
    assert checked == 0 and counts.get("changed") == "0", out


def test_without_its_webhook_the_invalid_raycluster_is_accepted(installed, built, lab_kubeconfig, kubectl):
    """The control: the same operator, its webhook removed by the role (kuberay_webhook_enabled=false)."""
    code, _counts, out = run_role("kuberay", role_vars(built, lab_kubeconfig, kuberay_webhook_enabled=False,
                                                       kuberay_state="absent"))
    assert code == 0, out
    code, _counts, out = run_role("kuberay", role_vars(built, lab_kubeconfig, kuberay_webhook_enabled=False))
    assert code == 0, out
    result = run(robust_controller, lab_kubeconfig, operators=["kuberay"])
    assert result["status"] != "Implemented", result["parts"]
    webhook = part(result, "kuberay: validating webhook registered")
    assert webhook["outcome"] == "failed", result["parts"]
    # the lab's Kueue registers a webhook for RayClusters too (named vraycluster.kb.io as KubeRay's): not counted
    assert "only Kueue's for the kinds it queues" in webhook["detail"], webhook
    refused = part(result, "kuberay: an invalid custom resource is rejected by the webhook")
    assert refused["outcome"] == "failed" and "accepted an invalid RayCluster" in refused["detail"], refused
    assert part(result, "kuberay: a valid custom resource is accepted and reconciled")["outcome"] == "passed"
    assert_cleaned_up(kubectl, result)


def test_the_roles_pins_are_the_release_files(built, lab):
    """The role's pinned SHA-256 (used without a mirror) are those of the module's own CRD files, which the lab
    serves: the mirror's SHA256SUMS (made by tests/lab/kuberay.py from the module) lists the same digests."""
    with open(os.path.join(ROOT, "roles", "kuberay", "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    pins = defaults["kuberay_crd_checksums"][built["version"]]
    sums = os.path.join(ROOT, ".lab", "mirror", built["crd_base_url"].split(built["mirror_url"] + "/", 1)[1],
                        "SHA256SUMS")
    with open(sums) as handle:
        served = dict(reversed(line.split()) for line in handle if line.strip())
    assert served == pins
