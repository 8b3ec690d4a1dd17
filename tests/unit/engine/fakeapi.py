"""A tiny in-memory Kubernetes API behind the real Cluster client (only _send is replaced)."""

import copy
import json
from urllib.parse import parse_qs

from ansible_collections.k8s_ai.conformance.plugins.module_utils.client import Cluster

DISCOVERY = {
    "v1": [("namespaces", "Namespace", False), ("pods", "Pod", True), ("nodes", "Node", False)],
    "resource.k8s.io/v1": [("deviceclasses", "DeviceClass", False), ("resourceclaims", "ResourceClaim", True),
                           ("resourceclaimtemplates", "ResourceClaimTemplate", True),
                           ("resourceslices", "ResourceSlice", False)],
    "kueue.x-k8s.io/v1beta1": [("clusterqueues", "ClusterQueue", False), ("localqueues", "LocalQueue", True)],
}


class FakeApiClient:
    class configuration:  # noqa: N801 - mimics kubernetes.client.Configuration
        host = "https://fake:6443"


class FakeCluster(Cluster):
    """Objects live in self.store[(api_version, plural, namespace, name)]."""

    def __init__(self, discovery=None, page_size_override=None):
        super().__init__(FakeApiClient(), label="fake")
        self.discovery = DISCOVERY if discovery is None else discovery
        self.store = {}
        self.log = []  # (method, path)
        self.fail = {}  # (method, path prefix) -> (status, body) or Exception
        self.on_get = None  # hook(obj) -> obj, to evolve objects while a probe polls
        self._counter = 0
        self.auto_service_accounts = True

    # --- helpers for tests
    def add(self, api_version, plural, obj, namespace=None):
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})
        if namespace:
            obj["metadata"]["namespace"] = namespace
        self.store[(api_version, plural, namespace, obj["metadata"]["name"])] = obj
        return obj

    def objects(self, plural):
        return [o for k, o in self.store.items() if k[1] == plural]

    # --- the fake server
    def _send(self, method, url_path, headers, body):
        path, _unused, query = url_path.partition("?")
        self.log.append((method, path))
        for (m, prefix), outcome in self.fail.items():
            if m == method and path.startswith(prefix):
                if isinstance(outcome, Exception):
                    raise outcome
                return outcome[0], json.dumps(outcome[1]).encode()
        status, data = self._serve(method, path, parse_qs(query), body)
        return status, json.dumps(data).encode()

    def _parse(self, path):
        parts = path.strip("/").split("/")
        if parts[0] == "api":
            gv, rest = parts[1], parts[2:]
        else:
            gv, rest = "/".join(parts[1:3]), parts[3:]
        ns = None
        if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
            ns, rest = rest[1], rest[2:]
        return gv, rest, ns

    def _serve(self, method, path, query, body):
        if path == "/version":
            return 200, {"major": "1", "minor": "35", "gitVersion": "v1.35.4"}
        gv, rest, ns = self._parse(path)
        if not rest:
            if gv not in self.discovery:
                return 404, {"kind": "Status", "reason": "NotFound", "message": "not found"}
            return 200, {"resources": [{"name": n, "kind": k, "namespaced": nsd} for n, k, nsd in self.discovery[gv]]}
        plural, name = rest[0], (rest[1] if len(rest) > 1 else None)
        if method == "GET" and name is None:
            items = [o for (g, p, n, _unused), o in sorted(self.store.items(), key=lambda kv: str(kv[0]))
                     if g == gv and p == plural and (ns is None or n == ns)]
            sel = query.get("labelSelector", [""])[0]
            for term in filter(None, sel.split(",")):
                key, _unused, value = term.partition("=")
                items = [o for o in items if (o["metadata"].get("labels") or {}).get(key) == value]
            limit = int(query.get("limit", ["0"])[0] or 0)
            start = int(query.get("continue", ["0"])[0] or 0)
            page = items[start:start + limit] if limit else items
            more = limit and start + limit < len(items)
            return 200, {"items": copy.deepcopy(page), "metadata": {"continue": str(start + limit) if more else ""}}
        key = (gv, plural, ns, name)
        if method == "GET":
            if key not in self.store:
                return 404, {"kind": "Status", "reason": "NotFound", "message": "%s %s not found" % (plural, name)}
            obj = self.store[key]
            if self.on_get:
                obj = self.on_get(obj) or obj
                self.store[key] = obj
            return 200, copy.deepcopy(obj)
        if method == "POST":
            obj = copy.deepcopy(body)
            meta = obj.setdefault("metadata", {})
            if not meta.get("name"):
                self._counter += 1
                meta["name"] = meta["generateName"] + str(self._counter)
            key = (gv, plural, ns, meta["name"])
            if key in self.store:
                return 409, {"kind": "Status", "reason": "AlreadyExists", "message": "exists"}
            if ns:
                meta["namespace"] = ns
            if "dryRun" not in query:
                self.store[key] = obj
                if plural == "namespaces" and self.auto_service_accounts:  # the SA controller, at once
                    self.store[("v1", "serviceaccounts", meta["name"], "default")] = {"metadata": {"name": "default"}}
            return 201, copy.deepcopy(obj)
        if method == "DELETE":
            if key not in self.store:
                return 404, {"kind": "Status", "reason": "NotFound", "message": "not found"}
            obj = self.store.pop(key)
            if plural == "namespaces":
                for k in [k for k in self.store if k[2] == name]:
                    del self.store[k]
            return 200, obj
        return 405, {"message": "unsupported"}
