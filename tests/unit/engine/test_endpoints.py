"""endpoints.py: ns/name:port, proxy paths, URL-or-proxy GET/POST with one error model."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from fakeapi import FakeCluster

from ansible_collections.k8s_ai.conformance.plugins.module_utils import endpoints as ep
from ansible_collections.k8s_ai.conformance.plugins.module_utils.results import CannotRun


class ProxyCluster(FakeCluster):
    """The API server's service/pod proxy: answers per path, as the backend would (or 503 without one)."""

    def __init__(self, answers):
        super().__init__()
        self.answers = answers  # path -> (status, text)

    def _send(self, method, url_path, headers, body):
        path, _unused, query = url_path.partition("?")
        if "/proxy" in path:
            self.log.append((method, url_path, headers.get("Accept"), body))
            status, text = self.answers.get(path, (503, "no endpoints available for service \"x\""))
            return status, text.encode()
        return super()._send(method, url_path, headers, body)


@pytest.fixture
def http_backend():
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status, body):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server API
            seen.append(("GET", self.path, self.headers.get("Accept")))
            self._answer(200 if self.path.startswith("/metrics") else 404, "up 1\n")

        def do_POST(self):  # noqa: N802 - http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(("POST", self.path, body))
            ok = isinstance(body.get("resourceSpans"), list)
            self._answer(200 if ok else 400, json.dumps({"partialSuccess": {}}) if ok else "bad payload")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % server.server_address[1], seen
    server.shutdown()


def test_service_refs_and_proxy_paths():
    assert ep.parse_service("monitoring/prometheus:9090", "prometheus_service") == ("monitoring", "prometheus", "9090")
    assert ep.parse_service("gpu/dcgm", "metrics_service", require_port=False) == ("gpu", "dcgm", "")
    for bad in ("prometheus:9090", "monitoring/prometheus", "", None):
        with pytest.raises(CannotRun, match="prometheus_service must be namespace/name:port"):
            ep.parse_service(bad, "prometheus_service")
    assert ep.service_proxy_path("m", "prom", 9090, "/api/v1/query") == \
        "/api/v1/namespaces/m/services/prom:9090/proxy/api/v1/query"
    assert ep.service_proxy_path("m", "prom", 443, scheme="https") == \
        "/api/v1/namespaces/m/services/https:prom:443/proxy"
    assert ep.pod_proxy_path("g", "dcgm-x", 9400, "/metrics") == "/api/v1/namespaces/g/pods/dcgm-x:9400/proxy/metrics"


def test_endpoint_choice_url_wins_then_service():
    assert ep.endpoint(url="http://otel:4318/", service="o/c:4318").base == "http://otel:4318"
    assert ep.endpoint(service="o/c:4318", option="otlp_service").location("/v1/traces") == \
        "/api/v1/namespaces/o/services/c:4318/proxy/v1/traces"
    assert ep.endpoint() is None
    with pytest.raises(CannotRun, match="otlp_service must be"):
        ep.endpoint(service="c:4318", option="otlp_service")


def test_proxy_requests_are_counted_and_unreachable_backends_are_errors():
    path = "/api/v1/namespaces/m/services/prom:9090/proxy"
    cluster = ProxyCluster({path + "/api/v1/query": (200, '{"status": "success", "data": {"result": []}}'),
                            path + "/metrics": (200, "up 1\n"), path + "/v1/traces": (400, "bad payload")})
    prom = ep.Endpoint.service("m", "prom", 9090)
    before = cluster.requests
    assert prom.get_json(cluster, "/api/v1/query", query={"query": "up"})["status"] == "success"
    assert prom.get_text(cluster, "/metrics", accept="text/plain") == "up 1\n"
    assert cluster.requests == before + 2
    assert cluster.log[-1][2] == "text/plain"
    assert prom.post_json(cluster, "/v1/traces", {"resourceSpans": "x"}) == (400, "bad payload")  # status comes back
    with pytest.raises(ep.EndpointError, match="could not be reached through the API server proxy"):
        ep.Endpoint.service("m", "absent", 80).get_text(cluster, "/")
    with pytest.raises(ep.EndpointError, match="did not answer JSON"):
        prom.get_json(cluster, "/metrics")


def test_url_requests_share_the_error_model(http_backend):
    url, seen = http_backend
    backend = ep.Endpoint(url + "/")
    assert backend.get_text(None, "/metrics") == "up 1\n"
    with pytest.raises(ep.EndpointError, match="answered HTTP 404"):
        backend.get_text(None, "/nope")
    assert backend.post_json(None, "/v1/traces", {"resourceSpans": []}) == (200, {"partialSuccess": {}})
    assert backend.post_json(None, "/v1/traces", {"resourceSpans": "x"}) == (400, "bad payload")
    assert seen[0] == ("GET", "/metrics", "*/*") and seen[2][0] == "POST"
    with pytest.raises(ep.EndpointError, match="could not be reached from the controller"):
        ep.Endpoint("http://127.0.0.1:1").get_text(None, "/", timeout=2)
