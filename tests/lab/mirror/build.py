"""Build the lab's artifact mirror from pinned upstream Go modules.

The lab has no internet, but it has the Go module proxy. The components the roles install publish
release artifacts (manifests, CRD bundles, Helm charts) that are built from their source trees, and
those source trees are Go modules. This script downloads each pinned module, rebuilds the release
artifact the way upstream's release tooling does, and writes it under --out at the path it has on
its upstream host, so that a role pointed at the mirror (``k8s_ai_mirror_url``) finds it at
``<mirror>/<host>/<upstream path>``:

    github.com/kubernetes-sigs/kueue/releases/download/<v>/manifests.yaml
    github.com/kubernetes-sigs/kueue/releases/download/<v>/kueue-<v>.tgz        (Helm chart)
    github.com/kubernetes-sigs/jobset/releases/download/<v>/manifests.yaml
    github.com/kubernetes-sigs/jobset/releases/download/<v>/jobset-<v>.tgz      (Helm chart)
    github.com/kubernetes-sigs/gateway-api/releases/download/<v>/standard-install.yaml
    github.com/kubernetes-sigs/gateway-api/releases/download/<v>/experimental-install.yaml
    github.com/envoyproxy/gateway/releases/download/<v>/install.yaml                   (Envoy Gateway)

Every directory gets a ``SHA256SUMS`` (sha256sum format): the roles read it for every file they download from a
mirror (get_url picks the line naming the file). Every file also gets a sibling ``<file>.sha256``, which no role
reads any more (no upstream publishes such files) but the lab's own mirror test still checks.
Gateway API >= 1.5: ``config/crd/<channel>/gateway*.yaml`` includes ``..._vap_safeupgrades.yaml`` (the
safe-upgrades ValidatingAdmissionPolicy and Binding), so the bundle holds them, as upstream's does.
Pins come from tests/lab/versions.env. A stamp file records the inputs; when nothing changed the
script only re-checks the checksums and exits (well under a second).

Usage: .venv/bin/python tests/lab/mirror/build.py --out .lab/mirror [--force]
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
VERSIONS_ENV = os.path.join(REPO, "tests", "lab", "versions.env")
STAMP = ".build-stamp.json"

# Release images as upstream's release tooling sets them (kustomize edit set image ...).
KUEUE_STAGING_IMAGE = re.compile(r"us-central1-docker\.pkg\.dev/k8s-staging-images/kueue/kueue:\S+")
JOBSET_STAGING_IMAGE = re.compile(r"us-central1-docker\.pkg\.dev/k8s-staging-images/jobset/jobset:\S+")


def log(msg):
    print("mirror: %s" % msg, file=sys.stderr, flush=True)


def read_versions(path=VERSIONS_ENV):
    versions = {}
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            versions[key.strip()] = value.strip().strip('"')
    return versions


def go_env():
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")
    env["GOFLAGS"] = "-mod=mod"
    return env


def module_dir(module, version):
    """Return the module cache directory of module@version (downloads it when missing)."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", "%s@%s" % (module, version)],
        check=False,
        capture_output=True,
        text=True,
        env=go_env(),
        cwd=tempfile.gettempdir(),
    )
    try:
        info = json.loads(out.stdout)
    except ValueError:
        info = {}
    if out.returncode != 0 or not info.get("Dir"):
        raise SystemExit(
            "mirror: cannot download Go module %s@%s: %s"
            % (module, version, info.get("Error") or out.stderr.strip() or "no Dir in go mod download output")
        )
    return info["Dir"]


def kubectl():
    candidates = [os.path.join(REPO, ".lab", "bin", "kubectl"), shutil.which("kubectl")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("mirror: kubectl (for kustomize) not found in .lab/bin or PATH")


def kustomize(directory):
    out = subprocess.run([kubectl(), "kustomize", directory], check=False, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit("mirror: kustomize build %s failed: %s" % (directory, out.stderr.strip()))
    return out.stdout


def write_if_changed(path, data):
    if isinstance(data, str):
        data = data.encode()
    if os.path.exists(path):
        with open(path, "rb") as handle:
            if handle.read() == data:
                return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
    return True


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_chart(chart_dir, name, version):
    """A Helm chart archive (name/ prefix, Chart.yaml version and appVersion set), byte-reproducible."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for root, dirs, files in os.walk(chart_dir):
            dirs.sort()
            for filename in sorted(files):
                full = os.path.join(root, filename)
                rel = os.path.relpath(full, chart_dir)
                with open(full, "rb") as handle:
                    data = handle.read()
                if rel == "Chart.yaml":
                    text = data.decode()
                    text = re.sub(r"(?m)^version:.*$", "version: %s" % version.lstrip("v"), text)
                    text = re.sub(r"(?m)^appVersion:.*$", 'appVersion: "%s"' % version, text)
                    data = text.encode()
                info = tarfile.TarInfo("%s/%s" % (name, rel))
                info.size = len(data)
                info.mode = 0o644
                info.mtime = 0
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_kueue(out, version):
    src = module_dir("sigs.k8s.io/kueue", version)
    base = os.path.join(out, "github.com", "kubernetes-sigs", "kueue", "releases", "download", version)
    manifests = KUEUE_STAGING_IMAGE.sub(
        "registry.k8s.io/kueue/kueue:%s" % version, kustomize(os.path.join(src, "config", "default"))
    )
    write_if_changed(os.path.join(base, "manifests.yaml"), manifests)
    chart = os.path.join(src, "charts", "kueue")
    if os.path.isdir(chart):
        archive = package_chart(chart, "kueue", version)
        write_if_changed(os.path.join(base, "kueue-%s.tgz" % version.lstrip("v")), archive)
    return base


def build_jobset(out, version):
    src = module_dir("sigs.k8s.io/jobset", version)
    base = os.path.join(out, "github.com", "kubernetes-sigs", "jobset", "releases", "download", version)
    manifests = JOBSET_STAGING_IMAGE.sub(
        "registry.k8s.io/jobset/jobset:%s" % version, kustomize(os.path.join(src, "config", "default"))
    )
    write_if_changed(os.path.join(base, "manifests.yaml"), manifests)
    chart = os.path.join(src, "charts", "jobset")
    if os.path.isdir(chart):
        archive = package_chart(chart, "jobset", version)
        write_if_changed(os.path.join(base, "jobset-%s.tgz" % version.lstrip("v")), archive)
    return base


def build_gateway_api(out, version):
    """standard-install.yaml / experimental-install.yaml as hack/build-install-yaml.sh builds them."""
    src = module_dir("sigs.k8s.io/gateway-api", version)
    base = os.path.join(out, "github.com", "kubernetes-sigs", "gateway-api", "releases", "download", version)
    for channel in ("standard", "experimental"):
        crd_dir = os.path.join(src, "config", "crd", channel)
        parts = [
            "# Gateway API %s channel install, %s, built from the sigs.k8s.io/gateway-api module\n" % (channel, version)
        ]
        for filename in sorted(os.listdir(crd_dir)):
            if filename.startswith("gateway") and filename.endswith(".yaml"):
                with open(os.path.join(crd_dir, filename)) as handle:
                    parts.append("---\n#\n# config/crd/%s/%s\n#\n%s" % (channel, filename, handle.read()))
        write_if_changed(os.path.join(base, "%s-install.yaml" % channel), "".join(parts))
    return base


ENVOY_GATEWAY_GO_MOD = os.path.join(REPO, "tests", "lab", "go", "envoy-gateway", "go.mod")
CHART_TEMPLATE = os.path.join(REPO, ".lab", "bin", "chart-template")


def envoy_gateway_version():
    """Envoy Gateway's pin is the version its lab wrapper module requires (tests/lab/go/envoy-gateway)."""
    with open(ENVOY_GATEWAY_GO_MOD) as handle:
        found = re.search(r"(?m)^\s*(?:require\s+)?github\.com/envoyproxy/gateway\s+(v\S+)", handle.read())
    return found.group(1) if found else None


def build_envoy_gateway(out, version):
    """install.yaml as upstream's `make generate-manifests`: values.yaml from values.tmpl.yaml (GatewayImage
    docker.io/envoyproxy/gateway:<v>, GatewayImagePullPolicy IfNotPresent, as helm-generate fills them), then
    `helm template --set createNamespace=true eg charts/gateway-helm --include-crds --namespace envoy-gateway-system`,
    rendered by the lab's chart-template (Helm's own engine and install order, tests/lab/go/envoy-gateway)."""
    if not os.access(CHART_TEMPLATE, os.X_OK):
        log("%s not built (the lab's real-nodes build makes it): Envoy Gateway's install.yaml skipped" % CHART_TEMPLATE)
        return None
    src = module_dir("github.com/envoyproxy/gateway", version)
    base = os.path.join(out, "github.com", "envoyproxy", "gateway", "releases", "download", version)
    with tempfile.TemporaryDirectory() as tmp:
        chart = os.path.join(tmp, "gateway-helm")
        shutil.copytree(os.path.join(src, "charts", "gateway-helm"), chart)
        for root, dirs, files in os.walk(chart):  # copies of the read-only module cache
            for name in dirs + files:
                os.chmod(os.path.join(root, name), 0o755 if name in dirs else 0o644)
        with open(os.path.join(chart, "values.tmpl.yaml")) as handle:
            values = handle.read().replace("${GatewayImage}", "docker.io/envoyproxy/gateway:%s" % version)
        with open(os.path.join(chart, "values.yaml"), "w") as handle:
            handle.write(values.replace("${GatewayImagePullPolicy}", "IfNotPresent"))
        rendered = subprocess.run([CHART_TEMPLATE, "eg", chart, "envoy-gateway-system", "createNamespace=true"],
                                  check=False, capture_output=True, text=True)
    if rendered.returncode != 0:
        raise SystemExit("mirror: rendering Envoy Gateway's chart failed: %s" % rendered.stderr.strip()[-800:])
    write_if_changed(os.path.join(base, "install.yaml"), rendered.stdout)
    return base


BUILDERS = (
    ("KUEUE_VERSION", build_kueue),
    ("JOBSET_VERSION", build_jobset),
    ("GATEWAY_API_VERSION", build_gateway_api),
    ("ENVOY_GATEWAY_VERSION", build_envoy_gateway),
)


def write_checksums(directories):
    """<file>.sha256 beside every artifact and SHA256SUMS in each directory this script built.

    Only those directories: others under --out (e.g. the gvisor role's binaries) belong to other producers.
    """
    for root in directories:
        files = os.listdir(root)
        artifacts = sorted(
            f
            for f in files
            if not (f.endswith(".sha256") or f == "SHA256SUMS" or f.startswith(".") or f.endswith(".tmp"))
        )
        if not artifacts:
            continue
        lines = []
        for filename in artifacts:
            line = "%s  %s\n" % (sha256_file(os.path.join(root, filename)), filename)
            write_if_changed(os.path.join(root, filename + ".sha256"), line)
            lines.append(line)
        write_if_changed(os.path.join(root, "SHA256SUMS"), "".join(lines))


def checksums_ok(out, directories):
    for rel in directories:
        root = os.path.join(out, rel)
        if not os.path.exists(os.path.join(root, "SHA256SUMS")):
            return False
        with open(os.path.join(root, "SHA256SUMS")) as handle:
            for line in handle:
                digest, filename = line.split(None, 1)
                path = os.path.join(root, filename.strip())
                if not os.path.exists(path) or sha256_file(path) != digest:
                    return False
    return True


def stamp_for(versions):
    with open(os.path.abspath(__file__), "rb") as handle:
        script = hashlib.sha256(handle.read()).hexdigest()
    stamp = {"script": script, "versions": {key: versions.get(key) for key, _unused in BUILDERS}}
    stamp["chart_template"] = os.access(CHART_TEMPLATE, os.X_OK)  # Envoy Gateway's install.yaml is built once it is
    return stamp


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--out", default=os.path.join(REPO, ".lab", "mirror"))
    parser.add_argument("--versions", default=VERSIONS_ENV)
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp says nothing changed")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    versions = read_versions(args.versions)
    versions.setdefault("ENVOY_GATEWAY_VERSION", envoy_gateway_version())
    stamp = stamp_for(versions)
    stamp_path = os.path.join(out, STAMP)
    if not args.force and os.path.exists(stamp_path):
        with open(stamp_path) as handle:
            try:
                previous = json.load(handle)
            except ValueError:
                previous = None
        if previous and previous.get("inputs") == stamp and checksums_ok(out, previous.get("directories", [])):
            log("up to date in %s" % out)
            return 0
    os.makedirs(out, exist_ok=True)
    built = []
    for key, builder in BUILDERS:
        if not versions.get(key):
            log("%s not pinned in %s, skipped" % (key, args.versions))
            continue
        log("building %s %s" % (builder.__name__[len("build_") :], versions[key]))
        directory = builder(out, versions[key])
        if directory:
            built.append(directory)
    write_checksums(built)
    record = {"inputs": stamp, "directories": sorted(os.path.relpath(d, out) for d in built)}
    write_if_changed(stamp_path, json.dumps(record, indent=1, sort_keys=True))
    log("done: %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
