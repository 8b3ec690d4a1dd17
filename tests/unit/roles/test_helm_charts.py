"""The Helm roles against the real charts' values: every version of every chart in the upstream reference data
(../shared/upstream/charts/<chart>/<version>/values.yaml) is packaged with its real values.yaml and Chart.yaml,
served from a file:// mirror with SHA256SUMS, and each role's fetch + values run on it in one ansible-playbook.

What these tests would have caught: a guard refusing keys the chart's templates read (fullnameOverride), the NVIDIA
charts' validation.yaml refusing resources.gpus.enabled without gpuResourcesEnabledOverride, DCGM without
kubernetesDRA, the kubelet plugin without tolerations, GPU metrics attributed to the exporter pod (no honor_labels).
"""

import copy
import os
import re

import pytest
import roleplay as rp

pytestmark = pytest.mark.skipif(
    not os.path.isdir(os.path.join(rp.UPSTREAM, "charts")),
    reason="needs the upstream reference data (%s, or K8S_AI_UPSTREAM_DIR)" % rp.UPSTREAM,
)

# Keys the charts' templates read (prometheus-adapter at the 5.1.0 and 5.3.0 tags: templates/_helpers.tpl reads
# .Values.fullnameOverride and .Values.nameOverride, deployment.yaml .Values.dnsPolicy). 5.1.0's values.yaml lists
# none of them, 5.3.0's lists the first two. The stand-in template below reads exactly these, as the real ones do.
TEMPLATE_READS = {"prometheus-adapter": ["fullnameOverride", "nameOverride", "dnsPolicy"]}
# The version the issue was found with: its values.yaml lacks fullnameOverride.
ADAPTER_WITHOUT_FULLNAME = "5.1.0"
DRA_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: computedomains.resource.nvidia.com
spec:
  group: resource.nvidia.com
  names: {kind: ComputeDomain, plural: computedomains}
  scope: Namespaced
  versions: [{name: v1beta1, served: true, storage: true}]
"""


def stand_in_templates(chart):
    reads = TEMPLATE_READS.get(chart, [])
    text = "".join("{{- if .Values.%s }}{{ .Values.%s }}{{- end }}\n" % (path, path) for path in reads)
    return {"_helpers.tpl": text + "{{ .Values.image.tag | default .Chart.AppVersion }}\n"}


CHARTS = [(chart, version) for chart in rp.CHART_ROLES for version in rp.reference_versions(chart)]


def role_vars(chart, version):
    role = rp.CHART_ROLES[chart][0]
    extra = {role + "_chart_version": version}
    if chart == "dra-driver-nvidia-gpu":
        extra["dra_driver_chart_source"] = "kubernetes-sigs"
    return role, extra


def fetch_values(role, **extra):
    return [rp.include(role, "fetch", **extra), rp.include(role, "values", **extra)]


def key(chart, version, what):
    return "%s-%s-%s" % (what, chart, version)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("helm")
    mirror, out, charts = str(tmp / "mirror"), str(tmp / "out"), str(tmp / "oci")
    os.makedirs(out)
    os.makedirs(charts)
    for chart, version in CHARTS:
        crds = {"resource.nvidia.com_computedomains.yaml": DRA_CRD} if "dra-driver" in chart else None
        archive = rp.reference_chart(chart, version, stand_in_templates(chart), crds)
        rp.publish(mirror, rp.CHART_ROLES[chart][1].format(v=version), archive)
        if chart == "dra-driver-nvidia-gpu":
            with open(os.path.join(charts, "dra-driver-nvidia-gpu-%s.tgz" % version), "wb") as handle:
                handle.write(archive)
    # prometheus-adapter as it would look if its templates did not read fullnameOverride (proves the guard reads them).
    bare = rp.reference_chart("prometheus-adapter", ADAPTER_WITHOUT_FULLNAME)
    bare_url = "file://" + rp.publish(mirror, "bare/prometheus-adapter-bare.tgz", bare)
    oci = {}
    for name in os.listdir(charts):
        with open(os.path.join(charts, name), "rb") as handle:
            oci[name.rsplit("-", 1)[1][: -len(".tgz")]] = rp.sha256(handle.read())
    helm3 = rp.fake_helm(str(tmp / "helm3"), "v3.14.2+g1234567", charts)
    helm4 = rp.fake_helm(str(tmp / "helm4"), "v4.0.3+gabcdef0", charts)
    helm3_unstamped = rp.fake_helm(str(tmp / "helm3-unstamped"), "v3.21", charts)  # go build without -X: major.minor
    helm4_no_list_all = rp.fake_helm(str(tmp / "helm4-no-list-all"), "v4.3.2+g0000000", charts, list_all=False)

    tasks = []
    for chart, version in CHARTS:
        role, extra = role_vars(chart, version)
        tasks.append(
            rp.case(
                out,
                key(chart, version, "render"),
                fetch_values(role, **extra),
                {"values": role + "_chart_values", "chart": role + "_chart"},
            )
        )
        bogus = {"bogus": 1, "image": {"tagg": "1"}, "subchartOnly": True, "subchartTemplateOnly": 1}
        # The chart just fetched is still the role's: only the values step runs again.
        tasks.append(
            rp.case(
                out,
                key(chart, version, "unknown"),
                [rp.include(role, "values", **dict(extra, **{role + "_values": bogus}))],
            )
        )
    old_adapter = {"metrics_adapter_chart_version": ADAPTER_WITHOUT_FULLNAME}
    template_read = {"nameOverride": "x", "dnsPolicy": "ClusterFirst"}
    tasks += [
        rp.case(
            out,
            "adapter-template-read",
            fetch_values("metrics_adapter", metrics_adapter_values=template_read, **old_adapter),
            {"values": "metrics_adapter_chart_values"},
        ),
        rp.case(
            out,
            "adapter-bare-templates",
            fetch_values("metrics_adapter", metrics_adapter_chart_url=bare_url, **old_adapter),
        ),
        rp.case(
            out,
            "dcgm-runtime-class",
            fetch_values("accelerator_metrics", accelerator_metrics_runtime_class_name="nvidia"),
            {"values": "accelerator_metrics_chart_values"},
        ),
        rp.case(
            out,
            "otel-no-scrape",
            fetch_values("otel_collector", otel_collector_scrape_annotated_pods=False),
            {"values": "otel_collector_chart_values"},
        ),
        rp.case(
            out,
            "otel-no-exporter-job",
            fetch_values("otel_collector", otel_collector_accelerator_exporter_pod_labels={}),
            {"values": "otel_collector_chart_values"},
        ),
        rp.case(
            out,
            "dra-gpus-off",
            fetch_values("dra_driver", dra_driver_gpus_enabled=False),
            {"values": "dra_driver_chart_values"},
        ),
    ]
    # The kubernetes-sigs chart from its OCI registry (helm pull), verified afterwards.
    sigs = {"dra_driver_chart_source": "kubernetes-sigs", "dra_driver_mirror_url": "", "dra_driver_helm_binary": helm3}
    sigs_version = sorted(oci)[-1] if oci else "0.4.1"
    pinned = dict(
        sigs,
        dra_driver_chart_checksum="sha256:" + oci.get(sigs_version, ""),
        dra_driver_chart_version=sigs_version,
        dra_driver_download_dir=str(tmp / "oci-pinned"),
    )
    tasks += [
        rp.case(out, "oci-pinned", [rp.include("dra_driver", "fetch", **pinned)], {"chart": "dra_driver_chart"}),
        rp.case(out, "oci-pinned-again", [rp.include("dra_driver", "fetch", **pinned)], {"chart": "dra_driver_chart"}),
        rp.case(
            out,
            "oci-wrong",
            [
                rp.include(
                    "dra_driver",
                    "fetch",
                    dra_driver_chart_checksum="sha256:" + "1" * 64,
                    dra_driver_chart_version=sigs_version,
                    dra_driver_download_dir=str(tmp / "oci-wrong"),
                    **sigs,
                )
            ],
        ),
        rp.case(
            out,
            "oci-unpinned",
            [rp.include("dra_driver", "fetch", dra_driver_download_dir=str(tmp / "oci-none"), **sigs)],
        ),
    ]
    # Helm versions: the OpenTelemetry chart needs Helm 4 from 0.157.2 on.
    preflight = "k8s_ai.conformance.component_common"
    tasks += [
        rp.case(
            out,
            "helm3-for-helm4-chart",
            [
                rp.include(
                    preflight,
                    "helm_preflight",
                    component_common_role="otel_collector",
                    component_common_helm_binary=helm3,
                    component_common_helm_min_version="4.0.0",
                )
            ],
        ),
        rp.case(
            out,
            "helm4-for-helm4-chart",
            [
                rp.include(
                    preflight,
                    "helm_preflight",
                    component_common_role="otel_collector",
                    component_common_helm_binary=helm4,
                    component_common_helm_min_version="4.0.0",
                )
            ],
        ),
        rp.case(
            out,
            "helm3-unstamped",
            [
                rp.include(
                    preflight,
                    "helm_preflight",
                    component_common_role="dra_driver",
                    component_common_helm_binary=helm3_unstamped,
                )
            ],
        ),
        rp.case(
            out,
            "helm4-without-list-all",
            [
                rp.include(
                    preflight,
                    "helm_preflight",
                    component_common_role="dra_driver",
                    component_common_helm_binary=helm4_no_list_all,
                )
            ],
        ),
        rp.case(
            out,
            "no-helm",
            [
                rp.include(
                    preflight,
                    "helm_preflight",
                    component_common_role="otel_collector",
                    component_common_helm_binary=str(tmp / "nohelm"),
                )
            ],
        ),
        rp.case(
            out,
            "otel-helm-min",
            [
                {
                    "ansible.builtin.include_vars": os.path.join(
                        rp.REPO, "roles", "otel_collector", "defaults", "main.yml"
                    )
                },
                {"ansible.builtin.set_fact": {"otel_helm_new": "{{ otel_collector_helm_min_version }}"}},
                {"ansible.builtin.set_fact": {"otel_collector_chart_version": "0.131.0"}},
            ],
            {"new": "otel_helm_new", "old": "otel_collector_helm_min_version"},
        ),
    ]
    result = rp.run(tmp, tasks, {"k8s_ai_mirror_url": "file://" + mirror, "k8s_ai_download_dir": str(tmp / "cache")})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    found = rp.results(out)
    with open(helm3 + ".log") as handle:
        found["_helm3_calls"] = handle.read().splitlines()
    found["_sigs_version"] = sigs_version
    return found


def merged(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def test_reference_data_is_there():
    assert CHARTS, "no reference charts found under %s" % rp.UPSTREAM
    for chart in rp.CHART_ROLES:
        assert rp.reference_versions(chart), chart


@pytest.mark.parametrize("chart,version", CHARTS)
def test_role_values_accepted_by_every_reference_version(world, chart, version):
    res = world[key(chart, version, "render")]
    assert res["ok"], res.get("msg")
    defaults = rp.load(os.path.join(rp.UPSTREAM, "charts", chart, version, "values.yaml"))
    assert res["chart"]["defaults"] == defaults  # the chart's own values.yaml, not the subchart's
    assert "subchartTemplateOnly" not in res["chart"]["template_paths"]
    for path in TEMPLATE_READS.get(chart, []):
        assert path in res["chart"]["template_paths"]


@pytest.mark.parametrize("chart,version", CHARTS)
def test_unknown_values_refused_by_every_reference_version(world, chart, version):
    res = world[key(chart, version, "unknown")]
    assert not res["ok"]
    listed = res["msg"].split("has no value(s) ", 1)[1].split(" (check", 1)[0].split(", ")
    assert sorted(listed) == ["bogus", "image.tagg", "subchartOnly", "subchartTemplateOnly"]
    assert rp.CHART_ROLES[chart][0] + "_values" in res["msg"]


def test_keys_read_by_templates_are_allowed(world):
    assert ADAPTER_WITHOUT_FULLNAME in rp.reference_versions("prometheus-adapter")
    assert "fullnameOverride" not in rp.load(
        os.path.join(rp.UPSTREAM, "charts", "prometheus-adapter", ADAPTER_WITHOUT_FULLNAME, "values.yaml")
    )
    assert world["adapter-template-read"]["ok"], world["adapter-template-read"].get("msg")
    values = world["adapter-template-read"]["values"]
    assert values["fullnameOverride"] == "prometheus-adapter" and values["dnsPolicy"] == "ClusterFirst"


def test_guard_reads_templates_not_a_fixture(world):
    # The same values.yaml without templates reading fullnameOverride: refused, so the allowance comes from them.
    res = world["adapter-bare-templates"]
    assert not res["ok"] and "has no value(s) fullnameOverride" in res["msg"]


def nvidia_chart_validation(values):
    """templates/validation.yaml of nvidia-dra-driver-gpu 25.8.0/25.12.0 and dra-driver-nvidia-gpu 0.4.1: the `fail`s
    that depend on values (the resource API probe needs a cluster)."""
    errors = []
    if values.get("namespace"):
        errors.append("explicit namespace")
    if values["resources"]["gpus"]["enabled"] and not values.get("gpuResourcesEnabledOverride"):
        errors.append("resources.gpus.enabled without gpuResourcesEnabledOverride")
    if values.get("nvidiaCtkPath"):
        errors.append("nvidiaCtkPath")
    webhook = values.get("webhook", {})
    if webhook.get("enabled") and webhook.get("tls", {}).get("mode") not in ("cert-manager", "secret"):
        errors.append("webhook TLS mode")
    return errors


DRA_CHARTS = [(c, v) for c, v in CHARTS if rp.CHART_ROLES[c][0] == "dra_driver"]


@pytest.mark.parametrize("chart,version", DRA_CHARTS)
def test_nvidia_chart_validation_passes(world, chart, version):
    res = world[key(chart, version, "render")]
    values = merged(res["chart"]["defaults"], res["values"])
    assert nvidia_chart_validation(values) == []
    assert values["resources"]["gpus"]["enabled"] is True and values["gpuResourcesEnabledOverride"] is True
    # What the role rendered before: the chart refuses it.
    old = {k: v for k, v in res["values"].items() if k != "gpuResourcesEnabledOverride"}
    assert nvidia_chart_validation(merged(res["chart"]["defaults"], old)) == [
        "resources.gpus.enabled without gpuResourcesEnabledOverride"
    ]


@pytest.mark.parametrize("chart,version", DRA_CHARTS)
def test_dra_kubelet_plugin_tolerates_the_gpu_taint(world, chart, version):
    values = world[key(chart, version, "render")]["values"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in values["kubeletPlugin"][
        "tolerations"
    ]
    assert values["kubeletPlugin"]["nodeSelector"] == {"nvidia.com/dra-kubelet-plugin": "true"}


@pytest.mark.parametrize("chart,version", DRA_CHARTS)
def test_dra_chart_crds_read_for_server_side_apply(world, chart, version):
    crds = world[key(chart, version, "render")]["chart"]["crds"]
    assert [c["metadata"]["name"] for c in crds] == ["computedomains.resource.nvidia.com"]


def test_dra_kubernetes_sigs_chart_keeps_object_names(world):
    for chart, version in DRA_CHARTS:
        values = world[key(chart, version, "render")]["values"]
        if chart == "dra-driver-nvidia-gpu":
            assert values["nameOverride"] == "nvidia-dra-driver-gpu"  # upstream docs/upgrade.md, 25.12 -> 0.4
        else:
            assert "nameOverride" not in values


def test_dra_gpus_off_needs_no_override(world):
    values = world["dra-gpus-off"]["values"]
    assert values["resources"]["gpus"]["enabled"] is False and values["gpuResourcesEnabledOverride"] is False


def test_oci_chart_pulled_and_verified(world):
    res = world["oci-pinned"]
    assert res["ok"], res.get("msg")
    version = world["_sigs_version"]
    pull = (
        "pull oci://registry.k8s.io/dra-driver-nvidia/charts/dra-driver-nvidia-gpu --version %s --destination" % version
    )
    pulls = [c for c in world["_helm3_calls"] if c.startswith(pull) and "/oci-pinned/" in c]
    assert len(pulls) == 1  # the second run finds the verified archive and pulls nothing
    assert world["oci-pinned-again"]["ok"] and world["oci-pinned-again"]["chart"] == res["chart"]
    assert os.path.basename(res["chart"]["path"]) == "dra-driver-nvidia-gpu-%s.tgz" % version
    assert os.path.exists(res["chart"]["path"])
    assert "gpuResourcesEnabledOverride" in res["chart"]["defaults"]


def test_oci_chart_with_wrong_digest_refused(world):
    res = world["oci-wrong"]
    assert not res["ok"] and "pulled by helm" in res["msg"] and "dra_driver_chart_checksum" in res["msg"]


def test_oci_chart_nothing_pins_refused(world):
    res = world["oci-unpinned"]
    assert not res["ok"]
    assert not [c for c in world["_helm3_calls"] if "/oci-none/" in c]  # refused before any pull
    assert (
        "nothing pins the checksum of oci://registry.k8s.io/dra-driver-nvidia/charts/dra-driver-nvidia-gpu"
        in res["msg"]
    )
    assert "set dra_driver_chart_checksum: sha256:<hex>" in res["msg"]


DCGM = [(c, v) for c, v in CHARTS if c == "dcgm-exporter"]


@pytest.mark.parametrize("chart,version", DCGM)
def test_dcgm_kubernetes_dra_on_where_the_chart_has_it(world, chart, version):
    res = world[key(chart, version, "render")]
    if "kubernetesDRA" in res["chart"]["defaults"]:
        assert res["values"]["kubernetesDRA"] == {"enabled": True}
    else:
        assert "kubernetesDRA" not in res["values"]
    assert "runtimeClassName" not in res["values"]
    assert res["values"]["serviceMonitor"] == {"enabled": False}
    assert res["values"]["podAnnotations"]["prometheus.io/scrape"] == "true"


def test_dcgm_runtime_class(world):
    assert world["dcgm-runtime-class"]["values"]["runtimeClassName"] == "nvidia"


def test_helm_version_required(world):
    assert "needs Helm >= 4.0.0" in world["helm3-for-helm4-chart"]["msg"]
    assert "v3.14.2" in world["helm3-for-helm4-chart"]["msg"]
    assert world["helm4-for-helm4-chart"]["ok"]
    assert "needs the helm binary" in world["no-helm"]["msg"]
    # kubernetes.core.helm 6.2.0 runs `helm list --all` (refused by Helm 4.3.2 on the lab): named before the install
    assert "removed `helm list --all`" in world["helm4-without-list-all"]["msg"]
    assert "dra_driver_helm_binary to a Helm 3" in world["helm4-without-list-all"]["msg"]
    assert world["helm3-unstamped"]["ok"]  # "v3.21" is 3.21.0, not "of unknown version"
    assert world["otel-helm-min"] == {"ok": True, "new": "4.0.0", "old": "3.9.0"}


# ---------------------------------------------------------------- honor_labels, with Prometheus' relabel semantics


def _prom_regex(text):
    return re.compile("^(?:%s)$" % text.replace("$$", "$"))


def _prom_replacement(text):
    return re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", text.replace("$$", "$"))


def relabel(labels, configs):
    labels = dict(labels)
    for config in configs:
        action = config.get("action", "replace")
        regex = _prom_regex(config.get("regex", "(.*)"))
        value = config.get("separator", ";").join(labels.get(s, "") for s in config.get("source_labels", []))
        if action == "keep" and not regex.match(value):
            return None
        if action == "drop" and regex.match(value):
            return None
        if action == "replace":
            match = regex.match(value)
            if match:
                labels[config["target_label"]] = match.expand(_prom_replacement(config.get("replacement", "$1")))
        if action == "labelmap":
            for name in list(labels):
                if regex.match(name):
                    labels[regex.sub(_prom_replacement(config.get("replacement", "$1")), name)] = labels[name]
    return {k: v for k, v in labels.items() if not k.startswith("__")}


def scrape(target_labels, series, honor):
    """Prometheus' label merge: honor_labels keeps the scraped value; else the target's wins, the scraped one
    becomes exported_<name>."""
    out = dict(series)
    for name, value in target_labels.items():
        if name in out and out[name] != value:
            if honor:
                continue
            out["exported_" + name] = out[name]
        out[name] = value
    return out


def meta(namespace, pod, node, labels, port):
    out = {
        "__address__": "10.0.0.5:%s" % port,
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_pod_name": pod,
        "__meta_kubernetes_pod_node_name": node,
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
        "__meta_kubernetes_pod_annotation_prometheus_io_port": str(port),
    }
    out.update({"__meta_kubernetes_pod_label_" + re.sub("[^a-zA-Z0-9_]", "_", k): v for k, v in labels.items()})
    return out


def test_gpu_metrics_attributed_to_the_pod_using_the_gpu(world):
    version = rp.defaults("otel_collector")["otel_collector_chart_version"]
    values = world[key("opentelemetry-collector", version, "render")]["values"]
    jobs = {j["job_name"]: j for j in values["config"]["receivers"]["prometheus"]["config"]["scrape_configs"]}
    assert jobs["accelerator-exporters"]["honor_labels"] is True
    assert not jobs["kubernetes-pods"].get("honor_labels", False)
    dcgm = meta(
        "gpu-monitoring",
        "dcgm-exporter-x7",
        "gpu-node-0",
        {"app.kubernetes.io/name": "dcgm-exporter", "app.kubernetes.io/instance": "dcgm-exporter"},
        9400,
    )
    vllm = meta("team-a", "vllm-0", "gpu-node-0", {"app.kubernetes.io/name": "vllm"}, 8000)
    targets = {
        name: {t: relabel(m, job["relabel_configs"]) for t, m in (("dcgm", dcgm), ("vllm", vllm))}
        for name, job in jobs.items()
    }
    assert (
        targets["kubernetes-pods"]["dcgm"] is None and targets["accelerator-exporters"]["vllm"] is None
    )  # scraped once
    exporter = targets["accelerator-exporters"]["dcgm"]
    used = scrape(exporter, {"gpu": "0", "pod": "trainer-0", "namespace": "team-a", "container": "main"}, True)
    assert (used["pod"], used["namespace"]) == ("trainer-0", "team-a") and "exported_pod" not in used
    assert (used["exporter_pod"], used["node"]) == ("dcgm-exporter-x7", "gpu-node-0")
    idle = scrape(exporter, {"gpu": "1"}, True)
    assert "pod" not in idle and "namespace" not in idle  # an idle GPU is nobody's, not the exporter pod's
    served = scrape(targets["kubernetes-pods"]["vllm"], {"model_name": "m"}, False)
    assert (served["pod"], served["namespace"]) == ("vllm-0", "team-a")
    # The single job the role had before: the exporter pod's labels win and the consumer becomes exported_pod.
    before = scrape(
        relabel(dcgm, [c for c in jobs["kubernetes-pods"]["relabel_configs"] if c.get("action") != "drop"]),
        {"gpu": "0", "pod": "trainer-0", "namespace": "team-a"},
        False,
    )
    assert before["pod"] == "dcgm-exporter-x7" and before["exported_pod"] == "trainer-0"


def _otel_default(world):
    return world[
        key("opentelemetry-collector", rp.defaults("otel_collector")["otel_collector_chart_version"], "render")
    ]["values"]


def test_otel_collector_config(world):
    values = _otel_default(world)
    config = values["config"]
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    jobs = config["receivers"]["prometheus"]["config"]["scrape_configs"]
    assert [j["job_name"] for j in jobs] == ["kubernetes-pods", "accelerator-exporters"]
    for job in jobs:
        assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
        assert {
            "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
            "action": "keep",
            "regex": "true",
        } in job["relabel_configs"]
        assert "$$1:$$2" in [r.get("replacement") for r in job["relabel_configs"]]
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["receivers"] == ["otlp"]
    assert pipelines["metrics"]["receivers"] == ["otlp", "prometheus"]
    assert pipelines["metrics"]["exporters"] == ["debug"] and "debug" in config["exporters"]
    assert values["mode"] == "deployment" and values["image"]["repository"] == "otel/opentelemetry-collector-k8s"


def test_otel_collector_without_scraping_has_no_prometheus_receiver(world):
    config = world["otel-no-scrape"]["values"]["config"]
    assert "prometheus" not in config["receivers"]
    assert config["service"]["pipelines"]["metrics"]["receivers"] == ["otlp"]
    jobs = world["otel-no-exporter-job"]["values"]["config"]["receivers"]["prometheus"]["config"]["scrape_configs"]
    assert [j["job_name"] for j in jobs] == ["kubernetes-pods"]
    assert not [r for r in jobs[0]["relabel_configs"] if r.get("action") == "drop"]


def test_otel_readme_exporters_exist_in_the_image():
    # otelcol-k8s (the default image) ships debug, nop, otlp, otlphttp, file, loadbalancing and otelarrow exporters
    # (opentelemetry-collector-releases distributions/otelcol-k8s/manifest.yaml) - no prometheusremotewrite.
    shipped = {"debug", "nop", "otlp", "otlphttp", "file", "loadbalancing", "otelarrow"}
    examples = 0
    for path in ("roles/otel_collector/README.md", "docs/site.md"):
        with open(os.path.join(rp.REPO, path)) as handle:
            lines = handle.read().splitlines()
        for number, line in enumerate(lines):
            if line.strip() != "otel_collector_exporters:":
                continue
            entries = []
            for following in lines[number + 1 :]:
                if not following.strip() or following.lstrip().startswith("#"):
                    continue
                indent = len(following) - len(following.lstrip())
                if indent <= len(line) - len(line.lstrip()):
                    break
                entries.append((indent, following.strip().split(":", 1)[0].split("/", 1)[0]))
            names = {name for indent, name in entries if indent == entries[0][0]}
            assert names and names <= shipped, (path, names - shipped)
            examples += 1
    assert examples == 2


def test_metrics_adapter_values(world):
    version = rp.defaults("metrics_adapter")["metrics_adapter_chart_version"]
    values = world[key("prometheus-adapter", version, "render")]["values"]
    assert "gpu_utilization" in [r["name"]["as"] for r in values["rules"]["custom"]]
    assert values["prometheus"]["url"].startswith("http") and values["fullnameOverride"] == "prometheus-adapter"
