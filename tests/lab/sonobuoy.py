"""sonobuoy on the lab: the CLI on the host and, under its upstream image name, the aggregator and the plugins'
worker sidecar (one binary: upstream's image is that binary at /sonobuoy on distroless static:nonroot).

Built from the upstream Go module github.com/vmware-tanzu/sonobuoy (tests/lab/go/sonobuoy: go.mod + go.sum, a
`tool` line), version stamped through -X .../pkg/buildinfo.Version as upstream's build does (the tag's own
buildinfo.go still says the release before it), so `sonobuoy version` and the default image
(sonobuoy/sonobuoy:<version>) tell the truth. Not part of `make lab`: the in-cluster integration tests build and
serve it on demand (tests/integration/in_cluster).

    sonobuoy.py serve      build the binary (.lab/bin/sonobuoy, stamped) and its image, hand it to the lab's registry
"""

import os
import sys

import observability  # noqa: E402  (tests/lab, beside this file)

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = "github.com/vmware-tanzu/sonobuoy"
GO_DIR = os.path.join(HERE, "go", "sonobuoy")


def version():
    return observability.module_version(GO_DIR, MODULE)


def image_ref():
    """The name sonobuoy itself defaults to (config.DefaultImage, docker.io implied)."""
    return "docker.io/sonobuoy/sonobuoy:%s" % version()


def binary(lab):
    return os.path.join(lab.BIN, "sonobuoy")


def build(lab):
    """.lab/bin/sonobuoy (cold: minutes; then stamped by lab._go_build: nothing is linked)."""
    return lab._go_build("sonobuoy", GO_DIR, MODULE, binary(lab),
                         "-s -w -X %s/pkg/buildinfo.Version=%s" % (MODULE, version()))


def image_builders(lab):
    import images  # noqa: PLC0415

    def sonobuoy(out):
        layer = images.base_layer()
        # distroless static:nonroot: the user nonroot (65532), a writable /tmp (the aggregator's /tmp/sonobuoy)
        layer.add_file("etc/passwd", data=b"root:x:0:0:root:/root:/sbin/nologin\n"
                       b"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
                       b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n", mode=0o644)
        layer.add_file("etc/group", data=b"root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n", mode=0o644)
        layer.add_dir("home/nonroot", mode=0o700)
        layer.add_file("sonobuoy", source=binary(lab))
        return images.write_image(os.path.join(out, "sonobuoy.tar"), image_ref(), [layer],
                                  cmd=["/sonobuoy", "aggregator", "--no-exit", "-v", "3", "--logtostderr"],
                                  user="65532:65532")
    return [sonobuoy]


def main(argv):
    sys.path.insert(0, HERE)
    import verifier  # noqa: PLC0415
    verifier.serve_command(argv, __doc__, build, image_builders,
                           lambda lab: {"binary": binary(lab), "image": image_ref()})


if __name__ == "__main__":
    main(sys.argv)
