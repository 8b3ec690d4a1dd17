"""accelerator_metrics, ai_service_metrics, otel_tracing, fault_detection: verdicts on a fake API."""

import json
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest
from checkfake import Fake, detail, gpu_slice, node, now_iso, outcome, run

from ansible_collections.k8s_ai.conformance.plugins.modules import (
    accelerator_metrics,
    ai_service_metrics,
    fault_detection,
    otel_tracing,
)

DCGM = """# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %%).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",Hostname="%(node)s",modelName="H100"} 37
DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-b",Hostname="%(node)s",modelName="H100"} 0
DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-a",Hostname="%(node)s"} 1024
DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-b",Hostname="%(node)s"} 0
DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="%(node)s"} 41
DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-a",Hostname="%(node)s"} 71.5
DCGM_FI_PROF_NVLINK_TX_BYTES{gpu="0",UUID="GPU-a",Hostname="%(node)s"} 1e+06
"""


# ---- accelerator_metrics ------------------------------------------------------------------------
def test_exposition_parser_reads_labels_and_flags_garbage():
    samples, bad = accelerator_metrics.parse_exposition(
        'a_total{x="1",msg="say \\"hi\\"",} 3 1700000000\nb NaN\n# comment\nthis is not a metric\nc{x="1"} 1.5e3\n')
    assert samples[0] == ("a_total", {"x": "1", "msg": 'say "hi"'}, 3.0)
    assert samples[2] == ("c", {"x": "1"}, 1500.0)
    assert bad == [4]


def test_coverage_is_per_accelerator_and_vendor_neutral():
    amd = 'gpu_gfx_activity{gpu_id="0",hostname="n1"} 5\ngpu_used_vram{gpu_id="0",hostname="n1"} 7\n' \
          'gpu_gfx_activity{gpu_id="1",hostname="n1"} 5\n'
    samples, _unused = accelerator_metrics.parse_exposition(amd)
    per, names = accelerator_metrics.coverage({"src": samples})
    assert per[("n1", "0")] == {"utilization", "memory"}
    assert per[("n1", "1")] == {"utilization"}  # accelerator 1 lacks memory: must be reported
    assert names["memory"] == {"gpu_used_vram"}


def exporter_cluster(text_by_pod, status=200):
    fake = Fake({"discovery.k8s.io/v1": [("endpointslices", "EndpointSlice", True)]})
    fake.add("v1", "services", {"metadata": {"name": "nvidia-dcgm-exporter", "labels": {"app": "nvidia-dcgm-exporter"}},
                                "spec": {"ports": [{"name": "gpu-metrics", "port": 9400, "targetPort": 9400}]}},
             namespace="gpu-operator")
    fake.add("discovery.k8s.io/v1", "endpointslices", {
        "metadata": {"name": "dcgm-x", "labels": {"kubernetes.io/service-name": "nvidia-dcgm-exporter"}},
        "ports": [{"name": "gpu-metrics", "port": 9400}],
        "endpoints": [{"nodeName": pod.split("-", 1)[1], "targetRef": {"kind": "Pod", "name": pod}}
                      for pod in text_by_pod]},
             namespace="gpu-operator")
    for n in text_by_pod:
        fake.add("v1", "nodes", node(n.split("-", 1)[1]))
        fake.add("resource.k8s.io/v1", "resourceslices", gpu_slice(n.split("-", 1)[1], 2))

    def serve(method, path, query, body):
        pod = path.split("/pods/")[1].split(":")[0]
        return status, text_by_pod[pod]
    fake.route("GET", "/api/v1/namespaces/gpu-operator/pods/", serve)
    return fake


def test_accelerator_metrics_implemented_with_dcgm_on_two_nodes():
    fake = exporter_cluster({"dcgm-" + n: DCGM % {"node": n} for n in ("n1", "n2")})
    result = run(accelerator_metrics, fake)
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "4 accelerators on 2 node(s)" in [p["detail"] for p in result["parts"]][2]
    assert outcome(result, "temperature") == "passed"


def test_accelerator_metrics_without_memory_metric_is_not_implemented():
    text = "\n".join(line for line in (DCGM % {"node": "n1"}).splitlines() if "FB_USED" not in line)
    result = run(accelerator_metrics, exporter_cluster({"dcgm-n1": text}))
    assert outcome(result, "utilization and memory") == "failed"
    assert result["status"] == "Partially Implemented"


def test_accelerator_metrics_absent_exporter_and_unreadable_exporter():
    result = run(accelerator_metrics, Fake())
    assert result["status"] == "Not Implemented" and result["verified"]
    assert outcome(result, "exporter is found") == "failed"

    result = run(accelerator_metrics, exporter_cluster({"dcgm-n1": "no route"}, status=503))
    assert outcome(result, "Prometheus text format") == "error"
    assert result["verified"] is False and result["status"] == "Not Implemented"


def test_accelerator_metrics_flags_phantom_accelerators():
    many = DCGM % {"node": "n1"} + 'DCGM_FI_DEV_GPU_UTIL{gpu="2",UUID="GPU-c",Hostname="n1"} 1\n' \
        'DCGM_FI_DEV_FB_USED{gpu="2",UUID="GPU-c",Hostname="n1"} 1\n'
    result = run(accelerator_metrics, exporter_cluster({"dcgm-n1": many}))
    assert outcome(result, "more accelerators than") == "failed"  # 3 in metrics, 2 advertised on n1
    assert result["status"] == "Implemented"  # an optional part never lowers the status


# ---- ai_service_metrics -------------------------------------------------------------------------
def prometheus_cluster(scrapes=True, scrape_all=False, control_exposes=True, refuse=False):
    """A query API over two fake inference servers: each counts the completions it answered; the query API sees
    the annotated one's counter (scrapes), or every server's (scrape_all)."""
    fake = Fake()
    fake.add("v1", "services", {"metadata": {"name": "prometheus-k8s"}, "spec": {"ports": [{"name": "web",
                                                                                           "port": 9090}]}},
             namespace="monitoring")
    served = {}  # model -> completions answered

    def model_of(pod_path):
        namespace, pod = pod_path.split("/namespaces/")[1].split("/pods/")
        return namespace + ("-unannotated" if pod.startswith("inference-server-unannotated") else "")

    def server(method, path, raw_query, body):
        model = model_of(path.split("/proxy")[0].split(":")[0])
        if path.endswith("/v1/chat/completions"):
            if refuse:
                return 429, {"error": "busy"}
            assert (body if isinstance(body, dict) else json.loads(body))["model"] == model
            served[model] = served.get(model, 0) + 1
            return 200, {"choices": [{"message": {"content": "pong"}}]}
        if path.endswith("/metrics") and (control_exposes or not model.endswith("-unannotated")):
            return 200, "# TYPE vllm:request_success_total counter\n" + (
                'vllm:request_success_total{finish_reason="stop",model_name="%s"} %d\n' % (model, served.get(model, 0)))
        return 200, "# nothing\n"
    fake.route("POST", "/api/v1/namespaces/", lambda m, p, q, b: server(m, p, q, b) if "/pods/" in p else None)
    fake.route("GET", "/api/v1/namespaces/", lambda m, p, q, b: server(m, p, q, b) if "/proxy/metrics" in p else None)

    def query(method, path, raw_query, body):
        promql = parse_qs(raw_query)["query"][0]
        result = []
        if promql == "count(up)":
            result = [{"metric": {}, "value": [0, "12"]}]
        elif promql.startswith("vllm:request_success_total{"):
            model = promql.split('model_name="')[1].split('"')[0]
            if scrapes and model in served and (scrape_all or not model.endswith("-unannotated")):
                result = [{"metric": {"__name__": "vllm:request_success_total", "model_name": model,
                                      "finish_reason": "stop"}, "value": [0, str(served[model])]}]
        return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}
    fake.route("GET", "/api/v1/namespaces/monitoring/services/prometheus-k8s:9090/proxy/api/v1/query", query)

    def running(obj):
        if obj.get("kind") == "Pod":
            obj["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    fake.on_get = lambda obj: running(obj) or obj
    fake.served = served
    return fake


def test_ai_service_metrics_counts_the_inference_servers_requests():
    fake = prometheus_cluster()
    result = run(ai_service_metrics, fake)
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert outcome(result, "PodMonitor") == "failed"  # not served here: optional, informational
    assert "3 requests served, 3 collected" in detail(result, "requests show in a query")
    assert 'finish_reason="stop"' in detail(result, "requests show in a query")  # the series found, as evidence
    assert "was not collected" in [p["detail"] for p in result["parts"]][-1]
    assert sorted(fake.served.values()) == [3, 3]  # both servers answered: the control exposes a real count
    pods = [e["request"] for e in result["evidence"] if e["title"].startswith("create Pod")]
    annotated = {p["metadata"]["name"]: (p["metadata"].get("annotations") or {}) for p in pods}
    assert annotated["inference-server"]["prometheus.io/port"] == "8000"
    assert annotated["inference-server-unannotated"] == {}


def test_ai_service_metrics_needs_exactly_the_requests_sent():
    fake = prometheus_cluster()
    result = run(ai_service_metrics, fake, requests=2)
    assert "2 requests served, 2 collected" in detail(result, "requests show in a query")


def test_ai_service_metrics_negative_fails_when_every_pod_is_scraped():
    # the negative can fail: a monitoring system that collects pods which never asked for it
    result = run(ai_service_metrics, prometheus_cluster(scrape_all=True))
    assert outcome(result, "requests show in a query") == "passed"
    assert outcome(result, "not collected") == "failed" and result["status"] == "Partially Implemented"


def test_ai_service_metrics_negative_needs_a_control_that_exposes_the_counter():
    result = run(ai_service_metrics, prometheus_cluster(control_exposes=False))
    assert outcome(result, "not collected") == "failed" and "exposes no" in detail(result, "not collected")
    assert result["status"] == "Partially Implemented"


def test_ai_service_metrics_refused_requests_fail_the_positive():
    result = run(ai_service_metrics, prometheus_cluster(refuse=True))
    assert outcome(result, "requests show in a query") == "failed"
    assert "refused 3 of 3" in detail(result, "requests show in a query")
    assert result["status"] == "Not Implemented"


def test_ai_service_metrics_not_scraped_and_absent():
    result = run(ai_service_metrics, prometheus_cluster(scrapes=False), scrape_timeout=1)
    assert outcome(result, "requests show in a query") == "failed"
    assert outcome(result, "not collected") == "failed"  # a negative without a working positive proves nothing
    assert result["status"] == "Not Implemented"  # a query API that answers is not collection: nothing observed
    result = run(ai_service_metrics, Fake())
    assert result["status"] == "Not Implemented" and outcome(result, "query API answers") == "failed"


# ---- otel_tracing -------------------------------------------------------------------------------
def otel_cluster(reject_malformed=True):
    fake = Fake()
    fake.add("v1", "services", {"metadata": {"name": "otel-collector"}, "spec": {"ports": [
        {"name": "otlp-grpc", "port": 4317}, {"name": "otlp-http", "port": 4318}]}}, namespace="observability")

    def traces(method, path, query, body):
        if isinstance(body.get("resourceSpans"), list):
            return 200, {"partialSuccess": {}}
        return (400, {"code": 3, "message": "cannot unmarshal"}) if reject_malformed else (200, {})
    fake.route("POST", "/api/v1/namespaces/observability/services/otel-collector:4318/proxy/v1/traces", traces)
    return fake


def test_otel_tracing_from_the_controller_accepts_spans_and_rejects_garbage():
    result = run(otel_tracing, otel_cluster(), send_from="controller")
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "from the controller" in detail(result, "accepted by the collector")
    result = run(otel_tracing, otel_cluster(reject_malformed=False), send_from="controller")
    assert outcome(result, "malformed") == "failed" and result["status"] == "Partially Implemented"
    result = run(otel_tracing, Fake())
    assert result["status"] == "Not Implemented" and outcome(result, "collector with an OTLP") == "failed"


def sender_log(status, answer="", reachable=True):
    """The log of otel_tracing's sender pod as busybox wget -S leaves it (status line on stderr, body in a file)."""
    if not reachable:
        return "EXIT=1\nANSWER=wget: bad address 'otel-collector.observability.svc:4318'\nSENT=done\n"
    headers = "  HTTP/1.1 %d %s   Content-Type: application/json   Date: Fri, 04 Dec 2026 19:00:00 GMT " % (
        status, "OK" if status == 200 else "Bad Request")
    error = "" if status == 200 else "wget: server returned error: HTTP/1.1 %d Bad Request " % status
    return "EXIT=%d\nANSWER=%s%s%s\nSENT=done\n" % (0 if status == 200 else 1, answer, headers, error)


def otel_pods_cluster(reject_malformed=True, reachable=True):
    """Sender pods log what the collector answered to the PAYLOAD in their env (read back from the fake store)."""
    fake = otel_cluster(reject_malformed)

    def log(method, path, query, body):
        if not path.endswith("/log"):
            return None
        namespace, name = path.split("/")[4], path.split("/")[6]
        pod = [o for o in fake.objects("pods") if o["metadata"]["name"] == name and
               o["metadata"]["namespace"] == namespace][0]
        env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
        assert env["OTLP_URL"] == "http://otel-collector.observability.svc:4318/v1/traces"
        valid = isinstance(json.loads(env["PAYLOAD"]).get("resourceSpans"), list)
        if valid or not reject_malformed:
            return 200, sender_log(200, '{"partialSuccess":{}}', reachable)
        return 200, sender_log(400, reachable=reachable)
    fake.route("GET", "/api/v1/namespaces/", log)
    return fake


def test_otel_tracing_sends_from_a_probe_pod_to_the_services_cluster_address():
    fake = otel_pods_cluster()
    result = run(otel_tracing, fake)
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "from a probe pod to http://otel-collector.observability.svc:4318" in detail(result, "accepted by")
    assert "HTTP 400" in detail(result, "malformed")
    assert not [path for method, path in fake.log if method == "POST" and "/proxy/" in path]  # never the proxy
    sent = [e for e in result["evidence"] if e["title"] == "export one span over OTLP/HTTP"]
    assert sent[0]["response"] == {"status": 200, "body": {"partialSuccess": {}}}
    assert sent[0]["request"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]


def test_otel_tracing_from_a_pod_fails_when_the_pod_cannot_reach_or_the_collector_accepts_garbage():
    result = run(otel_tracing, otel_pods_cluster(reachable=False))
    assert outcome(result, "accepted by") == "failed" and "could not be reached from a pod" in detail(result, "accep")
    assert outcome(result, "malformed") == "failed" and result["status"] == "Not Implemented"
    result = run(otel_tracing, otel_pods_cluster(reject_malformed=False))
    assert outcome(result, "malformed") == "failed" and "HTTP 200" in detail(result, "malformed")
    assert result["status"] == "Partially Implemented"


def test_otel_tracing_sender_pod_that_never_logs_could_not_run():
    fake = otel_cluster()
    fake.route("GET", "/api/v1/namespaces/", lambda m, p, q, b: (200, "") if p.endswith("/log") else None)
    result = run(otel_tracing, fake)
    assert outcome(result, "accepted by") == "error" and result["verified"] is False
    assert result["status"] != "Implemented"


@pytest.mark.parametrize("log,status,answer", [
    (sender_log(200, '{"partialSuccess":{}}'), 200, {"partialSuccess": {}}),
    (sender_log(400), 400, None),
    (sender_log(0, reachable=False), None, None),
    ("EXIT=143\nANSWER=\nSENT=done\n", None, ""),  # timeout killed wget: nothing answered
])
def test_wget_answer_reads_the_status_line_and_body(log, status, answer):
    got_status, got_answer = otel_tracing.wget_answer(log)
    assert got_status == status
    if answer is not None:
        assert got_answer == answer


# ---- fault_detection ----------------------------------------------------------------------------
def fault_cluster(heartbeat_offset=0, detector=True):
    fake = Fake()
    conditions = [{"type": "Ready", "status": "True", "lastHeartbeatTime": now_iso()}]
    if detector:
        conditions.append({"type": "GPUHealthy", "status": "False", "lastHeartbeatTime": now_iso(heartbeat_offset)})
    fake.add("v1", "nodes", node("gpu-1", conditions=conditions))
    fake.add("v1", "nodes", node("cpu-1", conditions=conditions[:1]))
    fake.add("resource.k8s.io/v1", "resourceslices", gpu_slice("gpu-1"))
    return fake


def test_fault_detection_verdicts():
    result = run(fault_detection, fault_cluster())
    assert result["status"] == "Implemented" and result["verified"], result["parts"]  # cpu-1 is no accelerator node
    result = run(fault_detection, fault_cluster(heartbeat_offset=-7200))
    assert outcome(result, "fresh") == "failed" and result["status"] == "Partially Implemented"
    result = run(fault_detection, fault_cluster(detector=False))
    assert outcome(result, "reports conditions") == "failed" and result["status"] == "Not Implemented"
    result = run(fault_detection, fault_cluster())
    assert result["behavioural"] is False and "faults are not injected" in result["static_only"]
    assert "static-only requirement" in result["notes"]


BUSYBOX = shutil.which("busybox") or "/bin/busybox"


class Collector(BaseHTTPRequestHandler):
    """Answers as an OTLP/HTTP receiver does: 200 {"partialSuccess":{}} to a span list, 400 to anything else."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ok = isinstance(body.get("resourceSpans"), list) and self.headers["Content-Type"] == "application/json"
        answer = json.dumps({"partialSuccess": {}} if ok else {"code": 3, "message": "bad"}).encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="busybox-static not installed (the lab installs it)")
@pytest.mark.parametrize("payload,status", [
    (otel_tracing.trace_payload(), 200), ({"resourceSpans": "not a list"}, 400), (None, None)])
def test_the_sender_script_under_real_busybox(tmp_path, payload, status):
    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/v1/traces" % (server.server_port if payload is not None else 1)
        script = otel_tracing.SENDER.replace("/tmp/", str(tmp_path) + "/")
        applets = tmp_path / "bin"  # as in the lab's busybox image: every applet a link to busybox
        applets.mkdir()
        for applet in ("sh", "timeout", "wget", "cat", "tr", "head", "echo"):
            os.symlink(BUSYBOX, str(applets / applet))
        env = {"PATH": str(applets), "OTLP_URL": url, "PAYLOAD": json.dumps(payload or {})}
        log = subprocess.run([BUSYBOX, "sh", "-c", script], env=env, capture_output=True, text=True,
                             timeout=30, check=False).stdout  # wget fails (exit 1) on the 400 and unreachable cases
    finally:
        server.shutdown()
    got_status, answer = otel_tracing.wget_answer(log)
    assert "SENT=done" in log and got_status == status, log
    if status == 200:
        assert answer == {"partialSuccess": {}}, log
