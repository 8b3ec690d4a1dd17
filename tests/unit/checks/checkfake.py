"""The engine's FakeCluster plus routes for non-object endpoints and a runner for check modules."""

import json
import time

import yaml
from fakeapi import DISCOVERY, FakeCluster

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import Check

EXTRA_DISCOVERY = {
    "v1": [("namespaces", "Namespace", False), ("pods", "Pod", True), ("nodes", "Node", False),
           ("services", "Service", True), ("serviceaccounts", "ServiceAccount", True),
           ("persistentvolumeclaims", "PersistentVolumeClaim", True), ("events", "Event", True)],
    "apps/v1": [("deployments", "Deployment", True), ("daemonsets", "DaemonSet", True)],
    "batch/v1": [("jobs", "Job", True)],
    "node.k8s.io/v1": [("runtimeclasses", "RuntimeClass", False)],
    "networking.k8s.io/v1": [("networkpolicies", "NetworkPolicy", True)],
    "gateway.networking.k8s.io/v1": [("gatewayclasses", "GatewayClass", False), ("gateways", "Gateway", True),
                                     ("httproutes", "HTTPRoute", True)],
    "jobset.x-k8s.io/v1alpha2": [("jobsets", "JobSet", True)],
    "storage.k8s.io/v1": [("csidrivers", "CSIDriver", False), ("csinodes", "CSINode", False),
                          ("storageclasses", "StorageClass", False)],
    "kueue.x-k8s.io/v1beta2": [("topologies", "Topology", False), ("resourceflavors", "ResourceFlavor", False),
                               ("clusterqueues", "ClusterQueue", False), ("localqueues", "LocalQueue", True),
                               ("workloads", "Workload", True)],
}


class Fake(FakeCluster):
    """routes: [(method, path prefix, fn(method, path, query, body) -> (status, dict or str), or None to pass)]."""

    def __init__(self, discovery=None):
        merged = dict(DISCOVERY)
        merged.update(EXTRA_DISCOVERY)
        merged.update(discovery or {})
        super().__init__(discovery=merged)
        self.routes = []

    def route(self, method, prefix, fn):
        self.routes.append((method, prefix, fn))

    def _send(self, method, url_path, headers, body):
        path, _unused, query = url_path.partition("?")
        for m, prefix, fn in self.routes:
            if m == method and path.startswith(prefix):
                answer = fn(method, path, query, body)
                if answer is None:
                    continue
                self.log.append((method, path))
                status, data = answer
                return status, (data if isinstance(data, str) else json.dumps(data)).encode()
        return super()._send(method, url_path, headers, body)

    def _serve(self, method, path, query, body):
        """Lists also honour fieldSelector terms such as involvedObject.name=x (events of one pod)."""
        status, data = super()._serve(method, path, query, body)
        terms = [t.partition("=") for t in (query.get("fieldSelector") or [""])[0].split(",") if t]
        if method == "GET" and terms and isinstance(data, dict) and "items" in data:
            def value(obj, dotted):
                for key in dotted.split("."):
                    obj = (obj or {}).get(key) if isinstance(obj, dict) else None
                return obj
            data["items"] = [o for o in data["items"] if all(str(value(o, k)) == v for k, _unused, v in terms)]
        return status, data


def crd(name, established=True):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name},
            "status": {"conditions": [{"type": "Established", "status": "True" if established else "False"}]}}


def add_crds(fake, names):
    for name in names:
        fake.add("apiextensions.k8s.io/v1", "customresourcedefinitions", crd(name))


def node(name, labels=None, conditions=None, cpu="32", kernel="6.1.0-test"):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": dict(
        {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}, **(labels or {}))},
        "status": {"allocatable": {"cpu": cpu}, "conditions": conditions or [],
                   "nodeInfo": {"kernelVersion": kernel}}}


def gpu_slice(node_name, count=2, version="580.95.5", driver="gpu.example.com"):
    devices = [{"name": "gpu-%d" % i, "attributes": {"type": {"string": "gpu"},
                                                     "driverVersion": {"version": version}}} for i in range(count)]
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": node_name + "-slice"},
            "spec": {"driver": driver, "nodeName": node_name, "pool": {"name": node_name}, "devices": devices}}


def defaults(module):
    options = yaml.safe_load(module.DOCUMENTATION).get("options") or {}
    return {k: v.get("default") for k, v in options.items()}


def run(module, fake, check_mode=False, **params):
    """Run a check module's verify() in-process against the fake (as run_check would), return the result."""
    values = defaults(module)
    values.update(kubeconfig=None, context=None, timeout=2, probe_namespace_prefix="t", validate_certs=True)
    values.update(params)
    name = module.__name__.rsplit(".", 1)[-1]
    check = Check(name, values, check_mode=check_mode, cluster=fake)
    result = check.run(module.verify)
    json.dumps(result)
    return result


def parts(result):
    return {p["name"]: p["outcome"] for p in result["parts"]}


def outcome(result, fragment):
    """Outcome of the single part whose name contains fragment."""
    found = [p for p in result["parts"] if fragment in p["name"]]
    assert len(found) == 1, (fragment, [p["name"] for p in result["parts"]])
    return found[0]["outcome"]


def detail(result, fragment):
    return [p for p in result["parts"] if fragment in p["name"]][0]["detail"]


def evolve(fake, fn):
    """Install an on_get hook; fn(obj) may change the object in place (a controller's work)."""
    def hook(obj):
        fn(obj)
        return obj
    fake.on_get = hook


def now_iso(offset=0):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))
