"""otel_collector_install: manifests, offline: the objects the role owns for the collector (no chart, no Helm), with
the config the chart values carry. On the lab they run for real (tests/integration/checks/test_otel_collector.py)."""

import pytest
import roleplay as rp
import yaml


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return rp.render_cases(tmp_path_factory.mktemp("otel"), "otel_collector", "manifests_render",
                           "otel_collector_manifests", {
                               "default": {},
                               "daemonset": {"otel_collector_mode": "daemonset",
                                             "otel_collector_node_selector": {"gpu": "true"},
                                             "otel_collector_values": {"config": {"service": {
                                                 "extensions": ["pprof"]}}}}})


def kinds(objects):
    out = {}
    for obj in objects:
        out.setdefault(obj["kind"], []).append(obj)
    return out


def pod_spec(objects, kind="Deployment"):
    return kinds(objects)[kind][0]["spec"]["template"]["spec"]


def test_the_collector_runs_the_charts_config_plus_its_health_check(rendered):
    objects = kinds(rendered["default"]["objects"])
    config = yaml.safe_load(objects["ConfigMap"][0]["data"]["relay"])
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "${env:MY_POD_IP}:4318"
    traces = config["service"]["pipelines"]["traces"]
    assert traces == {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"], "exporters": ["debug"]}
    assert config["service"]["extensions"] == ["health_check"]
    assert config["extensions"]["health_check"]["endpoint"] == "${env:MY_POD_IP}:13133"
    # the same scrape jobs as the chart mode (tests/unit/roles/test_helm_charts.py reads them from the chart values)
    jobs = [j["job_name"] for j in config["receivers"]["prometheus"]["config"]["scrape_configs"]]
    assert jobs == ["kubernetes-pods", "accelerator-exporters"]


def test_workload_image_probes_and_service(rendered):
    objects = kinds(rendered["default"]["objects"])
    deployment = objects["Deployment"][0]
    assert deployment["spec"]["replicas"] == 1
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"] == "otel/opentelemetry-collector-k8s:0.158.0"
    assert container["args"] == ["--config=/conf/relay.yaml"]
    assert container["env"] == [{"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    assert container["readinessProbe"]["httpGet"]["port"] == 13133
    assert container["resources"]["limits"]["memory"] == "512Mi"  # memory_limiter's percentages need a limit
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert deployment["spec"]["template"]["metadata"]["annotations"]["k8s-ai-conformance/config-sha256"]
    ports = {p["name"]: p["port"] for p in objects["Service"][0]["spec"]["ports"]}
    assert ports == {"otlp": 4317, "otlp-http": 4318}  # what otel_tracing discovers (4318 / otlp-http)
    binding = objects["ClusterRoleBinding"][0]
    assert binding["subjects"][0]["name"] == objects["ServiceAccount"][0]["metadata"]["name"]
    assert binding["roleRef"]["name"] == objects["ClusterRole"][0]["metadata"]["name"]
    assert {"apiGroups": [""], "resources": ["pods", "nodes", "services", "endpoints", "namespaces"],
            "verbs": ["get", "list", "watch"]} in objects["ClusterRole"][0]["rules"]


def test_daemonset_mode_keeps_the_users_extensions(rendered):
    objects = rendered["daemonset"]["objects"]
    assert "Deployment" not in kinds(objects)
    daemonset = kinds(objects)["DaemonSet"][0]
    assert "replicas" not in daemonset["spec"]
    assert pod_spec(objects, "DaemonSet")["nodeSelector"] == {"gpu": "true"}
    config = yaml.safe_load(kinds(objects)["ConfigMap"][0]["data"]["relay"])
    assert config["service"]["extensions"] == ["pprof", "health_check"]
