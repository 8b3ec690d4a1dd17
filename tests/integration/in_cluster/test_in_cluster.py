"""The verifier image on the lab's real nodes: roles/verify_in_cluster in job mode, then a real sonobuoy run of its
plugin. Nothing is faked: the image is tests/lab/verifier.py's build of the Containerfile's image under the role's
default name, pulled by a real node's containerd from the lab registry; sonobuoy is the upstream v0.57.5 built from
its Go module (CLI here, aggregator + worker in the cluster, tests/lab/sonobuoy.py).

Job mode: the role applies the least-privilege identity and the Job (node selector: the real nodes), waits for the
report and copies it out of the pod; asserted: a complete report (PRODUCT.yaml, report.json with every check asked
for, junit.xml), written by verify as the ServiceAccount (the API server's SelfSubjectReview, recorded in the
report) with no kubeconfig anywhere in the pod, its behavioural check Implemented from inside the cluster.
Sonobuoy: the plugin rendered by the role, `sonobuoy run --plugin ... --wait`, `retrieve`, `results`: our report is
in the tarball under plugins/ai-conformance/results and sonobuoy reads our junit.xml's testcases. Both remove
what they created (Job, ConfigMap, sonobuoy's namespace, the RBAC objects that were not there before).
Skipped only when the lab has no real nodes.
"""

import json
import os
import re
import subprocess
import tarfile
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from ..conftest import run_script
from .helpers import (
    CHECKS,
    CLUSTERROLE_FILE,
    REAL,
    SA_USER,
    CreatedObjects,
    assert_complete_report,
    in_cluster_vars,
    load_all,
    realnodes,
    report_dir_under,
    require_real_nodes,
    role,
)

FIGURES = {}


@pytest.fixture(scope="module")
def verifier_image(lab):
    require_real_nodes(lab)
    built, seconds = run_script("verifier.py", "serve")
    FIGURES["verifier image serve (s)"] = round(seconds, 1)
    return built


@pytest.fixture(scope="module")
def sonobuoy_cli(lab, verifier_image):
    built, seconds = run_script("sonobuoy.py", "serve")
    FIGURES["sonobuoy build + serve (s)"] = round(seconds, 1)
    return built


@pytest.fixture(scope="module", autouse=True)
def report_figures():
    yield
    if FIGURES:
        print("\nin-cluster figures: %s" % json.dumps(FIGURES))


def _pods(kubectl, namespace, selector):
    return kubectl.json("get", "pods", "-n", namespace, "-l", selector)["items"]


# ---------------------------------------------------------------- job mode

@pytest.fixture(scope="module")
def job_run(lab, lab_kubeconfig, kubectl, verifier_image, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("in-cluster-job")
    created = CreatedObjects(kubectl)
    created.apply(load_all(CLUSTERROLE_FILE))  # so the test removes it afterwards when it was not there before
    prefix = "ai-conformance-probe-ic%s" % uuid.uuid4().hex[:4]
    extra = {"verify_in_cluster_kubeconfig": lab_kubeconfig, "verify_in_cluster_node_selector": REAL,
             "verify_in_cluster_fetch_dir": str(tmp / "fetched"), "verify_in_cluster_keep_seconds": 300,
             "verify_in_cluster_wait_timeout": 900, "verify_in_cluster_vars": in_cluster_vars(prefix)}
    try:
        rc, out, seconds = role(tmp, "job", extra)
        FIGURES["job mode: role run incl. the in-cluster verify (s)"] = round(seconds, 1)
        pods = _pods(kubectl, "ai-conformance", "job-name=ai-conformance-verify")
        logs = kubectl.run("logs", "-n", "ai-conformance", "job/ai-conformance-verify", check=False).stdout
        pulled = [e.get("message", "") for e in kubectl.json("get", "events", "-n", "ai-conformance")["items"]
                  if e.get("reason") == "Pulled" and "verifier" in e.get("message", "")]
        FIGURES["job mode: image pull"] = pulled[-1:] or "no Pulled event"
        yield {"rc": rc, "out": out, "fetched": tmp / "fetched", "pods": pods, "log": logs, "prefix": prefix}
    finally:
        rc_absent, out_absent, _s = role(tmp, "job-absent", dict(extra, verify_in_cluster_state="absent"))
        left = created.delete()
        assert rc_absent == 0, out_absent[-3000:]
        assert not left, left


def test_job_runs_on_a_real_node_and_the_role_fetches_the_report(job_run):
    assert job_run["rc"] == 0, job_run["out"][-5000:]
    assert len(job_run["pods"]) == 1, [p["metadata"]["name"] for p in job_run["pods"]]
    pod = job_run["pods"][0]
    assert pod["spec"]["nodeSelector"] == REAL
    assert pod["spec"]["nodeName"].startswith("real-node-"), pod["spec"].get("nodeName")
    folder = report_dir_under(job_run["fetched"])
    report = assert_complete_report(folder)
    FIGURES["job mode: verify inside the pod (run started -> finished)"] = [report["run"].get("started"),
                                                                            report["run"].get("finished")]
    results = {c["check"]: c for c in report["checks"]}
    assert set(CHECKS) <= set(results), sorted(results)
    # the behavioural check really ran from inside the cluster: a claim allocated, a pod run, its negative refused
    assert results["dra_support"]["status"] == "Implemented" and results["dra_support"]["verified"], \
        results["dra_support"]
    with open(os.path.join(folder, "junit.xml")) as handle:
        assert list(ET.parse(handle).getroot().iter("testcase")), "junit.xml without testcases"


def test_job_verified_as_the_serviceaccount_and_not_a_kubeconfig(job_run):
    pod = job_run["pods"][0]
    assert pod["spec"]["serviceAccountName"] == "ai-conformance-verifier"
    container = pod["spec"]["containers"][0]
    names = [e["name"] for e in container.get("env") or []]
    assert "KUBECONFIG" not in names and "K8S_AUTH_KUBECONFIG" not in names, names
    for volume in pod["spec"]["volumes"]:
        assert "secret" not in volume, volume  # the token is the projected ServiceAccount volume only
    with open(os.path.join(report_dir_under(job_run["fetched"]), "report.json")) as handle:
        report = json.load(handle)
    assert report["run"]["user"] == SA_USER, report["run"]
    assert "as %s" % SA_USER in job_run["log"], job_run["log"][-3000:]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_job_pod_exits_and_leaves_no_probe_namespace(job_run, kubectl):
    deadline = time.time() + 120
    phase = None
    while time.time() < deadline:  # the role touched /reports/.retrieved: the pod ends well before its keep time
        pods = _pods(kubectl, "ai-conformance", "job-name=ai-conformance-verify")
        phase = pods[0]["status"].get("phase") if pods else "gone"
        if phase in ("Succeeded", "Failed", "gone"):
            break
        time.sleep(3)
    assert phase == "Succeeded", phase
    left = [n["metadata"]["name"] for n in kubectl.json("get", "namespaces")["items"]
            if n["metadata"]["name"].startswith(job_run["prefix"])
            and (n.get("status") or {}).get("phase") != "Terminating"]
    assert not left, left


def test_job_without_its_image_fails_the_role_clearly(lab, lab_kubeconfig, kubectl, verifier_image, tmp_path):
    """Control: an image no node has and no registry serves gives no report, and the role says so (it does not
    wait for nothing beyond verify_in_cluster_wait_timeout, and removes the Job with state=absent)."""
    created = CreatedObjects(kubectl)
    created.apply(load_all(CLUSTERROLE_FILE))
    extra = {"verify_in_cluster_kubeconfig": lab_kubeconfig, "verify_in_cluster_node_selector": REAL,
             "verify_in_cluster_image": "localhost/k8s-ai-conformance-verifier:not-built",
             "verify_in_cluster_name": "ai-conformance-verify-missing", "verify_in_cluster_wait_timeout": 30,
             "verify_in_cluster_fetch_dir": str(tmp_path / "fetched"), "verify_in_cluster_vars": {"verify_checks": []}}
    try:
        rc, out, seconds = role(tmp_path, "missing", extra)
        assert rc != 0, out[-3000:]
        assert "printed no report within 30 s" in out, out[-3000:]
        assert seconds < 180, seconds
        assert not (tmp_path / "fetched").exists() or not os.listdir(str(tmp_path / "fetched"))
    finally:
        rc_absent, out_absent, _s = role(tmp_path, "missing-absent", dict(extra, verify_in_cluster_state="absent"))
        left = created.delete()
        assert rc_absent == 0, out_absent[-3000:]
        assert not left, left


# ---------------------------------------------------------------- sonobuoy

def _sonobuoy(built, kubeconfig, *args, timeout=1200):
    """The sonobuoy CLI built here; (rc, output)."""
    cmd = [built["binary"]] + list(args) + (["--kubeconfig", kubeconfig] if kubeconfig else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def sonobuoy_run(lab, lab_kubeconfig, kubectl, sonobuoy_cli, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("in-cluster-sonobuoy")
    prefix = "ai-conformance-probe-sb%s" % uuid.uuid4().hex[:4]
    render = tmp / "manifests"
    rc, out, _s = role(tmp, "render", {"verify_in_cluster_mode": "sonobuoy",
                                       "verify_in_cluster_render_dir": str(render),
                                       "verify_in_cluster_node_selector": REAL,
                                       "verify_in_cluster_vars": in_cluster_vars(prefix)})
    assert rc == 0, out[-3000:]
    created = CreatedObjects(kubectl)
    namespace = "sonobuoy"
    try:
        created.apply(load_all(render / "verifier-rbac.yaml"))
        created.apply(load_all(render / "sonobuoy-rbac.yaml"))
        started = time.time()
        rc_run, out_run = _sonobuoy(
            sonobuoy_cli, lab_kubeconfig, "run", "--namespace", namespace,
            "--plugin", str(render / "sonobuoy-plugin.yaml"),
            "--sonobuoy-image", sonobuoy_cli["image"], "--image-pull-policy", "IfNotPresent",
            "--aggregator-node-selector", "%s:true" % list(REAL)[0],
            # sonobuoy-rbac.yaml made the namespace (the plugin's ServiceAccount lives there)
            "--skip-preflight=existingnamespace", "--wait=15")
        FIGURES["sonobuoy run --wait (s)"] = round(time.time() - started, 1)
        status = _sonobuoy(sonobuoy_cli, lab_kubeconfig, "status", "--namespace", namespace, "--json")[1]
        rc_get, out_get = _sonobuoy(sonobuoy_cli, lab_kubeconfig, "retrieve", "--namespace", namespace, str(tmp))
        tarballs = sorted(p for p in os.listdir(str(tmp)) if p.endswith(".tar.gz"))
        pods = kubectl.json("get", "pods", "-n", namespace)["items"]
        yield {"rc_run": rc_run, "out_run": out_run, "status": status, "rc_get": rc_get, "out_get": out_get,
               "tarball": str(tmp / tarballs[0]) if tarballs else None, "pods": pods, "tmp": tmp,
               "binary": sonobuoy_cli}
    finally:
        rc_del, out_del = _sonobuoy(sonobuoy_cli, lab_kubeconfig, "delete", "--namespace", namespace, "--wait")
        left = created.delete()
        assert rc_del == 0, out_del[-2000:]
        assert not left, left


def test_sonobuoy_run_completes_on_the_real_nodes(sonobuoy_run):
    assert sonobuoy_run["rc_run"] == 0, sonobuoy_run["out_run"][-3000:] + sonobuoy_run["status"][-2000:]
    nodes = {p["metadata"]["name"]: p["spec"].get("nodeName", "") for p in sonobuoy_run["pods"]}
    assert nodes and all(n.startswith("real-node-") for n in nodes.values()), nodes
    status = json.loads(sonobuoy_run["status"])
    assert status["status"] in ("complete", "failed"), status  # failed = some requirement failed (junit verdict)
    plugin = [p for p in status["plugins"] if p["plugin"] == "ai-conformance"]
    assert plugin and plugin[0]["status"] == "complete", status


def test_sonobuoy_retrieves_our_report(sonobuoy_run):
    assert sonobuoy_run["rc_get"] == 0 and sonobuoy_run["tarball"], sonobuoy_run["out_get"][-2000:]
    with tarfile.open(sonobuoy_run["tarball"]) as archive:
        names = archive.getnames()
        ours = [n for n in names if n.startswith("plugins/ai-conformance/results/")]
        assert any(n.endswith("/PRODUCT.yaml") for n in ours), names[:80]
        assert any(n.endswith("/junit.xml") for n in ours), names[:80]
        assert any(n.endswith("/report.json") for n in ours), names[:80]
        archive.extractall(str(sonobuoy_run["tmp"] / "retrieved"), filter="data")
    folder = report_dir_under(sonobuoy_run["tmp"] / "retrieved" / "plugins" / "ai-conformance" / "results")
    report = assert_complete_report(folder)
    assert set(CHECKS) <= {c["check"] for c in report["checks"]}
    assert report["run"]["user"] == "system:serviceaccount:sonobuoy:ai-conformance-verifier", report["run"]


def test_sonobuoy_results_reads_our_junit(sonobuoy_run):
    tmp = sonobuoy_run["tmp"]
    folder = report_dir_under(tmp / "retrieved" / "plugins" / "ai-conformance" / "results")
    with open(os.path.join(folder, "junit.xml")) as handle:
        ours = sorted(t.get("name") for t in ET.parse(handle).getroot().iter("testcase"))
    assert ours
    rc, out = _sonobuoy(sonobuoy_run["binary"], None, "results", sonobuoy_run["tarball"], "--plugin",
                        "ai-conformance", "--mode", "detailed")
    assert rc == 0, out[-2000:]
    items = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert sorted(i["name"] for i in items) == ours, (ours, out[-2000:])
    rc, summary = _sonobuoy(sonobuoy_run["binary"], None, "results", sonobuoy_run["tarball"], "--plugin",
                            "ai-conformance")
    assert rc == 0 and "Plugin: ai-conformance" in summary and "Total: %d" % len(ours) in summary, summary
    FIGURES["sonobuoy results"] = " | ".join(line.strip() for line in summary.splitlines() if line.strip())


# ---------------------------------------------------------------- cronjob mode

CRON = "ai-conformance-cron"


def _node_exec(node, script):
    """A shell command inside a real node's container (what an admin preparing local storage does)."""
    return subprocess.run(realnodes.PODMAN + ["exec", node, "sh", "-c", script], capture_output=True, text=True,
                          check=False)


def _metrics(kubectl):
    """/metrics of the metrics Service, through the API server's service proxy (as a scraper in the cluster)."""
    path = "/api/v1/namespaces/ai-conformance/services/%s-metrics:metrics/proxy/metrics" % CRON
    return kubectl.run("get", "--raw", path).stdout


def _run_now(kubectl, job, timeout=900):
    """A Job from the CronJob's template (`kubectl create job --from`), waited for; its final phase."""
    kubectl.run("create", "job", job, "--from=cronjob/" + CRON, "-n", "ai-conformance")
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = kubectl.json("get", "job", job, "-n", "ai-conformance").get("status") or {}
        if status.get("succeeded") or status.get("failed"):
            return "succeeded" if status.get("succeeded") else "failed"
        time.sleep(5)
    return "running after %d s" % timeout


@pytest.fixture(scope="module")
def cron_run(lab, lab_kubeconfig, kubectl, verifier_image, tmp_path_factory):
    """The role in cronjob mode on a local PersistentVolume of real-node-0; two runs started from the CronJob."""
    tmp = tmp_path_factory.mktemp("in-cluster-cron")
    tag = uuid.uuid4().hex[:6]
    node, directory, storage_class = "real-node-0", "/var/lib/it-reports-" + tag, "it-local-" + tag
    prepared = _node_exec(node, "mkdir -p %s && chmod 0777 %s" % (directory, directory))
    assert prepared.returncode == 0, prepared.stderr
    volume = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": storage_class},
              "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                       "storageClassName": storage_class, "persistentVolumeReclaimPolicy": "Retain",
                       "local": {"path": directory},
                       "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                           {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}}
    created = CreatedObjects(kubectl)
    created.apply(load_all(CLUSTERROLE_FILE))
    created.apply([volume])
    prefix = "ai-conformance-probe-cj%s" % uuid.uuid4().hex[:4]
    extra = {"verify_in_cluster_kubeconfig": lab_kubeconfig, "verify_in_cluster_mode": "cronjob",
             "verify_in_cluster_name": CRON, "verify_in_cluster_node_selector": REAL,
             "verify_in_cluster_schedule": "0 0 1 1 *",  # runs are started by the test, not by the clock
             "verify_in_cluster_storage_class": storage_class, "verify_in_cluster_vars": in_cluster_vars(prefix)}
    out = {"prefix": prefix}
    try:
        rc, log, seconds = role(tmp, "cron", extra)
        assert rc == 0, log[-4000:]
        FIGURES["cronjob mode: role run (s)"] = round(seconds, 1)
        kubectl.run("rollout", "status", "deployment/%s-metrics" % CRON, "-n", "ai-conformance", "--timeout=300s")
        out["before"] = _metrics(kubectl)
        for run in ("first", "second"):
            started = time.time()
            out[run] = _run_now(kubectl, "%s-%s" % (CRON, run))
            FIGURES["cronjob mode: %s run (s)" % run] = round(time.time() - started, 1)
            out[run + "_metrics"] = _metrics(kubectl)
        out["pods"] = [p for p in _pods(kubectl, "ai-conformance", "app.kubernetes.io/component=verify")
                       if p["metadata"]["name"].startswith(CRON + "-")]  # not the Job mode's pod, kept for its TTL
        out["files"] = _node_exec(node, "cd %s && find . -maxdepth 2 | sort" % directory).stdout.split()
        rc_again, log_again, _s = role(tmp, "cron-again", extra)
        out["again"] = (rc_again, log_again)
        yield out
    finally:
        rc_absent, log_absent, seconds = role(tmp, "cron-absent", dict(extra, verify_in_cluster_state="absent"),
                                              timeout=600)
        FIGURES["cronjob mode: state=absent (s)"] = round(seconds, 1)
        claims = kubectl.json("get", "pvc", "-n", "ai-conformance")["items"]
        left = created.delete()
        _node_exec(node, "rm -rf %s" % directory)
        assert rc_absent == 0, log_absent[-3000:]
        assert not [c["metadata"]["name"] for c in claims if c["metadata"]["name"].startswith(CRON)]
        assert not left, left


def _sample(text, name, **labels):
    """The value of one series of a Prometheus text page (labels: a subset to match), or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all('%s="%s"' % item in line for item in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_cronjob_metrics_before_the_first_run_say_there_is_no_report(cron_run):
    assert _sample(cron_run["before"], "k8s_ai_conformance_report_present") == 0, cron_run["before"][:2000]


def test_cronjob_runs_on_the_volume_and_the_metrics_follow(cron_run):
    assert cron_run["first"] == "succeeded" and cron_run["second"] == "succeeded", cron_run
    for run in ("first_metrics", "second_metrics"):
        text = cron_run[run]
        assert _sample(text, "k8s_ai_conformance_report_present") == 1, text[:2000]
        assert _sample(text, "k8s_ai_conformance_run_errors") == 0, text[:3000]
        # the behavioural check ran in the scheduled pod: its requirement is Implemented and verified
        assert _sample(text, "k8s_ai_conformance_requirement_status", id="dra_support") == 1, text[:3000]
        assert _sample(text, "k8s_ai_conformance_requirement_verified", id="dra_support") == 1, text[:3000]
    # the second run compared with the first (same volume): nothing regressed
    assert _sample(cron_run["second_metrics"], "k8s_ai_conformance_regressions") == 0
    assert _sample(cron_run["second_metrics"], "k8s_ai_conformance_requirement_regressed", id="dra_support") == 0
    assert "./current" in cron_run["files"] and "./metrics.prom" in cron_run["files"], cron_run["files"]
    assert any(f.startswith("./history/") for f in cron_run["files"]), cron_run["files"]


def test_cronjob_pods_ran_on_the_real_node_of_the_volume_as_the_serviceaccount(cron_run):
    pods = cron_run["pods"]
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        assert pod["spec"]["nodeName"] == "real-node-0", pod["spec"].get("nodeName")
        assert pod["spec"]["serviceAccountName"] == "ai-conformance-verifier"
        assert pod["status"]["phase"] == "Succeeded"


def test_cronjob_role_second_run_changes_nothing(cron_run):
    rc, log = cron_run["again"]
    assert rc == 0, log[-3000:]
    assert re.search(r"changed=0\s", log), log[-2000:]
