"""otel_collector's manifests mode and the otel_tracing check against a real collector on the lab's real nodes: the
role runs the collector (tests/lab/otel_collector.py: the upstream collector modules at chart 0.170.0's appVersion,
under otel/opentelemetry-collector-k8s) from its own objects, no Helm; otel_tracing finds its Service, a span it
sends - from a probe pod to the Service's cluster DNS name, and from the controller through the API server's proxy -
is accepted and reaches the collector's pipeline (the debug exporter logs its trace id), a malformed payload
is refused by the collector's OTLP receiver. A second run changes nothing; state absent removes everything, and then
the check no longer finds a collector. Needs `make lab` with real nodes."""

import importlib
import os
import time

import pytest

from ..conftest import LAB, image_ids, serve_for_real_nodes
from .test_monitoring import run_role
from .test_more_checks import assert_cleaned_up, part, run

otel_tracing = importlib.import_module("ansible_collections.k8s_ai.conformance.plugins.modules.otel_tracing")

REAL = {"lab.k8s-ai-conformance.io/real-node": "true"}
NAMESPACE = "it-otel"
RELEASE = "it-otel-collector"
LOG_WAIT = 60  # seconds for the debug exporter to log a span (batch sends every 200 ms)


def role_vars(lab_kubeconfig, **extra):
    out = {"otel_collector_kubeconfig": lab_kubeconfig, "otel_collector_install": "manifests",
           "otel_collector_namespace": NAMESPACE, "otel_collector_release_name": RELEASE,
           "otel_collector_node_selector": REAL, "otel_collector_wait_timeout": 240,
           # the lab's collector has no prometheus receiver (tests/lab/otel_collector.py)
           "otel_collector_scrape_annotated_pods": False, "otel_collector_accelerator_exporter_pod_labels": {},
           "otel_collector_exporters": {"debug": {"verbosity": "detailed"}}}
    out.update(extra)
    return out


@pytest.fixture(scope="module")
def built(lab):
    return serve_for_real_nodes(lab, "otel_collector.py", "the collector cannot run")


def left_behind(kubectl):
    """What of the role's objects still exists."""
    found = []
    for kind in ("deployments", "services", "configmaps", "serviceaccounts"):
        proc = kubectl.run("get", kind, RELEASE, "-n", NAMESPACE, "-o", "name", check=False)
        if proc.returncode == 0:
            found.append(proc.stdout.strip())
    for kind in ("clusterroles", "clusterrolebindings"):
        proc = kubectl.run("get", kind, "%s-%s" % (NAMESPACE, RELEASE), "-o", "name", check=False)
        if proc.returncode == 0:
            found.append(proc.stdout.strip())
    return found


@pytest.fixture(scope="module")
def installed(built, lab_kubeconfig, kubectl):
    started = time.time()
    code, counts, out = run_role("otel_collector", role_vars(lab_kubeconfig))
    seconds = round(time.time() - started, 1)
    try:
        yield {"code": code, "counts": counts, "out": out, "seconds": seconds}
    finally:
        gone, _counts, out_absent = run_role("otel_collector", role_vars(lab_kubeconfig, otel_collector_state="absent"))
        remaining = left_behind(kubectl)
        kubectl.run("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", check=False)
        assert gone == 0, out_absent
        assert remaining == [], remaining


def collector_pods(kubectl):
    return kubectl.json("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/instance=" + RELEASE)["items"]


def test_the_role_runs_the_collector_from_its_own_manifests(installed, built, kubectl):
    assert installed["code"] == 0, installed["out"]
    pods = [p for p in collector_pods(kubectl) if p["status"].get("phase") == "Running"]
    assert len(pods) == 1 and pods[0]["spec"]["nodeName"].startswith("real-node-"), pods
    assert "docker.io/" + pods[0]["spec"]["containers"][0]["image"] == built["image"]  # the short name the role sets
    ids = image_ids(os.path.join(LAB, "images-on-demand", "otel-collector.tar"))
    assert built["digest"] == ids[0]
    assert pods[0]["status"]["containerStatuses"][0]["imageID"].endswith(ids), ids  # the lab's build
    ready = [c for c in pods[0]["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True", pods[0]["status"]  # through the health_check extension
    ports = {p["name"]: p["port"] for p in kubectl.json("get", "service", RELEASE, "-n", NAMESPACE)["spec"]["ports"]}
    assert ports == {"otlp": 4317, "otlp-http": 4318}, ports
    print("\notel_collector role (manifests): %s s" % installed["seconds"])


def span_reaches_the_pipeline(result, kubectl):
    """The trace id of the span the check sent appears in the collector's log (debug exporter): exported by the
    pipeline, not only answered 200."""
    sent = [e for e in result["evidence"] if e["title"] == "export one span over OTLP/HTTP"]
    trace_id = sent[0]["request"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
    pod = collector_pods(kubectl)[0]["metadata"]["name"]
    deadline, logs = time.time() + LOG_WAIT, ""
    while trace_id not in logs and time.time() < deadline:
        time.sleep(2)
        logs = kubectl.run("logs", "-n", NAMESPACE, pod, check=False).stdout
    assert trace_id in logs, logs[-3000:]
    return sent[0]


@pytest.mark.parametrize("send_from", ["pod", "controller"])
def test_a_span_of_otel_tracing_reaches_the_collector(installed, lab_kubeconfig, kubectl, send_from):
    """pod (the default): a probe pod on a real node posts to the Service's cluster DNS name, as an instrumented
    service would (cluster DNS, kube-proxy, the collector); controller: through the API server's service proxy."""
    assert installed["code"] == 0, installed["out"]
    # the collector's Service is discovered, not named
    result = run(otel_tracing, lab_kubeconfig, send_from=send_from, command_node_selector=REAL)
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "%s/%s:4318" % (NAMESPACE, RELEASE) in part(result, "collector with an OTLP/HTTP endpoint")["detail"]
    accepted = part(result, "accepted by the collector")
    assert accepted["outcome"] == "passed", result["parts"]
    refused = part(result, "malformed OTLP payload is rejected")
    assert refused["outcome"] == "passed" and "HTTP 400" in refused["detail"], result["parts"]
    sent = span_reaches_the_pipeline(result, kubectl)
    if send_from == "pod":
        address = "http://%s.%s.svc:4318" % (RELEASE, NAMESPACE)
        assert "from a probe pod to " + address in accepted["detail"], accepted
        assert sent["action"].startswith("POST %s/v1/traces from pod send-span" % address), sent["action"]
    else:
        assert "from the controller" in accepted["detail"] and "/proxy/v1/traces" in sent["action"], sent
    assert_cleaned_up(kubectl, result)


def test_a_second_run_changes_nothing(installed, lab_kubeconfig):
    again, counts, out = run_role("otel_collector", role_vars(lab_kubeconfig))
    assert again == 0 and counts.get("changed") == "0", out


def test_without_the_collector_otel_tracing_finds_none(installed, lab_kubeconfig, kubectl):
    """The control: the same check, the collector removed by the role (its teardown runs absent once more)."""
    gone, _counts, out = run_role("otel_collector", role_vars(lab_kubeconfig, otel_collector_state="absent"))
    assert gone == 0, out
    assert left_behind(kubectl) == []
    result = run(otel_tracing, lab_kubeconfig, command_node_selector=REAL)
    assert result["status"] != "Implemented", result["parts"]
    assert part(result, "collector with an OTLP/HTTP endpoint")["outcome"] != "passed", result["parts"]
    assert part(result, "accepted by the collector")["outcome"] != "passed", result["parts"]
