"""tests/lab/mirror/build.py: release-equivalent artifacts with checksums, reproducible and idempotent."""

import hashlib
import importlib.util
import os
import shutil
import tarfile

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
spec = importlib.util.spec_from_file_location("mirror_build", os.path.join(REPO, "tests", "lab", "mirror", "build.py"))
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)


def test_read_versions(tmp_path):
    path = tmp_path / "versions.env"
    path.write_text('# pins\nKUEUE_VERSION=v0.19.1\n\nJOBSET_VERSION="v0.12.0"\n')
    assert build.read_versions(str(path)) == {"KUEUE_VERSION": "v0.19.1", "JOBSET_VERSION": "v0.12.0"}


def test_package_chart_is_reproducible_and_versioned(tmp_path):
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text('apiVersion: v2\nname: demo\nversion: 0.0.0\nappVersion: "main"\n')
    (chart / "values.yaml").write_text("a: 1\n")
    (chart / "templates" / "x.yaml").write_text("kind: ConfigMap\n")
    first = build.package_chart(str(chart), "demo", "v1.2.3")
    assert first == build.package_chart(str(chart), "demo", "v1.2.3")
    archive = tmp_path / "demo.tgz"
    archive.write_bytes(first)
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["demo/Chart.yaml", "demo/templates/x.yaml", "demo/values.yaml"]
        chart_yaml = tar.extractfile("demo/Chart.yaml").read().decode()
    assert "version: 1.2.3" in chart_yaml and 'appVersion: "v1.2.3"' in chart_yaml


def test_checksums_written_and_verified(tmp_path):
    directory = tmp_path / "d"
    directory.mkdir()
    (directory / "a.yaml").write_text("a\n")
    (directory / "b.tgz").write_bytes(b"b")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "runsc.sha512").write_text("x")
    build.write_checksums([str(directory)])
    digest = hashlib.sha256(b"a\n").hexdigest()
    assert (directory / "a.yaml.sha256").read_text() == "%s  a.yaml\n" % digest
    assert (directory / "SHA256SUMS").read_text().splitlines()[0] == "%s  a.yaml" % digest
    assert not (tmp_path / "other" / "SHA256SUMS").exists()  # other producers' directories are left alone
    assert build.checksums_ok(str(tmp_path), ["d"])
    (directory / "a.yaml").write_text("tampered\n")
    assert not build.checksums_ok(str(tmp_path), ["d"])


@pytest.mark.skipif(not shutil.which("go"), reason="needs Go and the module cache/proxy")
def test_build_from_pinned_modules_is_idempotent(tmp_path):
    try:
        build.kubectl()
    except SystemExit:
        pytest.skip("needs kubectl (kustomize): .lab/bin/kubectl or on PATH")
    out = str(tmp_path / "mirror")
    assert build.main(["--out", out]) == 0
    base = os.path.join(out, "github.com", "kubernetes-sigs")
    versions = build.read_versions()
    kueue = os.path.join(base, "kueue", "releases", "download", versions["KUEUE_VERSION"], "manifests.yaml")
    with open(kueue) as handle:
        text = handle.read()
    assert "kind: CustomResourceDefinition" in text
    assert "image: registry.k8s.io/kueue/kueue:%s" % versions["KUEUE_VERSION"] in text
    gateway = os.path.join(base, "gateway-api", "releases", "download", versions["GATEWAY_API_VERSION"])
    for channel in ("standard", "experimental"):
        assert os.path.exists(os.path.join(gateway, "%s-install.yaml.sha256" % channel))
    mtime = os.path.getmtime(kueue)
    assert build.main(["--out", out]) == 0
    assert os.path.getmtime(kueue) == mtime
