"""KubeRay's operator on the lab, for the kuberay role and robust_controller's "complex AI operator" (Ray).

- the binary: the main package of github.com/ray-project/kuberay/ray-operator at the version tests/lab/go/kuberay pins
  (v1.5.0), built as is (CGO off; upstream's Dockerfile builds it with CGO and -tags strictfipsruntime).
- the image, under the name upstream's config/default kustomization gives it, quay.io/kuberay/operator:v1.5.0: the
  binary at /manager (ENTRYPOINT, as upstream's Dockerfile), USER 65532:65532.
- the CRDs the role fetches, into the mirror at raw.githubusercontent.com/ray-project/kuberay/<tag>/ray-operator/config/
  crd/bases/ (the module's own files; the role pins their SHA-256, computed from this module version) with a
  SHA256SUMS, as the mirror's directories have.
Not part of `make lab`: tests/integration/checks/test_kuberay.py builds and serves it on demand.

    kuberay.py serve    build the operator, put the CRDs into the mirror, serve the image; print a JSON line
"""

import os
import shutil
import sys

import observability  # noqa: E402  (tests/lab, beside this file)

HERE = os.path.dirname(os.path.abspath(__file__))
GO_DIR = os.path.join(HERE, "go", "kuberay")
MODULE = "github.com/ray-project/kuberay/ray-operator"
CRDS = ("ray.io_rayclusters.yaml", "ray.io_rayjobs.yaml", "ray.io_rayservices.yaml")


def version():
    return observability.module_version(GO_DIR, MODULE)


def image_ref():
    return "quay.io/kuberay/operator:%s" % version()


def crd_dir():
    """The CRDs' directory under the mirror, as under https://raw.githubusercontent.com."""
    return os.path.join("raw.githubusercontent.com", "ray-project", "kuberay", version(), "ray-operator", "config",
                        "crd", "bases")


def binary(lab):
    return os.path.join(lab.BIN, "kuberay-operator")


def build(lab):
    lab._go_build("kuberay-operator", GO_DIR, MODULE, binary(lab))
    source = os.path.join(observability.module_dir(GO_DIR, MODULE), "config", "crd", "bases")
    out = os.path.join(lab.LAB, "mirror", crd_dir())
    os.makedirs(out, exist_ok=True)
    for name in CRDS:
        if not os.path.exists(os.path.join(out, name)):
            shutil.copyfile(os.path.join(source, name), os.path.join(out, name + ".tmp"))
            os.replace(os.path.join(out, name + ".tmp"), os.path.join(out, name))
    import helm_chart  # noqa: PLC0415  (its loader of the mirror's build script)
    helm_chart._mirror_build().write_checksums([out])


def image_builders(lab):
    import images  # noqa: PLC0415

    def operator(out):
        return images.binary_image(os.path.join(out, "kuberay-operator.tar"), image_ref(), binary(lab), "manager",
                                   user="65532:65532")
    return [operator]


def main(argv):
    sys.path.insert(0, HERE)
    import verifier  # noqa: PLC0415

    def describe(lab):
        mirror = lab._state()["mirror_url"].rstrip("/")
        return {"image": image_ref(), "version": version(), "binary": binary(lab), "mirror_url": mirror,
                "crd_base_url": "%s/%s" % (mirror, crd_dir())}
    verifier.serve_command(argv, __doc__, build, image_builders, describe)


if __name__ == "__main__":
    if shutil.which("go") is None:
        raise SystemExit("kuberay.py needs Go (the lab's builds)")
    main(sys.argv)
