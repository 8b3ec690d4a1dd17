"""The observability stack of the lab's real nodes: binaries built from the upstream Go modules and imaged under
the upstream names, served by the lab registry (tests/lab/registry.py).

- quay.io/prometheus/prometheus:v3.16.0 - github.com/prometheus/prometheus v0.316.0, cmd/prometheus without the
  web UI's assets (go/prometheus);
- ghcr.io/llm-d/llm-d-inference-sim:v0.10.2 - github.com/llm-d/llm-d-inference-sim, cmd/llm-d-inference-sim
  (go/inference-sim);
- registry.k8s.io/prometheus-adapter/prometheus-adapter:v0.12.0 - sigs.k8s.io/prometheus-adapter, cmd/adapter
  (go/prometheus-adapter): custom.metrics.k8s.io for the HPA, from the Prometheus above.

Each image keeps upstream's layout: Prometheus at /bin/prometheus (USER nobody, WORKDIR /prometheus, a default
/etc/prometheus/prometheus.yml), the simulator at /app/llm-d-inference-sim (USER 65532), the adapter at /adapter
(USER 65534, as its release Dockerfile). Builds are stamped by
lab._go_build, so a warm `make lab` links nothing.
"""

import os
import subprocess

import images

HERE = os.path.dirname(os.path.abspath(__file__))
GO = os.path.join(HERE, "go")
PROMETHEUS_MODULE = "github.com/prometheus/prometheus"
SIMULATOR_MODULE = "github.com/llm-d/llm-d-inference-sim"
ADAPTER_MODULE = "sigs.k8s.io/prometheus-adapter"
# Prometheus' own default configuration in its image (the role mounts its own over /etc/prometheus).
DEFAULT_PROMETHEUS_YML = b"""global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
"""


def module_version(module_dir, module):
    """The version of `module` that <module_dir>/go.mod requires (the one reader of the lab's wrapper modules)."""
    with open(os.path.join(module_dir, "go.mod")) as handle:
        for line in handle:
            parts = line.split()
            if module in parts and parts[0] != "replace" and parts.index(module) + 1 < len(parts):
                return parts[parts.index(module) + 1]
    raise SystemExit("lab: %s not required in %s/go.mod" % (module, module_dir))


def module_dir(module_dir_, module):
    """Where the Go module cache holds the source of `module` at the version <module_dir_>/go.mod requires."""
    env = dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    found = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", module], cwd=module_dir_, env=env,
                           capture_output=True, text=True, check=False)
    if found.returncode != 0 or not found.stdout.strip():
        raise SystemExit("lab: go list -m %s in %s failed: %s" % (module, module_dir_, found.stderr.strip()[-800:]))
    return found.stdout.strip()


def prometheus_release(module_version_text):
    """Prometheus 3.x is published as Go module v0.3XX.Y: v0.316.0 -> v3.16.0."""
    minor = int(module_version_text.lstrip("v").split(".")[1])
    patch = module_version_text.split(".")[2]
    return "v%d.%d.%s" % (minor // 100, minor % 100, patch)


def refs():
    prometheus = prometheus_release(module_version(os.path.join(GO, "prometheus"), PROMETHEUS_MODULE))
    simulator = module_version(os.path.join(GO, "inference-sim"), SIMULATOR_MODULE)
    adapter = module_version(os.path.join(GO, "prometheus-adapter"), ADAPTER_MODULE)
    return {"prometheus": "quay.io/prometheus/prometheus:%s" % prometheus,
            "inference-sim": "ghcr.io/llm-d/llm-d-inference-sim:%s" % simulator,
            "prometheus-adapter": "registry.k8s.io/prometheus-adapter/prometheus-adapter:%s" % adapter}


def build(lab):
    """Prometheus, the inference simulator and prometheus-adapter into .lab/bin (cold: minutes each; then cached and
    stamped)."""
    release = refs()["prometheus"].rsplit(":", 1)[1].lstrip("v")
    lab._go_build("prometheus", os.path.join(GO, "prometheus"), PROMETHEUS_MODULE + "/cmd/prometheus",
                  os.path.join(lab.BIN, "prometheus"),
                  "-s -w -X github.com/prometheus/common/version.Version=%s "
                  "-X github.com/prometheus/common/version.Branch=HEAD" % release)
    lab._go_build("llm-d-inference-sim", os.path.join(GO, "inference-sim"),
                  SIMULATOR_MODULE + "/cmd/llm-d-inference-sim", os.path.join(lab.BIN, "llm-d-inference-sim"))
    lab._go_build("prometheus-adapter", os.path.join(GO, "prometheus-adapter"), ADAPTER_MODULE + "/cmd/adapter",
                  os.path.join(lab.BIN, "prometheus-adapter"))


def image_builders(lab):
    """For realnodes.extra_images: one callable per image, each writing its OCI layout tar into a directory."""
    names = refs()

    def prometheus(out):
        layer = images.base_layer()
        layer.add_file("bin/prometheus", source=os.path.join(lab.BIN, "prometheus"))
        layer.add_file("etc/prometheus/prometheus.yml", data=DEFAULT_PROMETHEUS_YML, mode=0o644)
        layer.add_dir("prometheus", mode=0o777)
        return images.write_image(os.path.join(out, "prometheus.tar"), names["prometheus"], [layer],
                                  entrypoint=["/bin/prometheus"],
                                  cmd=["--config.file=/etc/prometheus/prometheus.yml",
                                       "--storage.tsdb.path=/prometheus"],
                                  workdir="/prometheus", user="nobody", exposed_ports=["9090/tcp"])

    def simulator(out):
        layer = images.base_layer()
        layer.add_file("app/llm-d-inference-sim", source=os.path.join(lab.BIN, "llm-d-inference-sim"))
        return images.write_image(os.path.join(out, "inference-sim.tar"), names["inference-sim"], [layer],
                                  entrypoint=["/app/llm-d-inference-sim"], user="65532:65532")

    def adapter(out):
        layer = images.base_layer()
        layer.add_file("adapter", source=os.path.join(lab.BIN, "prometheus-adapter"))
        return images.write_image(os.path.join(out, "prometheus-adapter.tar"), names["prometheus-adapter"], [layer],
                                  entrypoint=["/adapter"], user="65534")
    return [prometheus, simulator, adapter]
