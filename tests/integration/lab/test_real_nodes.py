"""Proofs that the lab's real nodes run real pods: logs, pod -> Service -> pod traffic across nodes, DNS,
devices injected through DRA + CDI (exactly the claimed one, never another pod's), a gVisor sandbox with
its own kernel, and a node that comes back after a restart. Each assertion is about what a container
really printed or served; nothing here is simulated."""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))

import realnodes  # noqa: E402  (tests/lab/realnodes.py)

from integration.lab.test_lab import wait_for  # noqa: E402

BUSYBOX = realnodes.IMAGES["busybox"]
REAL = {realnodes.REAL_LABEL: "true"}


@pytest.fixture(scope="module")
def real_nodes(lab, kubectl):
    names = lab.get("real_nodes") or []
    if len(names) < 2:
        pytest.fail("the lab has %d real nodes (want 2): `make lab` starts them (LAB_ARGS=--real-nodes N)" % len(names))
    for name in names:
        node = kubectl.json("get", "node", name)
        assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"]), name
    return names


def pod(name, command, node=None, labels=None, claims=None, runtime_class=None, ports=None):
    container = {"name": "main", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", command]}
    if ports:
        container["ports"] = [{"containerPort": p} for p in ports]
    spec = {"containers": [container], "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False, "nodeSelector": dict(REAL)}
    if node:
        # Through the scheduler (not spec.nodeName), so that it allocates the pod's claims.
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}}
    if claims:
        spec["resourceClaims"] = [{"name": c, "resourceClaimTemplateName": t} for c, t in claims.items()]
        container["resources"] = {"claims": [{"name": c} for c in claims]}
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": dict(labels or {})}, "spec": spec}


def run_to_end(kubectl, namespace, obj, timeout=120):
    """Create a pod, wait until it finished, return (phase, logs)."""
    kubectl.apply(obj, namespace)
    name = obj["metadata"]["name"]

    def finished():
        p = kubectl.json("get", "pod", name, "-n", namespace)
        return p if p["status"].get("phase") in ("Succeeded", "Failed") else None
    done = wait_for("pod %s finished" % name, finished, timeout)
    logs = kubectl.run("logs", name, "-n", namespace).stdout
    return done["status"]["phase"], logs


def running(kubectl, namespace, name, timeout=120):
    def ready():
        p = kubectl.json("get", "pod", name, "-n", namespace)
        ok = p["status"].get("phase") == "Running" and all(
            c.get("ready") for c in p["status"].get("containerStatuses", []))
        return p if ok else None
    return wait_for("pod %s Running and Ready" % name, ready, timeout)


def test_kubectl_logs_returns_what_the_pod_printed(kubectl, namespace, real_nodes):
    marker = "printed-by-a-real-container-%s" % namespace
    phase, logs = run_to_end(kubectl, namespace, pod("echo", "echo %s; uname -s" % marker, node=real_nodes[0]))
    assert phase == "Succeeded"
    assert logs.split() == [marker, "Linux"]


def test_pod_to_service_to_pod_across_nodes_and_dns(kubectl, namespace, real_nodes):
    server = pod("web", "mkdir -p /www && echo served-by-$(hostname) > /www/index.html && httpd -f -p 8080 -h /www",
                 node=real_nodes[1], labels={"app": "web"}, ports=[8080])
    server["spec"]["restartPolicy"] = "Always"
    server["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    kubectl.apply(server, namespace)
    kubectl.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                   "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}, namespace)
    web = running(kubectl, namespace, "web")
    assert web["spec"]["nodeName"] == real_nodes[1]
    service_ip = kubectl.json("get", "service", "web", "-n", namespace)["spec"]["clusterIP"]
    # From the other node: by Service IP, by DNS name (the search path), by FQDN, and pod IP directly.
    fqdn = "web.%s.svc.cluster.local" % namespace
    script = ("wget -q -O - http://%s/ && wget -q -O - http://web/ && wget -q -O - http://%s/ "
              "&& wget -q -O - http://%s:8080/ && nslookup %s" % (service_ip, fqdn, web["status"]["podIP"], fqdn))
    phase, logs = run_to_end(kubectl, namespace, pod("client", script, node=real_nodes[0]))
    assert phase == "Succeeded", logs
    assert logs.count("served-by-web") == 4, logs
    assert service_ip in logs, logs  # nslookup answered with the Service's ClusterIP


def test_dns_answers_nxdomain_for_a_missing_service(kubectl, namespace, real_nodes):
    # The same server must answer a name that exists, so the refusal is DNS's NXDOMAIN, not a dead resolver.
    phase, logs = run_to_end(kubectl, namespace, pod(
        "nx", "nslookup kubernetes.default.svc.cluster.local; echo known=$?; "
              "nslookup no-such-service.%s.svc.cluster.local; echo missing=$?" % namespace, node=real_nodes[0]))
    assert "known=0" in logs and "10.96.0.1" in logs, logs
    assert "missing=1" in logs and "NXDOMAIN" in logs, logs


def claim_template(kubectl, namespace, name):
    kubectl.apply({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate", "metadata": {"name": name},
                   "spec": {"spec": {"devices": {"requests": [{"name": "gpu", "exactly": {
                       "deviceClassName": realnodes.DRA_DRIVER}}]}}}}, namespace)


def devices_seen(logs):
    return sorted(line.split("=", 1)[1] for line in logs.split() if line.startswith("GPU_DEVICE_") and "=" in line
                  and line.split("=", 1)[0].count("_") == 2)


def allocated(kubectl, namespace, pod_name):
    claims = kubectl.json("get", "resourceclaims", "-n", namespace)["items"]
    for claim in claims:
        owners = [o["name"] for o in claim["metadata"].get("ownerReferences", [])]
        if pod_name in owners:
            return sorted(r["device"] for r in claim["status"]["allocation"]["devices"]["results"])
    raise AssertionError("no claim owned by %s: %s" % (pod_name, [c["metadata"]["name"] for c in claims]))


def listed(kubectl, namespace, name):
    out = kubectl.run("logs", name, "-n", namespace).stdout
    return out if "listed" in out else None


def test_a_claimed_device_is_injected_and_only_into_its_own_container(kubectl, namespace, real_nodes):
    claim_template(kubectl, namespace, "one-gpu")
    node = real_nodes[0]
    show = "env | grep ^GPU_DEVICE_ | sort; echo listed; sleep 3600"
    for name, claims in (("a", {"gpu": "one-gpu"}), ("b", {"gpu": "one-gpu"}), ("none", None)):
        kubectl.apply(pod(name, show, node=node, claims=claims), namespace)
    logs = {}
    for name in ("a", "b", "none"):
        running(kubectl, namespace, name)
        logs[name] = wait_for("%s listed its environment" % name, lambda n=name: listed(kubectl, namespace, n))
    seen_a, seen_b = devices_seen(logs["a"]), devices_seen(logs["b"])
    # Each container sees exactly the device the scheduler allocated to its own claim ...
    assert seen_a == allocated(kubectl, namespace, "a") and len(seen_a) == 1, logs["a"]
    assert seen_b == allocated(kubectl, namespace, "b") and len(seen_b) == 1, logs["b"]
    assert seen_a != seen_b
    # ... and a pod without a claim on the same node sees none.
    assert not devices_seen(logs["none"]), logs["none"]


def test_two_running_pods_never_see_each_others_device(kubectl, namespace, real_nodes):
    claim_template(kubectl, namespace, "one-gpu")
    node = real_nodes[1]
    for name in ("left", "right"):
        obj = pod(name, "env | grep ^GPU_DEVICE_; sleep 3600", node=node, claims={"gpu": "one-gpu"})
        kubectl.apply(obj, namespace)
    left, right = running(kubectl, namespace, "left"), running(kubectl, namespace, "right")
    assert left and right
    seen = {n: devices_seen(kubectl.run("logs", n, "-n", namespace).stdout) for n in ("left", "right")}
    assert len(seen["left"]) == 1 and len(seen["right"]) == 1, seen
    assert seen["left"] != seen["right"], seen
    # A second container in a pod, without the claim, sees none of the pod's devices.
    obj = pod("sidecar", "env | grep ^GPU_DEVICE_ | sort", node=node, claims={"gpu": "one-gpu"})
    obj["spec"]["containers"].append({"name": "plain", "image": BUSYBOX,
                                      "command": ["sh", "-c", "env | grep ^GPU_DEVICE_ | sort"]})
    kubectl.apply(obj, namespace)
    # 150 s, not 60: seen once, the kubelet got the pod before the API server's Node authorizer linked it to the
    # node ("no relationship found" fetching its claim) and did not try again within the minute
    wait_for("sidecar pod finished", lambda: kubectl.json("get", "pod", "sidecar", "-n", namespace)["status"].get(
        "phase") in ("Succeeded", "Failed"), timeout=150)
    assert len(devices_seen(kubectl.run("logs", "sidecar", "-c", "main", "-n", namespace).stdout)) == 1
    assert devices_seen(kubectl.run("logs", "sidecar", "-c", "plain", "-n", namespace).stdout) == []


def test_a_gvisor_pod_runs_another_kernel_than_a_runc_pod_on_the_same_node(kubectl, namespace, real_nodes):
    node = real_nodes[0]
    script = "uname -r; dmesg 2>/dev/null | head -n 1"
    phase_runc, runc = run_to_end(kubectl, namespace, pod("runc", script, node=node))
    phase_gvisor, gvisor = run_to_end(kubectl, namespace, pod("gvisor", script, node=node, runtime_class="gvisor"))
    assert (phase_runc, phase_gvisor) == ("Succeeded", "Succeeded"), (runc, gvisor)
    host_kernel = subprocess.run(["uname", "-r"], capture_output=True, text=True, check=True).stdout.strip()
    assert runc.split()[0] == host_kernel
    assert gvisor.split()[0] != host_kernel and "gvisor" in gvisor.lower(), gvisor


def test_a_restarted_node_comes_back_ready_and_its_pods_recover(lab, kubectl, namespace, real_nodes):
    node = real_nodes[-1]
    server = pod("survivor", "echo started-$(date +%s); sleep 3600", node=node)
    server["spec"]["restartPolicy"] = "Always"
    kubectl.apply(server, namespace)
    before = running(kubectl, namespace, "survivor")
    restarts = before["status"]["containerStatuses"][0]["restartCount"]
    sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
    import lab as lab_module  # noqa: PLC0415
    realnodes.restart_node(lab_module, node)

    def recovered():
        p = kubectl.json("get", "pod", "survivor", "-n", namespace)
        statuses = p["status"].get("containerStatuses") or [{}]
        return p if statuses[0].get("ready") and (statuses[0].get("restartCount", 0) > restarts or
                                                  p["status"].get("podIP") != before["status"].get("podIP")) else None
    after = wait_for("pod on the restarted node running again", recovered, 180)
    assert after["spec"]["nodeName"] == node
    assert "started-" in kubectl.run("logs", "survivor", "-n", namespace).stdout


def test_the_lab_inventory_gathers_node_facts_from_the_real_nodes(real_nodes):
    """accelerator_nodes of the lab inventory are the real nodes (podman connection): their facts show the CDI
    spec the DRA driver wrote, containerd with CDI enabled and the runsc handler."""
    import json
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible"), "-i", os.path.join(ROOT, ".lab", "inventory"),
                           "accelerator_nodes", "-m", "k8s_ai.conformance.accelerator_node_facts", "-o"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    hosts = {}
    for line in proc.stdout.splitlines():
        name, _sep, rest = line.partition(" | SUCCESS => ")
        if rest:
            hosts[name.strip()] = json.loads(rest)["ansible_facts"]["accelerator_node_facts"]
    assert sorted(hosts) == sorted(real_nodes), (sorted(hosts), proc.stdout[-1000:])
    for name, facts in hosts.items():
        assert facts["containerd"]["cdi_enabled"] is True, (name, facts["containerd"])
        assert "runsc" in facts["containerd"]["runtimes"], (name, facts["containerd"])
        assert any("gpu.example.com" in path for path in facts["cdi_spec_files"]), (name, facts["cdi_spec_files"])
