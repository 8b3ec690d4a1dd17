"""A real Helm and a real DRA driver chart on the lab, for the collection's Helm path (component_common's helm tasks,
kubernetes.core.helm) and dra_driver's "any other DRA driver by chart" path.

- helm: the CLI built from its Go module (tests/lab/go/helm, helm.sh/helm/v3 3.21.4: kubernetes.core 6.2.0 cannot
  drive Helm 4, whose `helm list` has no --all), version stamped as upstream's release build does
  (-X helm.sh/helm/v3/internal/version.version), at .lab/bin/helm.
- the chart: sigs.k8s.io/dra-example-driver's own chart (deployments/helm/dra-example-driver of the module the lab
  already pins, tests/lab/go/dra) packaged by that helm with the tag's version (`helm package --version 0.4.0
  --app-version v0.4.0`: the tag's Chart.yaml says 0.0.0-dev, "set based on a Git tag when a release is published";
  upstream's release workflow itself was not read), into the mirror at registry.k8s.io/dra-example-driver/charts/
  (a mirror path of ours, not checked against the published chart's location) with a SHA256SUMS.
- the image the chart names, registry.k8s.io/dra-example-driver/dra-example-driver:v0.4.0: the lab's build of the
  same module's kubelet plugin at /usr/bin (upstream's image has its binaries there), served by the lab's registry.
Not part of `make lab`: tests/integration/checks/test_dra_chart.py builds and serves it on demand.

    helm_chart.py serve    build helm, package the chart into the mirror, serve the image; print a JSON line
"""

import importlib.util
import os
import shutil
import subprocess
import sys

import observability  # noqa: E402  (tests/lab, beside this file)

HERE = os.path.dirname(os.path.abspath(__file__))
HELM_MODULE = "helm.sh/helm/v3"
HELM_GO = os.path.join(HERE, "go", "helm")
DRA_MODULE = "sigs.k8s.io/dra-example-driver"
DRA_GO = os.path.join(HERE, "go", "dra")
CHART = "dra-example-driver"
CHARTS_DIR = os.path.join("registry.k8s.io", "dra-example-driver", "charts")


def helm_binary(lab):
    return os.path.join(lab.BIN, "helm")


def dra_version():
    return observability.module_version(DRA_GO, DRA_MODULE)


def image_ref():
    """What the chart's values.yaml names (image.repository, tag = appVersion)."""
    return "registry.k8s.io/dra-example-driver/dra-example-driver:%s" % dra_version()


def build_helm(lab):
    version = observability.module_version(HELM_GO, HELM_MODULE)
    return lab._go_build("helm", HELM_GO, HELM_MODULE + "/cmd/helm", helm_binary(lab),
                         "-s -w -X %s/internal/version.version=%s" % (HELM_MODULE, version))


def package_chart(lab, mirror):
    """The chart's archive in the mirror (SHA256SUMS beside it, as the mirror's own directories have)."""
    chart_dir = os.path.join(observability.module_dir(DRA_GO, DRA_MODULE), "deployments", "helm", CHART)
    out = os.path.join(mirror, CHARTS_DIR)
    os.makedirs(out, exist_ok=True)
    version = dra_version().lstrip("v")
    archive = os.path.join(out, "%s-%s.tgz" % (CHART, version))
    if not os.path.exists(archive):
        subprocess.run([helm_binary(lab), "package", chart_dir, "--version", version, "--app-version", dra_version(),
                        "--destination", out], capture_output=True, text=True, check=True)
    mirror_build = _mirror_build()
    mirror_build.write_checksums([out])
    return archive


def _mirror_build():
    spec = importlib.util.spec_from_file_location("mirror_build", os.path.join(HERE, "mirror", "build.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def image_builders(lab):
    import images  # noqa: PLC0415

    def plugin(out):
        layer = images.base_layer()
        layer.add_file("usr/bin/dra-example-kubeletplugin",
                       source=os.path.join(lab.BIN, "node", "dra-example-kubeletplugin"))
        return images.write_image(os.path.join(out, "dra-example-driver.tar"), image_ref(), [layer],
                                  env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    return [plugin]


def main(argv):
    sys.path.insert(0, HERE)
    import verifier  # noqa: PLC0415
    chart = {}

    def build(lab):
        build_helm(lab)
        chart["archive"] = package_chart(lab, os.path.join(lab.LAB, "mirror"))

    def describe(lab):
        return {"helm": helm_binary(lab), "chart": chart["archive"], "chart_url": "%s/%s/%s" % (
            lab._state()["mirror_url"].rstrip("/"), CHARTS_DIR, os.path.basename(chart["archive"])),
            "image": image_ref()}
    verifier.serve_command(argv, __doc__, build, image_builders, describe)


if __name__ == "__main__":
    if shutil.which("go") is None:
        raise SystemExit("helm_chart.py needs Go (the lab's builds)")
    main(sys.argv)
