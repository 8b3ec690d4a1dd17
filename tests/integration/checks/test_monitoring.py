"""The monitoring role and ai_service_metrics on the lab's real nodes: a real Prometheus (3.16.0, built from its Go
module) discovers pods through the API server and scrapes llm-d's vLLM simulator; a known number of requests shows in
a query; an unannotated server is not collected. The negatives can fail: a Prometheus that does not discover the
probe's namespace never sees its requests, and one that scrapes every pod collects the unannotated server too.
Needs `make lab` with real nodes (the images are built by it)."""

import json
import os
import subprocess
import sys
import tempfile
import uuid

import pytest
import yaml

from .test_more_checks import ai_service_metrics, assert_cleaned_up, part, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
REAL = {"lab.k8s-ai-conformance.io/real-node": "true"}
LAB_VARS = {"monitoring_node_selector": REAL, "monitoring_scrape_interval": "5s", "monitoring_scrape_timeout": "5s",
            "monitoring_wait_timeout": 180}


def role(kubeconfig, check=False, **extra):
    """Run the monitoring role against the lab; return (returncode, PLAY RECAP counts, output)."""
    return run_role("monitoring", dict(LAB_VARS, monitoring_kubeconfig=kubeconfig, **extra), check=check)


def run_role(name, role_vars, check=False):
    """Run one role of the collection on localhost with these variables; (returncode, recap counts, output)."""
    work = tempfile.mkdtemp(prefix="it-%s-" % name)
    play = os.path.join(work, "play.yml")
    with open(play, "w") as handle:
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False,
                         "roles": [{"role": "k8s_ai.conformance." + name}]}], handle)
    variables = os.path.join(work, "vars.json")
    with open(variables, "w") as handle:
        json.dump(role_vars, handle)
    bin_dir = os.path.join(ROOT, ".venv", "bin")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_ROLES_PATH=os.path.join(ROOT, "roles"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    argv = [os.path.join(bin_dir, "ansible-playbook"), "-i", "localhost,", "-c", "local", play, "-e",
            "@" + variables] + (["--check"] if check else [])
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, check=False)
    recap = [line for line in proc.stdout.splitlines() if line.startswith("localhost")]
    counts = dict(p.split("=") for p in recap[-1].split(":", 1)[1].split()) if recap else {}
    return proc.returncode, counts, proc.stdout[-4000:] + proc.stderr[-2000:]


def promql(kubectl, service, query):
    namespace, _sep, rest = service.partition("/")
    name, _sep, port = rest.partition(":")
    path = "/api/v1/namespaces/%s/services/%s:%s/proxy/api/v1/query?query=%s" % (
        namespace, name, port, query.replace(" ", "%20").replace("{", "%7B").replace("}", "%7D").replace('"', "%22"))
    return json.loads(kubectl.run("get", "--raw", path).stdout)["data"]["result"]


@pytest.fixture(scope="module")
def prometheus(lab_kubeconfig, kubectl):
    """The site's Prometheus (observability/prometheus-server), as make demo's site.yml installs it."""
    code, counts, out = role(lab_kubeconfig)
    assert code == 0, out
    return {"service": "observability/prometheus-server:80", "first": counts}


@pytest.fixture
def other_prometheus(lab_kubeconfig):
    """A second Prometheus from the same role in a namespace of its own, removed afterwards."""
    made = []

    def install(**extra):
        namespace = "it-mon-%s" % uuid.uuid4().hex[:6]
        variables = dict(monitoring_namespace=namespace, monitoring_name="prom", **extra)
        made.append(variables)
        code, _counts, out = role(lab_kubeconfig, **variables)
        assert code == 0, out
        return "%s/prom:80" % namespace
    yield install
    for variables in made:
        role(lab_kubeconfig, monitoring_state="absent", monitoring_remove_namespace=True, **variables)


def test_role_runs_prometheus_on_a_real_node_idempotently(prometheus, lab_kubeconfig, kubectl):
    again, counts, out = role(lab_kubeconfig)
    assert again == 0 and counts.get("changed") == "0", out
    checked, counts, out = role(lab_kubeconfig, check=True)
    assert checked == 0 and counts.get("changed") == "0", out
    pods = kubectl.json("get", "pods", "-n", "observability", "-l", "app.kubernetes.io/instance=prometheus-server")
    running = [p for p in pods["items"] if p["status"].get("phase") == "Running"]
    assert running and all(p["spec"]["nodeName"].startswith("real-node-") for p in running), pods["items"]
    # The real server: its own build info, and the annotation-driven job discovering pods through the API server.
    build = promql(kubectl, prometheus["service"], "prometheus_build_info")
    assert build and build[0]["metric"]["version"] == "3.16.0", build
    up = promql(kubectl, prometheus["service"], 'up{job="kubernetes-pods"}')
    prom_up = promql(kubectl, prometheus["service"], 'up{job="prometheus"}')
    assert prom_up and prom_up[0]["value"][1] == "1", prom_up
    assert all(s["metric"].get("namespace") and s["metric"].get("pod") for s in up), up


def test_ai_service_metrics_implemented_on_the_real_prometheus(prometheus, lab_kubeconfig, kubectl):
    result = run(ai_service_metrics, lab_kubeconfig, prometheus_service=prometheus["service"],
                 command_node_selector=REAL, timeout=120, scrape_timeout=90)
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    positive = part(result, "requests show in a query")["detail"]
    assert positive.startswith("3 requests served, 3 collected"), positive
    # The series carries what the kubernetes-pods job attaches: the probe pod, its namespace and its real node.
    assert 'pod="inference-server"' in positive and 'node="real-node-' in positive, positive
    negative = part(result, "not collected")["detail"]
    assert "exposes vllm:request_success_total = 3" in negative, negative
    assert_cleaned_up(kubectl, result)


def test_a_prometheus_that_does_not_discover_the_probe_fails_the_positive(other_prometheus, lab_kubeconfig):
    # Its kubernetes-pods job discovers its own namespace only: the probe's annotated server is never scraped.
    service = other_prometheus(monitoring_pod_namespaces=["it-mon-nothing-here"])
    result = run(ai_service_metrics, lab_kubeconfig, prometheus_service=service, command_node_selector=REAL,
                 timeout=120, scrape_timeout=30)
    assert part(result, "query API answers")["outcome"] == "passed"  # the query API itself works
    assert part(result, "requests show in a query")["outcome"] == "failed", result["parts"]
    assert result["status"] == "Not Implemented"


def test_a_prometheus_that_scrapes_every_pod_fails_the_negative(other_prometheus, lab_kubeconfig):
    # Its own annotation job sees nothing (another namespace); a job of its own scrapes every pod's port 8000,
    # annotated or not - once each, so the positive's count still holds.
    every_pod = {"job_name": "every-pod", "kubernetes_sd_configs": [{"role": "pod"}], "relabel_configs": [
        {"source_labels": ["__meta_kubernetes_pod_container_port_number"], "regex": "8000", "action": "keep"}]}
    service = other_prometheus(monitoring_pod_namespaces=["it-mon-nothing-here"],
                               monitoring_extra_scrape_configs=[every_pod])
    result = run(ai_service_metrics, lab_kubeconfig, prometheus_service=service, command_node_selector=REAL,
                 timeout=120, scrape_timeout=90)
    assert part(result, "requests show in a query")["outcome"] == "passed", result["parts"]
    negative = part(result, "not collected")
    assert negative["outcome"] == "failed" and "no longer true" in negative["detail"], negative
    assert result["status"] == "Partially Implemented"
