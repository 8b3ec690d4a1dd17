"""robust_controller on KubeRay: verdicts on a fake API whose "operator" reconciles RayClusters and whose "webhook"
refuses duplicate worker group names (as KubeRay v1.5.0's does), or does not."""

from checkfake import Fake, add_crds, detail, outcome, run

from ansible_collections.k8s_ai.conformance.plugins.modules import robust_controller

RAY = {"ray.io/v1": [("rayclusters", "RayCluster", True)]}
KUEUE_SERVICE = {"namespace": "kueue-system", "name": "kueue-webhook-service"}
DENIED = ('admission webhook "vraycluster.kb.io" denied the request: RayCluster.ray.io "invalid" is invalid: '
          'spec.workerGroupSpecs[1]: Invalid value: "workers": worker group names must be unique')


def kuberay_cluster(webhook=True, reconciles=True, kueue=True):
    fake = Fake(RAY)
    add_crds(fake, ["rayclusters.ray.io"])
    if kueue:  # Kueue's webhooks for the kinds it queues carry the operators' webhook names, and a Ready pod
        kueue_labels = {"control-plane": "controller-manager"}
        fake.add("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", {
            "metadata": {"name": "kueue-validating-webhook-configuration"}, "webhooks": [
                {"name": "vclusterqueue.kb.io", "clientConfig": {"service": KUEUE_SERVICE},
                 "rules": [{"apiGroups": ["kueue.x-k8s.io"], "resources": ["clusterqueues"]}]},
                {"name": "vraycluster.kb.io", "clientConfig": {"service": KUEUE_SERVICE},
                 "rules": [{"apiGroups": ["ray.io"], "resources": ["rayclusters"]}]}]})
        fake.add("v1", "services", {"metadata": {"name": "kueue-webhook-service"},
                                    "spec": {"selector": kueue_labels}}, namespace="kueue-system")
        fake.add("v1", "pods", {"metadata": {"name": "kueue-1", "labels": kueue_labels},
                                "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                 namespace="kueue-system")
    labels = {"app.kubernetes.io/name": "kuberay", "app.kubernetes.io/component": "kuberay-operator"}
    if webhook:
        fake.add("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", {
            "metadata": {"name": "ray-system-kuberay-validating-webhook"}, "webhooks": [{
                "name": "vraycluster.kb.io", "clientConfig": {"service": {"namespace": "ray-system",
                                                                           "name": "kuberay-webhook"}},
                "rules": [{"apiGroups": ["ray.io"], "resources": ["rayclusters"]}]}]})
        fake.add("v1", "services", {"metadata": {"name": "kuberay-webhook"}, "spec": {"selector": labels}},
                 namespace="ray-system")
        fake.add("v1", "pods", {"metadata": {"name": "kuberay-operator-1", "labels": labels},
                                "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                 namespace="ray-system")

    def create(method, path, query, body):
        if not path.endswith("/rayclusters"):
            return None
        groups = [g["groupName"] for g in body["spec"].get("workerGroupSpecs") or []]
        if webhook and len(groups) != len(set(groups)):
            return 422, {"kind": "Status", "reason": "Invalid", "message": DENIED}
        if "dryRun" in query:
            return 201, body
        namespace, name = path.split("/")[5], body["metadata"]["name"]
        if reconciles:  # what the operator makes of it
            cluster_labels = {"ray.io/cluster": name, "ray.io/node-type": "head"}
            fake.add("v1", "pods", {"metadata": {"name": name + "-head-x", "labels": cluster_labels}}, namespace)
            fake.add("v1", "services", {"metadata": {"name": name + "-head-svc", "labels": cluster_labels}}, namespace)
        return None  # stored by the fake API
    fake.route("POST", "/apis/ray.io/v1/namespaces/", create)
    return fake


def test_kuberay_with_its_webhook_and_reconciliation_is_implemented():
    result = run(robust_controller, kuberay_cluster(), operators=["kuberay"])
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "head Pod valid-head-x and Service valid-head-svc" in detail(result, "accepted and reconciled")
    assert "webhook vraycluster.kb.io served by 1/1 Ready pods" in detail(result, "validating webhook registered")
    assert "must be unique" in detail(result, "rejected by the webhook")


def test_kuberay_without_its_webhook_is_not_implemented():
    result = run(robust_controller, kuberay_cluster(webhook=False), operators=["kuberay"])
    assert outcome(result, "validating webhook registered") == "failed"  # Kueue's for RayClusters is not KubeRay's
    assert "only Kueue's for the kinds it queues: kueue-validating-webhook-configuration" in detail(
        result, "validating webhook registered")
    assert outcome(result, "rejected by the webhook") == "failed"
    assert "accepted an invalid RayCluster" in detail(result, "rejected by the webhook")
    assert result["status"] != "Implemented"


def test_kuberay_that_reconciles_nothing_is_not_implemented():
    result = run(robust_controller, kuberay_cluster(reconciles=False), operators=["kuberay"])
    assert outcome(result, "accepted and reconciled") == "failed"
    assert result["status"] != "Implemented"


def test_the_working_operator_carries_the_verdict():
    # JobSet and Kueue absent: KubeRay, the one present, is the one whose parts are required
    result = run(robust_controller, kuberay_cluster())
    assert detail(result, "CRDs are Established").endswith("installed: kuberay")
    assert all(p["required"] for p in result["parts"][1:]) and result["status"] == "Implemented"
