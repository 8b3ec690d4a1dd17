"""otel_collector's manifests mode and the otel_tracing check against a real collector on the lab's real nodes: the
role runs the collector (tests/lab/otel_collector.py: the upstream collector modules at chart 0.170.0's appVersion,
under otel/opentelemetry-collector-k8s) from its own objects, no Helm; otel_tracing finds its Service, a span it
sends - from a probe pod to the Service's cluster DNS name, and from the controller through the API server's proxy -
is accepted and reaches the collector's pipeline (the debug exporter logs its trace id), a malformed payload
is refused by the collector's OTLP receiver. A second run changes nothing; state absent removes everything, and then
the check no longer finds a collector. Needs `make lab` with real nodes."""

import importlib
import os
import re
import time

import pytest

from ..conftest import LAB, image_ids, serve_for_real_nodes
from .test_monitoring import run_role
from .test_more_checks import assert_cleaned_up, part, run

otel_tracing = importlib.import_module("ansible_collections.k8s_ai.conformance.plugins.modules.otel_tracing")
inference = importlib.import_module("ansible_collections.k8s_ai.conformance.plugins.module_utils.inference")
probe = importlib.import_module("ansible_collections.k8s_ai.conformance.plugins.module_utils.probe")

REAL = {"lab.k8s-ai-conformance.io/real-node": "true"}
NAMESPACE = "it-otel"
RELEASE = "it-otel-collector"
LOG_WAIT = 60  # seconds for the debug exporter to log a span (batch sends every 200 ms)
SCRAPE_WAIT = 120  # seconds for a new pod to be discovered and scraped (5 s interval) and its samples logged
STANDIN = "accelerator-metrics-standin"  # tests/lab/metrics_standin.py: DCGM's metric and label names, no GPU
DRA_DEVICE_CLASS = "gpu.example.com"  # the real nodes' DRA driver (tests/lab/realnodes.py)


def role_vars(lab_kubeconfig, **extra):
    out = {"otel_collector_kubeconfig": lab_kubeconfig, "otel_collector_install": "manifests",
           "otel_collector_namespace": NAMESPACE, "otel_collector_release_name": RELEASE,
           "otel_collector_node_selector": REAL, "otel_collector_wait_timeout": 240,
           # annotated pods, and the lab's accelerator metrics stand-in as the accelerator exporter
           "otel_collector_scrape_annotated_pods": True, "otel_collector_scrape_interval": "5s",
           "otel_collector_accelerator_exporter_pod_labels": {"app.kubernetes.io/name": STANDIN},
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


def data_points(logs, metric):
    """The data points the debug exporter (verbosity detailed) logged for `metric`: each {attribute: value}, with
    the sample under "value"."""
    points = []
    for block in logs.split("Metric #")[1:]:
        if "-> Name: %s\n" % metric not in block:
            continue
        for chunk in block.split("DataPoints #")[1:]:
            point = dict(re.findall(r"-> ([\w.:]+): \w+\((.*)\)", chunk))
            value = re.search(r"Value: ([\d.eE+-]+)", chunk)
            point["value"] = float(value.group(1)) if value else None
            points.append(point)
    return points


def recent_log(kubectl):
    """The last 20 s of the running collector's log (a rollout may leave a terminating pod beside it)."""
    collector = [p["metadata"]["name"] for p in collector_pods(kubectl) if p["status"].get("phase") == "Running"
                 and not p["metadata"].get("deletionTimestamp")][0]
    return kubectl.run("logs", "-n", NAMESPACE, collector, "--since=20s", check=False).stdout


def wait_for_point(kubectl, metric, pod_name):
    """The first data point of `metric` whose pod attribute names `pod_name`, from the collector's recent log."""
    deadline, seen = time.time() + SCRAPE_WAIT, []
    while time.time() < deadline:
        seen = data_points(recent_log(kubectl), metric)
        found = [p for p in seen if p.get("pod") == pod_name]
        if found:
            return found[0]
        time.sleep(3)
    raise AssertionError("no %s for pod %s in the collector's log; last points: %s" % (metric, pod_name, seen[:5]))


def test_the_collector_scrapes_annotated_pods_and_attributes_gpu_series_to_their_consumer(installed, kubectl):
    """The prometheus receiver's two jobs on real pods. kubernetes-pods: an annotated simulator's vLLM gauge carries
    its own pod/namespace. accelerator-exporters (honor_labels, the exporter's identity in exporter_pod): the stand-in
    labels a device's series with the pod that holds it, as DCGM does, and that pod/namespace is what the collector
    keeps. The control (below) is the configuration this replaced."""
    assert installed["code"] == 0, installed["out"]
    gpu_workloads(kubectl)
    served = wait_for_point(kubectl, "vllm:num_requests_running", "scraped-sim")
    assert served.get("namespace") == NAMESPACE and served.get("model_name") == "scrape-model", served
    used = wait_for_point(kubectl, "DCGM_FI_DEV_GPU_UTIL", "gpu-consumer")
    assert used.get("namespace") == NAMESPACE and used["value"] == 100, used
    assert used.get("exporter_pod", "").startswith(STANDIN + "-"), used
    assert "exported_pod" not in used and "exported_namespace" not in used, used


def gpu_workloads(kubectl):
    """An annotated simulator and a pod holding a device of the real nodes' DRA driver, Ready (kept for the module:
    the namespace goes at its end)."""
    server = inference.inference_pod("scraped-sim", "scrape-model", annotations=inference.SCRAPE_ANNOTATIONS)
    server["spec"]["nodeSelector"] = dict(REAL)
    claim = probe.claim_manifest("gpu", DRA_DEVICE_CLASS)
    consumer = probe.pod_manifest("gpu-consumer", claims={"gpu": {"resourceClaimName": "gpu"}})
    consumer["spec"]["nodeSelector"] = dict(REAL)
    kubectl.apply([server, claim, consumer], namespace=NAMESPACE)
    kubectl.run("wait", "--for=condition=Ready", "-n", NAMESPACE, "--timeout=120s", "pod/scraped-sim",
                "pod/gpu-consumer")


def test_a_second_run_changes_nothing(installed, lab_kubeconfig):
    again, counts, out = run_role("otel_collector", role_vars(lab_kubeconfig))
    assert again == 0 and counts.get("changed") == "0", out


def test_the_control_scraping_the_exporter_as_any_pod_misattributes_its_series(installed, lab_kubeconfig, kubectl):
    """The control: without the accelerator-exporters job (no exporter labels), the stand-in is scraped as any
    annotated pod - target labels pod/namespace are the exporter's, the consumer is pushed to exported_pod. This is
    the attribution the role's job prevents, so the assertions above can fail."""
    code, _counts, out = run_role("otel_collector", role_vars(lab_kubeconfig,
                                                              otel_collector_accelerator_exporter_pod_labels={}))
    assert code == 0, out
    kubectl.run("rollout", "status", "-n", NAMESPACE, "deployment/" + RELEASE, "--timeout=120s")
    gpu_workloads(kubectl)
    deadline, found = time.time() + SCRAPE_WAIT, []
    while not found and time.time() < deadline:
        found = [p for p in data_points(recent_log(kubectl), "DCGM_FI_DEV_GPU_UTIL")
                 if p.get("exported_pod") == "gpu-consumer"]
        time.sleep(3)
    assert found, "the consumer never showed as exported_pod"
    assert found[0].get("pod", "").startswith(STANDIN + "-"), found[0]  # attributed to the exporter


def test_without_the_collector_otel_tracing_finds_none(installed, lab_kubeconfig, kubectl):
    """The control: the same check, the collector removed by the role (its teardown runs absent once more)."""
    gone, _counts, out = run_role("otel_collector", role_vars(lab_kubeconfig, otel_collector_state="absent"))
    assert gone == 0, out
    assert left_behind(kubectl) == []
    result = run(otel_tracing, lab_kubeconfig, command_node_selector=REAL)
    assert result["status"] != "Implemented", result["parts"]
    assert part(result, "collector with an OTLP/HTTP endpoint")["outcome"] != "passed", result["parts"]
    assert part(result, "accepted by the collector")["outcome"] != "passed", result["parts"]
