import os

import pytest
import yaml
from fakeapi import FakeCluster

from ansible_collections.k8s_ai.conformance.plugins.module_utils import client
from ansible_collections.k8s_ai.conformance.plugins.module_utils.client import ApiError, Cluster, ClusterError

KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config", "current-context": "lab",
    "clusters": [{"name": "lab", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "admin", "user": {"token": "abc"}}],
    "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}},
                 {"name": "other", "context": {"cluster": "lab", "user": "admin"}}],
}


@pytest.fixture
def kubeconfig_file(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    return str(path)


def test_connect_from_path_content_and_dict(kubeconfig_file):
    with open(kubeconfig_file) as handle:
        content = handle.read()
    for source in (kubeconfig_file, content, KUBECONFIG):
        cluster = Cluster.connect(source)
        assert cluster.host == "https://127.0.0.1:6443"
    assert "context other" in Cluster.connect(kubeconfig_file, context="other").label


@pytest.mark.parametrize("source,context,message", [
    ("/no/such/kubeconfig", None, "kubeconfig: file /no/such/kubeconfig does not exist"),
    ("clusters: [\n  - {name: x", None, "not valid YAML"),
    ("- just\n- a list\n", None, "not a kubeconfig"),
    (dict(KUBECONFIG, contexts=[]), None, "has no contexts"),
    (dict(KUBECONFIG, **{"current-context": ""}), None, "no current-context set and no context given"),
    (KUBECONFIG, "nope", "context 'nope' not found (available: lab, other)"),
    (dict(KUBECONFIG, clusters=[]), None, "names cluster 'lab', which is not defined"),
    (dict(KUBECONFIG, users=[]), None, "names user 'admin', which is not defined"),
    (12, None, "kubeconfig: expected a file path"),
])
def test_bad_kubeconfig_names_the_input(source, context, message):
    with pytest.raises(ClusterError) as info:
        Cluster.connect(source, context=context)
    assert message in str(info.value)


def test_default_kubeconfig_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ClusterError, match="neither \\$KUBECONFIG nor ~/.kube/config exists"):
        Cluster.connect(None)


def test_default_kubeconfig_from_env(monkeypatch, kubeconfig_file):
    monkeypatch.setenv("KUBECONFIG", kubeconfig_file + os.pathsep + "/ignored")
    assert Cluster.connect(None).host == "https://127.0.0.1:6443"


@pytest.mark.parametrize("method,path,expected", [
    ("GET", "/apis/resource.k8s.io/v1/resourceslices", "list resourceslices.resource.k8s.io"),
    ("GET", "/api/v1/namespaces/ns1/pods/p", "get pods p in namespace ns1"),
    ("POST", "/api/v1/namespaces/ns1/pods", "create pods in namespace ns1"),
    ("POST", "/api/v1/namespaces", "create namespaces"),
    ("DELETE", "/apis/kueue.x-k8s.io/v1beta1/clusterqueues/cq", "delete clusterqueues.kueue.x-k8s.io cq"),
    ("PATCH", "/api/v1/namespaces/a/pods/p/status", "patch pods/status p in namespace a"),
])
def test_describe_request(method, path, expected):
    assert client.describe_request(method, path) == expected


def test_403_names_verb_and_resource_and_keeps_server_message():
    cluster = FakeCluster()
    cluster.fail[("GET", "/apis/resource.k8s.io/v1/resourceslices")] = (403, {
        "kind": "Status", "reason": "Forbidden",
        "message": 'resourceslices.resource.k8s.io is forbidden: User "bob" cannot list resource "resourceslices"'})
    with pytest.raises(ApiError) as info:
        cluster.list("/apis/resource.k8s.io/v1/resourceslices")
    text = str(info.value)
    assert info.value.status == 403
    assert "forbidden (403): not allowed to list resourceslices.resource.k8s.io" in text
    assert 'User "bob"' in text


def test_401_says_credentials_were_rejected():
    cluster = FakeCluster()
    cluster.fail[("GET", "/version")] = (401, {"kind": "Status", "reason": "Unauthorized", "message": "Unauthorized"})
    with pytest.raises(ApiError, match=r"unauthorized \(401\) to GET /version: the credentials in fake were rejected"):
        cluster.version()


def test_unreachable_is_a_clean_cluster_error():
    cluster = FakeCluster()
    cluster.fail[("GET", "/version")] = OSError("Connection refused")
    with pytest.raises(ClusterError) as info:
        cluster.version()
    assert not isinstance(info.value, ApiError)
    assert "cannot reach the API server at https://fake:6443 (GET /version): Connection refused" in str(info.value)


def test_real_client_against_closed_port_fails_cleanly():
    cfg = dict(KUBECONFIG, clusters=[{"name": "lab", "cluster": {"server": "https://127.0.0.1:1"}}])
    cluster = Cluster.connect(cfg, request_timeout=5)
    with pytest.raises(ClusterError, match="cannot reach the API server at https://127.0.0.1:1"):
        cluster.version()


def test_pagination_and_request_counting():
    cluster = FakeCluster()
    for i in range(7):
        cluster.add("v1", "nodes", {"metadata": {"name": "n%d" % i}})
    names = [n["metadata"]["name"] for n in cluster.iter_list("/api/v1/nodes", page_size=3)]
    assert names == ["n%d" % i for i in range(7)]
    assert cluster.requests == 3 and cluster.requests_by_verb == {"GET": 3}


def test_missing_ok_and_delete_404():
    cluster = FakeCluster()
    assert cluster.get("/api/v1/namespaces/x", missing_ok=True) is None
    assert cluster.delete("/api/v1/namespaces/x") is None
    with pytest.raises(ApiError, match="not found \\(404\\): get namespaces x"):
        cluster.get("/api/v1/namespaces/x")


def test_discovery_is_cached_and_maps_kinds():
    cluster = FakeCluster()
    assert cluster.resource("resource.k8s.io/v1", "ResourceClaim") == {
        "name": "resourceclaims", "kind": "ResourceClaim", "namespaced": True}
    cluster.resource("resource.k8s.io/v1", "DeviceClass")
    assert cluster.requests == 1
    with pytest.raises(ClusterError, match="kueue.x-k8s.io/v1beta2 Workload is not served"):
        cluster.resource("kueue.x-k8s.io/v1beta2", "Workload")
    obj = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": "c"}}
    assert cluster.object_path(obj, "ns") == "/apis/resource.k8s.io/v1/namespaces/ns/resourceclaims/c"


def test_validate_certs_false_disables_verification():
    strict = dict(KUBECONFIG, clusters=[{"name": "lab", "cluster": {"server": "https://127.0.0.1:6443"}}])
    assert Cluster.connect(strict).api_client.configuration.verify_ssl is True
    assert Cluster.connect(strict, validate_certs=False).api_client.configuration.verify_ssl is False


def test_request_sends_json_and_merge_patch():
    cluster = FakeCluster()
    seen = []
    original = cluster._send

    def spy(method, url, headers, body):
        seen.append((method, headers["Content-Type"], body))
        if method == "PATCH":  # the fake API has no PATCH; only the request shape matters here
            return 200, b"{}"
        return original(method, url, headers, body)

    cluster._send = spy
    cluster.create("/api/v1/namespaces", {"metadata": {"name": "a"}}, dry_run=True)
    cluster.patch("/api/v1/namespaces/a", {"metadata": {"labels": {"x": "y"}}})
    assert seen[0] == ("POST", "application/json", {"metadata": {"name": "a"}})
    assert seen[1][:2] == ("PATCH", "application/merge-patch+json")
    assert cluster.log[0] == ("POST", "/api/v1/namespaces") and cluster.objects("namespaces") == []  # dry run


def test_relative_certificate_paths_resolve_next_to_the_kubeconfig_file(tmp_path):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.crt").write_text("not checked until a request is made\n")
    config = dict(KUBECONFIG, clusters=[{"name": "lab", "cluster": {"server": "https://127.0.0.1:6443",
                                                                    "certificate-authority": "certs/ca.crt"}}])
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    cluster = Cluster.connect(str(path))
    assert cluster.api_client.configuration.ssl_ca_cert == str(tmp_path / "certs" / "ca.crt")
    with pytest.raises(ClusterError, match="cannot use context 'lab'"):
        Cluster.connect(config)  # as content the relative path means nothing: a clear error, no traceback


class TextCluster(FakeCluster):
    """Answers pod logs and a proxied metrics endpoint as text, like the API server does."""

    def _send(self, method, url_path, headers, body):
        path, _unused, query = url_path.partition("?")
        self.log.append((method, url_path, headers.get("Accept")))
        if path.endswith("/pods/p/log"):
            return 200, ("line for %s\n" % (query or "default container")).encode()
        if path.endswith("/pods/gone/log"):
            return 404, b'{"kind":"Status","reason":"NotFound","message":"pods \\"gone\\" not found"}'
        if "/proxy" in path:
            return 503, b"no endpoints available for service"
        return super()._send(method, url_path, headers, body)


def test_text_api_is_counted_and_maps_errors_like_the_json_calls():
    cluster = TextCluster()
    before = cluster.requests
    assert cluster.pod_log("ns", "p") == "line for default container\n"
    assert cluster.pod_log("ns", "p", container="c") == "line for container=c\n"
    assert cluster.requests == before + 2  # counted like every other request
    assert cluster.pod_log("ns", "gone", missing_ok=True) is None
    with pytest.raises(ApiError) as info:
        cluster.pod_log("ns", "gone")
    assert info.value.status == 404 and "not found (404): get pods/log gone in namespace ns" in str(info.value)
    assert cluster.raw("GET", "/api/v1/namespaces/m/services/prom:9090/proxy/metrics") == (
        503, "no endpoints available for service")  # any status comes back as it is
    with pytest.raises(ApiError) as info:
        cluster.get_text("/api/v1/namespaces/m/services/prom:9090/proxy/metrics", accept="text/plain")
    assert info.value.status == 503 and "no endpoints available" in str(info.value)
    assert cluster.log[-1][2] == "text/plain"


def test_text_api_transport_failure_is_a_cluster_error():
    cluster = FakeCluster()
    cluster.fail[("GET", "/api/v1/namespaces/ns/pods/p/log")] = OSError("connection reset")
    with pytest.raises(ClusterError, match="cannot reach the API server"):
        cluster.pod_log("ns", "p")
