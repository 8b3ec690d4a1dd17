"""metrics_adapter_install: manifests, offline: the objects the role owns for prometheus-adapter (no chart, no Helm).
On the lab they run for real (tests/integration/checks/test_monitoring.py, pod_autoscaling)."""


import pytest
import roleplay as rp
import yaml


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    external = [{"seriesQuery": "queue_depth", "metricsQuery": "sum(<<.Series>>)"}]
    return rp.render_cases(tmp_path_factory.mktemp("adapter"), "metrics_adapter", "manifests_render",
                           "metrics_adapter_manifests", {
                               "default": {},
                               "external": {"metrics_adapter_external_rules": external,
                                            "metrics_adapter_metrics_relist_interval": "10s"}})


def kinds(objects):
    out = {}
    for obj in objects:
        out.setdefault(obj["kind"], []).append(obj)
    return out


def test_adapter_reads_the_monitoring_roles_prometheus(rendered):
    objects = kinds(rendered["default"]["objects"])
    args = objects["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]["args"]
    monitoring = rp.defaults("monitoring")
    assert "--prometheus-url=http://%s.%s.svc:%s" % (monitoring["monitoring_name"], monitoring["monitoring_namespace"],
                                                     monitoring["monitoring_service_port"]) in args
    image = objects["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.k8s.io/prometheus-adapter/prometheus-adapter:v0.12.0"
    config = yaml.safe_load(objects["ConfigMap"][0]["data"]["config.yaml"])
    assert [r["name"]["as"] for r in config["rules"]] == ["gpu_utilization", "vllm_num_requests_${1}"]
    assert config["externalRules"] == []


def test_api_services_and_rbac(rendered):
    objects = kinds(rendered["default"]["objects"])
    assert [a["metadata"]["name"] for a in objects["APIService"]] == ["v1beta1.custom.metrics.k8s.io"]
    svc = objects["APIService"][0]["spec"]["service"]
    assert (svc["name"], svc["namespace"], svc["port"]) == ("prometheus-adapter", "observability", 443)
    roles = {b["roleRef"]["name"] for b in objects["ClusterRoleBinding"]}
    assert "system:auth-delegator" in roles
    assert objects["RoleBinding"][0]["metadata"]["namespace"] == "kube-system"
    assert objects["RoleBinding"][0]["roleRef"]["name"] == "extension-apiserver-authentication-reader"
    assert rendered["default"]["objects"][-1]["kind"] == "APIService"  # removed first (reverse order)
    external = kinds(rendered["external"]["objects"])
    names = [a["metadata"]["name"] for a in external["APIService"]]
    assert names == ["v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io"]
    args = external["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--metrics-relist-interval=10s" in args
