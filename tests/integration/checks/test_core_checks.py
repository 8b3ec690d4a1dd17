"""The core checks against the lab: verdicts on the healthy lab, on broken states, and the engine's promises
(probe cleanup, garbage collection, concurrent runs, clear errors). Needs `make lab` (fixtures fail otherwise)."""

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _import_collection():
    """Make this checkout importable as ansible_collections.k8s_ai.conformance (same trick as the unit tests)."""
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
    return base


COLLECTIONS_BASE = _import_collection()

from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as probe_mod  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import Check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.modules import (  # noqa: E402
    cluster_autoscaling,
    dra_support,
    gang_scheduling,
    gpu_sharing,
    pod_autoscaling,
    robust_controller,
    secure_accelerator_access,
    virtualized_accelerator,
)

PREFIX = "ai-conformance-probe"
DRA_STATIC = "resource.k8s.io/v1 serves the DRA kinds; a DeviceClass selects published devices"


def defaults(module):
    options = yaml.safe_load(module.DOCUMENTATION).get("options") or {}
    params = {k: v.get("default") for k, v in options.items()}
    params.update(kubeconfig=None, context=None, timeout=60, probe_namespace_prefix=PREFIX, validate_certs=True)
    return params


def run(module, kubeconfig, check_mode=False, **params):
    """Run a check module's verify() in-process, exactly as run_check would."""
    name = module.__name__.rsplit(".", 1)[-1]
    values = defaults(module)
    values.update(params, kubeconfig=kubeconfig)
    check = Check(name, values, check_mode=check_mode)
    check.connect()
    return check.run(module.verify)


def parts(result):
    return {p["name"]: p for p in result["parts"]}


def assert_all_required_passed(result):
    failed = [(p["name"], p["outcome"], p["detail"]) for p in result["parts"]
              if p["required"] and p["outcome"] != "passed"]
    assert not failed, json.dumps(failed, indent=1)
    assert result["status"] == "Implemented" and result["verified"] is True, result["summary"]


def probe_namespaces(kubectl, check=None):
    selector = "k8s-ai-conformance/probe=true" + (",k8s-ai-conformance/check=%s" % check if check else "")
    return kubectl.json("get", "namespaces", "-l", selector)["items"]


def assert_probes_cleaned(kubectl, result):
    """Every namespace the check created is gone or terminating."""
    created = [e["response"]["name"] for e in result["evidence"] if e["title"] == "create probe namespace"]
    for ns in probe_namespaces(kubectl, result["check"]):
        assert ns["metadata"]["name"] not in created or ns["metadata"].get("deletionTimestamp"), ns["metadata"]


def assert_cluster_scoped_cleaned(kubectl, result):
    """The ClusterQueues/ResourceFlavors this run created are gone or being deleted (others' runs may be live)."""
    made = [(e["title"].split()[1].lower() + "s", e["response"]["metadata"]["name"]) for e in result["evidence"]
            if e["title"].startswith(("create ClusterQueue", "create ResourceFlavor")) and e.get("response")]
    for plural, name in made:
        got = kubectl.run("get", plural, name, "-o", "json", check=False)
        assert got.returncode != 0 or json.loads(got.stdout)["metadata"].get("deletionTimestamp"), (plural, name)


def ansible_module(module, args, check_mode=False):
    """Run the module through the `ansible` CLI, as a user would; return the host's result dict."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_BASE, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-m", "k8s_ai.conformance." + module,
           "-a", json.dumps(args)] + (["--check"] if check_mode else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    head, sep, body = proc.stdout.partition(" => ")  # "localhost | SUCCESS => {...}"
    assert sep, "no module result in ansible output: %s %s" % (proc.stdout[-2000:], proc.stderr[-2000:])
    host = json.loads(body)
    host["failed"] = "FAILED" in head
    return host


# ---------------------------------------------------------------- dra_support

def test_dra_support_implemented_on_the_lab(lab_kubeconfig, kubectl):
    result = run(dra_support, lab_kubeconfig)
    assert_all_required_passed(result)
    by_name = parts(result)
    positive = by_name["a pod with a ResourceClaim for the DeviceClass gets a device and is scheduled"]
    assert "gpu.nvidia.com/" in positive["detail"] and "scheduled on gpu-node-" in positive["detail"]
    negative = by_name["a claim for more devices than any node has stays unallocated, its pod unschedulable"]
    assert negative["kind"] == "negative" and "claim for 9 devices (max per node 8)" in negative["detail"]
    assert by_name["a pod with a ResourceClaimTemplate gets a generated claim allocated"]["outcome"] == "passed"
    assert result["api_requests"] > 0 and len(result["evidence"]) >= 8
    assert_probes_cleaned(kubectl, result)


def test_dra_support_through_ansible_and_check_mode(lab_kubeconfig):
    prefix = "it-check-mode-%d" % os.getpid()  # a prefix of its own: other runs may probe concurrently
    host = ansible_module("dra_support", {"kubeconfig": lab_kubeconfig, "probe_namespace_prefix": prefix},
                          check_mode=True)
    result = host["result"]
    assert host["changed"] is False and not host.get("failed")
    assert [p["outcome"] for p in result["parts"] if p["kind"] != "static"] == ["skipped"] * 3
    # behaviour not probed in check mode: never claimed, whatever the static part found
    assert result["status"] == "Not Implemented" and result["verified"] is False and "check mode" in result["notes"]
    assert result["parts"][0]["outcome"] == "passed"
    assert not [e for e in result["evidence"] if e["action"].startswith(("POST", "DELETE"))]  # creates nothing


def test_dra_support_not_implemented_without_device_class(lab_kubeconfig, kubectl):
    classes = kubectl.json("get", "deviceclasses")["items"]
    assert classes, "the lab should publish a DeviceClass"
    for dc in classes:
        for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"):
            dc["metadata"].pop(key, None)
    try:
        kubectl.run("delete", "deviceclasses", "--all", "--wait=true")
        # Check mode: only the static part runs, so the window without a DeviceClass stays short.
        result = run(dra_support, lab_kubeconfig, check_mode=True)
    finally:
        for dc in classes:
            kubectl.create(dc, check=False)
    assert kubectl.json("get", "deviceclasses")["items"], "DeviceClass not restored"
    static = parts(result)[DRA_STATIC]
    assert static["outcome"] == "failed" and static["detail"] == "resource.k8s.io/v1 served, but no DeviceClass exists"
    assert result["status"] == "Not Implemented"


def test_dra_support_with_unknown_device_class_parameter(lab_kubeconfig):
    result = run(dra_support, lab_kubeconfig, device_class="no-such-class")
    detail = parts(result)[DRA_STATIC]["detail"]
    assert detail == "DeviceClass no-such-class (parameter device_class) does not exist"
    assert result["status"] == "Not Implemented" and result["verified"] is True
    assert [p["outcome"] for p in result["parts"] if p["required"]] == ["failed"] * 3


def test_bad_inputs_fail_cleanly_naming_the_input(lab_kubeconfig):
    host = ansible_module("dra_support", {"kubeconfig": "/nonexistent/kubeconfig"})
    assert host["failed"] and host["msg"] == "kubeconfig: file /nonexistent/kubeconfig does not exist"
    assert host["result"]["verified"] is False and "Traceback" not in json.dumps(host)
    host = ansible_module("dra_support", {"kubeconfig": lab_kubeconfig, "context": "nope"})
    assert host["failed"] and "context 'nope' not found (available:" in host["msg"]


def test_forbidden_user_gets_an_error_naming_verb_and_resource(lab_kubeconfig, kubectl, namespace):
    kubectl.run("create", "serviceaccount", "nobody", "-n", namespace)
    token = kubectl.run("create", "token", "nobody", "-n", namespace, "--duration=10m").stdout.strip()
    with open(lab_kubeconfig) as handle:
        config = yaml.safe_load(handle)
    config["users"] = [{"name": "nobody", "user": {"token": token}}]
    for ctx in config["contexts"]:
        ctx["context"]["user"] = "nobody"
    result = run(dra_support, yaml.safe_dump(config))
    assert result["verified"] is False and result["status"] == "Not Implemented"
    errors = [p["detail"] for p in result["parts"] if p["outcome"] == "error"]
    assert any("forbidden (403): not allowed to list deviceclasses.resource.k8s.io" in e for e in errors), errors


# ---------------------------------------------------------------- engine promises on a real API server

def test_garbage_collection_spares_live_probes_of_a_concurrent_run(lab_kubeconfig, kubectl):
    now = time.time()
    expired = probe_mod.probe_labels("gc-test", "old-run", now - 7200, 900)
    alive = probe_mod.probe_labels("gc-test", "live-run", now - 60, 900)
    names = {key: "%s-gc-test-%s%d" % (PREFIX, key, os.getpid()) for key in ("expired", "alive")}
    for key, labels in (("expired", expired), ("alive", alive)):
        kubectl.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": names[key], "labels": labels}})
    try:
        result = run(dra_support, lab_kubeconfig)
        gc = [e for e in result["evidence"] if e["title"] == "garbage-collect expired probe namespaces"]
        assert gc and names["expired"] in gc[0]["response"]
        assert names["alive"] not in gc[0]["response"]
        live = kubectl.json("get", "namespace", names["alive"])
        assert not live["metadata"].get("deletionTimestamp")
        gone = kubectl.run("get", "namespace", names["expired"], "-o", "json", check=False)
        assert gone.returncode != 0 or json.loads(gone.stdout)["metadata"].get("deletionTimestamp")
    finally:
        kubectl.run("delete", "namespace", names["alive"], names["expired"], "--wait=false", "--ignore-not-found",
                    check=False)


# secure_accelerator_access is left out: it now probes containers on the real nodes, whose 8 devices in all
# cannot serve two runs at once (each holds up to 5 while it runs).
@pytest.mark.parametrize("module", [dra_support], ids=["dra_support"])
def test_two_concurrent_runs_are_both_correct(lab_kubeconfig, kubectl, module):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _unused: run(module, lab_kubeconfig), range(2)))
    for result in results:
        assert_all_required_passed(result)
    namespaces = [e["response"]["name"] for r in results for e in r["evidence"]
                  if e["title"] == "create probe namespace"]
    assert len(set(namespaces)) == 2


# ---------------------------------------------------------------- the other core checks

def test_secure_accelerator_access_implemented(lab_kubeconfig, kubectl):
    # The real nodes' DRA driver (4 devices a node), whose containers really run.
    result = run(secure_accelerator_access, lab_kubeconfig, device_class="gpu.example.com")
    assert_all_required_passed(result)
    by_name = parts(result)
    iso = by_name["two pods on one node get distinct devices; a pod without a claim gets none"]["detail"]
    assert "(disjoint)" in iso and "pod no-claim on the same node holds no claim/device" in iso
    seen = by_name["inside the containers: each sees its own device only; without the claim, none"]["detail"]
    assert re.search(r"see-a sees gpu-\d+, see-b sees gpu-\d+ \(each its own only\)", seen), seen
    neg = by_name["a device held by one claim is never allocated to another"]["detail"]
    assert "a claim for all 4 devices there stays unallocated, pod Unschedulable" in neg
    assert_probes_cleaned(kubectl, result)


def test_secure_accelerator_access_on_nodes_without_containers_is_not_verified(lab_kubeconfig):
    # The kwok nodes' devices: allocation is proven, but no container runs to show what it sees.
    result = run(secure_accelerator_access, lab_kubeconfig, device_class="gpu.nvidia.com")
    assert result["status"] == "Not Implemented" and not result["verified"]
    seen = parts(result)["inside the containers: each sees its own device only; without the claim, none"]
    assert seen["outcome"] == "error", seen


def test_gang_scheduling_implemented_and_workloads_cleaned(lab_kubeconfig, kubectl):
    result = run(gang_scheduling, lab_kubeconfig)
    assert_all_required_passed(result)
    by_name = parts(result)
    pos = by_name["a Job of N pods that fits the quota is admitted and all N pods are scheduled"]["detail"]
    assert "3/3 pods scheduled" in pos
    neg = by_name["a Job of N pods over the quota stays suspended and none of its pods is created"]["detail"]
    assert "not admitted, 0 pods created" in neg
    probe_ns = [e["response"]["name"] for e in result["evidence"] if e["title"] == "create probe namespace"][0]
    deadline = time.time() + 60
    while time.time() < deadline:
        left = kubectl.json("get", "workloads.kueue.x-k8s.io", "-n", probe_ns)["items"]
        if not left:
            break
        time.sleep(2)
    assert not left, "Workloads left behind in %s: %s" % (probe_ns, [w["metadata"]["name"] for w in left])
    assert_cluster_scoped_cleaned(kubectl, result)


def test_gang_scheduling_through_a_named_cluster_queue(lab_kubeconfig, kubectl):
    suffix = "%d" % os.getpid()
    flavor, queue = "it-core-flavor-" + suffix, "it-core-cq-" + suffix
    kubectl.apply([
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": flavor}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": queue}, "spec": {
            "namespaceSelector": {}, "resourceGroups": [{"coveredResources": ["cpu"], "flavors": [
                {"name": flavor, "resources": [{"name": "cpu", "nominalQuota": "2"}]}]}]}}])
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not any(
                c["type"] == "Active" and c["status"] == "True"
                for c in kubectl.json("get", "clusterqueue", queue).get("status", {}).get("conditions", [])):
            time.sleep(1)
        result = run(gang_scheduling, lab_kubeconfig, cluster_queue=queue)
        assert_all_required_passed(result)
        assert "via ClusterQueue %s:" % queue in parts(result)[
            "a Job of N pods that fits the quota is admitted and all N pods are scheduled"]["detail"]
        missing = run(gang_scheduling, lab_kubeconfig, cluster_queue="no-such-queue-" + suffix)
        assert missing["status"] == "Not Implemented"
        assert "no Active ClusterQueue named no-such-queue-" in missing["parts"][0]["detail"]
    finally:
        kubectl.run("delete", "clusterqueue", queue, "--wait=false", check=False)
        kubectl.run("delete", "resourceflavor", flavor, "--wait=false", check=False)


def test_robust_controller_webhook_rejects_and_controllers_reconcile(lab_kubeconfig, kubectl):
    result = run(robust_controller, lab_kubeconfig)
    assert_all_required_passed(result)
    by_name = parts(result)
    for op in ("jobset", "kueue"):
        rejected = by_name["%s: an invalid custom resource is rejected by the webhook" % op]
        assert rejected["outcome"] == "passed" and 'admission webhook "' in rejected["detail"], rejected
        assert by_name["%s: a valid custom resource is accepted and reconciled" % op]["outcome"] == "passed"
    assert_cluster_scoped_cleaned(kubectl, result)


def test_robust_controller_without_operators_is_not_implemented(lab_kubeconfig):
    result = run(robust_controller, lab_kubeconfig, operators=[])
    assert result["status"] == "Not Implemented" and result["parts"][0]["outcome"] == "failed"


def test_gpu_sharing_shared_claim(lab_kubeconfig):
    result = run(gpu_sharing, lab_kubeconfig)
    assert_all_required_passed(result)
    detail = parts(result)["one ResourceClaim shared by two pods: both scheduled on the shared device"]["detail"]
    assert "share device gpu-node-" in detail
    assert parts(result)["a claim for a partition device (e.g. MIG) is allocated"]["outcome"] == "failed"  # no MIG


FAKE_DRIVER = "it-partitions.example.com"


@pytest.fixture
def virtual_and_partition_devices(kubectl):
    """For a few seconds, a second DRA driver on gpu-node-0 publishing one vGPU and one MIG-like device
    (the lab's NVIDIA-like driver has neither), with its DeviceClass; both removed afterwards."""
    suffix = "%d" % os.getpid()
    device_class = "it-partitions-%s" % suffix
    kubectl.apply([
        {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": device_class},
         "spec": {"selectors": [{"cel": {"expression": "device.driver == '%s'" % FAKE_DRIVER}}]}},
        {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": device_class},
         "spec": {"driver": FAKE_DRIVER, "nodeName": "gpu-node-0",
                  "pool": {"name": "gpu-node-0-" + suffix, "generation": 1, "resourceSliceCount": 1},
                  "devices": [{"name": "vgpu-0", "attributes": {"type": {"string": "vgpu"},
                                                                "productName": {"string": "GRID A100-4C"}}},
                              {"name": "mig-0", "attributes": {"type": {"string": "mig-1g.10gb"}}}]}}])
    try:
        yield device_class
    finally:
        kubectl.run("delete", "resourceslice", device_class, "--ignore-not-found", check=False)
        kubectl.run("delete", "deviceclass", device_class, "--ignore-not-found", check=False)


def test_virtual_and_partition_devices_are_claimed_by_attribute(lab_kubeconfig, virtual_and_partition_devices):
    result = run(virtualized_accelerator, lab_kubeconfig)
    assert_all_required_passed(result)
    detail = parts(result)["a claim selecting a virtual device is allocated and its pod scheduled"]["detail"]
    assert FAKE_DRIVER in detail and detail.endswith("allocated vgpu-0")
    result = run(gpu_sharing, lab_kubeconfig)
    assert_all_required_passed(result)
    partition = parts(result)["a claim for a partition device (e.g. MIG) is allocated"]
    assert partition["outcome"] == "passed" and partition["detail"].endswith(
        "(DeviceClass %s) allocated mig-0" % virtual_and_partition_devices)


def test_virtualized_accelerator_needs_a_stated_reason_for_na(lab_kubeconfig):
    result = run(virtualized_accelerator, lab_kubeconfig)
    assert result["status"] == "Not Implemented"
    assert "state it with not_applicable_reason" in result["notes"]
    result = run(virtualized_accelerator, lab_kubeconfig, not_applicable_reason="whole GPUs are passed through")
    assert result["status"] == "N/A" and result["na_reason"] == "whole GPUs are passed through"


def test_cluster_autoscaling_is_na_on_the_lab(lab_kubeconfig):
    result = run(cluster_autoscaling, lab_kubeconfig)
    assert result["status"] == "N/A"
    assert result["na_reason"] == "no cluster autoscaler on this platform (bare metal)"
    assert result["verified"] is True


@pytest.fixture
def fake_cluster_autoscaler(lab_kubeconfig, kubectl, namespace):
    """A Deployment named cluster-autoscaler (kwok runs it) plus a thread that plays its part: a
    TriggeredScaleUp event for every probe pod named scale-up. It proves the check's logic, not an autoscaler."""
    kubectl.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cluster-autoscaler",
                                                                               "namespace": namespace},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "fake-ca"}}, "template": {
                       "metadata": {"labels": {"app": "fake-ca"}},
                       "spec": {"tolerations": [{"operator": "Exists"}],
                                "containers": [{"name": "ca", "image": "registry.k8s.io/pause:3.10"}]}}}})
    deadline = time.time() + 60
    while time.time() < deadline and not kubectl.json("get", "deployment", "cluster-autoscaler", "-n", namespace)[
            "status"].get("readyReplicas"):
        time.sleep(1)
    from ansible_collections.k8s_ai.conformance.plugins.module_utils.client import Cluster
    cluster, stop, answered = Cluster.connect(lab_kubeconfig), threading.Event(), set()

    def play():
        while not stop.wait(0.5):
            for pod in cluster.list("/api/v1/pods", label_selector="k8s-ai-conformance/check=cluster_autoscaling"):
                meta = pod["metadata"]
                if meta["name"] in ("scale-up", "impossible") and meta["uid"] not in answered:
                    answered.add(meta["uid"])
                    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    reason, message = ("TriggeredScaleUp", "pod triggered scale-up: [{gpu-pool 2->3 (max: 10)}]") \
                        if meta["name"] == "scale-up" else ("NotTriggerScaleUp", "pod didn't trigger scale-up: 1 "
                                                            "Insufficient nvidia.com/gpu")
                    cluster.create("/api/v1/namespaces/%s/events" % meta["namespace"], {
                        "metadata": {"generateName": meta["name"] + "."}, "type": "Normal", "reason": reason,
                        "message": message, "count": 1,
                        "involvedObject": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                                           "uid": meta["uid"], "apiVersion": "v1"},
                        "source": {"component": "cluster-autoscaler"}, "firstTimestamp": now, "lastTimestamp": now})

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)
    # gone before the next test looks for autoscalers (namespace deletion alone is asynchronous)
    kubectl.run("delete", "deployment", "cluster-autoscaler", "-n", namespace, "--wait=true", "--timeout=60s",
                check=False)


def test_cluster_autoscaling_behaviour_with_an_autoscaler_present(lab_kubeconfig, fake_cluster_autoscaler):
    skipped = run(cluster_autoscaling, lab_kubeconfig)
    assert skipped["status"] == "Not Implemented"  # present, but scaling not observed unless probe_scale_up
    assert [p["outcome"] for p in skipped["parts"]] == ["passed", "skipped", "skipped", "skipped"]
    result = run(cluster_autoscaling, lab_kubeconfig, probe_scale_up=True, scale_up_timeout=10)
    assert_all_required_passed(result)
    by_name = parts(result)
    assert "TriggeredScaleUp" in by_name["a pending pod requesting accelerators triggers a scale-up"][
        "detail"]
    assert "the autoscaler refused it (NotTriggerScaleUp" in by_name[
        "a pod requesting more accelerators than any node group offers triggers no scale-up"]["detail"]


def test_pod_autoscaling_verdict_matches_the_metrics_api(lab_kubeconfig, kubectl):
    services = [s["metadata"]["name"] for s in kubectl.json("get", "apiservices")["items"]]
    adapter = any(s.endswith(".custom.metrics.k8s.io") for s in services)
    # With an adapter only the static part here: the behaviour needs the real nodes (test_pod_autoscaling_real.py).
    result = run(pod_autoscaling, lab_kubeconfig, check_mode=adapter)
    static = parts(result)["autoscaling/v2 HPA served and the custom metrics API Available"]
    if not adapter:
        assert result["status"] == "Not Implemented" and result["verified"] is True
        assert static["outcome"] == "failed" and "no metrics adapter" in static["detail"]
        assert "no metrics adapter" in result["notes"]
    else:
        assert static["outcome"] == "passed", static
