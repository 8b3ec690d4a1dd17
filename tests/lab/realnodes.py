"""The lab's real nodes: kubelet + containerd 2.x + runc (+ runsc) in podman containers that run real pods.

One privileged podman container per node (kind-like, no systemd), each in a network namespace of its
own wired to a host bridge; pods get routed /32 veths (CNI ptp + host-local), kube-proxy (nftables) runs
in the node, CoreDNS in the cluster, the DRA example driver's kubelet plugin publishes devices and
injects them through CDI, and a RuntimeClass `gvisor` runs pods under runsc. Images are built here
(tests/lab/images.py) and imported into each node's containerd under their upstream names.

Called by tests/lab/lab.py (`up --real-nodes N`, `down`); the facts this follows and the traps of this
machine (cgroup v1, no CAP_SYS_RESOURCE) are in tests/lab/README.md.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import gateway
import images
import metrics_standin
import observability
import otel_collector
import registry

HERE = os.path.dirname(os.path.abspath(__file__))
BRIDGE = "k8slab0"
HOST_IP = "172.31.250.1"           # the host's address on the lab bridge: the API server as the nodes see it
NODE_SUBNET = "172.31.250.0/24"
CLUSTER_CIDR = "10.250.0.0/16"     # pods of the real nodes (kwok's simulated pods use 10.244.0.0/16)
DNS_IP = "10.96.0.10"
REAL_LABEL = "lab.k8s-ai-conformance.io/real-node"
REGISTRY_PORT = 38500              # tests/lab/registry.py on HOST_IP: the nodes' mirror for every image host
DRA_DRIVER = "gpu.example.com"     # the DRA example driver's default driver name (and DeviceClass)
DRA_DEVICES_PER_NODE = 4
CGROUP_ROOT = "/sys/fs/cgroup"
PODMAN = ["podman", "--cgroup-manager=cgroupfs", "--runtime", "/usr/sbin/runc"]
# Global (not per-namespace) sysctls the kubelet sets when protectKernelDefaults is false: saved before
# the first node starts and restored by `down`.
GLOBAL_SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops",
                  "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes")
IMAGES = {
    "pause": "registry.k8s.io/pause:3.10",
    "busybox": "docker.io/library/busybox:1.36",
    "coredns": "registry.k8s.io/coredns/coredns:v1.14.7",
}
APT_PACKAGES = {"podman": "podman", "/usr/sbin/runc": "runc", "/usr/lib/cni/ptp": "containernetworking-plugins",
                "/bin/busybox": "busybox-static", "/usr/sbin/nft": "nftables", "/usr/sbin/iptables": "iptables",
                "/usr/sbin/ipset": "ipset"}  # ipset: kube-router's NetworkPolicy sets
# A file that stops a node's NetworkPolicy enforcer (kube-router) from being restarted: tests make the lab without
# enforcement for a control (netpol_enforcement), as a cluster whose CNI implements no NetworkPolicy is.
NO_NETPOL_FLAG = "/run/lab-no-kube-router"


def node_name(index):
    return "real-node-%d" % index


def node_ip(index):
    return "172.31.250.%d" % (10 + index)


def pod_subnet(index):
    return "10.250.%d.0/24" % index


EMPTY = subprocess.CompletedProcess([], 0, "", "")


def _run(argv, check=True, **kwargs):
    """Run a command; on failure stop the lab with its message (check) or return None."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode == 0:
        return result
    if check:
        raise SystemExit("lab: %s failed (%d): %s" % (" ".join(argv), result.returncode,
                                                      (result.stderr or result.stdout).strip()[-800:]))
    return None


# ---------------------------------------------------------------- prerequisites and builds

def host_packages():
    """Debian packages the real nodes use from the host's /usr (mounted read-only into each node)."""
    missing = sorted({pkg for path, pkg in APT_PACKAGES.items()
                      if not (os.path.exists(path) or shutil.which(path))})
    if not missing:
        return
    print("lab: apt-get install %s" % " ".join(missing), flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(["apt-get", "install", "-y", "-q"] + missing, env=env, capture_output=True,
                      check=False).returncode:
        _run(["apt-get", "update", "-q"], env=env)
        _run(["apt-get", "install", "-y", "-q"] + missing, env=env)


def _gvisor_shim_module(lab, module_dir):
    """A build-time copy of the gVisor module with one constant changed, and a module that builds the shim
    from it (`replace`); nothing of gVisor is committed. Returns the directory to build in.

    The shim sets its own oom_score_adj to -999 and fails when it cannot: lowering oom_score_adj needs
    CAP_SYS_RESOURCE, which no process here has (the capability bounding set lacks it, inside and outside
    podman). containerd's own shims skip that error inside a user namespace, but a user namespace for the
    node breaks the kubelet on cgroup v1. So the copy keeps the score the shim inherits (0) instead of
    -999: the only difference from upstream. (`go build -overlay` would be smaller, but Go refuses
    overlays of files in the module cache.) On a real node the upstream shim works unchanged."""
    source = observability.module_dir(module_dir, "gvisor.dev/gvisor")
    manager = os.path.join("pkg", "shim", "v1", "manager.go")
    with open(os.path.join(source, manager)) as handle:
        text = handle.read()
    patched = text.replace("oomScoreMax = -999", "oomScoreMax = 0")
    if patched == text:
        raise SystemExit("lab: %s no longer has `oomScoreMax = -999`: revisit tests/lab/realnodes.py"
                         % os.path.join(source, manager))
    build = os.path.join(lab.LAB, "build", "gvisor-shim")
    copy = os.path.join(build, "gvisor")
    marker = os.path.join(copy, ".lab-source")
    if lab._read(marker) != source:
        if os.path.exists(copy):  # the module cache's directories are read-only, and so are their copies
            for dirpath, _dirs, _files in os.walk(copy):
                os.chmod(dirpath, 0o755)
            shutil.rmtree(copy)
        # Hard links where the module cache is on the same file system: a copy of 70 MB in no time.
        shutil.copytree(source, copy, copy_function=_link_or_copy)
        with open(marker, "w") as handle:
            handle.write(source)
    target = os.path.join(copy, manager)
    if lab._read(target) != patched:
        os.chmod(os.path.dirname(target), 0o755)
        os.remove(target)
        with open(target, "w") as handle:
            handle.write(patched)
    with open(os.path.join(module_dir, "go.mod")) as handle:
        gomod = handle.read()
    _write(os.path.join(build, "go.mod"), gomod + "\nreplace gvisor.dev/gvisor => ./gvisor\n")
    shutil.copy2(os.path.join(module_dir, "go.sum"), os.path.join(build, "go.sum"))
    return build


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build(lab):
    """Node binaries into .lab/bin/node (mounted into every node at /lab/bin) and the images."""
    host_packages()
    node_bin = os.path.join(lab.BIN, "node")
    os.makedirs(node_bin, exist_ok=True)
    nodes_go = os.path.join(HERE, "nodes")
    containerd = os.path.join(nodes_go, "containerd")
    version = observability.module_version(containerd, "github.com/containerd/containerd/v2")
    stamp = "-s -w -X github.com/containerd/containerd/v2/version.Version=%s" % version
    for command in ("containerd", "containerd-shim-runc-v2", "ctr"):
        lab._go_build(command, containerd, "github.com/containerd/containerd/v2/cmd/" + command,
                      os.path.join(node_bin, command), stamp)
    gvisor = os.path.join(nodes_go, "go")
    gvisor_version = observability.module_version(gvisor, "gvisor.dev/gvisor").replace("v0.0.0-", "")
    lab._go_build("runsc", gvisor, "gvisor.dev/gvisor/runsc", os.path.join(node_bin, "runsc"),
                  "-s -w -X gvisor.dev/gvisor/runsc/version.version=%s" % gvisor_version)
    lab._go_build("containerd-shim-runsc-v1 (oom score kept, see realnodes.py)", _gvisor_shim_module(lab, gvisor),
                  "gvisor.dev/gvisor/shim", os.path.join(node_bin, "containerd-shim-runsc-v1"))
    go = os.path.join(HERE, "go")
    lab._go_build("dra-example-kubeletplugin", os.path.join(go, "dra"),
                  "sigs.k8s.io/dra-example-driver/cmd/dra-example-kubeletplugin",
                  os.path.join(node_bin, "dra-example-kubeletplugin"))
    for command in ("kubelet", "kube-proxy"):
        _refresh_copy(os.path.join(lab.BIN, "kube"), os.path.join(node_bin, command))
    kube_router, router_module = os.path.join(go, "kube-router"), "github.com/cloudnativelabs/kube-router/v2"
    lab._go_build("kube-router", kube_router, router_module + "/cmd/kube-router", os.path.join(node_bin, "kube-router"),
                  "-s -w -X %s/pkg/version.Version=%s" % (router_module,
                                                          observability.module_version(kube_router, router_module)))
    lab._go_build("pause", os.path.join(go, "pause"), ".", os.path.join(lab.BIN, "pause"))
    lab._go_build("coredns", os.path.join(go, "coredns"), ".", os.path.join(lab.BIN, "coredns"))
    observability.build(lab)  # Prometheus, the inference simulator, prometheus-adapter (tests/lab/observability.py)
    metrics_standin.build(lab)  # OUR accelerator metrics stand-in with DCGM's names (tests/lab/metrics_standin.py)
    gateway.build(lab)  # Envoy Gateway and upstream's Envoy (tests/lab/gateway.py)
    otel_collector.build(lab)  # the collector site.yml's otel_collector runs (tests/lab/otel_collector.py)
    build_images(lab)


def _refresh_copy(source, target):
    """The node gets the multi-call binary under the command's name (a symlink would point outside /lab/bin)."""
    if not os.path.exists(target) or os.path.getmtime(target) < os.path.getmtime(source):
        shutil.copy2(source, target + ".tmp")
        os.replace(target + ".tmp", target)


def build_images(lab):
    out = image_dir(lab)
    os.makedirs(out, exist_ok=True)
    images.binary_image(os.path.join(out, "pause.tar"), IMAGES["pause"], os.path.join(lab.BIN, "pause"), "pause")
    images.busybox_image(os.path.join(out, "busybox.tar"), IMAGES["busybox"])
    images.binary_image(os.path.join(out, "coredns.tar"), IMAGES["coredns"], os.path.join(lab.BIN, "coredns"),
                        "coredns")
    for extra in extra_images(lab):
        extra(out)


def extra_images(lab):
    """The controllers the release manifests run, from the binaries the lab built, under the manifests'
    image names; USER 65532 as upstream's distroless images (the manifests set runAsNonRoot)."""
    v = lab.versions()
    controllers = {"kueue": "registry.k8s.io/kueue/kueue:%s" % v["KUEUE_VERSION"],
                   "jobset": "registry.k8s.io/jobset/jobset:%s" % v["JOBSET_VERSION"]}

    def image(name, ref):
        return lambda out: images.binary_image(os.path.join(out, name + ".tar"), ref, os.path.join(lab.BIN, name),
                                               "manager", user="65532:65532")
    return ([image(name, ref) for name, ref in controllers.items()] + observability.image_builders(lab)
            + metrics_standin.image_builders(lab) + [lambda out: gateway.write_images(lab, out)]
            + otel_collector.image_builders(lab))


def image_dir(lab):
    return os.path.join(lab.LAB, "images")


# ---------------------------------------------------------------- host network

def _netns(index):
    return "k8s-ai-lab-%d" % index


def network_up(count):
    if not _run(["ip", "link", "show", BRIDGE], check=False):
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        _run(["ip", "addr", "add", HOST_IP + "/24", "dev", BRIDGE])
    _run(["ip", "link", "set", BRIDGE, "up"])
    for i in range(count):
        ns = _netns(i)
        if not os.path.exists("/run/netns/" + ns):
            _run(["ip", "netns", "add", ns])
            host_end = "k8slab-veth%d" % i
            _run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns])
            _run(["ip", "link", "set", host_end, "master", BRIDGE, "up"])
            _run(["ip", "-n", ns, "addr", "add", node_ip(i) + "/24", "dev", "eth0"])
            _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(["ip", "-n", ns, "route", "add", "default", "via", HOST_IP])
    # Every node (and the host, for the API server's webhooks, proxy and logs) routes each node's pod
    # subnet to that node directly over the bridge.
    for i in range(count):
        _run(["ip", "route", "replace", pod_subnet(i), "via", node_ip(i)])
        for j in range(count):
            if j != i:
                _run(["ip", "-n", _netns(j), "route", "replace", pod_subnet(i), "via", node_ip(i)])


def network_down():
    for ns in (_run(["ip", "netns", "list"], check=False) or EMPTY).stdout.split("\n"):
        name = ns.split(" ")[0]
        if name.startswith("k8s-ai-lab-"):
            _run(["ip", "netns", "delete", name], check=False)
    for line in (_run(["ip", "route", "show", "root", CLUSTER_CIDR], check=False) or EMPTY).stdout.splitlines():
        _run(["ip", "route", "del"] + line.split()[:1], check=False)
    _run(["ip", "link", "delete", BRIDGE], check=False)


# ---------------------------------------------------------------- node files

def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


def node_dir(lab, name):
    return os.path.join(lab.LAB, "nodes", name)


def _kubeconfig(lab, user, server):
    path = lab.write_kubeconfig(os.path.join(lab.PKI, "tmp-%s.kubeconfig" % user.replace(":", "-")), user)
    with open(path) as handle:
        text = handle.read().replace("https://127.0.0.1:%d" % lab.PORTS["apiserver"], server)
    os.remove(path)
    return text


def prepare_node(lab, index):
    name = node_name(index)
    root = os.path.join(node_dir(lab, name), "rootfs")
    for d in ("etc", "var/lib", "var/log", "run", "tmp", "proc", "sys", "dev", "root", "usr", "lab/bin",
              "lab/images", "opt", "mnt"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"),
                         ("var/run", "../run")):
        path = os.path.join(root, link)
        if not os.path.islink(path):
            os.symlink(target, path)
    etc = os.path.join(root, "etc")
    _write(os.path.join(etc, "hostname"), name + "\n")
    _write(os.path.join(etc, "hosts"), "127.0.0.1 localhost\n%s %s\n" % (node_ip(index), name))
    _write(os.path.join(etc, "resolv.conf"), "")
    _write(os.path.join(etc, "passwd"), "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    _write(os.path.join(etc, "group"), "root:x:0:\nnobody:x:65534:\n")
    _write(os.path.join(etc, "nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\n")
    _write(os.path.join(etc, "machine-id"), "%032x\n" % (0x6c6162 + index))
    if not os.path.islink(os.path.join(etc, "os-release")):
        os.symlink("../usr/lib/os-release", os.path.join(etc, "os-release"))
    server = "https://%s:%d" % (HOST_IP, lab.PORTS["apiserver"])
    lab._cert("node-" + name, "/O=system:nodes/CN=system:node:" + name, ca=False, client=True)
    k8s = os.path.join(etc, "kubernetes")
    os.makedirs(os.path.join(k8s, "pki"), exist_ok=True)
    shutil.copy2(os.path.join(lab.PKI, "ca.crt"), os.path.join(k8s, "pki", "ca.crt"))
    _write(os.path.join(k8s, "kubelet.kubeconfig"), _kubeconfig(lab, "node-" + name, server), 0o600)
    _write(os.path.join(k8s, "kube-proxy.kubeconfig"), _kubeconfig(lab, "kube-proxy", server), 0o600)
    lab._cert("kube-router", "/CN=lab:kube-router", ca=False, client=True)
    _write(os.path.join(k8s, "kube-router.kubeconfig"), _kubeconfig(lab, "kube-router", server), 0o600)
    _write(os.path.join(k8s, "kubelet.yaml"), KUBELET_CONFIG % {"dns": DNS_IP})
    _write(os.path.join(k8s, "kube-proxy.yaml"), KUBE_PROXY_CONFIG % {"cidr": CLUSTER_CIDR, "name": name})
    _write(os.path.join(etc, "containerd", "config.toml"), CONTAINERD_CONFIG % {"pause": IMAGES["pause"]})
    _write(os.path.join(etc, "containerd", "runsc.toml"), RUNSC_CONFIG)
    _write(os.path.join(etc, "cni", "net.d", "10-lab.conflist"), json.dumps(_cni(index), indent=2))
    for host in registry_hosts(lab):
        upstream = "https://registry-1.docker.io" if host == "docker.io" else "https://" + host
        _write(os.path.join(etc, "containerd", "certs.d", host, "hosts.toml"),
               'server = "%s"\n\n[host."http://%s:%d"]\n  capabilities = ["pull", "resolve"]\n'
               % (upstream, HOST_IP, REGISTRY_PORT))
    _write(os.path.join(etc, "lab", "entry.sh"), ENTRY % {
        "name": name, "ip": node_ip(index), "labels": "%s=true" % REAL_LABEL, "driver": DRA_DRIVER,
        "devices": DRA_DEVICES_PER_NODE, "no_netpol": NO_NETPOL_FLAG, "service_cidr": lab.SERVICE_CIDR}, 0o755)
    return name, root


def _cni(index):
    return {"cniVersion": "1.0.0", "name": "lab", "plugins": [
        {"type": "ptp", "ipMasq": False, "mtu": 1500,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_subnet(index)}]], "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]}


KUBELET_CONFIG = """apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 host: 1.35 refuses it unless told (failCgroupV1), and the cgroupfs driver (no systemd here).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /kubelet
cgroupsPerQOS: true
failSwapOn: false
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: /etc/kubernetes/pki/ca.crt}
authorization: {mode: Webhook}
clusterDNS: [%(dns)s]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
# The host's disk is shared with everything else: never garbage-collect the imported images or evict.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "0%%", nodefs.available: "0%%", nodefs.inodesFree: "0%%", imagefs.available: "0%%"}
# The kubelet changes global sysctls (vm.overcommit_memory, kernel.panic, ...); the lab saves and restores them.
protectKernelDefaults: false
serializeImagePulls: false
readOnlyPort: 0
rotateCertificates: false
"""

KUBE_PROXY_CONFIG = """apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: /etc/kubernetes/kube-proxy.kubeconfig}
mode: nftables
clusterCIDR: %(cidr)s
hostnameOverride: %(name)s
# nf_conntrack_max is not writable in a network namespace.
conntrack: {maxPerCore: 0}
metricsBindAddress: 127.0.0.1:10249
"""

CONTAINERD_CONFIG = """version = 3
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins.'io.containerd.cri.v1.runtime']
  enable_cdi = true
  cdi_spec_dirs = ["/etc/cdi", "/var/run/cdi"]
  # No CAP_SYS_RESOURCE here: a container may not get an oom_score_adj below containerd's own.
  restrict_oom_score_adj = true

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = "runc"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
    BinaryName = "/usr/sbin/runc"
    SystemdCgroup = false

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc]
  runtime_type = "io.containerd.runsc.v1"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc.options]
    TypeUrl = "io.containerd.runsc.v1.options"
    ConfigPath = "/etc/containerd/runsc.toml"

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["/usr/lib/cni"]
  conf_dir = "/etc/cni/net.d"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

[plugins.'io.containerd.cri.v1.images'.registry]
  # hosts.toml per registry host: the lab's registry first (tests/lab/registry.py)
  config_path = "/etc/containerd/certs.d"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "%(pause)s"
"""

RUNSC_CONFIG = """binary_name = "/lab/bin/runsc"
root = "/run/containerd/runsc"

[runsc_config]
  platform = "systrap"
"""

ENTRY = r"""#!/bin/bash
# A real node: containerd, kubelet, kube-proxy and the DRA example driver's kubelet plugin (tests/lab/realnodes.py).
set -u
export PATH=/lab/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
logs=/var/log/lab; mkdir -p $logs /var/run/cdi /etc/cdi /var/lib/kubelet
mount --make-rshared /
# Every v1 hierarchy this process is in must be mounted: containerd's cgroup loader (the gVisor shim's) refuses
# a process in one that is not ("cannot find cgroup mount destination"). podman mounts the ones that existed
# when it was set up; hierarchies a systemd container activated later (hugetlb, perf_event, net_cls) are not.
while IFS=: read -r _id controllers _path; do
  [ -n "$controllers" ] || continue
  dir=/sys/fs/cgroup/${controllers#name=}
  mountpoint -q "$dir" && continue
  mkdir -p "$dir" && mount -t cgroup -o "$controllers" cgroup "$dir" || echo "could not mount cgroup $controllers" >&2
done < /proc/self/cgroup
# cgroup v1: the kubelet's cgroupRoot (/kubelet) must exist in every hierarchy; each is bind-mounted onto
# itself, as kind's entrypoint does, so the kubelet and runc see a cgroup tree of their own.
for dir in /sys/fs/cgroup/*/; do
  dir=${dir%%/}
  [ -d "$dir/kubelet" ] || mkdir "$dir/kubelet" 2>/dev/null || continue
  if [ -f "$dir/cpuset.cpus" ]; then
    cat "$dir/cpuset.cpus" > "$dir/kubelet/cpuset.cpus"; cat "$dir/cpuset.mems" > "$dir/kubelet/cpuset.mems"
  fi
  mountpoint -q "$dir/kubelet" || mount --bind "$dir/kubelet" "$dir/kubelet"
done
# Whatever ran before a restart is gone: its sockets and task state go too (images and pods' data stay).
rm -rf /run/containerd
containerd --config /etc/containerd/config.toml >>$logs/containerd.log 2>&1 &
for i in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
for image in /lab/images/*.tar; do
  ctr -n k8s.io images import "$image" >>$logs/images.log 2>&1 || echo "import $image failed" >>$logs/images.log
done
ctr -n k8s.io images label registry.k8s.io/pause:3.10 io.cri-containerd.pinned=pinned >/dev/null 2>&1
kubelet --config=/etc/kubernetes/kubelet.yaml --kubeconfig=/etc/kubernetes/kubelet.kubeconfig \
  --hostname-override=%(name)s --node-ip=%(ip)s --node-labels=%(labels)s --v=1 >>$logs/kubelet.log 2>&1 &
kube-proxy --config=/etc/kubernetes/kube-proxy.yaml --v=1 >>$logs/kube-proxy.log 2>&1 &
# The DRA plugin registers with the kubelet through its plugin directories; it is restarted when it stops
# (it exits when the kubelet is not there yet or restarts), as a DaemonSet would restart it.
mkdir -p /var/lib/kubelet/plugins_registry /var/lib/kubelet/plugins
essential="$(jobs -p)"
# kube-router's NetworkPolicy controller only (no routing, no service proxy: the CNI and kube-proxy do those),
# restarted like the plugin unless a test stopped it for a control (NO_NETPOL_FLAG).
(while true; do
  [ -e %(no_netpol)s ] || kube-router --run-firewall=true --run-router=false --run-service-proxy=false \
    --kubeconfig=/etc/kubernetes/kube-router.kubeconfig --hostname-override=%(name)s --enable-ipv6=false \
    --service-cluster-ip-range=%(service_cidr)s >>$logs/kube-router.log 2>&1
  sleep 2
done) &
(while true; do
  NODE_NAME=%(name)s dra-example-kubeletplugin --kubeconfig=/etc/kubernetes/kubelet.kubeconfig \
    --cdi-root=/var/run/cdi --num-devices=%(devices)d --driver-name=%(driver)s >>$logs/dra-plugin.log 2>&1
  sleep 2
done) &
trap 'kill $(jobs -p) 2>/dev/null; wait; exit 0' TERM INT
wait -n $essential
echo "a node process exited: $(jobs -l)" >>$logs/entry.log
exit 1
"""


# ---------------------------------------------------------------- lifecycle

def save_sysctls(lab, state):
    """Remember the host's values (also in .lab/host-sysctls.json, which `down` leaves for its test)."""
    if "host_sysctls" in state:
        return
    saved = {}
    for key in GLOBAL_SYSCTLS:
        try:
            with open("/proc/sys/" + key) as handle:
                saved[key] = handle.read().strip()
        except OSError:
            continue
    state["host_sysctls"] = saved
    with open(os.path.join(lab.LAB, "host-sysctls.json"), "w") as handle:
        json.dump(saved, handle)


def restore_sysctls(state):
    changed = {}
    for key, value in (state.pop("host_sysctls", None) or {}).items():
        try:
            with open("/proc/sys/" + key) as handle:
                now = handle.read().strip()
            if now != value:
                with open("/proc/sys/" + key, "w") as handle:
                    handle.write(value)
                changed[key] = "%s -> %s" % (now, value)
        except OSError as exc:
            changed[key] = "could not restore %s: %s" % (value, exc)
    return changed


def start_node(lab, index):
    name, root = prepare_node(lab, index)
    _run(PODMAN + ["rm", "-f", "-t", "5", name], check=False)
    remove_container_cgroups(orphan_cgroup_ids())
    _run(PODMAN + [
        "run", "-d", "--name", name, "--hostname", name, "--privileged", "--cgroupns=private",
        "--network", "ns:/run/netns/" + _netns(index), "--label", "k8s-ai-conformance-lab=node",
        "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096",
        "-v", "/usr:/usr:ro", "-v", "/etc/alternatives:/etc/alternatives:ro",
        "-v", "%s:/lab/bin:ro" % os.path.join(lab.BIN, "node"), "-v", "%s:/lab/images:ro" % image_dir(lab),
        "--rootfs", root, "/etc/lab/entry.sh"])
    return name


def registry_dir(lab):
    return os.path.join(lab.LAB, "registry")


def registry_hosts(lab):
    with open(os.path.join(registry_dir(lab), "catalog.json")) as handle:
        return sorted(json.load(handle))


def start_registry(lab, state):
    registry.prepare(image_dir(lab), registry_dir(lab))
    lab.start_server(state, "registry", [sys.executable, os.path.join(HERE, "registry.py"), "serve",
                                         registry_dir(lab), HOST_IP, str(REGISTRY_PORT)], HOST_IP, REGISTRY_PORT)


def up(lab, state, count):
    """Start `count` real nodes and the cluster add-ons they need; wait until they are Ready."""
    if count <= 0:
        return
    started = time.time()
    save_sysctls(lab, state)
    lab._save(state)
    network_up(count)
    start_registry(lab, state)
    names = [start_node(lab, i) for i in range(count)]
    state["real_nodes"] = names
    lab._save(state)
    api = lab.Api()
    apply_addons(api)
    wait_ready(lab, api, names)
    lab.log("%d real nodes Ready in %.0fs (%s)" % (count, time.time() - started, ", ".join(names)))


def wait_ready(lab, api, names, timeout=180):
    def ready():
        for name in names:
            node = api.get("/api/v1/nodes/" + name, ok=(200, 404))[1]
            if not _ready(node):
                return False
        pods = api.get("/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns")[1]["items"]
        return any(_ready(p) for p in pods)
    lab._wait("real nodes Ready and CoreDNS serving (logs: .lab/nodes/*/rootfs/var/log/lab)", ready, timeout, 1)


def _ready(obj):
    status = obj.get("status") if isinstance(obj, dict) and obj.get("kind") != "Status" else None
    return isinstance(status, dict) and any(c["type"] == "Ready" and c["status"] == "True"
                                            for c in status.get("conditions") or [])


def restart_node(lab, name, timeout=180):
    """Restart a node's container (its processes start again, the kubelet restarts its pods) and wait until
    every pod it ran that restarts by itself (controllers, DNS) has restarted and is Ready again. Right after
    `podman restart` the node and its pods still read Ready from before (measured: such a wait returned in
    0.2 s, and Kueue's webhook had no endpoint 10 s later), so each pod must show a container started anew."""
    api = lab.Api()
    selector = "?fieldSelector=spec.nodeName%3D" + name
    before = {p["metadata"]["uid"]: _starts(p) for p in api.get("/api/v1/pods" + selector)[1]["items"]
              if p["spec"].get("restartPolicy", "Always") == "Always" and _ready(p)}
    _run(PODMAN + ["restart", "-t", "5", name])

    def pods_back():
        pods = {p["metadata"]["uid"]: p for p in api.get("/api/v1/pods" + selector)[1]["items"]}
        return all(uid not in pods or (_ready(pods[uid]) and _starts(pods[uid]) != starts)
                   for uid, starts in before.items())
    lab._wait("the pods of %s restarted and Ready again" % name, pods_back, timeout, 1)
    wait_ready(lab, api, [name], timeout)


def _starts(pod):
    """Each container's (restart count, start time): a container started anew changes it."""
    return sorted((c["name"], c.get("restartCount", 0), ((c.get("state") or {}).get("running") or {}).get("startedAt"))
                  for c in (pod.get("status") or {}).get("containerStatuses") or [])


def down(lab, state):
    names = set(state.pop("real_nodes", []) or [])
    listed = _run(PODMAN + ["ps", "-a", "--no-trunc", "--filter", "label=k8s-ai-conformance-lab=node", "--format",
                            "{{.ID}} {{.Names}}"], check=False) if shutil.which("podman") else None
    ids = set()
    for line in (listed.stdout.splitlines() if listed else []):
        if line.split():
            ids.add(line.split()[0])
            names.update(line.split()[1:])
    for name in sorted(names):
        _run(PODMAN + ["rm", "-f", "-t", "5", name], check=False)
    left = remove_container_cgroups(ids | orphan_cgroup_ids())
    if left:
        lab.log("could not remove these container cgroups (processes still in them?): %s" % ", ".join(left))
    network_down()
    restored = restore_sysctls(state)
    if restored:
        lab.log("restored host sysctls the kubelet changed: %s" % ", ".join("%s %s" % kv for kv in restored.items()))
    return sorted(names)


def orphan_cgroup_ids():
    """Container ids of libpod cgroups whose container is gone: `podman rm -f` of a node (here, or in start_node
    replacing a stale one) leaves its directory while the kubelet's nested tree is still being torn down."""
    if not shutil.which("podman"):
        return set()
    listed = _run(PODMAN + ["ps", "-a", "-q", "--no-trunc"], check=False)
    if listed is None:
        return set()  # without the list of live containers nothing is known to be an orphan
    live = set(listed.stdout.split())
    return {container for _path, container in _libpod_cgroups() if container not in live}


def _libpod_cgroups():
    """(directory, container id) of every libpod cgroup, its conmon's included, in every v1 hierarchy."""
    found = []
    for controller in sorted(os.listdir(CGROUP_ROOT)) if os.path.isdir(CGROUP_ROOT) else []:
        parent = os.path.join(CGROUP_ROOT, controller, "libpod_parent")
        for entry in sorted(os.listdir(parent)) if os.path.isdir(parent) else []:
            if entry.startswith("libpod-"):
                found.append((os.path.join(parent, entry), entry[len("libpod-"):].replace("conmon-", "", 1)))
    return found


def remove_container_cgroups(ids, timeout=15.0):
    """Remove what is left of the nodes' cgroups after `podman rm` (cgroup v1, cgroupfs manager): podman leaves a
    container's directory when the kubelet's nested tree (cgroupRoot /kubelet, the pods) is still in it. Bottom-up
    rmdir; the processes still in a cgroup are killed first. Returns the directories that stayed."""
    def ours():
        return [path for path, container in _libpod_cgroups() if container in ids]
    deadline = time.time() + timeout
    while ids and ours() and time.time() < deadline:
        for top in ours():
            for path, _dirs, _files in os.walk(top, topdown=False):
                try:
                    with open(os.path.join(path, "cgroup.procs")) as handle:
                        pids = handle.read().split()
                except OSError:
                    pids = []
                for pid in pids:
                    try:
                        os.kill(int(pid), 9)
                    except OSError:
                        pass
                try:
                    os.rmdir(path)
                except OSError:
                    pass
        if ours():
            time.sleep(0.5)
    return ours() if ids else []


def netpol_enforcement(lab, enabled, timeout=60):
    """Start or stop kube-router's NetworkPolicy enforcement on every real node (a control for network_policy:
    stopped, its rules and sets are removed, as on a cluster whose CNI enforces nothing). Returns the names."""
    names = sorted(lab._state().get("real_nodes") or [])
    for name in names:
        if enabled:
            _run(PODMAN + ["exec", name, "rm", "-f", NO_NETPOL_FLAG])  # the node's loop restarts it
        else:
            # kube-router v2.1.0's own --cleanup-config reports success and leaves its rules (then panics on
            # IPVS): its filter-table chains and jumps are dropped here, its sets destroyed
            _run(PODMAN + ["exec", name, "sh", "-c", "touch %s; pkill -x kube-router; sleep 1; "
                           "iptables-save -t filter | grep -v -E '%s' | iptables-restore -T filter && "
                           "for s in $(ipset list -n); do case $s in KUBE-*|kube-router*) ipset destroy $s;; esac; done"
                           % (NO_NETPOL_FLAG, "KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-|kube-router netpol")])

    def settled():
        for name in names:
            chain = _run(PODMAN + ["exec", name, "iptables", "-S", "KUBE-ROUTER-FORWARD"], check=False)
            if (chain is not None) != enabled:
                return False
        return True
    lab._wait("NetworkPolicy enforcement %s on %s" % ("running" if enabled else "removed", ", ".join(names)),
              settled, timeout, 1)
    return names


# ---------------------------------------------------------------- cluster add-ons

def coredns_deployment(labels, node_selector):
    container = {
        "name": "coredns", "image": IMAGES["coredns"], "imagePullPolicy": "IfNotPresent",
        "args": ["-conf", "/etc/coredns/Corefile"],
        "ports": [{"containerPort": 53, "protocol": "UDP", "name": "dns"},
                  {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"},
                  {"containerPort": 9153, "protocol": "TCP", "name": "metrics"}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
        "resources": {"requests": {"cpu": "10m", "memory": "20Mi"}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}]}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"serviceAccountName": "coredns", "dnsPolicy": "Default", "nodeSelector": node_selector,
                     "priorityClassName": "system-cluster-critical", "containers": [container],
                     "volumes": [{"name": "config", "configMap": {"name": "coredns"}}]}}}}


def apply_addons(api):
    """CoreDNS, the DRA example driver's DeviceClass and the gvisor RuntimeClass."""
    for path, obj in addon_objects():
        api.apply(obj, path)


def addon_objects():
    ns = "/api/v1/namespaces/kube-system"
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    real = {REAL_LABEL: "true"}
    corefile = ("cluster.local:53 {\n    errors\n    health :8080\n    ready :8181\n"
                "    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        pods insecure\n"
                "        fallthrough in-addr.arpa ip6.arpa\n    }\n    prometheus :9153\n    cache 30\n"
                "    loop\n    reload\n    loadbalance\n}\n")
    labels = {"k8s-app": "kube-dns"}
    return [
        (ns + "/serviceaccounts/coredns", {"apiVersion": "v1", "kind": "ServiceAccount",
                                           "metadata": {"name": "coredns", "namespace": "kube-system"}}),
        (rbac + "/clusterroles/system:coredns", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:coredns"},
            "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                       "verbs": ["list", "watch"]},
                      {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                       "verbs": ["list", "watch"]}]}),
        (rbac + "/clusterrolebindings/system:coredns", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]}),
        (ns + "/configmaps/coredns", {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "coredns", "namespace": "kube-system"},
                                      "data": {"Corefile": corefile}}),
        ("/apis/apps/v1/namespaces/kube-system/deployments/coredns", coredns_deployment(labels, real)),
        (ns + "/services/kube-dns", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
            "spec": {"clusterIP": DNS_IP, "selector": labels,
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                               {"name": "metrics", "port": 9153, "protocol": "TCP"}]}}),
        (rbac + "/clusterroles/lab:kube-router", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "lab:kube-router"},
            "rules": [{"apiGroups": [""], "resources": ["pods", "namespaces", "nodes", "services", "endpoints"],
                       "verbs": ["get", "list", "watch"]},
                      {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
                       "verbs": ["get", "list", "watch"]},
                      {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                       "verbs": ["get", "list", "watch"]}]}),
        (rbac + "/clusterrolebindings/lab:kube-router", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "lab:kube-router"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "lab:kube-router"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "lab:kube-router"}]}),
        ("/apis/resource.k8s.io/v1/deviceclasses/" + DRA_DRIVER, {
            "apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": DRA_DRIVER},
            "spec": {"selectors": [{"cel": {"expression": "device.driver == '%s'" % DRA_DRIVER}}]}}),
        ("/apis/node.k8s.io/v1/runtimeclasses/gvisor", {
            "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"},
            "handler": "runsc", "scheduling": {"nodeSelector": real}}),
    ]
