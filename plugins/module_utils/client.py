# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0
"""Cluster access: kubeconfig (path or content) + context, raw JSON REST calls, request counting.

The `kubernetes` Python client is used only to load the kubeconfig (auth plugins, certificates,
token refresh) and to send requests; responses are read as raw JSON (no model deserialisation),
which is several times faster and lighter on large lists (16,000 devices, 2,000 nodes).

    cluster = Cluster.connect(kubeconfig="/path/or/content", context="lab")
    nodes = cluster.list("/api/v1/nodes", label_selector="gpu=true")      # -> list of dicts
    for sl in cluster.iter_list(cluster.path("resource.k8s.io/v1", "resourceslices")): ...
    cluster.get(path, missing_ok=True)                                   # None when 404
    cluster.create(path, body), cluster.delete(path), cluster.patch(path, merge_patch)
    cluster.get_text(path, accept="text/plain"), cluster.pod_log(namespace, name)   # text, errors mapped
    cluster.raw("POST", proxy_path, body) -> (status, text)                        # any status, counted
    cluster.resource("resource.k8s.io/v1", "ResourceClaim") -> {"name": "resourceclaims", "namespaced": True}

Every failure is a ClusterError whose message names the bad input or the denied verb + resource;
ApiError (a ClusterError) carries the HTTP status and the server's Status object.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import time

try:
    from urllib.parse import quote, urlencode
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps sanity import happy
    from urllib import quote, urlencode

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by check.py
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = exc

VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class ClusterError(Exception):
    """Cluster access failed; the message is meant for the user (no traceback needed)."""


class WatchUnavailable(Exception):
    """This client (or the server) cannot stream a watch; callers fall back to polling."""


class ApiError(ClusterError):
    """The API server answered with an error status."""

    def __init__(self, message, status=None, method=None, path=None, body=None):
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path
        self.body = body if isinstance(body, dict) else {}

    @property
    def reason(self):
        return self.body.get("reason", "")

    @property
    def server_message(self):
        return self.body.get("message", "")


def api_prefix(api_version):
    """'v1' -> '/api/v1', 'batch/v1' -> '/apis/batch/v1'."""
    return "/api/" + api_version if "/" not in api_version else "/apis/" + api_version


def describe_request(method, path):
    """'GET /apis/resource.k8s.io/v1/resourceslices' -> 'list resourceslices.resource.k8s.io'."""
    parts = path.split("?")[0].strip("/").split("/")
    if parts and parts[0] == "api":
        group, rest = "", parts[2:]
    elif len(parts) > 2 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return "%s %s" % (method, path)
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
        scope, rest = " in namespace %s" % rest[1], rest[2:]
    else:
        scope = ""
    if not rest:
        return "%s %s" % (method, path)
    resource = rest[0] + ("." + group if group else "")
    if len(rest) >= 3:
        resource += "/" + rest[2]  # subresource, e.g. pods/status
    verb = VERBS.get(method, method.lower())
    if method == "GET" and len(rest) == 1:
        verb = "list"
    name = (" " + rest[1]) if len(rest) >= 2 else ""
    return "%s %s%s%s" % (verb, resource, name, scope)


def _load_kubeconfig_dict(kubeconfig):
    """Return (dict, label, base directory) for a kubeconfig given as path, YAML/JSON text or dict.
    The base directory resolves relative certificate/key paths written in a kubeconfig file."""
    if isinstance(kubeconfig, dict):
        return kubeconfig, "kubeconfig (content)", ""
    if not isinstance(kubeconfig, str) or not kubeconfig.strip():
        raise ClusterError("kubeconfig: expected a file path, YAML content or a dict, got %r" % (kubeconfig,))
    text = kubeconfig
    label, base = "kubeconfig (content)", ""
    if "\n" not in kubeconfig.strip() and not kubeconfig.lstrip().startswith("{"):  # a path, not content
        path = os.path.expanduser(kubeconfig)
        if not os.path.exists(path):
            raise ClusterError("kubeconfig: file %s does not exist" % kubeconfig)
        try:
            with open(path) as handle:
                text = handle.read()
        except OSError as exc:
            raise ClusterError("kubeconfig: cannot read %s: %s" % (kubeconfig, exc)) from None
        label, base = "kubeconfig %s" % kubeconfig, os.path.dirname(os.path.abspath(path))
    if not HAS_YAML:  # pragma: no cover
        raise ClusterError("the PyYAML Python package is required to read the kubeconfig")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClusterError("%s: not valid YAML: %s" % (label, str(exc).splitlines()[0])) from None
    if not isinstance(data, dict):
        raise ClusterError("%s: not a kubeconfig (expected a mapping with clusters, users, contexts)" % label)
    return data, label, base


def validate_kubeconfig(data, context, label):
    """Raise ClusterError naming the problem; return the context name that will be used."""
    contexts = {c.get("name"): c.get("context") or {} for c in data.get("contexts") or [] if isinstance(c, dict)}
    clusters = {c.get("name"): c.get("cluster") or {} for c in data.get("clusters") or [] if isinstance(c, dict)}
    users = {u.get("name") for u in data.get("users") or [] if isinstance(u, dict)}
    name = context or data.get("current-context")
    if not contexts:
        raise ClusterError("%s: has no contexts" % label)
    if not name:
        raise ClusterError("%s: no current-context set and no context given (available: %s)"
                           % (label, ", ".join(sorted(map(str, contexts)))))
    if name not in contexts:
        raise ClusterError("%s: context %r not found (available: %s)"
                           % (label, name, ", ".join(sorted(map(str, contexts)))))
    ctx = contexts[name]
    if ctx.get("cluster") not in clusters:
        raise ClusterError("%s: context %r names cluster %r, which is not defined" % (label, name, ctx.get("cluster")))
    if not clusters[ctx["cluster"]].get("server"):
        raise ClusterError("%s: cluster %r has no server URL" % (label, ctx.get("cluster")))
    if ctx.get("user") and ctx["user"] not in users:
        raise ClusterError("%s: context %r names user %r, which is not defined" % (label, name, ctx.get("user")))
    return name


class Cluster:
    """A connection to one API server. Counts requests (`requests`, `requests_by_verb`)."""

    def __init__(self, api_client, request_timeout=30, label="cluster"):
        self.api_client = api_client
        self.host = api_client.configuration.host
        self.request_timeout = request_timeout
        self.label = label
        self.requests = 0
        self.requests_by_verb = {}
        self._discovery = {}

    @classmethod
    def connect(cls, kubeconfig=None, context=None, validate_certs=True, request_timeout=30, pool_size=None):
        """Load the kubeconfig (path, content or dict; default $KUBECONFIG / ~/.kube/config / in-cluster).
        pool_size: connections kept to the API server (threads of one run share them)."""
        if not HAS_KUBERNETES:
            raise ClusterError("the 'kubernetes' Python package is required: %s" % KUBERNETES_IMPORT_ERROR)
        if kubeconfig is None:
            default = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
            if os.path.exists(os.path.expanduser(default)):
                kubeconfig = default
            elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                configuration = k8s_client.Configuration()
                try:
                    k8s_config.load_incluster_config(client_configuration=configuration)
                except k8s_config.ConfigException as exc:
                    raise ClusterError("in-cluster config: %s" % exc) from None
                return cls._build(configuration, validate_certs, request_timeout, "in-cluster", pool_size)
            else:
                raise ClusterError("kubeconfig: not given, and neither $KUBECONFIG nor ~/.kube/config exists")
        data, label, base = _load_kubeconfig_dict(kubeconfig)
        name = validate_kubeconfig(data, context, label)
        configuration = k8s_client.Configuration()
        try:
            loader = k8s_config.kube_config.KubeConfigLoader(config_dict=data, active_context=name,
                                                             config_base_path=base)
            loader.load_and_set(configuration)
        except Exception as exc:  # the library raises ConfigException, ValueError, KeyError, ...
            raise ClusterError("%s: cannot use context %r: %s" % (label, name, exc)) from None
        return cls._build(configuration, validate_certs, request_timeout, "%s context %s" % (label, name), pool_size)

    @classmethod
    def _build(cls, configuration, validate_certs, request_timeout, label, pool_size=None):
        if not validate_certs:
            configuration.verify_ssl = False
        if pool_size:
            configuration.connection_pool_maxsize = int(pool_size)
        return cls(k8s_client.ApiClient(configuration), request_timeout=request_timeout, label=label)

    def sibling(self):
        """Another view of the same connection and discovery cache with its own request counters (one per
        check of an in-process run: each check reports its own API requests, discovery is done once)."""
        other = Cluster(self.api_client, request_timeout=self.request_timeout, label=self.label)
        other._discovery = self._discovery
        return other

    # ---- raw requests -------------------------------------------------------------------------
    def _exchange(self, method, path, body=None, query=None, accept="application/json",
                  content_type="application/json"):
        """Send one counted request; return (HTTP status, raw body). Only transport failures raise."""
        method = method.upper()
        url_path = path + ("?" + urlencode(query) if query else "")
        self.requests += 1
        self.requests_by_verb[method] = self.requests_by_verb.get(method, 0) + 1
        headers = {"Accept": accept, "Content-Type": content_type}
        try:
            return self._send(method, url_path, headers, body)
        except ClusterError:
            raise
        except Exception as exc:  # urllib3 MaxRetryError, SSLError, timeouts...
            raise ClusterError("cannot reach the API server at %s (%s %s): %s"
                               % (self.host, method, path, _short_error(exc))) from None

    def request(self, method, path, body=None, query=None, content_type="application/json"):
        """Send one request; return the decoded JSON body (dict) or raise ApiError/ClusterError."""
        status, raw = self._exchange(method, path, body, query, content_type=content_type)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"message": _text(raw)[:300]}
        if 200 <= status <= 299:
            return data
        raise self._error(method.upper(), path, status, data)

    # ---- text (pod logs, service/pod proxies: Prometheus exposition, OTLP, HTML) ------------------
    def raw(self, method, path, body=None, query=None, accept="*/*", content_type="application/json"):
        """(HTTP status, body text) of one counted request, whatever the status; ClusterError only when the
        API server cannot be reached. For proxied endpoints whose error answers are part of the verdict."""
        status, raw = self._exchange(method, path, body, query, accept=accept, content_type=content_type)
        return status, _text(raw)

    def request_text(self, method, path, body=None, query=None, accept="*/*", content_type="application/json"):
        """Body text of one counted request; a non-2xx answer raises ApiError with the same messages as the
        JSON calls (401/403/404 named, the server's Status message kept)."""
        status, text = self.raw(method, path, body, query, accept, content_type)
        if 200 <= status <= 299:
            return text
        raise self._error(method.upper(), path, status, _status_body(text))

    def get_text(self, path, query=None, accept="*/*", missing_ok=False):
        """GET a non-JSON body (pod log, metrics through a proxy); None when 404 and missing_ok."""
        try:
            return self.request_text("GET", path, query=query, accept=accept)
        except ApiError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise

    def pod_log(self, namespace, name, container=None, missing_ok=False):
        """A pod's log (text); None when the pod or its log does not exist and missing_ok."""
        return self.get_text(self.path("v1", "pods", namespace, name, "log"),
                             query={"container": container} if container else None, missing_ok=missing_ok)

    # ---- watches (one request for a whole wait) -------------------------------------------------
    def watch(self, path, query, timeout):
        """Events ({"type", "object"}) of a watch on a collection path, until the server ends it after
        `timeout` seconds (timeoutSeconds) or the caller stops iterating. One counted request. Raises
        WatchUnavailable when this client cannot stream, ApiError for a refused watch."""
        query = dict(query or {}, watch="1", timeoutSeconds=str(max(1, int(timeout))))
        url_path = path + "?" + urlencode(query)
        self.requests += 1
        self.requests_by_verb["WATCH"] = self.requests_by_verb.get("WATCH", 0) + 1
        try:
            status, chunks, close = self._stream(url_path, timeout + 10)
        except ClusterError:
            raise
        except Exception as exc:  # no streaming in this client, a transport error: the caller polls
            raise WatchUnavailable("watch %s: %s" % (path, _short_error(exc))) from None
        try:
            if status != 200:
                raise self._error("GET", path, status, _status_body(_text(b"".join(chunks))))
            buffered = b""
            for chunk in chunks:
                buffered += chunk
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        raise WatchUnavailable("watch %s: not a stream of events" % path) from None
                    if not isinstance(event, dict) or "type" not in event:
                        raise WatchUnavailable("watch %s: not a stream of events" % path)
                    yield event
        except ClusterError:
            raise
        except WatchUnavailable:
            raise
        except Exception as exc:  # the stream broke (read timeout, reset): the caller polls the rest
            raise WatchUnavailable("watch %s: %s" % (path, _short_error(exc))) from None
        finally:
            close()

    def _stream(self, url_path, read_timeout):
        """(status, iterator of body chunks, close()) of a GET whose body is read as it arrives."""
        api = self.api_client
        req = api.param_serialize("GET", url_path, header_params={"Accept": "application/json"},
                                  auth_settings=["BearerToken"])
        resp = api.call_api(*req, _request_timeout=(10, read_timeout))
        raw = resp.response  # urllib3's response, not read yet

        def close():
            raw.close()
            raw.release_conn()
        return resp.status, raw.stream(16384), close

    def _send(self, method, url_path, headers, body):
        api = self.api_client
        if hasattr(api, "param_serialize"):  # kubernetes >= 35 (openapi-generator v7 client)
            req = api.param_serialize(method, url_path, header_params=headers, body=body,
                                      auth_settings=["BearerToken"])
            resp = api.call_api(*req, _request_timeout=self.request_timeout)
            return resp.status, resp.read()
        try:
            resp = api.call_api(url_path, method, header_params=headers, body=body,
                                auth_settings=["BearerToken"], _preload_content=False,
                                _request_timeout=self.request_timeout, _return_http_data_only=True)
            return resp.status, resp.data
        except k8s_client.exceptions.ApiException as exc:
            return exc.status, (exc.body or b"")

    def _error(self, method, path, status, data):
        what = describe_request(method, path)
        server = data.get("message") or data.get("reason") or ""
        if status == 401:
            msg = "unauthorized (401) to %s: the credentials in %s were rejected" % (what, self.label)
        elif status == 403:
            msg = "forbidden (403): not allowed to %s (%s %s)" % (what, method, path)
            msg += (": " + server) if server else ""
        elif status == 404:
            msg = "not found (404): %s (%s %s)" % (what, method, path)
        else:
            msg = "%s %s failed (%s %s): %s" % (method, path, status, data.get("reason", ""), server)
        return ApiError(msg, status=status, method=method, path=path, body=data)

    # ---- conveniences -------------------------------------------------------------------------
    def get(self, path, missing_ok=False, query=None):
        try:
            return self.request("GET", path, query=query)
        except ApiError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise

    def iter_list(self, path, label_selector=None, field_selector=None, page_size=500):
        """Yield items page by page (bounded memory for very large lists)."""
        query = {"limit": page_size}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        while True:
            page = self.request("GET", path, query=query)
            yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
            query["continue"] = token

    def list(self, path, label_selector=None, field_selector=None, page_size=500):
        return list(self.iter_list(path, label_selector, field_selector, page_size))

    def create(self, path, body, dry_run=False):
        return self.request("POST", path, body=body, query={"dryRun": "All"} if dry_run else None)

    def patch(self, path, body):
        return self.request("PATCH", path, body=body, content_type="application/merge-patch+json")

    def delete(self, path, missing_ok=True, propagation="Background"):
        try:
            return self.request("DELETE", path, body={"propagationPolicy": propagation})
        except ApiError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise

    def version(self):
        return self.get("/version")

    # ---- discovery ----------------------------------------------------------------------------
    def served_resources(self, api_version):
        """{plural: resource dict} served for a group/version; {} when the group/version is not served."""
        if api_version not in self._discovery:
            doc = self.get(api_prefix(api_version), missing_ok=True) or {}
            self._discovery[api_version] = {r["name"]: r for r in doc.get("resources") or []}
        return self._discovery[api_version]

    def resource(self, api_version, kind):
        """{'name': plural, 'namespaced': bool, ...} for a kind, or raise ClusterError when not served."""
        for res in self.served_resources(api_version).values():
            if res.get("kind") == kind and "/" not in res["name"]:
                return res
        raise ClusterError("%s %s is not served by the API server" % (api_version, kind))

    def path(self, api_version, plural, namespace=None, name=None, subresource=None):
        out = api_prefix(api_version)
        if namespace:
            out += "/namespaces/" + quote(namespace, safe="")
        out += "/" + plural
        if name:
            out += "/" + quote(name, safe="")
        if subresource:
            out += "/" + subresource
        return out

    def object_path(self, obj, namespace=None):
        """Path of an object dict (apiVersion, kind, metadata.name[, namespace])."""
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata") or {}
        ns = (meta.get("namespace") or namespace) if res.get("namespaced") else None
        return self.path(obj["apiVersion"], res["name"], ns, meta.get("name"))


def _status_body(text):
    """The Status a refused request answered with, or {"message": the start of whatever it answered}."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict) or not (data.get("message") or data.get("reason")):
        data = {"message": text[:300]}
    return data


def _text(raw):
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")


def _short_error(exc):
    text = str(getattr(exc, "reason", None) or exc)
    return text.splitlines()[0][:300] if text else exc.__class__.__name__


def now():
    return time.time()
