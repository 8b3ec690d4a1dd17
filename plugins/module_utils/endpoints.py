# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0
"""Endpoints a check talks to that are not Kubernetes objects: a query API, an exporter, an OTLP receiver.

An Endpoint is either a URL reachable from the controller (given by the user) or an API-server proxy path
(a Service or Pod port, reached through the API server, so nothing in the cluster needs to be exposed):

    ep = endpoint(url=check.params.get("prometheus_url"), service=check.params.get("prometheus_service"),
                  option="prometheus_service")           # URL wins; "ns/name:port" -> service proxy
    ep = Endpoint.service("monitoring", "prometheus", 9090)   # .../namespaces/monitoring/services/prometheus:9090/proxy
    ep.in_cluster                                         # http://prometheus.monitoring.svc:9090 (from a pod)
    ep = Endpoint.pod("gpu-operator", "dcgm-exporter-x", 9400, "/metrics")
    text = ep.get_text(cluster, "/metrics", accept="text/plain")      # EndpointError unless 2xx
    data = ep.get_json(cluster, "/api/v1/query", query={"query": "up"})
    status, answer = ep.post_json(cluster, "/v1/traces", body)          # any HTTP status comes back
    parse_service("observability/otel:4318", "otlp_service") -> ("observability", "otel", "4318")

Proxy requests go through the client's text API (counted, errors mapped once); URL requests through
Ansible's open_url. A URL that cannot be reached, a proxy answering 502/503 (no backend behind the
Service), or get_text/get_json on a non-2xx answer raise EndpointError (a ClusterError): uncaught, the part
could not run (outcome error), it did not fail. Catch it where an unreadable endpoint means something else.
"""

from __future__ import absolute_import, division, print_function

import json

try:
    from urllib.error import HTTPError
    from urllib.parse import quote, urlencode
except ImportError:  # pragma: no cover - Python 2 is not supported
    HTTPError = None
    from urllib import quote, urlencode

from ansible_collections.k8s_ai.conformance.plugins.module_utils.client import ClusterError
from ansible_collections.k8s_ai.conformance.plugins.module_utils.results import CannotRun

try:
    from ansible.module_utils.urls import open_url
except ImportError:  # pragma: no cover - ansible-core is always there when a module runs
    open_url = None

PROXY_UNREACHABLE = (502, 503)  # the API server's proxy found no backend / could not dial it


class EndpointError(ClusterError):
    """The endpoint could not be reached or did not answer as asked: the part could not run (outcome error)."""


def parse_service(value, option, require_port=True):
    """'namespace/name:port' -> (namespace, name, port); bad input raises CannotRun naming the option."""
    namespace, _unused, rest = str(value or "").partition("/")
    name, _unused, port = rest.partition(":")
    if not (namespace and name and (port or not require_port)):
        raise CannotRun("%s must be namespace/name%s, got %r" % (option, ":port" if require_port else "[:port]",
                                                                 value))
    return namespace, name, port


def service_proxy_path(namespace, name, port, path="", scheme=None):
    """/api/v1/namespaces/<ns>/services/[<scheme>:]<name>:<port>/proxy<path>"""
    target = "%s%s:%s" % ((scheme + ":") if scheme else "", name, port)
    return "/api/v1/namespaces/%s/services/%s/proxy%s" % (quote(namespace, safe=""), quote(target, safe=":"),
                                                          path or "")


def pod_proxy_path(namespace, name, port, path=""):
    """/api/v1/namespaces/<ns>/pods/<name>:<port>/proxy<path>"""
    return "/api/v1/namespaces/%s/pods/%s:%s/proxy%s" % (quote(namespace, safe=""), quote(name, safe=""), port,
                                                         path or "")


class Endpoint:
    """A URL (reached from the controller) or an API-server proxy path (reached through the cluster client)."""

    def __init__(self, base, description=None, in_cluster=None):
        self.base = str(base).rstrip("/") if str(base).startswith(("http://", "https://")) else str(base)
        self.description = description or self.base
        self.in_cluster = in_cluster  # the URL a pod uses (Service DNS name), None for a controller URL

    @classmethod
    def service(cls, namespace, name, port, path="", scheme=None):
        return cls(service_proxy_path(namespace, name, port, path, scheme),
                   "service %s/%s:%s" % (namespace, name, port),
                   in_cluster="%s://%s.%s.svc:%s%s" % (scheme or "http", name, namespace, port, path or ""))

    @classmethod
    def pod(cls, namespace, name, port, path=""):
        return cls(pod_proxy_path(namespace, name, port, path), "pod %s/%s:%s" % (namespace, name, port))

    @property
    def is_url(self):
        return self.base.startswith(("http://", "https://"))

    def location(self, path="", query=None):
        """The full URL or proxy path of `path` under this endpoint (what evidence shows)."""
        return self.base + (path or "") + (("?" + urlencode(query)) if query else "")

    def __repr__(self):
        return "Endpoint(%r)" % self.base

    # ---- requests ----------------------------------------------------------------------------------
    def request(self, cluster, method, path="", body=None, query=None, accept="*/*", timeout=10):
        """(HTTP status, body text) for any answer; EndpointError when the endpoint cannot be reached.
        body: a dict (sent as JSON) or None."""
        if self.is_url:
            return self._url_request(method, path, body, query, accept, timeout)
        try:
            status, text = cluster.raw(method, self.base + (path or ""), body=body, query=query, accept=accept)
        except ClusterError as exc:
            raise EndpointError(str(exc)) from None
        if status in PROXY_UNREACHABLE:
            raise EndpointError("%s could not be reached through the API server proxy (HTTP %s): %s"
                                % (self.description, status, text.strip()[:200]))
        return status, text

    def _url_request(self, method, path, body, query, accept, timeout):
        if open_url is None:  # pragma: no cover
            raise EndpointError("ansible.module_utils.urls is not available to reach %s" % self.base)
        url = self.location(path, query)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": accept}
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            resp = open_url(url, data=data, method=method.upper(), headers=headers, timeout=timeout,
                            use_netrc=False)
            return resp.getcode(), resp.read().decode("utf-8", "replace")
        except HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace") if exc.fp else ""
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused, bad URL
            raise EndpointError("%s could not be reached from the controller: %s" % (url, exc)) from None

    def get_text(self, cluster, path="", query=None, accept="*/*", timeout=10):
        """Body text of a GET; EndpointError (could not run) unless the answer is 2xx."""
        status, text = self.request(cluster, "GET", path, query=query, accept=accept, timeout=timeout)
        if not 200 <= status <= 299:
            raise EndpointError("GET %s answered HTTP %s: %s"
                                % (self.location(path, query), status, text.strip()[:200]))
        return text

    def get_json(self, cluster, path="", query=None, timeout=10):
        """Decoded JSON of a GET; EndpointError unless 2xx JSON."""
        text = self.get_text(cluster, path, query, accept="application/json", timeout=timeout)
        try:
            return json.loads(text)
        except ValueError:
            raise EndpointError("GET %s did not answer JSON: %s"
                                % (self.location(path, query), text.strip()[:200])) from None

    def post_json(self, cluster, path, body, timeout=10):
        """(HTTP status, decoded JSON answer or its text) of a JSON POST; any HTTP status comes back."""
        status, text = self.request(cluster, "POST", path, body=body, accept="application/json", timeout=timeout)
        try:
            return status, json.loads(text) if text else {}
        except ValueError:
            return status, text.strip()[:300]


def endpoint(url=None, service=None, option="service", scheme=None):
    """The endpoint a user named: a URL wins, else 'namespace/name:port' (a Service port through the proxy);
    None when neither is given (the check discovers one)."""
    if url:
        return Endpoint(url, url)
    if service:
        namespace, name, port = parse_service(service, option)
        return Endpoint.service(namespace, name, port, scheme=scheme)
    return None
