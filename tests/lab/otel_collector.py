"""The OpenTelemetry collector on the lab, for otel_collector's manifests mode and the otel_tracing check.

- the binary: tests/lab/go/otelcol, a distribution of the upstream collector modules at one release (0.158.0, chart
  0.170.0's appVersion) with the components the role's config uses: the otlp and prometheus receivers (the latter
  from collector-contrib at the same release, with its kubernetes_sd discovery), memory_limiter and batch, the debug
  exporter, the health_check extension. Upstream's otelcol-k8s has many more: a config naming one of those does not
  start here.
- the image, under the name the role runs, docker.io/otel/opentelemetry-collector-k8s:<release>: as upstream's
  distributions/otelcol-k8s/Dockerfile lays it out (the binary at /otelcol-k8s, CA certificates, user 10001,
  ENTRYPOINT /otelcol-k8s, CMD --config /etc/otelcol-k8s/config.yaml; upstream's default config.yaml is not in it).
Built by `make lab` with real nodes (tests/lab/realnodes.py; the lab's inventory turns site.yml's otel_collector on,
manifests mode, scraping annotated pods and the lab's accelerator metrics stand-in); `serve` builds and serves it on
its own (tests/integration/checks/test_otel_collector.py; the build is deterministic, so the image is the one the lab
serves).

    otel_collector.py serve    build, serve the image from the lab's registry; print a JSON line
"""

import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GO_DIR = os.path.join(HERE, "go", "otelcol")
MODULE = "go.opentelemetry.io/collector/otelcol"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def release():
    """The collector release: the otelcol module's version (v0.158.0 -> 0.158.0)."""
    import observability  # noqa: PLC0415  (tests/lab, beside this file)
    return observability.module_version(GO_DIR, MODULE).lstrip("v")


def image_ref():
    return "docker.io/otel/opentelemetry-collector-k8s:%s" % release()


def binary(lab):
    return os.path.join(lab.BIN, "otelcol-k8s")


def build(lab):
    return lab._go_build("otelcol-k8s", GO_DIR, ".", binary(lab), "-s -w -X main.version=%s" % release())


def image_builders(lab):
    import images  # noqa: PLC0415

    def collector(out):
        layer = images.Layer()
        layer.add_file("etc/passwd", data=b"otel:x:10001:10001::/:/sbin/nologin\n", mode=0o644)
        layer.add_file("etc/group", data=b"otel:x:10001:\n", mode=0o644)
        layer.add_file("otelcol-k8s", source=binary(lab), mode=0o755)
        if os.path.exists(CA_BUNDLE):
            layer.add_file(CA_BUNDLE.lstrip("/"), source=os.path.realpath(CA_BUNDLE), mode=0o644)
        return images.write_image(os.path.join(out, "otel-collector.tar"), image_ref(), [layer],
                                  entrypoint=["/otelcol-k8s"], cmd=["--config", "/etc/otelcol-k8s/config.yaml"],
                                  user="10001", exposed_ports=["4317/tcp", "55678/tcp", "55679/tcp"])
    return [collector]


def main(argv):
    sys.path.insert(0, HERE)
    import verifier  # noqa: PLC0415
    verifier.serve_command(argv, __doc__, build, image_builders,
                           lambda lab: {"image": image_ref(), "binary": binary(lab)})


if __name__ == "__main__":
    if shutil.which("go") is None:
        raise SystemExit("otel_collector.py needs Go (the lab's builds)")
    main(sys.argv)
