"""In-cluster verify (roles/verify_in_cluster, the image's entry point, Containerfile, execution-environment.yml).

The manifests are rendered by the role itself (verify_in_cluster_render_dir: no cluster needed) and parsed back:
every pod runs as the ServiceAccount of roles/verify/files/verifier-clusterrole.yaml, nothing grants more than that
ClusterRole, the sonobuoy plugin has sonobuoy's plugin format. The entry point runs against a stand-in
ansible-playbook. Running the image on real nodes and a real sonobuoy run are proven on the lab later.
"""

import base64
import io
import os
import re
import subprocess
import tarfile

import pytest
import yaml
from unit_collection import ROOT, VENV_BIN, collections_path

from ansible_collections.k8s_ai.conformance.plugins.module_utils import metrics

CLUSTERROLE_FILE = os.path.join(ROOT, "roles", "verify", "files", "verifier-clusterrole.yaml")
ENTRYPOINT = os.path.join(ROOT, "roles", "verify_in_cluster", "files", "ai-conformance-verify")
PLAYBOOK = os.path.join(ROOT, "playbooks", "verify_in_cluster.yml")
VARS = {"verify_checks": ["dra_support"], "verify_metadata": {"platformName": "In Cluster"}}


def load_all(path):
    with open(path) as handle:
        return [d for d in yaml.safe_load_all(handle) if d is not None]


RBAC = load_all(CLUSTERROLE_FILE)
SA = [d for d in RBAC if d["kind"] == "ServiceAccount"][0]
CLUSTERROLE = [d for d in RBAC if d["kind"] == "ClusterRole"][0]
VAP = [d for d in RBAC if d["kind"] == "ValidatingAdmissionPolicy"][0]


def render(tmp, mode, **extra):
    out = tmp / mode
    args = {"verify_in_cluster_mode": mode, "verify_in_cluster_render_dir": str(out), "verify_in_cluster_vars": VARS}
    args.update(extra)
    (tmp / ("%s.json" % mode)).write_text(yaml.safe_dump(args))  # YAML is JSON's superset: -e @file reads both
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    vars_file = tmp / ("%s.json" % mode)
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), PLAYBOOK, "-e", "@%s" % vars_file],
                          cwd=str(tmp), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return {name: load_all(out / name) for name in sorted(os.listdir(out))}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("in-cluster")
    return {"job": render(tmp, "job"),
            "cronjob": render(tmp, "cronjob", verify_in_cluster_service_monitor=True,
                              verify_in_cluster_prometheus_rule=True, verify_in_cluster_time_zone="Etc/UTC"),
            "sonobuoy": render(tmp, "sonobuoy")}


def pods_of(docs):
    """(object, pod spec) of every workload in docs."""
    for doc in docs:
        if doc["kind"] == "Job":
            yield doc, doc["spec"]["template"]["spec"]
        elif doc["kind"] == "CronJob":
            yield doc, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif doc["kind"] == "Deployment":
            yield doc, doc["spec"]["template"]["spec"]


def test_the_rbac_written_is_the_clusterrole_file(rendered):
    for mode in ("job", "cronjob", "sonobuoy"):
        assert rendered[mode]["verifier-rbac.yaml"] == RBAC


@pytest.mark.parametrize("mode,files", [("job", ["job.yaml", "verifier-rbac.yaml"]),
                                        ("cronjob", ["cronjob.yaml", "verifier-rbac.yaml"]),
                                        ("sonobuoy", ["sonobuoy-plugin.yaml", "sonobuoy-rbac.yaml",
                                                      "verifier-rbac.yaml"])])
def test_files_of_each_mode(rendered, mode, files):
    assert sorted(rendered[mode]) == files


def test_no_manifest_grants_more_than_the_clusterrole(rendered):
    for mode in ("job", "cronjob"):
        kinds = {d["kind"] for d in rendered[mode]["%s.yaml" % mode]}
        assert not kinds & {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ServiceAccount"}, kinds
    bindings = [d for d in rendered["sonobuoy"]["sonobuoy-rbac.yaml"] if d["kind"].endswith("Binding")
                and d["kind"] != "ValidatingAdmissionPolicyBinding"]
    assert [b["roleRef"] for b in bindings] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                 "name": CLUSTERROLE["metadata"]["name"]}]
    assert not [d for d in rendered["sonobuoy"]["sonobuoy-rbac.yaml"] if d["kind"] in ("Role", "ClusterRole")]


def test_job_and_cronjob_pods_run_as_the_verifier_serviceaccount(rendered):
    for mode in ("job", "cronjob"):
        docs = rendered[mode]["%s.yaml" % mode]
        assert all(d["metadata"]["namespace"] == SA["metadata"]["namespace"] for d in docs)
        pods = list(pods_of(docs))
        assert pods
        for obj, pod in pods:
            if obj["kind"] == "Deployment":  # the metrics server needs no API access at all
                assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod
                continue
            assert pod["serviceAccountName"] == SA["metadata"]["name"]
            assert pod["restartPolicy"] == "Never"
            [container] = pod["containers"]
            assert container["args"] == [mode]
            assert {m["mountPath"] for m in container["volumeMounts"]} == {"/reports", "/tmp", "/etc/ai-conformance"}


def test_pods_are_restricted(rendered):
    docs = rendered["job"]["job.yaml"] + rendered["cronjob"]["cronjob.yaml"]
    for _obj, pod in pods_of(docs):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            sec = container["securityContext"]
            assert sec["allowPrivilegeEscalation"] is False and sec["capabilities"] == {"drop": ["ALL"]}
            assert sec["readOnlyRootFilesystem"] is True


def test_job_keeps_the_report_retrievable(rendered):
    job = [d for d in rendered["job"]["job.yaml"] if d["kind"] == "Job"][0]
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["VERIFY_REPORT_DIR"] == "/reports" and int(env["VERIFY_KEEP_SECONDS"]) > 0
    assert {"name": "reports", "emptyDir": {}} in pod["volumes"]
    assert isinstance(job["spec"]["activeDeadlineSeconds"], int)
    config = [d for d in rendered["job"]["job.yaml"] if d["kind"] == "ConfigMap"][0]
    assert yaml.safe_load(config["data"]["vars.yml"]) == VARS


def test_cronjob_volume_metrics_and_alerts(rendered):
    docs = {d["kind"]: d for d in rendered["cronjob"]["cronjob.yaml"]}
    assert set(docs) == {"ConfigMap", "PersistentVolumeClaim", "CronJob", "Deployment", "Service", "ServiceMonitor",
                         "PrometheusRule"}
    cron = docs["CronJob"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid" and cron["timeZone"] == "Etc/UTC"
    assert re.match(r"^\S+(\s+\S+){4}$", cron["schedule"])
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    claim = docs["PersistentVolumeClaim"]["metadata"]["name"]
    assert {"name": "reports", "persistentVolumeClaim": {"claimName": claim}} in pod["volumes"]
    # ReadWriteOnce: the runs follow the metrics pod (which mounts the same claim) to its node
    selector = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"]
    metrics_pod = docs["Deployment"]["spec"]["template"]
    assert selector["matchLabels"] == metrics_pod["metadata"]["labels"]
    assert metrics_pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
    server = metrics_pod["spec"]["containers"][0]
    assert server["command"][-1] == "ansible_collections.k8s_ai.conformance.plugins.module_utils.metrics"
    assert server["args"][:2] == ["serve", "/reports/current"]
    assert docs["Service"]["spec"]["selector"] == metrics_pod["metadata"]["labels"]
    assert docs["Service"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert docs["ServiceMonitor"]["spec"]["selector"]["matchLabels"] == docs["Service"]["metadata"]["labels"]
    rules = docs["PrometheusRule"]["spec"]["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {"AIConformanceMustRegressed", "AIConformanceMustNotImplemented",
                                           "AIConformanceVerificationStale"}
    names = set(re.findall(r"k8s_ai_conformance_[a-z_]+", " ".join(r["expr"] for r in rules)))
    assert names and names <= {metrics.PREFIX + n for n in metrics.HELP}, names
    assert "{{ $labels.id }}" in rules[0]["annotations"]["summary"]


def test_cronjob_without_metrics_has_no_affinity(tmp_path):
    docs = render(tmp_path, "cronjob", verify_in_cluster_metrics_enabled=False)["cronjob.yaml"]
    assert {d["kind"] for d in docs} == {"ConfigMap", "PersistentVolumeClaim", "CronJob"}
    cron = [d for d in docs if d["kind"] == "CronJob"][0]
    assert "affinity" not in cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_sonobuoy_plugin_format(rendered):
    [plugin] = rendered["sonobuoy"]["sonobuoy-plugin.yaml"]
    assert set(plugin) == {"sonobuoy-config", "spec", "podSpec", "config-map"}
    config = plugin["sonobuoy-config"]
    assert config["driver"] == "Job" and config["result-format"] == "junit" and config["result-files"] == ["junit.xml"]
    # sonobuoy's rule for plugin names (RFC 1123 subdomain)
    assert re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", config["plugin-name"])
    spec = plugin["spec"]
    assert spec["name"] == "plugin" and spec["args"] == ["sonobuoy"] and spec["image"]
    assert {"name": "results", "mountPath": "/tmp/sonobuoy/results"} in spec["volumeMounts"]
    assert {e["name"]: e["value"] for e in spec["env"]}["VERIFY_VARS_FILE"] == "/tmp/sonobuoy/config/vars.yml"
    assert yaml.safe_load(plugin["config-map"]["vars.yml"]) == VARS
    pod = plugin["podSpec"]
    assert pod["serviceAccountName"] == SA["metadata"]["name"] and pod["containers"] == []
    assert pod["restartPolicy"] == "Never"


def test_sonobuoy_serviceaccount_binding_and_admission_policy(rendered):
    docs = rendered["sonobuoy"]["sonobuoy-rbac.yaml"]
    by_kind = {d["kind"]: d for d in docs}
    namespace = by_kind["Namespace"]["metadata"]["name"]
    assert by_kind["ServiceAccount"]["metadata"] == dict(by_kind["ServiceAccount"]["metadata"], namespace=namespace,
                                                         name=SA["metadata"]["name"])
    assert by_kind["ClusterRoleBinding"]["subjects"] == [{"kind": "ServiceAccount", "name": SA["metadata"]["name"],
                                                          "namespace": namespace}]
    policy = by_kind["ValidatingAdmissionPolicy"]
    user = "system:serviceaccount:%s:%s" % (namespace, SA["metadata"]["name"])
    assert policy["spec"]["matchConditions"] == [{"name": "the-verifier",
                                                  "expression": "request.userInfo.username == '%s'" % user}]
    # the same confinement as the verifier's own policy, only for the other account
    assert {k: v for k, v in policy["spec"].items() if k != "matchConditions"} == \
        {k: v for k, v in VAP["spec"].items() if k != "matchConditions"}
    assert by_kind["ValidatingAdmissionPolicyBinding"]["spec"]["policyName"] == policy["metadata"]["name"]
    assert policy["metadata"]["name"] != VAP["metadata"]["name"]


def test_bad_mode_is_named(tmp_path):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), PLAYBOOK, "-e", "verify_in_cluster_mode=daemon",
                           "-e", "verify_in_cluster_render_dir=%s" % tmp_path], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "verify_in_cluster_mode" in out and "Traceback" not in out


# ------------------------------------------------------------------------------------------ the entry point
FAKE_PLAYBOOK = """#!/bin/bash
# stand-in for ansible-playbook: records its arguments, writes a report where verify_report_dir says
printf '%s\\n' "$@" > "$FAKE_ARGS"
dir=""
for a in "$@"; do case "$a" in verify_report_dir=*) dir=${a#verify_report_dir=};; esac; done
mkdir -p "$dir/v1.35/lab" && echo '<testsuites/>' > "$dir/v1.35/lab/junit.xml"
echo '{}' > "$dir/v1.35/lab/results.json"
echo "PLAY RECAP fake"
exit ${FAKE_RC:-0}
"""


@pytest.fixture
def fake_env(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ansible-playbook"
    fake.write_text(FAKE_PLAYBOOK)
    fake.chmod(0o755)
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text(yaml.safe_dump(VARS))
    return dict(os.environ, PATH=str(bin_dir) + os.pathsep + os.environ["PATH"], FAKE_ARGS=str(tmp_path / "args"),
                VERIFY_VARS_FILE=str(vars_file), TMPDIR=str(tmp_path), VERIFY_KEEP_SECONDS="0")


def entry(mode, env, **extra):
    return subprocess.run(["bash", ENTRYPOINT, mode], env=dict(env, **extra), capture_output=True, text=True,
                          timeout=60, check=False)


def test_entrypoint_job_prints_the_report_as_tar(tmp_path, fake_env):
    proc = entry("job", fake_env, VERIFY_REPORT_DIR=str(tmp_path / "reports"), FAKE_RC="2")
    assert proc.returncode == 2, proc.stderr
    args = (tmp_path / "args").read_text().splitlines()
    assert args[0] == "k8s_ai.conformance.verify" and "verify_kubeconfig=" in args
    assert "verify_report_dir=%s" % (tmp_path / "reports") in args and "@%s" % fake_env["VERIFY_VARS_FILE"] in args
    out = proc.stdout
    body = out.split("===== BEGIN ai-conformance-report.tar.gz (base64) =====\n", 1)[1]
    body = body.split("===== END ai-conformance-report.tar.gz =====", 1)[0]
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(body)), mode="r:gz") as tar:
        names = tar.getnames()
    assert "./v1.35/lab/junit.xml" in names and "./verify.log" in names


def test_entrypoint_cronjob_compares_and_keeps_history(tmp_path, fake_env):
    reports = tmp_path / "reports"
    for _run in range(3):
        proc = entry("cronjob", fake_env, VERIFY_REPORT_DIR=str(reports), VERIFY_HISTORY="2",
                     VERIFY_METRICS_FILE=str(reports / "metrics.prom"))
        assert proc.returncode == 0, proc.stderr
    args = (tmp_path / "args").read_text().splitlines()
    assert "verify_previous_report=%s" % (reports / "current") in args
    assert "verify_fail_on_must=false" in args and "verify_metrics_file=%s" % (reports / "metrics.prom") in args
    assert (reports / "current" / "v1.35" / "lab" / "junit.xml").is_file()
    assert len(os.listdir(reports / "history")) <= 2


def test_entrypoint_sonobuoy_writes_the_done_file(tmp_path, fake_env):
    results = tmp_path / "results"
    results.mkdir()
    proc = entry("sonobuoy", fake_env, SONOBUOY_RESULTS_DIR=str(results), FAKE_RC="2")
    assert proc.returncode == 0, proc.stderr
    done = (results / "done").read_text()
    assert done == str(results / "ai-conformance-report")
    assert (results / "ai-conformance-report" / "v1.35" / "lab" / "junit.xml").is_file()


def test_entrypoint_unknown_mode(fake_env):
    proc = entry("daemon", fake_env)
    assert proc.returncode == 64 and "unknown mode 'daemon'" in proc.stderr


# ------------------------------------------------------------------------------------------ image and EE
RUNTIME = ("ansible-core", "kubernetes", "PyYAML", "jmespath")


def pins():
    with open(os.path.join(ROOT, "requirements-dev.txt")) as handle:
        return dict(line.strip().split("==", 1) for line in handle if "==" in line and not line.startswith("#"))


def test_containerfile_installs_the_pinned_runtime_subset():
    with open(os.path.join(ROOT, "Containerfile")) as handle:
        text = handle.read()
    pattern = re.search(r"grep -E '\^\((.*?)\)==' /tmp/requirements-dev.txt", text)
    assert pattern and pattern.group(1).split("|") == list(RUNTIME)
    assert all(name in pins() for name in RUNTIME)
    assert "roles/verify_in_cluster/files/ai-conformance-verify" in text and os.access(ENTRYPOINT, os.X_OK)
    assert re.search(r"^USER 10001", text, re.M)
    with open(os.path.join(ROOT, ".containerignore")) as handle:
        ignored = handle.read().split()
    assert {".git", ".venv", ".lab", ".collections", "tests"} <= set(ignored)


def test_execution_environment_schema_and_pins():
    with open(os.path.join(ROOT, "execution-environment.yml")) as handle:
        ee = yaml.safe_load(handle)
    assert ee["version"] == 3
    assert set(ee) <= {"version", "images", "dependencies", "options", "additional_build_files",
                       "additional_build_steps", "build_arg_defaults"}
    assert ee["images"]["base_image"]["name"]
    deps = ee["dependencies"]
    assert set(deps) <= {"python_interpreter", "ansible_core", "ansible_runner", "python", "galaxy", "system",
                         "exclude"}
    assert deps["ansible_core"]["package_pip"] == "ansible-core==%s" % pins()["ansible-core"]
    assert sorted(deps["python"]) == sorted("%s==%s" % (n, pins()[n]) for n in RUNTIME if n != "ansible-core")
    names = [c["name"] for c in deps["galaxy"]["collections"]]
    assert names == ["k8s_ai.conformance", "kubernetes.core"]
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        galaxy = yaml.safe_load(handle)
    assert deps["galaxy"]["collections"][0]["version"] == galaxy["version"]


def test_entrypoint_runs_the_real_playbook_without_a_cluster(tmp_path):
    """As in the pod, but with no service account: no inventory, no kubeconfig - a clear error and a full report."""
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ["PATH"], ANSIBLE_COLLECTIONS_PATH=collections_path(),
               HOME=str(tmp_path), TMPDIR=str(tmp_path), VERIFY_REPORT_DIR=str(tmp_path / "reports"),
               VERIFY_KEEP_SECONDS="0", VERIFY_VARS_FILE=str(tmp_path / "vars.yml"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    for name in ("KUBECONFIG", "K8S_AUTH_KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        env.pop(name, None)
    (tmp_path / "vars.yml").write_text(yaml.safe_dump(VARS))
    proc = subprocess.run(["bash", ENTRYPOINT, "job"], env=env, cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=600, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in out and "[WARNING]" not in out, out[-3000:]
    assert "verify_kubeconfig: kubeconfig: not given" in out
    body = out.split("(base64) =====\n", 1)[1].split("===== END", 1)[0]
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(body)), mode="r:gz") as tar:
        names = tar.getnames()
    assert "./v1.36/in-cluster/report.html" in names and "./v1.36/in-cluster/junit.xml" in names


def test_no_node_selector_by_default(rendered):
    docs = rendered["job"]["job.yaml"] + rendered["cronjob"]["cronjob.yaml"]
    for _obj, pod in pods_of(docs):
        assert "nodeSelector" not in pod
    assert "nodeSelector" not in rendered["sonobuoy"]["sonobuoy-plugin.yaml"][0]["podSpec"]


def test_node_selector_reaches_every_pod_of_every_mode(tmp_path):
    selector = {"lab.k8s-ai-conformance.io/real-node": "true"}
    extra = {"verify_in_cluster_node_selector": selector}
    job = render(tmp_path, "job", **extra)["job.yaml"]
    cron = render(tmp_path, "cronjob", **extra)["cronjob.yaml"]
    pods = list(pods_of(job + cron))
    assert {obj["kind"] for obj, _pod in pods} == {"Job", "CronJob", "Deployment"}
    for _obj, pod in pods:
        assert pod["nodeSelector"] == selector
    [plugin] = render(tmp_path, "sonobuoy", **extra)["sonobuoy-plugin.yaml"]
    assert plugin["podSpec"]["nodeSelector"] == selector
    assert plugin["podSpec"]["serviceAccountName"] == SA["metadata"]["name"]


# ------------------------------------------------------------------------------------------ findings of the lab runs
def test_the_role_unpacks_the_report_the_pod_printed(tmp_path, fake_env):
    """fetch.yml reads the report from the archive in the pod log (unpack.yml): kubernetes.core.k8s_cp's from_pod
    could not copy /reports on the lab (the kubernetes client 37.x refuses its string command)."""
    proc = entry("job", fake_env, VERIFY_REPORT_DIR=str(tmp_path / "reports"))
    assert proc.returncode == 0, proc.stderr
    log = "pod noise before\n" + proc.stdout + "ai-conformance-verify: the report stays ...\n"
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    playbook = tmp_path / "unpack.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars": {"verify_in_cluster__log": {"log": log}, "verify_in_cluster_fetch_dir": str(fetched)},
        "tasks": [{"ansible.builtin.import_tasks": os.path.join(ROOT, "roles", "verify_in_cluster", "tasks",
                                                                "unpack.yml")}]}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    run = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), str(playbook)], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert (fetched / "v1.35" / "lab" / "junit.xml").read_text().strip() == "<testsuites/>"
    assert (fetched / "verify.log").is_file()
    assert sorted(os.listdir(fetched)) == ["v1.35", "verify.log"]  # the base64 file is gone


def test_no_task_copies_out_of_a_pod_with_k8s_cp():
    tasks = os.path.join(ROOT, "roles", "verify_in_cluster", "tasks")
    for name in os.listdir(tasks):
        with open(os.path.join(tasks, name)) as handle:
            assert "k8s_cp" not in "".join(line for line in handle if not line.lstrip().startswith("#")), name


def test_sonobuoy_files_say_how_to_run_past_the_namespace_preflight(tmp_path):
    """sonobuoy-rbac.yaml creates sonobuoy's namespace (the plugin's ServiceAccount lives there), and sonobuoy run's
    preflight refuses an existing namespace; --skip-preflight takes an optional value, so only the `=` form works
    (`--skip-preflight existingnamespace` is read as a stray argument): both seen on the lab."""
    render(tmp_path, "sonobuoy")
    first = (tmp_path / "sonobuoy" / "sonobuoy-plugin.yaml").read_text().splitlines()[0]
    assert "sonobuoy run --plugin sonobuoy-plugin.yaml --namespace sonobuoy --skip-preflight=existingnamespace" in first


def test_execution_environment_accepted_by_ansible_builder(tmp_path):
    """Upstream's own reading of the file: `ansible-builder create` (schema v3 validation and the build context;
    `build` needs a container engine and the base image, neither of which exists here)."""
    builder = os.path.join(ROOT, ".venv", "bin", "ansible-builder")
    if not os.path.exists(builder):
        pytest.fail("no .venv/bin/ansible-builder: run `make venv` (requirements-dev.txt pins it)")
    context = tmp_path / "context"
    proc = subprocess.run([builder, "create", "-f", os.path.join(ROOT, "execution-environment.yml"), "-c",
                           str(context)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (context / "Containerfile").read_text()
    assert 'ANSIBLE_INSTALL_REFS="ansible-core==%s ansible-runner==' % pins()["ansible-core"] in containerfile
    assert 'EE_BASE_IMAGE="quay.io/fedora/fedora:41"' in containerfile
    requirements = (context / "_build" / "requirements.txt").read_text().split()
    assert sorted(requirements) == sorted("%s==%s" % (n, pins()[n]) for n in RUNTIME if n != "ansible-core")
    collections = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    assert [c["name"] for c in collections] == ["k8s_ai.conformance", "kubernetes.core"]
