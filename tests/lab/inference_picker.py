"""The Gateway API Inference Extension's endpoint picker (EPP) on the lab, in front of the inference-simulator pods:
advanced_inference_ingress's model-aware routing on real components.

- the binary: cmd/epp of sigs.k8s.io/gateway-api-inference-extension at the version tests/lab/go/inference-picker pins
  (v1.5.0; v1.6.0 moved the picker to llm-d), CGO off, version stamped as upstream's Dockerfile does
  (-X .../version.BuildRef).
- the image, under the name the project's charts give it, registry.k8s.io/gateway-api-inference-extension/epp:v1.5.0:
  the binary at /epp (ENTRYPOINT, as upstream's Dockerfile), USER 65532:65532 (its distroless nonroot base).
- the chart: the module's own config/charts/standalone (EPP + an Envoy sidecar that asks the picker over ext_proc and
  forwards to the pod it names through an ORIGINAL_DST cluster; no Gateway needed) with its file:// dependency
  config/charts/epplib, packaged by the lab's real Helm (`helm package --dependency-update`, the tag's version: the
  tag's Chart.yaml says 0.0.0) into .lab/cache/inference-picker/. Its Envoy is the lab's upstream Envoy image (the
  chart's default names distroless-v1.33.2; the lab has only the Envoy of Envoy Gateway, 1.39.1).
- the CRDs: the module's config/crd/bases (InferencePool v1; InferenceObjective and InferenceModelRewrite, alpha,
  which the picker watches too).
Not part of `make lab`: tests/integration/checks/test_inference_picker.py builds and serves it on demand.

    inference_picker.py serve    build the picker and the chart, serve the image; print a JSON line
"""

import os
import shutil
import subprocess
import sys
import tempfile

import gateway  # noqa: E402  (tests/lab, beside this file)
import observability  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GO_DIR = os.path.join(HERE, "go", "inference-picker")
MODULE = "sigs.k8s.io/gateway-api-inference-extension"
CRDS = ("inference.networking.k8s.io_inferencepools.yaml", "inference.networking.x-k8s.io_inferenceobjectives.yaml",
        "inference.networking.x-k8s.io_inferencemodelrewrites.yaml")
CHART = "standalone"


def version():
    return observability.module_version(GO_DIR, MODULE)


def image_ref():
    """What the chart's values.yaml names (inferenceExtension.image registry/repository:tag)."""
    return "registry.k8s.io/gateway-api-inference-extension/epp:%s" % version()


def binary(lab):
    return os.path.join(lab.BIN, "epp")


def crd_files():
    bases = os.path.join(observability.module_dir(GO_DIR, MODULE), "config", "crd", "bases")
    return [os.path.join(bases, name) for name in CRDS]


def chart_archive(lab):
    return os.path.join(lab.LAB, "cache", "inference-picker", "%s-%s.tgz" % (CHART, version().lstrip("v")))


def package_chart(lab):
    """The standalone chart with its epplib dependency, packaged once per version (the module cache is read-only:
    the two charts are copied out, as their relative file:// reference needs them side by side)."""
    import helm_chart  # noqa: PLC0415  (the lab's Helm build)
    archive = chart_archive(lab)
    if os.path.exists(archive):
        return archive
    helm_chart.build_helm(lab)
    charts = os.path.join(observability.module_dir(GO_DIR, MODULE), "config", "charts")
    with tempfile.TemporaryDirectory(prefix="inference-picker-chart-") as work:
        for name in (CHART, "epplib"):
            shutil.copytree(os.path.join(charts, name), os.path.join(work, name))
            subprocess.run(["chmod", "-R", "u+w", os.path.join(work, name)], check=True)
        os.makedirs(os.path.dirname(archive), exist_ok=True)
        done = subprocess.run([helm_chart.helm_binary(lab), "package", "--dependency-update", os.path.join(work, CHART),
                               "--version", version().lstrip("v"), "--app-version", version(),
                               "--destination", os.path.dirname(archive)], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise SystemExit("lab: helm package of the %s chart failed: %s" % (CHART, done.stderr.strip()))
    return archive


def build(lab):
    lab._go_build("epp (endpoint picker)", GO_DIR, MODULE + "/cmd/epp", binary(lab),
                  "-s -w -X %s/version.BuildRef=%s" % (MODULE, version()))
    package_chart(lab)


def image_builders(lab):
    import images  # noqa: PLC0415

    def picker(out):
        return images.binary_image(os.path.join(out, "epp.tar"), image_ref(), binary(lab), "epp", user="65532:65532")
    return [picker]


def main(argv):
    sys.path.insert(0, HERE)
    import helm_chart  # noqa: PLC0415
    import verifier  # noqa: PLC0415

    def describe(lab):
        return {"image": image_ref(), "version": version(), "chart": chart_archive(lab),
                "helm": helm_chart.helm_binary(lab), "crds": crd_files(), "envoy_image": gateway.image_refs()["envoy"]}
    verifier.serve_command(argv, __doc__, build, image_builders, describe)


if __name__ == "__main__":
    if shutil.which("go") is None:
        raise SystemExit("inference_picker.py needs Go (the lab's builds)")
    main(sys.argv)
