"""Offline tests of the component roles (no cluster): variables, artifact fetching, templating.

The roles' cluster-facing tasks are exercised on the lab (molecule/lab); here each role's offline task files
(fetch, render, values) run through ansible-playbook against a throw-away file:// mirror, and the results are
dumped to JSON and asserted on.
"""

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLES = ("kueue", "jobset", "gateway_api", "dra_driver", "otel_collector", "accelerator_metrics", "metrics_adapter")
HELM_ROLES = ("dra_driver", "otel_collector", "accelerator_metrics", "metrics_adapter")
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

KUEUE_CONFIG = textwrap.dedent("""\
    apiVersion: config.kueue.x-k8s.io/v1beta2
    kind: Configuration
    health:
      healthProbeBindAddress: :8081
    webhook:
      port: 9443
    integrations:
      frameworks:
      - "batch/job"
    """)


def _load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize("role", ROLES)
def test_defaults_prefixed_and_mirrored_in_argument_specs(role):
    defaults = _load(os.path.join(REPO, "roles", role, "defaults", "main.yml"))
    specs = _load(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml"))["argument_specs"]["main"]["options"]
    assert [k for k in defaults if not k.startswith(role + "_")] == []
    assert set(defaults) == set(specs)
    for name, spec in specs.items():
        assert set(spec) <= {"type", "default", "choices", "description", "elements", "required", "options"}, name
        assert spec.get("description"), name
        if "default" in spec:
            assert spec["default"] == defaults[name], name
    for required in ("enabled", "state"):
        assert role + "_" + required in defaults
    assert role + "_mirror_url" in defaults


@pytest.mark.parametrize("role", ROLES)
def test_every_download_is_checksummed(role):
    tasks_dir = os.path.join(REPO, "roles", role, "tasks")
    for filename in os.listdir(tasks_dir):
        for task in _load(os.path.join(tasks_dir, filename)) or []:
            nested = [t for b in task.get("block", []) for t in b.get("block", [])]
            for inner in [task] + task.get("block", []) + nested:
                if "ansible.builtin.get_url" in inner:
                    assert "checksum" in inner["ansible.builtin.get_url"], (role, filename, inner.get("name"))


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _publish(root, rel, data, checksum=True):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    if checksum:
        with open(path + ".sha256", "w") as handle:
            handle.write("%s  %s\n" % (_sha256(data), os.path.basename(path)))


def _chart(name, values):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, content in (
            ("Chart.yaml", "apiVersion: v2\nname: %s\nversion: 1.0.0\n" % name),
            ("values.yaml", yaml.safe_dump(values)),
            ("charts/sub/values.yaml", "sub: true\n"),
        ):
            data = content.encode()
            info = tarfile.TarInfo("%s/%s" % (name, member))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


KUEUE_IMAGE = "registry.k8s.io/kueue/kueue:v0.19.1"
KUEUE_MANIFEST = yaml.safe_dump_all(
    [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kueue-system"}},
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "clusterqueues.kueue.x-k8s.io"},
            "spec": {"group": "kueue.x-k8s.io", "versions": [{"name": "v1beta2"}]},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kueue-manager-config", "namespace": "kueue-system"},
            "data": {"controller_manager_config.yaml": KUEUE_CONFIG},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "kueue-controller-manager", "namespace": "kueue-system"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "manager", "image": KUEUE_IMAGE}]}}},
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "kueue-validating-webhook-configuration"},
        },
    ]
).encode()

CHART_VALUES = {
    "dra_driver": {
        "nvidiaDriverRoot": "/",
        "resources": {"gpus": {"enabled": True}, "computeDomains": {"enabled": True}},
        "kubeletPlugin": {"nodeSelector": {}, "tolerations": []},
        "image": {"tag": ""},
    },
    "otel_collector": {
        "mode": "",
        "fullnameOverride": "",
        "image": {"repository": ""},
        "replicaCount": 1,
        "clusterRole": {"create": False, "rules": []},
        "config": {"receivers": {}},
        "ports": {},
    },
    "accelerator_metrics": {
        "serviceMonitor": {"enabled": True},
        "nodeSelector": {},
        "tolerations": [],
        "service": {"annotations": {}, "port": 9400},
        "podAnnotations": {},
        "image": {"tag": "x"},
    },
    "metrics_adapter": {
        "fullnameOverride": "",
        "prometheus": {"url": "", "port": 9090, "path": ""},
        "rules": {"default": True, "custom": [], "external": []},
    },
}
CHART_PATHS = {
    "dra_driver": "helm.ngc.nvidia.com/nvidia/charts/nvidia-dra-driver-gpu-25.8.0.tgz",
    "otel_collector": "github.com/open-telemetry/opentelemetry-helm-charts/releases/download/"
    "opentelemetry-collector-0.131.0/opentelemetry-collector-0.131.0.tgz",
    "accelerator_metrics": "nvidia.github.io/dcgm-exporter/helm-charts/dcgm-exporter-4.4.1.tgz",
    "metrics_adapter": "github.com/prometheus-community/helm-charts/releases/download/prometheus-adapter-5.1.0/"
    "prometheus-adapter-5.1.0.tgz",
}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("mirror"))
    _publish(root, "github.com/kubernetes-sigs/kueue/releases/download/v0.19.1/manifests.yaml", KUEUE_MANIFEST)
    for role, rel in CHART_PATHS.items():
        _publish(root, rel, _chart(os.path.basename(rel).rsplit("-", 1)[0], CHART_VALUES[role]))
    # A chart published without its checksum file.
    _publish(root, "nochecksum/chart-1.0.0.tgz", _chart("chart", {"a": 1}), checksum=False)
    return root


def _run(tmp_path, mirror, tasks, extra_vars=None):
    playbook = tmp_path / "play.yml"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": dict(
                {
                    "k8s_ai_mirror_url": "file://" + mirror,
                    "k8s_ai_download_dir": str(tmp_path / "cache"),
                    "out": str(tmp_path / "out"),
                },
                **(extra_vars or {}),
            ),
            "tasks": tasks,
        }
    ]
    playbook.write_text(yaml.safe_dump(play))
    (tmp_path / "out").mkdir(exist_ok=True)
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=os.path.join(REPO, "roles"),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=300,
        check=False,
    )


def _include(role, tasks_from, **extra):
    task = {"ansible.builtin.include_role": {"name": role, "tasks_from": tasks_from}}
    if extra:
        task["vars"] = extra
    return task


def _dump(name, expression):
    return {
        "ansible.builtin.copy": {
            "content": "{{ %s | to_json }}" % expression,
            "dest": "{{ out }}/%s.json" % name,
            "mode": "0644",
        }
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, mirror):
    """One ansible-playbook run rendering every role's offline parts; returns the dumped facts."""
    tmp_path = tmp_path_factory.mktemp("render")
    tasks = [
        _include("kueue", "fetch"),
        _include("kueue", "render"),
        _dump("kueue_config", "kueue_config"),
        _dump("kueue_objects", "kueue_objects"),
        _dump("kueue_queues", "kueue_queue_objects"),
        _dump("kueue_crds", "kueue_crds"),
        _include("kueue", "render", kueue_wait_for_pods_ready_timeout="10m"),
        _dump("kueue_objects_changed", "kueue_objects"),
    ]
    for role in HELM_ROLES:
        tasks += [_include(role, "fetch"), _include(role, "values"), _dump(role, role + "_chart_values")]
    result = _run(tmp_path, mirror, tasks)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    out = tmp_path / "out"
    return {p.stem: json.loads(p.read_text()) for p in out.iterdir()}


def test_kueue_configuration(rendered):
    config = rendered["kueue_config"]
    assert config["health"] == {"healthProbeBindAddress": ":8081"}  # release defaults kept
    assert "jobset.x-k8s.io/jobset" in config["integrations"]["frameworks"]
    assert config["waitForPodsReady"]["blockAdmission"] is True
    assert config["waitForPodsReady"]["timeout"] == "5m"
    mapping = {"name": "nvidia.com/gpu", "deviceClassNames": ["gpu.nvidia.com"]}
    assert config["resources"]["deviceClassMappings"] == [mapping]


def test_kueue_objects_carry_config_and_its_hash(rendered):
    objects = rendered["kueue_objects"]
    assert not [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    assert objects[0]["kind"] == "Namespace"
    configmap = next(o for o in objects if o["kind"] == "ConfigMap")
    text = configmap["data"]["controller_manager_config.yaml"]
    assert yaml.safe_load(text) == rendered["kueue_config"]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    annotation = deployment["spec"]["template"]["metadata"]["annotations"]["k8s-ai.io/config-sha256"]
    assert annotation == hashlib.sha256(text.encode()).hexdigest()
    changed = next(o for o in rendered["kueue_objects_changed"] if o["kind"] == "Deployment")
    assert changed["spec"]["template"]["metadata"]["annotations"]["k8s-ai.io/config-sha256"] != annotation
    assert [c["metadata"]["name"] for c in rendered["kueue_crds"]] == ["clusterqueues.kueue.x-k8s.io"]


def test_kueue_gpu_queues(rendered):
    queues = {(o["kind"], o["metadata"]["name"]): o for o in rendered["kueue_queues"]}
    cq = queues[("ClusterQueue", "ai-cluster-queue")]
    group = cq["spec"]["resourceGroups"][0]
    assert group["coveredResources"] == ["cpu", "memory", "nvidia.com/gpu"]
    assert {r["name"]: r["nominalQuota"] for r in group["flavors"][0]["resources"]} == {
        "cpu": "64",
        "memory": "256Gi",
        "nvidia.com/gpu": "8",
    }
    assert queues[("LocalQueue", "ai-queue")]["spec"]["clusterQueue"] == "ai-cluster-queue"
    assert ("ResourceFlavor", "default-flavor") in queues
    assert [o["kind"] for o in rendered["kueue_queues"]] == ["ResourceFlavor", "ClusterQueue", "LocalQueue"]


def test_otel_collector_config(rendered):
    values = rendered["otel_collector"]
    config = values["config"]
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    job = config["receivers"]["prometheus"]["config"]["scrape_configs"][0]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    keep = job["relabel_configs"][0]
    assert keep == {
        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
        "action": "keep",
        "regex": "true",
    }
    assert "$$1:$$2" in [r.get("replacement") for r in job["relabel_configs"]]
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["receivers"] == ["otlp"]
    assert pipelines["metrics"]["receivers"] == ["otlp", "prometheus"]
    assert pipelines["metrics"]["exporters"] == ["debug"] and "debug" in config["exporters"]
    assert values["mode"] == "deployment" and values["image"]["repository"]


def test_accelerator_metrics_values(rendered):
    values = rendered["accelerator_metrics"]
    assert values["service"]["annotations"]["prometheus.io/scrape"] == "true"
    assert values["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert values["serviceMonitor"]["enabled"] is False


def test_metrics_adapter_values(rendered):
    values = rendered["metrics_adapter"]
    names = [r["name"]["as"] for r in values["rules"]["custom"]]
    assert "gpu_utilization" in names
    assert values["prometheus"]["url"].startswith("http")


def test_dra_driver_values(rendered):
    values = rendered["dra_driver"]
    assert values["kubeletPlugin"]["nodeSelector"] == {"nvidia.com/dra-kubelet-plugin": "true"}
    assert values["resources"]["gpus"]["enabled"] is True


def test_unknown_chart_value_is_refused(tmp_path, mirror):
    tasks = [_include("accelerator_metrics", "fetch"), _include("accelerator_metrics", "values")]
    values = {"image": {"tagg": "1"}, "bogus": 1, "nodeSelector": {"free": "form"}}
    result = _run(tmp_path, mirror, tasks, {"accelerator_metrics_values": values})
    assert result.returncode != 0
    assert "has no value(s) bogus, image.tagg" in result.stdout


def test_mirror_without_checksum_is_refused(tmp_path, mirror):
    url = "file://%s/nochecksum/chart-1.0.0.tgz" % mirror
    result = _run(tmp_path, mirror, [_include("accelerator_metrics", "fetch")], {"accelerator_metrics_chart_url": url})
    assert result.returncode != 0
    assert "must serve the chart and its checksum" in result.stdout


def test_checksum_mismatch_is_refused(tmp_path, mirror):
    result = _run(tmp_path, mirror, [_include("kueue", "fetch")], {"kueue_manifest_checksum": "sha256:" + "0" * 64})
    assert result.returncode != 0
    assert "verified by checksum" in result.stdout


def test_site_runs_every_role_behind_its_switch_and_tag():
    play = _load(os.path.join(REPO, "playbooks", "site.yml"))[0]
    seen = []
    for task in play["tasks"]:
        role = task["ansible.builtin.include_role"]["name"].rsplit(".", 1)[-1]
        seen.append(role)
        assert task["tags"] == [role]
        assert task["ansible.builtin.include_role"]["apply"] == {"tags": [role]}
        assert task["when"].startswith(role + "_enabled ")
    assert sorted(seen) == sorted(ROLES)
    assert seen.index("jobset") < seen.index("kueue")  # Kueue starts with the JobSet CRD present


def test_otel_collector_without_scraping_has_no_prometheus_receiver(tmp_path, mirror):
    tasks = [
        _include("otel_collector", "fetch"),
        _include("otel_collector", "values"),
        _dump("values", "otel_collector_chart_values"),
    ]
    result = _run(tmp_path, mirror, tasks, {"otel_collector_scrape_annotated_pods": False})
    assert result.returncode == 0, result.stdout[-3000:]
    config = json.loads((tmp_path / "out" / "values.json").read_text())["config"]
    assert "prometheus" not in config["receivers"]
    assert config["service"]["pipelines"]["metrics"]["receivers"] == ["otlp"]
