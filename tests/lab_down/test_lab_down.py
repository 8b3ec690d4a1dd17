"""After `make lab-down`: nothing of the lab is left on the host (run by `make integration` after lab-down).
No podman container, network namespace, bridge, route, mount, process, cgroup, kube-proxy rule or lab port
remains, and every global sysctl the kubelets changed is back to the value it had before the lab started."""

import json
import os
import socket
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, ".lab")


def run(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, check=False).stdout


def test_no_node_container_is_left():
    names = run("podman", "ps", "-a", "--filter", "label=k8s-ai-conformance-lab=node", "--format", "{{.Names}}")
    assert names.split() == []


def test_no_network_namespace_bridge_or_route_is_left():
    assert [n for n in run("ip", "netns", "list").split() if n.startswith("k8s-ai-lab-")] == []
    assert "k8slab0" not in run("ip", "-br", "link")
    assert run("ip", "route", "show", "10.250.0.0/16").strip() == ""


def test_no_mount_or_process_of_the_lab_is_left():
    with open("/proc/self/mountinfo") as handle:
        mounts = [line for line in handle if LAB in line]
    assert mounts == []
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if os.path.join(LAB, "bin") in cmdline or "/lab/bin/" in cmdline:
            procs.append("%s %s" % (pid, cmdline[:120]))
    assert procs == []


def test_no_container_cgroup_is_left():
    left = []
    for controller in os.listdir("/sys/fs/cgroup"):
        parent = os.path.join("/sys/fs/cgroup", controller, "libpod_parent")
        if os.path.isdir(parent):
            left += [os.path.join(parent, d) for d in os.listdir(parent) if d.startswith("libpod-")]
    assert left == []


def test_no_kube_proxy_rule_on_the_host():
    assert "kube-proxy" not in run("nft", "list", "tables")
    assert "KUBE-" not in run("iptables-save")


def test_no_lab_port_is_open():
    ports = [32379, 36443, 30257, 30259, 30247, 38080]
    open_ports = []
    for port in ports:
        with socket.socket() as sock:
            sock.settimeout(0.3)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                open_ports.append(port)
    assert open_ports == []


def test_global_sysctls_are_restored():
    path = os.path.join(LAB, "host-sysctls.json")
    if not os.path.exists(path):
        pytest.fail("%s missing: the lab never started real nodes in this checkout" % path)
    with open(path) as handle:
        before = json.load(handle)
    now = {}
    for key in before:
        with open("/proc/sys/" + key) as handle:
            now[key] = handle.read().strip()
    assert now == before
