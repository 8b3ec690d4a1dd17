"""The 19 further checks against the lab (real kube-apiserver, scheduler, controller-manager, Kueue, JobSet;
kwok nodes: pods run without containers, no data plane, no metrics endpoints). Each result must be truthful on
that lab: what really works there passes, what needs a data plane or an absent component never passes.
Needs `make lab` (the fixtures fail otherwise)."""

import json
import os
import sys
import tempfile
import threading
import time

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _import_collection():
    base = os.path.join(tempfile.gettempdir(), "k8s-ai-conformance-it-%d" % os.getuid())
    parent = os.path.join(base, "ansible_collections", "k8s_ai")
    os.makedirs(parent, exist_ok=True)
    link = os.path.join(parent, "conformance")
    if not (os.path.islink(link) and os.readlink(link) == ROOT):
        tmp = "%s.%d" % (link, os.getpid())
        os.symlink(ROOT, tmp)
        os.replace(tmp, link)
    if base not in sys.path:
        sys.path.insert(0, base)


_import_collection()

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import Check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.results import (  # noqa: E402
    KINDS,
    OUTCOMES,
    STATUSES,
)
from ansible_collections.k8s_ai.conformance.plugins.modules import (  # noqa: E402
    accelerator_metrics,
    advanced_inference_ingress,
    ai_inference,
    ai_service_metrics,
    ai_workload_crds,
    confidential_computing,
    csi_storage,
    disaggregated_inference,
    driver_runtime_management,
    fault_detection,
    gpudirect_storage,
    high_performance_networking,
    image_signature_verification,
    multi_nic,
    network_policy,
    otel_tracing,
    topology_aware_scheduling,
    workload_identity,
    workload_sandboxing,
)

PREFIX = "it-more"
ALL = [accelerator_metrics, advanced_inference_ingress, ai_inference, ai_service_metrics, ai_workload_crds,
       confidential_computing, csi_storage, disaggregated_inference, driver_runtime_management, fault_detection,
       gpudirect_storage, high_performance_networking, image_signature_verification, multi_nic, network_policy,
       otel_tracing, topology_aware_scheduling, workload_identity, workload_sandboxing]


def run(module, kubeconfig, check_mode=False, **params):
    """Run a check module's verify() in-process, as run_check would, against the lab."""
    options = yaml.safe_load(module.DOCUMENTATION).get("options") or {}
    values = {k: v.get("default") for k, v in options.items()}
    values.update(kubeconfig=kubeconfig, context=None, timeout=20, probe_namespace_prefix=PREFIX,
                  validate_certs=True)
    values.update(params)
    check = Check(module.__name__.rsplit(".", 1)[-1], values, check_mode=check_mode)
    check.connect()
    result = check.run(module.verify)
    assert_schema(result)
    return result


def assert_schema(result):
    """The result contract (docs/architecture.md) and the status rules, whatever the verdict."""
    json.dumps(result)
    for key in ("check", "status", "verified", "summary", "notes", "parts", "evidence", "duration_s", "started"):
        assert key in result, key
    assert result["status"] in STATUSES
    for part in result["parts"]:
        assert part["kind"] in KINDS and part["outcome"] in OUTCOMES and isinstance(part["required"], bool)
    required = [p for p in result["parts"] if p["required"]]
    behaviour = [p for p in required if p["kind"] != "static" and p["outcome"] == "passed"]
    if result["status"] == "Implemented":  # every required part passed, and behaviour was observed
        assert all(p["outcome"] == "passed" for p in required), result["parts"]
        if result.get("behavioural", True):
            assert any(p["kind"] == "positive" for p in behaviour), result["parts"]
    if result["status"] == "Partially Implemented" and result.get("behavioural", True):
        assert behaviour, result["parts"]  # static parts alone are never even partial
    if result["status"] == "N/A":
        assert result.get("na_reason")
    if any(p["outcome"] == "error" for p in result["parts"]):
        assert result["verified"] is False
    for entry in result["evidence"]:
        assert "title" in entry and "action" in entry


def parts(result):
    return {p["name"]: p for p in result["parts"]}


def part(result, fragment):
    found = [p for p in result["parts"] if fragment in p["name"]]
    assert len(found) == 1, (fragment, list(parts(result)))
    return found[0]


def own_namespaces(result):
    """The probe namespaces this result's run created (from its evidence)."""
    return [e["response"]["name"] for e in result["evidence"] if e["title"] == "create probe namespace"]


def assert_cleaned_up(kubectl, result):
    """Every probe namespace of this run is gone or being deleted (other runs may share the lab)."""
    for name in own_namespaces(result):
        proc = kubectl.run("get", "namespace", name, "-o", "json", check=False)
        if proc.returncode == 0:
            assert json.loads(proc.stdout)["metadata"].get("deletionTimestamp"), "%s left behind" % name


@pytest.mark.parametrize("module", ALL, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_check_is_truthful_on_the_lab(module, lab_kubeconfig, kubectl):
    """No check claims what the lab cannot do: nothing that needs a data plane, a metrics endpoint, a sandbox
    runtime or a component the lab lacks is ever passed, and no probe namespace is left behind.
    (ai_inference's traffic may pass: the lab's real nodes run Envoy Gateway with a real Envoy once site.yml or
    tests/integration/checks/test_gateway.py installed it; that file asserts the measured traffic. accelerator_metrics
    reads the lab's own stand-in exporter: test_accelerator_metrics_standin.py.)"""
    result = run(module, lab_kubeconfig)
    never = {
        # network_policy may pass where its pods land on the real nodes: kube-router enforces there (the test
        # below proves it, with a control without the enforcer)
        "otel_tracing": ["accepted by the collector"],
        "multi_nic": ["more than one interface"],
        "csi_storage": ["becomes Bound"],
        "image_signature_verification": ["unsigned image is rejected"],
        "gpudirect_storage": ["kernel module"],
    }.get(result["check"], [])
    for fragment in never:
        assert part(result, fragment)["outcome"] != "passed", (fragment, result["parts"])
    if result["status"] != "Implemented":
        assert result["notes"], "a check that is not Implemented must say why"
    assert_cleaned_up(kubectl, result)  # deleted (at least Terminating) whatever the verdict


def test_check_mode_creates_no_probe(lab_kubeconfig):
    for module in (topology_aware_scheduling, ai_workload_crds, workload_identity, ai_inference):
        result = run(module, lab_kubeconfig, check_mode=True)
        assert result["verified"] is False and own_namespaces(result) == []
        assert not [e for e in result["evidence"] if e["action"].startswith(("POST", "PATCH", "DELETE"))]
        assert all(p["outcome"] == "skipped" for p in result["parts"] if p["kind"] != "static")


def test_driver_runtime_management_reads_driver_versions_and_compares_node_facts(lab_kubeconfig, kubectl):
    slices = kubectl.json("get", "resourceslices")["items"]
    gpu_nodes = sorted({s["spec"]["nodeName"] for s in slices if s["spec"].get("nodeName")})
    assert gpu_nodes, "the lab publishes GPU ResourceSlices"
    version = slices[0]["spec"]["devices"][0]["attributes"]["driverVersion"]["version"]

    result = run(driver_runtime_management, lab_kubeconfig)
    first = part(result, "advertise a driver version")
    assert first["outcome"] == "passed" and version in first["detail"]
    assert "accelerator_nodes inventory group" in result["notes"]

    good = {"node_name": gpu_nodes[0], "accelerators": [{"vendor": "nvidia"}], "driver_version": version,
            "cdi_spec_files": ["/etc/cdi/nvidia.yaml"], "containerd": {"present": True, "cdi_enabled": True}}
    bad = dict(good, node_name=gpu_nodes[-1], driver_version="1.2.3")
    result = run(driver_runtime_management, lab_kubeconfig, node_facts={gpu_nodes[0]: good, gpu_nodes[-1]: bad})
    check = part(result, "match the ResourceSlices")
    assert check["outcome"] == "failed" and "%s: node reports driver 1.2.3" % gpu_nodes[-1] in check["detail"]
    assert result["status"] == "Partially Implemented"


def test_topology_aware_scheduling_with_real_kueue(lab_kubeconfig):
    result = run(topology_aware_scheduling, lab_kubeconfig, timeout=45)
    assert part(result, "Topology API")["outcome"] == "passed"
    assert part(result, "all pods in one domain")["outcome"] == "passed", result["parts"]
    assert part(result, "fits no single domain")["outcome"] == "passed", result["parts"]
    assert result["status"] == "Implemented" and result["verified"]


def test_ai_workload_crds_jobset_reconciled_and_webhook_rejects(lab_kubeconfig):
    result = run(ai_workload_crds, lab_kubeconfig, timeout=45)
    assert part(result, "JobSet CRD")["outcome"] == "passed"
    assert part(result, "Kueue CRDs")["outcome"] == "passed"
    assert part(result, "reconciled")["outcome"] == "passed", result["parts"]
    assert part(result, "webhook")["outcome"] == "passed", result["parts"]
    assert "does not appear" in part(result, "webhook")["detail"]


def test_workload_identity_tokens_are_audience_bound(lab_kubeconfig):
    result = run(workload_identity, lab_kubeconfig)
    assert part(result, "SPIFFE")["outcome"] == "failed"  # the lab has no SPIRE
    # the API server issues audience-bound tokens on any cluster: without a SPIFFE provider they prove nothing
    assert part(result, "accepted for its audience")["outcome"] == "failed", result["parts"]
    assert "not meaningful without a SPIFFE provider" in part(result, "accepted for its audience")["detail"]
    assert result["status"] == "Not Implemented"
    assert "eyJ" not in json.dumps(result["evidence"])  # no token (JWT) in the evidence


def test_workload_sandboxing_is_implemented_by_gvisor_on_the_real_nodes(lab_kubeconfig):
    # a gVisor sandbox takes a while to start on this 2-core machine
    result = run(workload_sandboxing, lab_kubeconfig, runtime_class="gvisor", timeout=120)
    # one full run failed every behavioural part in 0.1 s, the message cut before the details: name them all
    outcomes = [(p["name"], p["outcome"], p["detail"][:300]) for p in result["parts"]]
    assert part(result, "kernel other")["outcome"] == "passed", outcomes
    assert "gvisor" in part(result, "kernel other")["detail"]  # runsc reports a 4.x gVisor kernel
    assert part(result, "handler no node has")["outcome"] == "passed", result["parts"]
    assert "FailedCreatePodSandBox" in json.dumps(result["evidence"]) or "refused" in part(
        result, "handler no node has")["detail"]
    assert result["status"] == "Implemented" and result["verified"], result["parts"]


def test_network_policy_is_enforced_by_the_real_nodes_and_not_without_their_enforcer(lab, lab_kubeconfig):
    """The probe pods run on the real nodes (command_node_selector), where kube-router enforces NetworkPolicy
    (tests/lab/realnodes.py): the deny blocks and the allow rule permits - Implemented. Control: the same check
    with kube-router stopped and its rules removed (a cluster whose CNI enforces nothing) - the control request
    still reaches the server, the deny blocks nothing, Not Implemented; both verified."""
    if not lab.get("real_nodes"):
        pytest.skip("the lab has no real nodes: no pod runs, no request is made")
    sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
    import lab as lab_module  # noqa: PLC0415
    import realnodes  # noqa: PLC0415
    real = {realnodes.REAL_LABEL: "true"}
    result = run(network_policy, lab_kubeconfig, command_node_selector=real)
    denied = part(result, "blocks a request")
    assert denied["outcome"] == "passed", result["parts"]
    assert part(result, "permits the request")["outcome"] == "passed", result["parts"]
    assert result["verified"] and result["status"] == "Implemented", result["parts"]
    try:
        realnodes.netpol_enforcement(lab_module, False)
        control = run(network_policy, lab_kubeconfig, command_node_selector=real)
    finally:
        realnodes.netpol_enforcement(lab_module, True)
    denied = part(control, "blocks a request")
    assert denied["outcome"] == "failed" and "no NetworkPolicy enforcement" in denied["detail"], control["parts"]
    assert part(control, "permits the request")["outcome"] == "failed"  # an allow rule proves nothing without a deny
    assert control["verified"] and control["status"] == "Not Implemented", control["parts"]


def test_workload_sandboxing_admission_real_isolation_not_claimed(lab_kubeconfig, kubectl):
    # A sandbox RuntimeClass scheduled onto the kwok nodes, which run no container: nothing may be claimed.
    name = "it-more-sandbox"
    kubectl.apply({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name},
                   "handler": "runsc", "scheduling": {"nodeSelector": {"type": "kwok"}}})
    try:
        result = run(workload_sandboxing, lab_kubeconfig, runtime_class=name)
    finally:
        kubectl.run("delete", "runtimeclass", name, "--wait=false", check=False)
    assert part(result, "sandbox handler exists")["outcome"] == "passed"
    assert part(result, "scheduled and runs")["outcome"] == "passed"  # kwok runs the pod (no container)
    assert part(result, "kernel other")["outcome"] == "error"  # no container, no log: could not run
    assert part(result, "handler no node has")["outcome"] == "failed"  # kwok runs a pod of any handler: no refusal
    assert result["verified"] is False and result["status"] != "Implemented"


def test_absent_capabilities_are_reported_as_such(lab_kubeconfig):
    result = run(high_performance_networking, lab_kubeconfig)
    assert result["status"] == "N/A" and "no high-performance network device" in result["na_reason"]
    for module, fragment in ((csi_storage, "CSI driver is registered"), (fault_detection, "reports conditions"),
                             (confidential_computing, "RuntimeClass exists"),
                             (image_signature_verification, "enforced at admission"),
                             (disaggregated_inference, "is installed")):
        result = run(module, lab_kubeconfig)
        assert part(result, fragment)["outcome"] == "failed", (module.__name__, result["parts"])
        assert result["status"] == "Not Implemented"


class StandInGatewayController:
    """A minimal Gateway API controller for the lab (which has the CRDs but no implementation): it accepts the
    probe's Gateways and sets HTTPRoute Accepted/ResolvedRefs from whether the backend Services exist. It never
    programs a data plane, so the Gateways get no address - as on a lab without one."""

    CONTROLLER = "k8s-ai-conformance.example/stand-in"

    def __init__(self, kubeconfig, gateway_class):
        from ansible_collections.k8s_ai.conformance.plugins.module_utils.client import Cluster
        self.cluster = Cluster.connect(kubeconfig)
        self.gateway_class = gateway_class
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    @staticmethod
    def condition(kind, status="True", reason=None, generation=1):
        return {"type": kind, "status": status, "reason": reason or kind, "message": "stand-in controller",
                "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "observedGeneration": generation}

    def loop(self):
        gw_api = "gateway.networking.k8s.io/v1"
        while not self.stop.wait(0.5):
            try:
                for gw in self.cluster.list("/apis/%s/gateways" % gw_api):
                    meta = gw["metadata"]
                    if gw["spec"].get("gatewayClassName") != self.gateway_class or (gw.get("status") or {}).get(
                            "conditions", [{}])[0].get("reason") == "Accepted":
                        continue
                    path = self.cluster.path(gw_api, "gateways", meta["namespace"], meta["name"], "status")
                    self.cluster.patch(path, {"status": {"conditions": [
                        self.condition("Accepted"), self.condition("Programmed", "False", "Pending")]}})
                for route in self.cluster.list("/apis/%s/httproutes" % gw_api):
                    meta = route["metadata"]
                    if (route.get("status") or {}).get("parents"):
                        continue
                    backends = [b["name"] for r in route["spec"].get("rules") or [] for b in r.get("backendRefs") or []]
                    missing = [b for b in backends if not self.cluster.get(
                        self.cluster.path("v1", "services", meta["namespace"], b), missing_ok=True)]
                    resolved = self.condition("ResolvedRefs", "False", "BackendNotFound") if missing \
                        else self.condition("ResolvedRefs")
                    parents = [{"parentRef": ref, "controllerName": self.CONTROLLER,
                                "conditions": [self.condition("Accepted"), resolved]}
                               for ref in route["spec"].get("parentRefs") or []]
                    self.cluster.patch(self.cluster.path(gw_api, "httproutes", meta["namespace"], meta["name"],
                                                         "status"), {"status": {"parents": parents}})
            except Exception:  # a namespace being deleted under us: try again on the next round
                continue

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)


def install_gateway_api_crds(kubectl):
    """The release's standard install from the lab's mirror (what the gateway_api role applies)."""
    lab_dir = os.path.dirname(kubectl.kubeconfig)
    with open(os.path.join(ROOT, "tests", "lab", "versions.env")) as f:
        version = dict(line.strip().split("=", 1) for line in f if "=" in line and not line.startswith("#"))[
            "GATEWAY_API_VERSION"]
    manifest = os.path.join(lab_dir, "mirror", "github.com", "kubernetes-sigs", "gateway-api", "releases",
                            "download", version, "standard-install.yaml")
    if not os.path.exists(manifest):
        pytest.fail("the lab's mirror has no Gateway API %s install (%s)" % (version, manifest))
    kubectl.run("apply", "--server-side", "-f", manifest)
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd/httproutes.gateway.networking.k8s.io",
                "crd/gateways.gateway.networking.k8s.io", "crd/gatewayclasses.gateway.networking.k8s.io")


def test_ai_inference_routes_accepted_but_traffic_never_passed_without_data_plane(lab_kubeconfig, kubectl):
    """The real Gateway API CRDs (schema and CEL validation) accept the probe's Gateway and routes; a stand-in
    controller accepts them; with no data plane the traffic part must say it could not run."""
    crds = [c["metadata"]["name"] for c in kubectl.json("get", "crd")["items"]]
    if "httproutes.gateway.networking.k8s.io" not in crds:
        install_gateway_api_crds(kubectl)
    name = "it-more-gateway-class"
    kubectl.apply({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": name},
                   "spec": {"controllerName": StandInGatewayController.CONTROLLER}})
    try:
        kubectl.run("patch", "gatewayclass", name, "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"conditions": [StandInGatewayController.condition("Accepted")]}}))
        with StandInGatewayController(lab_kubeconfig, name):
            result = run(ai_inference, lab_kubeconfig, gateway_class=name, timeout=30)
    finally:
        kubectl.run("delete", "gatewayclass", name, "--wait=false", check=False)
    assert part(result, "Gateway of the class is Accepted")["outcome"] == "passed", result["parts"]
    assert part(result, "Accepted and resolved")["outcome"] == "passed", result["parts"]
    assert part(result, "missing backend")["outcome"] == "passed", result["parts"]
    traffic = part(result, "traffic splits")
    assert traffic["outcome"] == "error" and "no address" in traffic["detail"], traffic["detail"]
    assert result["verified"] is False and result["status"] == "Not Implemented"
