"""accelerator_metrics, ai_service_metrics, otel_tracing, fault_detection: verdicts on a fake API."""

from urllib.parse import parse_qs

from checkfake import Fake, gpu_slice, node, now_iso, outcome, run

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
def prometheus_cluster(scrapes=True, scrape_all=False):
    fake = Fake()
    fake.add("v1", "services", {"metadata": {"name": "prometheus-k8s"}, "spec": {"ports": [{"name": "web",
                                                                                           "port": 9090}]}},
             namespace="monitoring")

    def query(method, path, raw_query, body):
        promql = parse_qs(raw_query)["query"][0]
        result = []
        if promql == "count(up)":
            result = [{"metric": {}, "value": [0, "12"]}]
        elif scrapes and promql.startswith(ai_service_metrics.PROBE_METRIC) and (
                scrape_all or '-unannotated"' not in promql):
            result = [{"metric": {"__name__": ai_service_metrics.PROBE_METRIC}, "value": [0, "42"]}]
        return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}
    fake.route("GET", "/api/v1/namespaces/monitoring/services/prometheus-k8s:9090/proxy/api/v1/query", query)

    def running(obj):
        if obj.get("kind") == "Pod":
            obj["status"] = {"phase": "Running"}
    fake.on_get = lambda obj: running(obj) or obj
    return fake


def test_ai_service_metrics_discovers_the_probe_workload():
    result = run(ai_service_metrics, prometheus_cluster())
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert outcome(result, "PodMonitor") == "failed"  # not served here: optional, informational
    assert "was not collected" in [p["detail"] for p in result["parts"]][-1]


def test_ai_service_metrics_negative_fails_when_every_pod_is_scraped():
    # the negative can fail: a monitoring system that collects pods which never asked for it
    result = run(ai_service_metrics, prometheus_cluster(scrape_all=True))
    assert outcome(result, "discovered and scraped") == "passed"
    assert outcome(result, "not collected") == "failed" and result["status"] == "Partially Implemented"


def test_ai_service_metrics_not_scraped_and_absent():
    result = run(ai_service_metrics, prometheus_cluster(scrapes=False), scrape_timeout=1)
    assert outcome(result, "discovered and scraped") == "failed"
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


def test_otel_tracing_accepts_spans_and_rejects_garbage():
    result = run(otel_tracing, otel_cluster())
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    result = run(otel_tracing, otel_cluster(reject_malformed=False))
    assert outcome(result, "malformed") == "failed" and result["status"] == "Partially Implemented"
    result = run(otel_tracing, Fake())
    assert result["status"] == "Not Implemented" and outcome(result, "collector with an OTLP") == "failed"


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
