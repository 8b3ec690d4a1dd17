"""The monitoring role offline: the manifests it renders (its own, no chart), its variable checks, and check mode
changing nothing. On the lab the same role runs for real (tests/integration/checks/test_monitoring.py)."""

import os

import pytest
import roleplay as rp
import yaml

REPO = rp.REPO


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return rp.render_cases(tmp_path_factory.mktemp("monitoring"), "monitoring", "render", "monitoring_manifests", {
        "default": {},
        "lab": {"monitoring_node_selector": {"lab.k8s-ai-conformance.io/real-node": "true"},
                "monitoring_scrape_interval": "5s", "monitoring_pod_namespaces": ["team-a", "team-b"],
                "monitoring_extra_cluster_rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}],
                "monitoring_extra_scrape_configs": [{"job_name": "extra", "static_configs": [{"targets": ["x:1"]}]}]},
        "own-job-name": {"monitoring_extra_scrape_configs": [{"job_name": "kubernetes-pods"}]},
        "bad-state": {"monitoring_state": "gone"},
        "bad-selector": {"monitoring_node_selector": ["not", "a", "mapping"]},
    }, check_cases=2)


def by_kind(objects):
    return {o["kind"]: o for o in objects}


def config(objects):
    return yaml.safe_load(by_kind(objects)["ConfigMap"]["data"]["prometheus.yml"])


def test_objects_and_the_address_metrics_adapter_expects(rendered):
    objects = by_kind(rendered["default"]["objects"])
    assert sorted(objects) == ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Service",
                               "ServiceAccount"]
    adapter = rp.defaults("metrics_adapter")
    svc = objects["Service"]
    assert adapter["metrics_adapter_prometheus_url"] == "http://%s.%s.svc" % (
        svc["metadata"]["name"], svc["metadata"]["namespace"])
    assert svc["spec"]["ports"][0]["port"] == adapter["metrics_adapter_prometheus_port"]
    assert svc["spec"]["ports"][0]["targetPort"] == "web"
    pod_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"] and set(svc["spec"]["selector"].items()) <= set(pod_labels.items())


def test_cluster_role_is_least_privilege(rendered):
    objects = by_kind(rendered["default"]["objects"])
    assert objects["ClusterRole"]["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                                                "verbs": ["get", "list", "watch"]}]
    binding = objects["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == objects["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": objects["ServiceAccount"]["metadata"]["name"],
                                    "namespace": "observability"}]
    lab = by_kind(rendered["lab"]["objects"])["ClusterRole"]["rules"]
    assert lab[1] == {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}


def test_pods_job_keeps_only_annotated_pods(rendered):
    jobs = {j["job_name"]: j for j in config(rendered["default"]["objects"])["scrape_configs"]}
    assert sorted(jobs) == ["kubernetes-pods", "prometheus"]
    pods = jobs["kubernetes-pods"]
    assert pods["kubernetes_sd_configs"] == [{"role": "pod"}]
    keep = [r for r in pods["relabel_configs"] if r.get("action") == "keep"]
    assert keep == [{"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "action": "keep",
                     "regex": "true"}]
    targets = {r.get("target_label"): r for r in pods["relabel_configs"]}
    assert targets["__metrics_path__"]["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_path"]
    assert targets["__address__"]["source_labels"][0] == "__meta_kubernetes_pod_annotation_prometheus_io_port"
    assert targets["__scheme__"]["regex"] == "(https?)" and targets["__metrics_path__"]["regex"] == "(.+)"
    assert {"namespace", "pod", "node"} <= set(targets)


def test_lab_variables_reach_the_manifests(rendered):
    objects = by_kind(rendered["lab"]["objects"])
    cfg = config(rendered["lab"]["objects"])
    assert cfg["global"]["scrape_interval"] == "5s"
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert jobs["kubernetes-pods"]["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["team-a",
                                                                                                         "team-b"]}}]
    assert jobs["extra"] == {"job_name": "extra", "static_configs": [{"targets": ["x:1"]}]}
    spec = objects["Deployment"]["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"lab.k8s-ai-conformance.io/real-node": "true"}
    assert spec["containers"][0]["image"] == "quay.io/prometheus/prometheus:v3.16.0"
    assert objects["Deployment"]["spec"]["replicas"] == 1  # an int, not the text of a template


def test_a_changed_configuration_rolls_the_pod(rendered):
    def digest(name):
        return by_kind(rendered[name]["objects"])["Deployment"]["spec"]["template"]["metadata"]["annotations"][
            "k8s-ai-conformance/config-sha256"]
    assert len(digest("default")) == 64 and digest("default") != digest("lab")


@pytest.mark.parametrize("case", ["own-job-name", "bad-state", "bad-selector"])
def test_bad_variables_are_refused_naming_them(rendered, case):
    assert not rendered[case]["ok"] and "monitoring: invalid variables" in rendered[case]["msg"]


def test_check_mode_changes_nothing(rendered):
    result = rendered["_check"]
    assert result.returncode == 0, result.stdout[-3000:]
    line = [text for text in result.stdout.splitlines() if text.startswith("localhost")][-1]
    assert dict(part.split("=") for part in line.split(":", 1)[1].split())["changed"] == "0", result.stdout[-3000:]


def test_role_variables_prefixed_and_mirrored():
    defaults = rp.defaults("monitoring")
    specs = rp.load(os.path.join(REPO, "roles", "monitoring", "meta", "argument_specs.yml"))["argument_specs"]["main"][
        "options"]
    assert [k for k in defaults if not k.startswith("monitoring_")] == []
    assert set(defaults) == set(specs)
    for name, spec in specs.items():
        if "default" in spec:
            assert spec["default"] == defaults[name], name
