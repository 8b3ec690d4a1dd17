"""The lab: a real Kubernetes control plane with simulated GPU nodes, on loopback.

    lab.py build                 build (or reuse) the pinned binaries into .lab/bin
    lab.py up [--gpu-nodes N] [--real-nodes N]
                                 start etcd, kube-apiserver, scheduler, controller-manager, kwok,
                                 the artifact mirror; create the simulated nodes and their devices;
                                 start the real nodes (tests/lab/realnodes.py, default 2)
    lab.py controllers           install Kueue/JobSet manifests from the mirror (when absent) and
                                 attach the real controller processes to them
    lab.py stop|start NAME       stop one component (kube-scheduler, kueue…) and start it again as it was
    lab.py down                  stop everything the lab started
    lab.py status                print what runs

Which part of the lab stands in for which real component is written down in tests/lab/README.md.
"""

import argparse
import base64
import concurrent.futures
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

import metrics_standin
import realnodes
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LAB = os.environ.get("LAB_DIR", os.path.join(ROOT, ".lab"))
BIN = os.path.join(LAB, "bin")
PKI = os.path.join(LAB, "pki")
STATE = os.path.join(LAB, "state")
LOGS = os.path.join(LAB, "logs")
LAB_JSON = os.path.join(LAB, "lab.json")
KUBECONFIG = os.path.join(LAB, "kubeconfig")

PORTS = {
    "etcd": 32379, "etcd-peer": 32380, "apiserver": 36443, "controller-manager": 30257,
    "scheduler": 30259, "kwok": 30247, "mirror": 38080,
    "kueue-metrics": 38443, "kueue-health": 38081, "jobset-metrics": 38444, "jobset-health": 38082,
}
# Webhooks are reached by the API server through ExternalName Services (EndpointSlices may not point
# at loopback). The API server dials <externalName>:<service port 443>, so each webhook server gets a
# loopback address of its own and listens on 443 there.
WEBHOOK_HOSTS = {"kueue": "127.0.0.3", "jobset": "127.0.0.4", "kueue-visibility": "127.0.0.5"}
SERVICE_CIDR = "10.96.0.0/16"
LABEL_LAB = "lab.k8s-ai-conformance.io/simulated"


def versions():
    out = {}
    with open(os.path.join(HERE, "versions.env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                out[key] = value
    return out


def log(msg):
    print("lab: %s" % msg, flush=True)


# ---------------------------------------------------------------- build

def _tree_hash(*paths):
    digest = hashlib.sha256()
    for path in paths:
        for name in sorted(os.listdir(path)):
            if name.endswith((".go", ".mod", ".sum")):
                with open(os.path.join(path, name), "rb") as f:
                    digest.update(name.encode() + f.read())
    return digest.hexdigest()[:16]


def _files_hash(args):
    digest = hashlib.sha256()
    for arg in args:
        digest.update(arg.encode())
        if os.path.isfile(arg):
            with open(arg, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()[:16]


def _go_build(name, module_dir, package, output, ldflags="-s -w", extra=()):
    """go build with a stamp so a warm `make lab` does not even link. extra: more go build flags
    (their files' content is part of the stamp)."""
    stamp = output + ".stamp"
    key = "%s %s %s %s %s" % (_tree_hash(module_dir), json.dumps(versions(), sort_keys=True), package, ldflags,
                              _files_hash(extra))
    if os.path.exists(output) and os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == key:
                return False
    log("building %s (cold builds take minutes; later ones hit the Go build cache)" % name)
    # scheduler-library (a Kueue dependency) is served by the module proxy but missing from the checksum
    # database; its hash is pinned in our go.sum instead.
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod", CGO_ENABLED="0",
               GONOSUMDB="sigs.k8s.io/scheduler-library")
    started = time.time()
    subprocess.run(["go", "build", "-trimpath", "-ldflags", ldflags] + list(extra) + ["-o", output, package],
                   cwd=module_dir, env=env, check=True)
    with open(stamp, "w") as f:
        f.write(key)
    log("built %s in %.0fs" % (name, time.time() - started))
    return True


def build(real_nodes=True):
    os.makedirs(BIN, exist_ok=True)
    v = versions()
    go = os.path.join(HERE, "go")
    stamp = "k8s.io/component-base/version"
    kube_ldflags = " ".join([
        "-s -w",
        "-X %s.gitVersion=%s" % (stamp, v["KUBERNETES_VERSION"]),
        "-X %s.gitMajor=%s" % (stamp, v["KUBERNETES_VERSION"].lstrip("v").split(".")[0]),
        "-X %s.gitMinor=%s" % (stamp, v["KUBERNETES_VERSION"].split(".")[1]),
        "-X %s.gitTreeState=clean" % stamp,
        "-X %s.buildDate=1970-01-01T00:00:00Z" % stamp,
    ])
    _go_build("kube (apiserver, scheduler, controller-manager, kubelet, kube-proxy, kubectl)", os.path.join(go, "kube"),
              ".", os.path.join(BIN, "kube"), kube_ldflags)
    for name in ("kube-apiserver", "kube-scheduler", "kube-controller-manager", "kubelet", "kube-proxy", "kubectl"):
        link = os.path.join(BIN, name)
        if not os.path.islink(link):
            os.symlink("kube", link)
    _go_build("etcd", os.path.join(go, "etcd"), ".", os.path.join(BIN, "etcd"))
    controllers = os.path.join(go, "controllers")
    _go_build("kwok", controllers, "sigs.k8s.io/kwok/cmd/kwok", os.path.join(BIN, "kwok"))
    _go_build("kueue", controllers, "sigs.k8s.io/kueue/cmd/kueue", os.path.join(BIN, "kueue"))
    _go_build("jobset", controllers, "sigs.k8s.io/jobset", os.path.join(BIN, "jobset"))
    if real_nodes:
        realnodes.build(sys.modules[__name__])


# ---------------------------------------------------------------- PKI (openssl, cached)

def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _cert(name, subject, ca=True, sans=None, client=False):
    key, crt = os.path.join(PKI, name + ".key"), os.path.join(PKI, name + ".crt")
    wanted = "%s %s" % (subject, ",".join(sans or []))
    made = os.path.join(PKI, name + ".subject")
    if os.path.exists(crt) and (ca or _read(made) == wanted):
        return
    with open(made, "w") as f:
        f.write(wanted)
    _openssl("genrsa", "-out", key, "2048")
    if ca:
        _openssl("req", "-x509", "-new", "-key", key, "-subj", subject, "-days", "3650", "-out", crt,
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return
    csr = os.path.join(PKI, name + ".csr")
    ext = os.path.join(PKI, name + ".ext")
    _openssl("req", "-new", "-key", key, "-subj", subject, "-out", csr)
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n")
        f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
        if sans:
            f.write("subjectAltName=%s\n" % ",".join(sans))
    _openssl("x509", "-req", "-in", csr, "-CA", os.path.join(PKI, "ca.crt"), "-CAkey", os.path.join(PKI, "ca.key"),
             "-CAcreateserial", "-days", "3650", "-extfile", ext, "-out", crt)


def pki():
    os.makedirs(PKI, exist_ok=True)
    _cert("ca", "/CN=k8s-ai-conformance-lab-ca")
    _cert("apiserver", "/CN=kube-apiserver", ca=False, sans=[
        "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local", "IP:127.0.0.1", "IP:10.96.0.1", "IP:" + realnodes.HOST_IP])
    # The API server's client certificate towards the kubelets (logs, exec, port-forward, proxy).
    _cert("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client", ca=False, client=True)
    _cert("kube-proxy", "/CN=system:kube-proxy", ca=False, client=True)
    _cert("admin", "/O=system:masters/CN=lab-admin", ca=False, client=True)
    _cert("scheduler", "/CN=system:kube-scheduler", ca=False, client=True)
    _cert("controller-manager", "/CN=system:kube-controller-manager", ca=False, client=True)
    _cert("kwok", "/O=system:masters/CN=kwok-controller", ca=False, client=True)
    _cert("controllers", "/O=system:masters/CN=lab-controllers", ca=False, client=True)
    # The aggregation layer (Kueue's visibility API, metrics adapters) authenticates with a front proxy.
    _cert("front-proxy-client", "/CN=front-proxy-client", ca=False, client=True)
    sa = os.path.join(PKI, "sa.key")
    if not os.path.exists(sa):
        _openssl("genrsa", "-out", sa, "2048")
        _openssl("rsa", "-in", sa, "-pubout", "-out", os.path.join(PKI, "sa.pub"))


def write_kubeconfig(path, user, embed=True):
    def data(name):
        with open(os.path.join(PKI, name), "rb") as f:
            return base64.b64encode(f.read()).decode()
    cfg = {
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": "https://127.0.0.1:%d" % PORTS["apiserver"],
                                                 "certificate-authority-data": data("ca.crt")}}],
        "users": [{"name": user, "user": {"client-certificate-data": data(user + ".crt"),
                                          "client-key-data": data(user + ".key")}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": user}}],
    }
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    os.chmod(path, 0o600)
    return path


# ---------------------------------------------------------------- API access

class Api:
    """Just enough of a client for the lab's own bootstrap (admin client certificate)."""

    def __init__(self):
        self.ctx = ssl.create_default_context(cafile=os.path.join(PKI, "ca.crt"))
        self.ctx.load_cert_chain(os.path.join(PKI, "admin.crt"), os.path.join(PKI, "admin.key"))

    def request(self, method, path, body=None, content_type="application/json", ok=(200, 201, 202)):
        conn = http.client.HTTPSConnection("127.0.0.1", PORTS["apiserver"], context=self.ctx, timeout=30)
        try:
            payload = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
            conn.request(method, path, body=payload, headers={"Content-Type": content_type})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status not in ok:
            raise RuntimeError("%s %s -> %d %s" % (method, path, resp.status, data[:500].decode(errors="replace")))
        return resp.status, (json.loads(data) if data and data[:1] in (b"{", b"[") else data)

    def apply(self, obj, path, manager="k8s-ai-conformance-lab"):
        """Server-side apply of one object at its resource path (…/<plural>/<name>)."""
        return self.request("PATCH", path + "?fieldManager=%s&force=true" % manager, json.dumps(obj),
                            content_type="application/apply-patch+yaml")[1]

    def get(self, path, ok=(200,)):
        return self.request("GET", path, ok=ok)


def _port_open(port, host="127.0.0.1"):
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def _wait(what, predicate, timeout=120, interval=0.25):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # keep polling; report the last reason on timeout
            last = exc
        time.sleep(interval)
    raise SystemExit("lab: timed out after %ds waiting for %s (%s); logs in %s" % (timeout, what, last, LOGS))


# ---------------------------------------------------------------- processes

def _state():
    if os.path.exists(LAB_JSON):
        with open(LAB_JSON) as f:
            return json.load(f)
    return {"processes": {}}


def _save(state):
    tmp = LAB_JSON + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2, sort_keys=True)
    os.replace(tmp, LAB_JSON)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def _start(state, name, argv, env=None):
    old = state["processes"].get(name)
    if old and _alive(old["pid"]):
        return
    os.makedirs(LOGS, exist_ok=True)
    with open(os.path.join(LOGS, name + ".log"), "ab") as logf:
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=dict(os.environ, **(env or {})), cwd=LAB)
    state["processes"][name] = {"pid": proc.pid, "argv": argv}
    _save(state)


def _stop(state, name, grace=10):
    entry = state["processes"].pop(name, None)
    if not entry:
        return
    pid = entry["pid"]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except OSError:
            break
        deadline = time.time() + grace
        while time.time() < deadline and _alive(pid):
            time.sleep(0.1)
        if not _alive(pid):
            break
    _save(state)


# ---------------------------------------------------------------- control plane

NODE_LEASE_S = 40  # kwok renews a simulated node's lease every quarter of this, as a kubelet does
LEASE_RENEWALS_PER_S = 20  # the most lease updates a second the 2-core lab's API server is given by kwok


def node_lease_seconds(simulated_nodes):
    """The simulated nodes' lease duration: 40 s (a kubelet's) until their renewals would pass
    LEASE_RENEWALS_PER_S; longer beyond. At 2,000 nodes a 10 s renewal is 200 writes a second, which saturates the
    lab's API server and etcd on 2 cores (a control plane sized for 2,000 nodes takes them); the lab's load, not
    the verifier's, would then set the verify time. The node controller's grace period follows (node_grace)."""
    return max(NODE_LEASE_S, -(-4 * simulated_nodes // LEASE_RENEWALS_PER_S))


def node_grace_flags(simulated_nodes):
    lease = node_lease_seconds(simulated_nodes)
    return [] if lease == NODE_LEASE_S else ["--node-monitor-grace-period=%ds" % (lease + 10)]


def start_control_plane(state):
    simulated_nodes = int(state.get("gpu_nodes") or 0) + int(state.get("cpu_nodes") or 0)
    etcd_dir = os.path.join(STATE, "etcd")
    shutil.rmtree(etcd_dir, ignore_errors=True)  # every `up` is a fresh cluster
    os.makedirs(etcd_dir)
    e, p = PORTS["etcd"], PORTS["etcd-peer"]
    _start(state, "etcd", [os.path.join(BIN, "etcd"), "--name=lab", "--data-dir=" + etcd_dir,
                           "--listen-client-urls=http://127.0.0.1:%d" % e,
                           "--advertise-client-urls=http://127.0.0.1:%d" % e,
                           "--listen-peer-urls=http://127.0.0.1:%d" % p,
                           "--initial-advertise-peer-urls=http://127.0.0.1:%d" % p,
                           "--initial-cluster=lab=http://127.0.0.1:%d" % p,
                           "--listen-metrics-urls=", "--unsafe-no-fsync=true", "--quota-backend-bytes=8589934592",
                           "--log-level=warn"])
    _wait("etcd", lambda: _port_open(e), 30)

    def pk(n):
        return os.path.join(PKI, n)

    _start(state, "kube-apiserver", [
        os.path.join(BIN, "kube-apiserver"),
        "--etcd-servers=http://127.0.0.1:%d" % e,
        # Listening beyond loopback: the real nodes (and their pods, through the kubernetes Service, whose
        # endpoint the API server keeps at its advertised address) reach it on the lab bridge.
        "--bind-address=0.0.0.0", "--advertise-address=" + realnodes.HOST_IP, "--secure-port=%d" % PORTS["apiserver"],
        "--tls-cert-file=" + pk("apiserver.crt"), "--tls-private-key-file=" + pk("apiserver.key"),
        "--client-ca-file=" + pk("ca.crt"),
        "--service-account-key-file=" + pk("sa.pub"), "--service-account-signing-key-file=" + pk("sa.key"),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-cluster-ip-range=" + SERVICE_CIDR, "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        "--kubelet-client-certificate=" + pk("apiserver-kubelet-client.crt"),
        "--kubelet-client-key=" + pk("apiserver-kubelet-client.key"),
        "--kubelet-preferred-address-types=InternalIP",
        "--requestheader-client-ca-file=" + pk("ca.crt"), "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--proxy-client-cert-file=" + pk("front-proxy-client.crt"),
        "--proxy-client-key-file=" + pk("front-proxy-client.key"),
        "--enable-priority-and-fairness=false", "--max-requests-inflight=2000",
        "--max-mutating-requests-inflight=1000", "--v=1",
    ] + ([
        # Webhooks and aggregated APIs are dialled at their endpoints (pod IPs, routed to the real nodes),
        # not at ClusterIPs: the host runs no kube-proxy. (The endpoint resolver refuses ExternalName
        # Services, which the host-process controllers of a lab without real nodes need.)
        "--enable-aggregator-routing=true"] if state.get("real_nodes_wanted") else []))
    api = Api()
    _wait("kube-apiserver /readyz", lambda: api.get("/readyz")[0] == 200, 90)
    ctrl_kubeconfig = write_kubeconfig(os.path.join(LAB, "controller-manager.kubeconfig"), "controller-manager")
    sched_kubeconfig = write_kubeconfig(os.path.join(LAB, "scheduler.kubeconfig"), "scheduler")
    _start(state, "kube-controller-manager", [
        os.path.join(BIN, "kube-controller-manager"), "--kubeconfig=" + ctrl_kubeconfig,
        "--authentication-kubeconfig=" + ctrl_kubeconfig, "--authorization-kubeconfig=" + ctrl_kubeconfig,
        "--bind-address=127.0.0.1", "--secure-port=%d" % PORTS["controller-manager"], "--leader-elect=false",
        "--service-account-private-key-file=" + pk("sa.key"), "--root-ca-file=" + pk("ca.crt"),
        "--cluster-signing-cert-file=" + pk("ca.crt"), "--cluster-signing-key-file=" + pk("ca.key"),
        "--use-service-account-credentials=true", "--controllers=*,-nodeipam,-cloud-node-lifecycle",
        "--concurrent-job-syncs=20", "--kube-api-qps=500", "--kube-api-burst=1000", "--v=1",
    ] + node_grace_flags(simulated_nodes))
    _start(state, "kube-scheduler", [
        os.path.join(BIN, "kube-scheduler"), "--kubeconfig=" + sched_kubeconfig,
        "--authentication-kubeconfig=" + sched_kubeconfig, "--authorization-kubeconfig=" + sched_kubeconfig,
        "--bind-address=127.0.0.1", "--secure-port=%d" % PORTS["scheduler"], "--leader-elect=false", "--v=1",
    ])
    kwok_kubeconfig = write_kubeconfig(os.path.join(LAB, "kwok.kubeconfig"), "kwok")
    _start(state, "kwok", [
        os.path.join(BIN, "kwok"), "--kubeconfig=" + kwok_kubeconfig,
        "--config=" + os.path.join(HERE, "kwok-stages.yaml"),
        "--manage-all-nodes=false", "--manage-nodes-with-label-selector=" + LABEL_LAB + "=true",
        "--node-lease-duration-seconds=%d" % node_lease_seconds(simulated_nodes), "--cidr=10.244.0.0/16",
        "--node-ip=10.244.0.1",
        "--server-address=127.0.0.1:%d" % PORTS["kwok"],
    ])


# ---------------------------------------------------------------- simulated cluster

GPU_PRODUCT = "NVIDIA H100 80GB HBM3"
GPU_DRIVER_VERSION = "580.95.5"
CUDA_DRIVER_VERSION = "13.0.0"


def _node(name, gpus):
    labels = {
        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "lab-gpu-8x" if gpus else "lab-cpu",
        "topology.kubernetes.io/zone": "lab-zone-a", LABEL_LAB: "true", "type": "kwok",
    }
    if gpus:
        # What NVIDIA's GPU feature discovery / DRA driver put on a real GPU node.
        labels.update({
            "nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": GPU_PRODUCT.replace(" ", "-"),
            "nvidia.com/gpu.count": str(gpus), "nvidia.com/gpu.memory": "81559",
            "nvidia.com/gpu.family": "hopper", "nvidia.com/cuda.driver-version.full": GPU_DRIVER_VERSION,
            "nvidia.com/cuda.driver.major": GPU_DRIVER_VERSION.split(".", maxsplit=1)[0],
            "nvidia.com/dra-kubelet-plugin": "true", "feature.node.kubernetes.io/pci-10de.present": "true",
        })
    capacity = {"cpu": "96" if gpus else "32", "memory": "1031Gi" if gpus else "128Gi", "pods": "110",
                "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": {"kwok.x-k8s.io/node": "fake",
                                                                     "node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {},
        "status": {"capacity": capacity, "allocatable": capacity,
                   "nodeInfo": {"kubeletVersion": versions()["KUBERNETES_VERSION"], "architecture": "amd64",
                                "operatingSystem": "linux", "containerRuntimeVersion": "kwok://simulated"}},
    }


def _resource_slice(node, index, gpus):
    devices = []
    for i in range(gpus):
        uuid = "GPU-%08x-%04x-%04x-%04x-%012x" % (index, i, 0x4a1, 0x8b2, index * 64 + i)
        devices.append({
            "name": "gpu-%d" % i,
            "attributes": {
                "type": {"string": "gpu"}, "uuid": {"string": uuid}, "index": {"int": i}, "minor": {"int": i},
                "productName": {"string": GPU_PRODUCT}, "brand": {"string": "Nvidia"},
                "architecture": {"string": "Hopper"}, "driverVersion": {"version": GPU_DRIVER_VERSION},
                "cudaDriverVersion": {"version": CUDA_DRIVER_VERSION},
                "cudaComputeCapability": {"version": "9.0.0"},
                "pcieBusID": {"string": "0000:%02x:00.0" % (0x18 + i * 0x10)},
            },
            "capacity": {"memory": {"value": "80Gi"}},
        })
    return {
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
        "metadata": {"name": "%s-gpu.nvidia.com" % node, "labels": {LABEL_LAB: "true"}},
        "spec": {"driver": "gpu.nvidia.com", "nodeName": node,
                 "pool": {"name": node, "generation": 1, "resourceSliceCount": 1}, "devices": devices},
    }


DEVICE_CLASS = {
    "apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
    "metadata": {"name": "gpu.nvidia.com", "labels": {LABEL_LAB: "true"}},
    "spec": {"selectors": [{"cel": {"expression":
             "device.driver == 'gpu.nvidia.com' && device.attributes['gpu.nvidia.com'].type == 'gpu'"}}]},
}


def populate(gpu_nodes, gpus_per_node, cpu_nodes, workers=16):
    api = Api()
    api.apply(DEVICE_CLASS, "/apis/resource.k8s.io/v1/deviceclasses/gpu.nvidia.com")
    jobs = []
    for i in range(gpu_nodes):
        name = "gpu-node-%d" % i
        jobs.append((_node(name, gpus_per_node), "/api/v1/nodes/" + name))
    for i in range(cpu_nodes):
        name = "cpu-node-%d" % i
        jobs.append((_node(name, 0), "/api/v1/nodes/" + name))

    def create_node(job):
        obj, path = job
        api.request("POST", "/api/v1/nodes", obj, ok=(201, 409))
        return obj["metadata"]["name"]

    def publish(i):
        node = "gpu-node-%d" % i
        obj = _resource_slice(node, i, gpus_per_node)
        api.apply(obj, "/apis/resource.k8s.io/v1/resourceslices/" + obj["metadata"]["name"])

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(create_node, jobs))
        list(pool.map(publish, range(gpu_nodes)))
    total = gpu_nodes + cpu_nodes

    def all_ready():
        nodes = api.get("/api/v1/nodes?labelSelector=%s%%3Dtrue" % LABEL_LAB.replace("/", "%2F"))[1]["items"]
        ready = [n for n in nodes for c in n.get("status", {}).get("conditions", [])
                 if c["type"] == "Ready" and c["status"] == "True"]
        return len(ready) >= total
    _wait("%d simulated nodes Ready" % total, all_ready, 60 + total // 10)


# ---------------------------------------------------------------- mirror

def start_mirror(state):
    mirror = os.path.join(LAB, "mirror")
    os.makedirs(mirror, exist_ok=True)
    builder = os.path.join(HERE, "mirror", "build.py")
    if os.path.exists(builder):
        subprocess.run([sys.executable, builder, "--out", mirror], check=True)
    start_server(state, "mirror", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", mirror,
                                   str(PORTS["mirror"])], "127.0.0.1", PORTS["mirror"])


def start_server(state, name, argv, host, port, tries=5):
    """Start a lab process that listens on host:port; start it again when it exits before it listens. The
    lab's ports lie in the ephemeral range: for a moment, some connection may hold one (seen twice: the
    mirror's "Address already in use" with nothing listening there)."""
    for _attempt in range(tries):
        _start(state, name, argv)
        deadline = time.time() + 15
        while time.time() < deadline and _alive(state["processes"][name]["pid"]):
            if _port_open(port, host):
                return
            time.sleep(0.1)
        _stop(state, name)
        time.sleep(2)
    log = os.path.join(LOGS, name + ".log")
    raise SystemExit("lab: %s could not listen on %s:%d (see %s)" % (name, host, port, log))


# ---------------------------------------------------------------- commands

def write_inventory(state):
    inventory = {
        "all": {"children": {"lab": {"hosts": {"localhost": {
            "ansible_connection": "local",
            "ansible_python_interpreter": os.path.join(ROOT, ".venv", "bin", "python"),
        }}}, "accelerator_nodes": {"hosts": {}}},
            "vars": {"k8s_ai_kubeconfig": KUBECONFIG, "k8s_ai_mirror_url": state["mirror_url"],
                     "k8s_ai_lab": True, "k8s_ai_download_dir": os.path.join(LAB, "cache", "downloads"),
                     # What the lab cannot run (no container images, no helm): as in molecule/lab.
                     "gateway_api_implementation_enabled": False, "gateway_api_wait_accepted": False,
                     "dra_driver_install": False, "dra_driver_gpu_node_selector": "nvidia.com/gpu.present=true",
                     "accelerator_metrics_enabled": False, "otel_collector_enabled": False,
                     "metrics_adapter_enabled": False, "monitoring_enabled": False}},
    }
    if state.get("real_nodes"):
        # secure_accelerator_access probes what containers see: the devices of the real nodes' DRA driver (the
        # kwok nodes' NVIDIA-shaped devices belong to nodes that run no containers).
        inventory["all"]["vars"]["verify_check_options"] = {
            "secure_accelerator_access": {"device_class": realnodes.DRA_DRIVER}}
        # Probe pods whose command must run (logs, traffic, kernel) go to the real nodes: kwok only pretends.
        inventory["all"]["vars"]["verify_command_node_selector"] = {realnodes.REAL_LABEL: "true"}
        # Prometheus (roles/monitoring) runs on a real node too, and scrapes every 5 s (the checks wait for a scrape).
        inventory["all"]["vars"].update({"monitoring_enabled": True, "monitoring_scrape_interval": "5s",
                                         "monitoring_scrape_timeout": "5s",
                                         "monitoring_node_selector": {realnodes.REAL_LABEL: "true"}})
        # prometheus-adapter (roles/metrics_adapter, its own manifests, the image built in tests/lab/observability.py)
        # serves custom.metrics.k8s.io from that Prometheus; a 10 s relist so a new probe's series is served soon.
        inventory["all"]["vars"].update({"metrics_adapter_enabled": True, "metrics_adapter_install": "manifests",
                                         "metrics_adapter_metrics_relist_interval": "10s",
                                         "metrics_adapter_node_selector": {realnodes.REAL_LABEL: "true"}})
        # The HPA's inference pods claim a device of the real nodes' DRA driver (they run the real simulator).
        inventory["all"]["vars"]["verify_check_options"]["pod_autoscaling"] = {"device_class": realnodes.DRA_DRIVER}
        # Where `make demo` installed the real cluster-autoscaler (tests/lab/autoscaler.py), its probes; without an
        # autoscaler the check is N/A whatever these say.
        import autoscaler  # noqa: PLC0415  (tests/lab/autoscaler.py)
        inventory["all"]["vars"]["verify_check_options"]["cluster_autoscaling"] = autoscaler.check_options()
        # The real nodes are the accelerator hosts whose facts verify gathers (driver, CDI, containerd,
        # runtimes): reached through podman, like any inventory host through its connection.
        inventory["all"]["children"]["accelerator_nodes"]["hosts"] = {
            name: {"ansible_connection": "containers.podman.podman", "ansible_python_interpreter": "/usr/bin/python3"}
            for name in state["real_nodes"]}
        # The OpenTelemetry collector (the lab's build, tests/lab/otel_collector.py) from the role's own objects,
        # on a real node: OTLP in, annotated pods scraped, and the lab's accelerator metrics stand-in as the
        # accelerator exporter (its series carry the consumer's pod labels, as DCGM's do).
        inventory["all"]["vars"].update({"otel_collector_enabled": True, "otel_collector_install": "manifests",
                                         "otel_collector_node_selector": {realnodes.REAL_LABEL: "true"},
                                         "otel_collector_scrape_annotated_pods": True,
                                         "otel_collector_accelerator_exporter_pod_labels": {
                                             "app.kubernetes.io/name": metrics_standin.NAME}})
        # Envoy Gateway with a real Envoy on the real nodes (tests/lab/gateway.py): site.yml installs it.
        import gateway  # noqa: PLC0415  (tests/lab/gateway.py)
        inventory["all"]["vars"].update(gateway.inventory_vars(realnodes.REAL_LABEL))
        inventory["all"]["vars"]["verify_check_options"]["ai_inference"] = {"gateway_class": "ai-gateway"}
    with open(os.path.join(LAB, "inventory"), "w") as f:
        f.write("# The lab's Ansible inventory, written by tests/lab/lab.py\n")
        yaml.safe_dump(inventory, f, sort_keys=False)


def cmd_up(args):
    started = time.time()
    build(real_nodes=args.real_nodes > 0)
    pki()
    state = _state()
    for name in list(state["processes"]):
        if not _alive(state["processes"][name]["pid"]):
            state["processes"].pop(name)
    if state["processes"]:
        log("already running (%s); `make lab-down` first for a fresh cluster" % ", ".join(state["processes"]))
        return
    busy = [n for n, p in PORTS.items() if _port_open(p)]
    if busy:
        raise SystemExit("lab: ports in use: %s — another lab or program holds them; run `make lab-down`"
                         % ", ".join("%s:%d" % (n, PORTS[n]) for n in busy))
    state.update({"kubeconfig": KUBECONFIG, "ports": PORTS, "versions": versions(),
                  "server": "https://127.0.0.1:%d" % PORTS["apiserver"],
                  "mirror_url": "http://127.0.0.1:%d" % PORTS["mirror"],
                  "gpu_nodes": args.gpu_nodes, "gpus_per_node": args.gpus_per_node, "cpu_nodes": args.cpu_nodes})
    _save(state)
    state["real_nodes_wanted"] = args.real_nodes
    write_kubeconfig(KUBECONFIG, "admin")
    # The mirror binds first: its port (like every lab port) lies in the ephemeral range, which the control
    # plane's own connections start using once it runs (seen: "Address already in use" when started later).
    start_mirror(state)
    start_control_plane(state)
    populate(args.gpu_nodes, args.gpus_per_node, args.cpu_nodes)
    realnodes.up(sys.modules[__name__], state, args.real_nodes)
    # The accelerator metrics STAND-IN (ours; DCGM's names, no GPU measured) as a DaemonSet on the real nodes.
    metrics_standin.install(sys.modules[__name__], state)
    write_inventory(state)
    if args.controllers:
        import controllers  # noqa: PLC0415  (tests/lab/controllers.py)
        controllers.attach(state, install=True)
    state["up_seconds"] = round(time.time() - started, 1)
    _save(state)
    log("up in %.1fs: KUBECONFIG=%s" % (time.time() - started, KUBECONFIG))


def cmd_down(_args):
    state = _state()
    removed = realnodes.down(sys.modules[__name__], state)
    if removed:
        log("removed real nodes %s" % ", ".join(removed))
    _save(state)
    for name in ["kueue", "jobset", "mirror", "kwok", "kube-scheduler", "kube-controller-manager",
                 "kube-apiserver", "etcd"] + list(state["processes"]):
        _stop(state, name)
    # Anything still holding a lab port was started by a lab whose state file is gone.
    leftovers = [n for n, p in PORTS.items() if _port_open(p)]
    for host in WEBHOOK_HOSTS.values():
        if _port_open(443, host):
            leftovers.append(host + ":443")
    if leftovers:
        subprocess.run(["pkill", "-f", BIN + "/"], check=False)
        time.sleep(1)
    still = [n for n, p in PORTS.items() if _port_open(p)]
    if still:
        raise SystemExit("lab: ports still open after stop: %s" % ", ".join(still))
    log("down")


def cmd_status(_args):
    state = _state()
    for name, entry in sorted(state["processes"].items()):
        print("%-24s pid %-7d %s" % (name, entry["pid"], "running" if _alive(entry["pid"]) else "DEAD"))


def cmd_stop(args):
    """Stop one component but remember how it was started (tests of broken states)."""
    state = _state()
    import controllers  # noqa: PLC0415
    if args.name in controllers.CONTROLLERS and controllers.pods_mode(state):
        # A controller that runs as a pod is stopped the way an operator would: its Deployment scaled to 0.
        replicas = Api().get(controllers.deployment_path(args.name) + "/scale")[1]["spec"].get("replicas") or 1
        state.setdefault("stopped", {})[args.name] = {"replicas": replicas}
        _save(state)
        controllers.scale(args.name, 0)
        controllers.wait_stopped(args.name)
        log("stopped %s (Deployment scaled to 0)" % args.name)
        return
    entry = state["processes"].get(args.name)
    if not entry:
        raise SystemExit("lab: %s is not running (running: %s)" % (args.name, ", ".join(sorted(state["processes"]))))
    state.setdefault("stopped", {})[args.name] = entry
    _stop(state, args.name)
    log("stopped %s" % args.name)


def cmd_start(args):
    """Start a component stopped with `lab.py stop` again, as it was."""
    state = _state()
    entry = state.get("stopped", {}).pop(args.name, None)
    if not entry:
        raise SystemExit("lab: %s was not stopped with `lab.py stop`" % args.name)
    if "replicas" in entry:
        import controllers  # noqa: PLC0415
        _save(state)
        controllers.scale(args.name, entry["replicas"])
        controllers.wait_serving(args.name)
        log("started %s (Deployment scaled to %d)" % (args.name, entry["replicas"]))
        return
    env = {"KUBECONFIG": os.path.join(LAB, "controllers.kubeconfig")} if args.name in ("kueue", "jobset") else None
    _start(state, args.name, entry["argv"], env=env)
    state["processes"][args.name].update({k: v for k, v in entry.items() if k not in ("pid", "argv")})
    _save(state)
    log("started %s" % args.name)


def cmd_controllers(args):
    import controllers  # noqa: PLC0415
    controllers.attach(_state(), install=not args.no_install)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build")
    up = sub.add_parser("up")
    up.add_argument("--gpu-nodes", type=int, default=int(os.environ.get("LAB_GPU_NODES", 2)))
    up.add_argument("--gpus-per-node", type=int, default=int(os.environ.get("LAB_GPUS_PER_NODE", 8)))
    up.add_argument("--cpu-nodes", type=int, default=int(os.environ.get("LAB_CPU_NODES", 1)))
    up.add_argument("--real-nodes", type=int, default=int(os.environ.get("LAB_REAL_NODES", 2)),
                    help="nodes that run real pods (podman containers with kubelet + containerd); 0 for none")
    up.add_argument("--controllers", action=argparse.BooleanOptionalAction, default=True)
    sub.add_parser("down")
    sub.add_parser("status")
    for verb in ("stop", "start"):
        sub.add_parser(verb).add_argument("name", help="a process of the lab, e.g. kube-scheduler, kueue")
    ctl = sub.add_parser("controllers")
    ctl.add_argument("--no-install", action="store_true", help="only attach; a role installed the manifests")
    args = parser.parse_args(argv)
    sys.path.insert(0, HERE)
    {"build": lambda a: build(), "up": cmd_up, "down": cmd_down, "status": cmd_status, "stop": cmd_stop,
     "start": cmd_start, "controllers": cmd_controllers}[args.command](args)


if __name__ == "__main__":
    main()
