"""Offline tests of the component roles (no cluster): variables, the shared role shape, checksum resolution,
artifact fetching and templating.

The roles' cluster-facing tasks are exercised on the lab (molecule/lab); here each role's offline task files
(fetch, render, values) run through one ansible-playbook against a throw-away file:// mirror laid out as
tests/lab/mirror/build.py lays out the lab's (a SHA256SUMS per directory, no <file>.sha256 read), and the results
are dumped to JSON and asserted on. The Helm roles against the real charts' values: test_helm_charts.py.
"""

import glob
import hashlib
import os
import textwrap

import pytest
import roleplay as rp
import yaml

REPO = rp.REPO
ROLES = ("kueue", "jobset", "gateway_api", "dra_driver", "otel_collector", "accelerator_metrics", "metrics_adapter",
         "monitoring", "kuberay")
# Roles that download nothing (their manifests are their own): no mirror, no fetch.
OWN_MANIFESTS = ("monitoring",)
HELM_ROLES = ("dra_driver", "otel_collector", "accelerator_metrics", "metrics_adapter")
SHARED = "k8s_ai.conformance.component_common"

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
KUEUE_VERSION = rp.defaults("kueue")["kueue_version"]
JOBSET_VERSION = rp.defaults("jobset")["jobset_version"]
GATEWAY_API_VERSION = rp.defaults("gateway_api")["gateway_api_version"]
EG_VERSION = rp.defaults("gateway_api")["gateway_api_implementation_version"]
KUEUE_IMAGE = "registry.k8s.io/kueue/kueue:" + KUEUE_VERSION
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
)
JOBSET_MANIFEST = yaml.safe_dump_all(
    [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "jobset-system"}},
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "jobsets.jobset.x-k8s.io"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "jobset-controller-manager", "namespace": "jobset-system"},
            "spec": {
                "template": {"spec": {"containers": [{"name": "manager", "image": "registry.k8s.io/jobset/jobset:x"}]}}
            },
        },
    ]
)
BUNDLE = {
    "gateway.networking.k8s.io/bundle-version": GATEWAY_API_VERSION,
    "gateway.networking.k8s.io/channel": "standard",
}


def _crd(name, group, annotations=None):
    meta = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": meta,
        "spec": {"group": group},
    }


# Gateway API >= 1.5: the standard bundle holds the safe-upgrades ValidatingAdmissionPolicy and its Binding.
GATEWAY_BUNDLE = yaml.safe_dump_all(
    [
        _crd("gateways.gateway.networking.k8s.io", "gateway.networking.k8s.io", BUNDLE),
        _crd("httproutes.gateway.networking.k8s.io", "gateway.networking.k8s.io", BUNDLE),
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "safe-upgrades.gateway.networking.k8s.io", "annotations": BUNDLE},
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "safe-upgrades.gateway.networking.k8s.io", "annotations": BUNDLE},
        },
    ]
)
# An implementation manifest carrying its own copy of the bundle (Envoy Gateway's install.yaml does).
ENVOY_GATEWAY = yaml.safe_dump_all(
    [
        _crd("gateways.gateway.networking.k8s.io", "gateway.networking.k8s.io", BUNDLE),
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "safe-upgrades.gateway.networking.k8s.io", "annotations": BUNDLE},
        },
        _crd("envoyproxies.gateway.envoyproxy.io", "gateway.envoyproxy.io"),
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "envoy-gateway-system", "annotations": {"x": "y"}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "envoy-gateway", "namespace": "envoy-gateway-system"},
        },
    ]
)
INFERENCE_V1 = yaml.safe_dump_all([_crd("inferencepools.inference.networking.k8s.io", "inference.networking.k8s.io")])
INFERENCE_EXPERIMENTAL = yaml.safe_dump_all(
    [_crd("inferenceobjectives.inference.networking.x-k8s.io", "inference.networking.x-k8s.io")]
)
GH = "github.com/kubernetes-sigs"
DCGM_CRD = yaml.safe_dump(_crd("examples.stand-in.example.com", "stand-in.example.com"))


# ---------------------------------------------------------------- static: variables and the shared shape


@pytest.mark.parametrize("role", ROLES + ("gvisor",))
def test_defaults_prefixed_and_mirrored_in_argument_specs(role):
    defaults = rp.defaults(role)
    specs = rp.load(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml"))["argument_specs"]["main"][
        "options"
    ]
    assert [k for k in defaults if not k.startswith(role + "_")] == []
    assert set(defaults) <= set(specs)
    if role != "gvisor":  # gvisor documents optional inputs it does not default
        assert set(defaults) == set(specs)
        assert role in OWN_MANIFESTS or role + "_mirror_url" in defaults
    for name, spec in specs.items():
        assert set(spec) <= {"type", "default", "choices", "description", "elements", "required", "options"}, name
        assert spec.get("description"), name
        if "default" in spec and name in defaults:
            assert spec["default"] == defaults[name], name
    assert role + "_state" in defaults


def test_shared_role_variables_prefixed_and_every_entry_point_documented():
    defaults = rp.defaults("component_common")
    specs = rp.load(os.path.join(REPO, "roles", "component_common", "meta", "argument_specs.yml"))["argument_specs"]
    assert [k for k in defaults if not k.startswith("component_common_")] == []
    tasks = {
        os.path.basename(p)[:-4] for p in glob.glob(os.path.join(REPO, "roles", "component_common", "tasks", "*.yml"))
    }
    assert set(specs) == tasks - {"oci_pull", "workload_wait"}  # internal: included by the entry points only
    documented = set().union(*(spec["options"] for spec in specs.values()))
    assert set(defaults) <= documented


def _tasks(role):
    for path in sorted(glob.glob(os.path.join(REPO, "roles", role, "tasks", "*.yml"))):
        for task in _walk(rp.load(path) or []):
            yield os.path.basename(path), task


def _walk(tasks):
    for task in tasks:
        yield task
        for key in ("block", "rescue", "always"):
            yield from _walk(task.get(key, []))


@pytest.mark.parametrize("role", ROLES + ("gvisor", "component_common"))
def test_no_role_reads_a_sha256_file_beside_a_download(role):
    # No upstream publishes <file>.sha256 (NGC, GitHub release assets, chart-releaser repos): nothing may expect one.
    for name in glob.glob(os.path.join(REPO, "roles", role, "defaults", "*.yml")) + glob.glob(
        os.path.join(REPO, "roles", role, "tasks", "*.yml")
    ):
        with open(name) as handle:
            text = handle.read()
        assert ".sha256" not in text.replace("SHA256SUMS", "").replace("<file>.sha256 files", ""), name
    for filename, task in _tasks(role):
        if "ansible.builtin.get_url" in task:
            # only the shared fetch downloads (and gvisor, whose .sha512 files upstream does publish)
            assert role in ("component_common", "gvisor"), (role, filename, task.get("name"))
            assert "checksum" in task["ansible.builtin.get_url"], (role, filename, task.get("name"))


@pytest.mark.parametrize("role", ROLES)
def test_fetching_goes_through_the_shared_role(role):
    used = {
        t["ansible.builtin.include_role"]["tasks_from"]
        for _f, t in _tasks(role)
        if t.get("ansible.builtin.include_role", {}).get("name") == SHARED
    }
    if role in HELM_ROLES:
        assert {"helm_chart", "helm_values", "helm_preflight", "helm_install", "helm_absent"} <= used
        assert not os.path.exists(os.path.join(REPO, "roles", role, "templates", "unknown_values.j2"))
    elif role in OWN_MANIFESTS:
        assert not used & {"fetch", "helm_chart"}
    else:
        assert "fetch" in used
    for _f, task in _tasks(role):
        assert "kubernetes.core.helm" not in task  # helm install/uninstall only in component_common


def test_wait_established_only_on_crds():
    # A ValidatingAdmissionPolicy (Gateway API >= 1.5 bundles) never becomes Established: such waits list CRDs only.
    for role in ROLES + ("component_common",):
        for filename, task in _tasks(role):
            module = task.get("kubernetes.core.k8s") or {}
            if (module.get("wait_condition") or {}).get("type") == "Established":
                if "src" in module:  # one file per loop item: the role's list of CRD files
                    assert str(task.get("loop", "")).strip("{} ").endswith("_crd_files"), (role, filename, task)
                    continue
                definition = str(module["definition"])
                assert (
                    "CustomResourceDefinition" in definition
                    or definition.strip("{} ").endswith("_crds")
                    or definition.strip("{} ").endswith("chart_info.crds")
                ), (role, filename, definition)


# ---------------------------------------------------------------- one playbook run over a file:// mirror


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("roles")
    mirror, out, elsewhere = str(tmp / "mirror"), str(tmp / "out"), str(tmp / "elsewhere")
    os.makedirs(out)
    rp.publish(mirror, "%s/kueue/releases/download/%s/manifests.yaml" % (GH, KUEUE_VERSION), KUEUE_MANIFEST)
    rp.publish(mirror, "%s/jobset/releases/download/%s/manifests.yaml" % (GH, JOBSET_VERSION), JOBSET_MANIFEST)
    rp.publish(
        mirror, "%s/gateway-api/releases/download/%s/standard-install.yaml" % (GH, GATEWAY_API_VERSION), GATEWAY_BUNDLE
    )
    rp.publish(mirror, "github.com/envoyproxy/gateway/releases/download/%s/install.yaml" % EG_VERSION, ENVOY_GATEWAY)
    gaie = rp.defaults("gateway_api")["gateway_api_inference_extension_version"]
    rp.publish(
        mirror, "%s/gateway-api-inference-extension/releases/download/%s/v1-manifests.yaml" % (GH, gaie), INFERENCE_V1
    )
    rp.publish(
        mirror,
        "%s/gateway-api-inference-extension/releases/download/%s/experimental-manifests.yaml" % (GH, gaie),
        INFERENCE_EXPERIMENTAL,
    )
    # A chart outside any mirror (pins apply), and one on the mirror that its SHA256SUMS does not list.
    chart = rp.chart_archive(
        "dcgm-exporter", {"values.yaml": "image: {tag: x}\nnodeSelector: {}\n", "Chart.yaml": "name: x\n"}
    )
    loose = rp.publish(elsewhere, "dcgm-exporter-4.8.2.tgz", chart)
    unlisted = rp.publish(mirror, "unlisted/dcgm-exporter-4.8.2.tgz", chart, listed=False)
    digest = rp.sha256(chart)
    dcgm_version = rp.defaults("accelerator_metrics")["accelerator_metrics_chart_version"]
    rp.publish(
        mirror,
        "nvidia.github.io/dcgm-exporter/helm-charts/dcgm-exporter-%s.tgz" % dcgm_version,
        rp.chart_archive(
            "dcgm-exporter",
            {
                "values.yaml": "image: {tag: x}\nnodeSelector: {}\ntolerations: []\nservice: {annotations: {}}\n"
                "podAnnotations: {}\nserviceMonitor: {enabled: true}\nkubernetesDRA: {enabled: false}\n",
                "templates/ds.yaml": "{{ .Values.image.tag }}\n",
                "crds/x.yaml": DCGM_CRD,
            },
        ),
    )

    def fetch(role, name, **extra):
        return rp.case(out, name, [rp.include(role, "fetch", **extra)])

    dcgm = "accelerator_metrics"
    tasks = [
        rp.case(
            out,
            "kueue",
            [rp.include("kueue", "fetch"), rp.include("kueue", "render")],
            {
                "config": "kueue_config",
                "objects": "kueue_objects",
                "queues": "kueue_queue_objects",
                "crds": "kueue_crds",
            },
        ),
        rp.case(
            out,
            "kueue-changed",
            [rp.include("kueue", "render", kueue_wait_for_pods_ready_timeout="10m")],
            {"objects": "kueue_objects"},
        ),
        rp.case(out, "jobset", [rp.include("jobset", "fetch")], {"crds": "jobset_crds", "docs": "jobset_docs"}),
        rp.case(
            out,
            "helm-chart",
            [rp.include(dcgm, "fetch"), rp.include(dcgm, "values")],
            {"chart": "accelerator_metrics_chart", "values": "accelerator_metrics_chart_values"},
        ),
        rp.case(
            out,
            "gateway",
            [
                rp.include(
                    "gateway_api",
                    "fetch",
                    gateway_api_inference_extension_enabled=True,
                    gateway_api_inference_extension_experimental=True,
                )
            ],
            {k: "gateway_api_" + k for k in ("crds", "bundle_objects", "impl_crds", "impl_objects", "inference_docs")},
        ),
        # checksum resolution
        rp.case(
            out,
            "pinned",
            [
                rp.include(
                    dcgm,
                    "fetch",
                    accelerator_metrics_mirror_url="",
                    accelerator_metrics_chart_url="file://" + loose,
                    accelerator_metrics_chart_checksums={"4.8.2": digest},
                    accelerator_metrics_download_dir=str(tmp / "pinned"),
                )
            ],
            {"chart": "accelerator_metrics_chart"},
        ),
        fetch(
            dcgm,
            "pinned-default-mismatch",
            accelerator_metrics_mirror_url="",
            accelerator_metrics_chart_url="file://" + loose,
            accelerator_metrics_download_dir=str(tmp / "mismatch"),
        ),
        fetch(
            dcgm,
            "pinned-other-version",
            accelerator_metrics_mirror_url="",
            accelerator_metrics_chart_url="file://" + loose,
            accelerator_metrics_chart_version="9.9.9",
            accelerator_metrics_download_dir=str(tmp / "other"),
        ),
        fetch(
            dcgm,
            "mirror-unlisted",
            accelerator_metrics_chart_url="file://" + unlisted,
            accelerator_metrics_download_dir=str(tmp / "unlisted"),
        ),
        fetch(
            dcgm,
            "explicit-beats-mirror",
            accelerator_metrics_chart_url="file://" + unlisted,
            accelerator_metrics_chart_checksum="sha256:" + digest,
            accelerator_metrics_download_dir=str(tmp / "explicit"),
        ),
        fetch(
            dcgm,
            "explicit-wrong",
            accelerator_metrics_chart_url="file://" + unlisted,
            accelerator_metrics_chart_checksum="sha256:" + "0" * 64,
            accelerator_metrics_download_dir=str(tmp / "wrong"),
        ),
        fetch(dcgm, "explicit-malformed", accelerator_metrics_chart_checksum="0" * 64),
        fetch(
            "metrics_adapter",
            "unpinned-chart",
            metrics_adapter_mirror_url="",
            metrics_adapter_download_dir=str(tmp / "nothing-downloaded"),
        ),
        fetch("kueue", "unpinned-kueue", kueue_mirror_url="", kueue_download_dir=str(tmp / "nothing-downloaded")),
        fetch("jobset", "unpinned-jobset", jobset_mirror_url=""),
        fetch("gateway_api", "unpinned-gateway", gateway_api_mirror_url=""),
        fetch(
            "kueue",
            "kueue-mismatch",
            kueue_manifest_checksum="sha256:" + "0" * 64,
            kueue_download_dir=str(tmp / "kueue-mismatch"),
        ),
    ]
    play_vars = {"k8s_ai_mirror_url": "file://" + mirror, "k8s_ai_download_dir": str(tmp / "cache")}
    result = rp.run(tmp, tasks, play_vars)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    found = rp.results(out)
    found["_nothing_downloaded"] = not os.path.exists(str(tmp / "nothing-downloaded"))
    # A second run and a check-mode run of the same fetch/render: nothing changes.
    again = rp.run(tmp, tasks[:5], play_vars)
    check = rp.run(tmp, tasks[:5], play_vars, check=True)
    found["_again"], found["_check"] = again, check
    return found


def _recap(result):
    line = [text for text in result.stdout.splitlines() if text.startswith("localhost")][-1]
    return dict(part.split("=") for part in line.split(":", 1)[1].split())


def test_second_run_and_check_mode_change_nothing(world):
    for name in ("_again", "_check"):
        assert world[name].returncode == 0, world[name].stdout[-3000:]
        # (the test's own JSON dumps rewrite identical content: no change either)
        assert _recap(world[name])["changed"] == "0", world[name].stdout[-3000:]


def test_kueue_configuration(world):
    config = world["kueue"]["config"]
    assert config["health"] == {"healthProbeBindAddress": ":8081"}  # release defaults kept
    assert "jobset.x-k8s.io/jobset" in config["integrations"]["frameworks"]
    assert config["waitForPodsReady"]["blockAdmission"] is True
    assert config["waitForPodsReady"]["timeout"] == "5m"
    assert config["resources"]["deviceClassMappings"] == [
        {"name": "nvidia.com/gpu", "deviceClassNames": ["gpu.nvidia.com"]}
    ]


def test_kueue_objects_carry_config_and_its_hash(world):
    objects = world["kueue"]["objects"]
    assert not [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    assert objects[0]["kind"] == "Namespace"
    configmap = next(o for o in objects if o["kind"] == "ConfigMap")
    text = configmap["data"]["controller_manager_config.yaml"]
    assert yaml.safe_load(text) == world["kueue"]["config"]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    annotation = deployment["spec"]["template"]["metadata"]["annotations"]["k8s-ai.io/config-sha256"]
    assert annotation == hashlib.sha256(text.encode()).hexdigest()
    changed = next(o for o in world["kueue-changed"]["objects"] if o["kind"] == "Deployment")
    assert changed["spec"]["template"]["metadata"]["annotations"]["k8s-ai.io/config-sha256"] != annotation
    assert [c["metadata"]["name"] for c in world["kueue"]["crds"]] == ["clusterqueues.kueue.x-k8s.io"]


def test_kueue_gpu_queues(world):
    queues = {(o["kind"], o["metadata"]["name"]): o for o in world["kueue"]["queues"]}
    group = queues[("ClusterQueue", "ai-cluster-queue")]["spec"]["resourceGroups"][0]
    assert group["coveredResources"] == ["cpu", "memory", "nvidia.com/gpu"]
    assert {r["name"]: r["nominalQuota"] for r in group["flavors"][0]["resources"]} == {
        "cpu": "64",
        "memory": "256Gi",
        "nvidia.com/gpu": "8",
    }
    assert queues[("LocalQueue", "ai-queue")]["spec"]["clusterQueue"] == "ai-cluster-queue"
    assert [o["kind"] for o in world["kueue"]["queues"]] == ["ResourceFlavor", "ClusterQueue", "LocalQueue"]


def test_helm_chart_read_from_the_mirror(world):
    res = world["helm-chart"]
    assert res["ok"], res.get("msg")
    assert res["chart"]["template_paths"] == ["image.tag"]
    assert [c["metadata"]["name"] for c in res["chart"]["crds"]] == ["examples.stand-in.example.com"]
    assert res["values"]["kubernetesDRA"] == {"enabled": True}


def test_jobset_from_the_mirror(world):
    assert [c["metadata"]["name"] for c in world["jobset"]["crds"]] == ["jobsets.jobset.x-k8s.io"]


def test_gateway_api_bundle_split(world):
    gateway = world["gateway"]
    assert gateway["ok"], gateway.get("msg")
    assert {c["kind"] for c in gateway["crds"]} == {"CustomResourceDefinition"}
    assert [(o["kind"], o["metadata"]["name"]) for o in gateway["bundle_objects"]] == [
        ("ValidatingAdmissionPolicy", "safe-upgrades.gateway.networking.k8s.io"),
        ("ValidatingAdmissionPolicyBinding", "safe-upgrades.gateway.networking.k8s.io"),
    ]
    # the implementation's copy of the bundle (CRDs and the VAP) is skipped; its own objects keep their order
    assert [c["metadata"]["name"] for c in gateway["impl_crds"]] == ["envoyproxies.gateway.envoyproxy.io"]
    assert [o["kind"] for o in gateway["impl_objects"]] == ["Namespace", "Deployment"]
    assert sorted(c["metadata"]["name"] for c in gateway["inference_docs"]) == [
        "inferenceobjectives.inference.networking.x-k8s.io",
        "inferencepools.inference.networking.k8s.io",
    ]


def test_pinned_checksum_used_without_a_mirror(world):
    assert world["pinned"]["ok"], world["pinned"].get("msg")
    assert world["pinned"]["chart"]["defaults"]["image"] == {"tag": "x"}


def test_default_pin_is_the_repository_digest(world):
    # The default 4.8.2 pin is dcgm-exporter's Helm repository digest: this stand-in archive does not match it.
    pins = rp.defaults("accelerator_metrics")["accelerator_metrics_chart_checksums"]
    assert pins["4.8.2"] == "1c5535c03ebab3f021444df6016fce1cd7871385122e115c6ed24c804b623803"
    res = world["pinned-default-mismatch"]
    assert not res["ok"] and "pinned for 4.8.2" in res["msg"] and "accelerator_metrics_chart_checksum" in res["msg"]


def test_unpinned_version_refused_naming_the_variables(world):
    msg = world["pinned-other-version"]["msg"]
    assert "nothing pins the checksum of" in msg and "(dcgm-exporter chart 9.9.9)" in msg
    assert (
        "set accelerator_metrics_chart_checksum: sha256:<hex>" in msg and "accelerator_metrics_chart_checksums" in msg
    )


def test_mirror_checksum_from_sha256sums(world):
    msg = world["mirror-unlisted"]["msg"]
    assert "SHA256SUMS" in msg and "Unable to find a checksum" in msg and "must list the file" in msg
    assert world["explicit-beats-mirror"]["ok"], world["explicit-beats-mirror"].get("msg")
    assert (
        not world["explicit-wrong"]["ok"]
        and "explicit (accelerator_metrics_chart_checksum)" in world["explicit-wrong"]["msg"]
    )
    assert "accelerator_metrics_chart_checksum must be '<algorithm>:<hex>'" in world["explicit-malformed"]["msg"]


@pytest.mark.parametrize(
    "case,variables",
    [
        ("unpinned-chart", ["metrics_adapter_chart_checksum"]),
        ("unpinned-kueue", ["kueue_manifest_checksum"]),
        ("unpinned-jobset", ["jobset_manifest_checksum"]),
        ("unpinned-gateway", ["gateway_api_crds_checksum", "gateway_api_implementation_checksum"]),
    ],
)
def test_nothing_pinned_is_refused_before_downloading(world, case, variables):
    res = world[case]
    assert not res["ok"]
    for variable in variables:
        assert "set %s: sha256:<hex>" % variable in res["msg"], res["msg"]
    assert "No upstream publishes <file>.sha256" in res["msg"]
    assert world["_nothing_downloaded"]


def test_checksum_mismatch_is_refused(world):
    assert not world["kueue-mismatch"]["ok"] and "verified by checksum" in world["kueue-mismatch"]["msg"]


def test_site_runs_every_role_behind_its_switch_and_tag():
    play = rp.load(os.path.join(REPO, "playbooks", "site.yml"))[0]
    seen = []
    for task in play["tasks"]:
        role = task["ansible.builtin.include_role"]["name"].rsplit(".", 1)[-1]
        seen.append(role)
        assert task["tags"] == [role]
        assert task["ansible.builtin.include_role"]["apply"] == {"tags": [role]}
        assert task["when"].startswith(role + "_enabled ")
    assert sorted(seen) == sorted(ROLES)
    assert seen.index("jobset") < seen.index("kueue")  # Kueue starts with the JobSet CRD present


def test_lab_mirror_publishes_the_roles_default_versions():
    versions = rp.load_env(os.path.join(REPO, "tests", "lab", "versions.env"))
    assert versions["KUEUE_VERSION"] == KUEUE_VERSION
    assert versions["JOBSET_VERSION"] == JOBSET_VERSION
    assert versions["GATEWAY_API_VERSION"] == GATEWAY_API_VERSION
