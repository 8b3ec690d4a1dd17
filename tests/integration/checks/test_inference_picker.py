"""advanced_inference_ingress's machinery on real components: the Gateway API Inference Extension's own endpoint
picker (EPP v1.5.0, built from its module) deployed by the project's own `standalone` chart through a real Helm -
the picker plus an upstream Envoy that asks it over ext_proc and forwards to the pod it names - in front of real
inference-simulator pods (llm-d-inference-sim, vLLM's metric names) on the lab's real nodes
(tests/lab/inference_picker.py).

Measured here: every request through the picker is answered by a pod of the InferencePool and never by a pod outside
it; with no load both pool pods serve; with one pod's queue full (requests sent to it directly, its own
vllm:num_requests_waiting read before and after), every request through the picker goes to the other pod - a routing
decision from the model servers' metrics. Then the check itself on this lab: the lab's gateway (Envoy Gateway)
refuses InferencePool backends (InvalidKind), so advanced_inference_ingress is Not Implemented although the picker's
proxy answers (its optional request part). No InferencePool-implementing gateway can be built here (shared notes):
what is proven is the picker and the check's refusal, not a gateway's InferencePool support.
Needs `make lab` with real nodes."""

import importlib
import json
import re
import subprocess
import time

import pytest
import yaml

from ..conftest import GATEWAY_CLASS, serve_for_real_nodes
from .test_more_checks import assert_cleaned_up, part, run

advanced_inference_ingress = importlib.import_module(
    "ansible_collections.k8s_ai.conformance.plugins.modules.advanced_inference_ingress")
inference = importlib.import_module("ansible_collections.k8s_ai.conformance.plugins.module_utils.inference")
probe = importlib.import_module("ansible_collections.k8s_ai.conformance.plugins.module_utils.probe")

REAL = {"lab.k8s-ai-conformance.io/real-node": "true"}
NAMESPACE = "it-picker"
RELEASE = "picker"
MODEL = "picker-model"
POOL_LABEL = {"it-picker/pool": "sim"}
POOL_PODS = ("sim-a", "sim-b")
DECOY = "sim-decoy"  # the same server, outside the pool's selector: must never answer through the picker
PICKER = "http://%s-epp.%s.svc:8081/v1/chat/completions" % (RELEASE, NAMESPACE)
# One request runs at a time per server (max-num-seqs 1) and every token takes 100 ms: a 600-token request holds a
# server for a minute, queueing whatever comes after it there.
SERVER_ARGS = ["--max-num-seqs", "1", "--inter-token-latency", "100ms"]


@pytest.fixture(scope="module")
def built(lab):
    return serve_for_real_nodes(lab, "inference_picker.py", "the endpoint picker and the model servers cannot run")


def server_pod(name, labels):
    pod = inference.inference_pod(name, MODEL, labels=labels, extra_args=SERVER_ARGS)
    pod["spec"]["nodeSelector"] = dict(REAL)
    # the simulator names the pod that answered in its x-inference-pod header (from these variables)
    pod["spec"]["containers"][0]["env"] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
    return pod


def chart_values(built):
    required = {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": key, "operator": "In", "values": [value]} for key, value in REAL.items()]}]}
    return {"inferencePool": {"modelServers": {"matchLabels": POOL_LABEL}, "targetPorts": [
        {"number": inference.SERVER_PORT}]},
        "inferenceExtension": {
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}},
            "sidecar": {"image": built["envoy_image"]}}}


def helm(built, lab_kubeconfig, *args):
    return subprocess.run([built["helm"], "--kubeconfig", lab_kubeconfig] + list(args), capture_output=True,
                          text=True, timeout=400, check=False)


@pytest.fixture(scope="module")
def picker(built, lab_kubeconfig, kubectl, tmp_path_factory):
    """The CRDs (removed afterwards unless they were there before), the namespace with three servers and a client,
    and the chart's release; everything goes at the end."""
    had_crds = kubectl.run("get", "crd", "inferencepools.inference.networking.k8s.io", check=False).returncode == 0
    for crd in built["crds"]:
        kubectl.run("apply", "--server-side", "-f", crd)
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s",
                "crd/inferencepools.inference.networking.k8s.io")
    kubectl.run("create", "namespace", NAMESPACE)
    values = tmp_path_factory.mktemp("picker") / "values.yaml"
    values.write_text(yaml.safe_dump(chart_values(built)))
    try:
        pods = [server_pod(name, POOL_LABEL) for name in POOL_PODS] + [server_pod(DECOY, {})]
        client = probe.command_pod("client", "sleep 3600")
        client["spec"]["nodeSelector"] = dict(REAL)
        kubectl.apply(pods + [client], namespace=NAMESPACE)
        started = time.time()
        installed = helm(built, lab_kubeconfig, "install", RELEASE, built["chart"], "-n", NAMESPACE, "-f", str(values),
                         "--wait", "--timeout", "300s")
        seconds = round(time.time() - started, 1)
        assert installed.returncode == 0, installed.stderr + describe(kubectl)
        kubectl.run("wait", "--for=condition=Ready", "--timeout=120s", "-n", NAMESPACE, "pod", "--all")
        yield {"seconds": seconds}
    finally:
        helm(built, lab_kubeconfig, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "120s")
        kubectl.run("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s", check=False)
        if not had_crds:
            for crd in built["crds"]:
                kubectl.run("delete", "-f", crd, "--wait=false", check=False)


def describe(kubectl):
    pods = kubectl.run("get", "pods", "-n", NAMESPACE, "-o", "wide", check=False).stdout
    logs = kubectl.run("logs", "-n", NAMESPACE, "deploy/%s-epp" % RELEASE, "--all-containers", "--tail", "30",
                       check=False)
    return "\n" + pods + logs.stdout[-3000:] + logs.stderr[-1000:]


def ask(kubectl, count, tag, url=PICKER):
    """`count` chat completions from the client pod, one after another, each with a prompt of its own (no
    prefix-cache affinity between them); the answering pod of each (x-inference-pod), or the HTTP status line when
    none. (busybox 1.35's `wget -T` crashes: `timeout` instead.)"""
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "@PROMPT@"}], "max_tokens": 2,
                       "ignore_eos": True})
    script = ("i=0; while [ $i -lt %d ]; do i=$((i+1)); "
              "b=$(echo '%s' | sed \"s/@PROMPT@/%s request $i of $$/\"); timeout 60 wget -S -q -O /dev/null "
              "--header 'Content-Type: application/json' --post-data \"$b\" %s 2>&1 "
              "| grep -i -E 'x-inference-pod|HTTP/' | tr '\\n' ' '; echo; done" % (count, body, tag, url))
    out = kubectl.run("exec", "-n", NAMESPACE, "client", "--", "sh", "-c", script).stdout
    answers = []
    for line in out.rstrip("\n").split("\n"):
        found = re.search(r"x-inference-pod:\s*(\S+)", line, re.I)
        answers.append(found.group(1) if found else "no pod: " + line.strip())
    assert len(answers) == count, out
    return answers


def queue_of(kubectl, pod):
    """(running, waiting) requests of a server, from its own /metrics."""
    text = kubectl.run("get", "--raw", "/api/v1/namespaces/%s/pods/%s:%d/proxy/metrics" % (
        NAMESPACE, pod, inference.SERVER_PORT)).stdout

    def gauge(name):
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))
    return gauge("vllm:num_requests_running"), gauge("vllm:num_requests_waiting")


def test_the_chart_installs_the_picker_and_its_pool(picker, kubectl):
    pool = kubectl.json("get", "inferencepool", RELEASE, "-n", NAMESPACE)
    assert pool["spec"]["selector"]["matchLabels"] == POOL_LABEL
    assert pool["spec"]["endpointPickerRef"]["name"] == "%s-epp" % RELEASE
    deploy = kubectl.json("get", "deployment", "%s-epp" % RELEASE, "-n", NAMESPACE)
    images = sorted(c["image"] for c in deploy["spec"]["template"]["spec"]["containers"])
    assert images == sorted(["registry.k8s.io/gateway-api-inference-extension/epp:v1.5.0",
                             "docker.io/envoyproxy/envoy:distroless-v1.39.1"])
    assert deploy["status"].get("readyReplicas") == 1, describe(kubectl)


def test_every_request_is_answered_by_a_pool_pod_and_both_serve(picker, kubectl):
    answers = ask(kubectl, 20, "idle")
    assert set(answers) <= set(POOL_PODS), answers  # never the decoy, never unanswered
    # 20 requests with distinct prompts between two idle servers: both chosen (all on one has odds 2^-19)
    assert set(answers) == set(POOL_PODS), answers


@pytest.mark.usefixtures("envoy_gateway")
def test_the_check_does_not_count_the_picker_as_a_gateway_implementation(picker, lab_kubeconfig, kubectl):
    """With the CRDs served and Envoy Gateway's class Accepted, the check still finds no gateway that routes to an
    InferencePool (Envoy Gateway answers InvalidKind at once), although a request through the picker is answered."""
    result = run(advanced_inference_ingress, lab_kubeconfig, model=MODEL, timeout=60, gateway_class=GATEWAY_CLASS,
                 inference_service="%s/%s-epp:8081" % (NAMESPACE, RELEASE))
    assert part(result, "InferencePool API")["outcome"] == "passed", part(result, "InferencePool API")["detail"]
    assert part(result, "inference request")["outcome"] == "passed", part(result, "inference request")["detail"]
    resolved = part(result, "resolved by a Gateway")
    assert resolved["outcome"] == "failed" and "InvalidKind" in resolved["detail"], resolved
    missing = part(result, "missing InferencePool")
    assert missing["outcome"] == "failed" and "not BackendNotFound" in missing["detail"], missing
    assert result["status"] == "Not Implemented", result["parts"]
    assert_cleaned_up(kubectl, result)


def test_the_picker_routes_away_from_the_server_whose_queue_is_full(picker, kubectl):
    """Runs last: the busy server stays busy for minutes after (its requests run on when their client is gone)."""
    busy, idle = POOL_PODS
    ip = kubectl.json("get", "pod", busy, "-n", NAMESPACE)["status"]["podIP"]
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "long"}], "max_tokens": 600,
                       "ignore_eos": True})
    load = ("for i in 1 2 3; do timeout 300 wget -q -O /dev/null --header 'Content-Type: application/json' "
            "--post-data '%s' http://%s:%d/v1/chat/completions & done; wait" % (body, ip, inference.SERVER_PORT))
    loader = subprocess.Popen([kubectl.binary, "--kubeconfig", kubectl.kubeconfig, "exec", "-n", NAMESPACE, "client",
                               "--", "sh", "-c", load], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while queue_of(kubectl, busy)[1] < 1 and time.time() < deadline:
            time.sleep(1)
        before = queue_of(kubectl, busy)
        assert before[0] >= 1 and before[1] >= 1, before  # one running, the rest waiting on the busy server
        time.sleep(2)  # the picker refreshes the servers' metrics every 50 ms; give it a margin
        answers = ask(kubectl, 10, "loaded")
        after = queue_of(kubectl, busy)
        assert after[1] >= 1, after  # the busy server was still queueing when the last request was routed
        assert answers == [idle] * 10, (before, answers, after)
    finally:
        loader.kill()
