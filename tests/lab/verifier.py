"""The verifier image (Containerfile at the collection root) built for the lab without podman build, a registry or
Docker, under the name roles/verify_in_cluster runs by default (verify_in_cluster_image).

The Containerfile stays the product's way to build it; this is the lab's way to produce the same image from what
this machine can reach (Debian's packages, PyPI), as OCI layout tar (tests/lab/images.py). Its layers follow the
Containerfile's steps:
  1. base: Debian bookworm (debootstrap --variant=minbase, python3 = Debian's 3.11, ca-certificates), the stand-in
     for python:3.11-slim-bookworm; cached as a tar under $NODES_CACHE/verifier (debootstrap once per machine);
  2. the pinned runtime dependencies: the ansible-core, kubernetes, PyYAML and jmespath lines of
     requirements-dev.txt (grep'd as the Containerfile does, exactly 4), `pip install --target` with this host's
     Python (same minor, same glibc as bookworm) from binary wheels, byte-compiled with unchecked-hash .pyc (valid
     whatever the layer's mtimes), in /usr/local/lib/python3.11/dist-packages, console scripts in /usr/local/bin;
     cached per requirements;
  3. `COPY .` (the build context less .containerignore) to /usr/share/ansible/collections/ansible_collections/
     k8s_ai/conformance, the entry point at /usr/local/bin/ai-conformance-verify, user and group verifier 10001.
Config: the Containerfile's ENV (+ LANG=C.UTF-8 and PATH, which the Python base image sets), USER 10001:10001,
WORKDIR /tmp, ENTRYPOINT ["/usr/local/bin/ai-conformance-verify"], CMD ["job"]. Differences: see tests/lab/README.md.

    verifier.py build      build into .lab/images-on-demand (a warm build costs seconds); print reference, digest
    verifier.py serve      build and hand it to the lab's registry (the real nodes pull it under its name)
"""

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import images  # noqa: E402

CACHE = os.path.join(os.environ.get("NODES_CACHE") or os.path.expanduser("~/.cache/k8s-ai-conformance"), "verifier")
SUITE = "bookworm"
BASE_PACKAGES = "python3,ca-certificates"
PYTHON = "python%d.%d" % sys.version_info[:2]
COLLECTIONS = "/usr/share/ansible/collections"
COLLECTION_DIR = COLLECTIONS + "/ansible_collections/k8s_ai/conformance"
ENTRYPOINT = "/usr/local/bin/ai-conformance-verify"
UID = 10001
RUNTIME_DEPS = re.compile(r"^(ansible-core|kubernetes|PyYAML|jmespath)==")
# The Containerfile's ENV, in its order; LANG and PATH come from its base image (python:3.11-slim-bookworm sets
# both; Python would coerce the C locale to C.UTF-8 anyway).
ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    "ANSIBLE_COLLECTIONS_PATH=" + COLLECTIONS,
    "PYTHONPATH=" + COLLECTIONS,
    "HOME=/tmp",
    "ANSIBLE_LOCALHOST_WARNING=false",
    "ANSIBLE_INVENTORY_UNPARSED_WARNING=false",
    "ANSIBLE_NOCOLOR=1",
    "ANSIBLE_RETRY_FILES_ENABLED=false",
    "PYTHONUNBUFFERED=1",
]
# What python:3.11-slim leaves out of a Debian image too (documentation, manuals, translations) and what apt
# leaves behind; /dev is made by the runtime.
SLIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian",
        "var/cache/apt", "var/lib/apt/lists", "var/log", "dev")


def log(msg):
    print("verifier image: %s" % msg, flush=True)


def image_ref():
    """verify_in_cluster_image of roles/verify_in_cluster/defaults/main.yml."""
    import yaml  # noqa: PLC0415
    with open(os.path.join(ROOT, "roles", "verify_in_cluster", "defaults", "main.yml")) as handle:
        return yaml.safe_load(handle)["verify_in_cluster_image"]


class CachedLayer:
    """A layer whose tar bytes were made once (images.write_image calls tar())."""

    def __init__(self, path):
        self.path = path

    def tar(self):
        with open(self.path, "rb") as handle:
            return handle.read()


# ---------------------------------------------------------------- 1. the base (debootstrap, cached)

def _mirror():
    """The first Debian URI this machine's apt uses (as tests/lab/nodes/build-image.sh)."""
    if os.environ.get("NODES_MIRROR"):
        return os.environ["NODES_MIRROR"]
    candidates = []
    for path in sorted(os.listdir("/etc/apt/sources.list.d")) if os.path.isdir("/etc/apt/sources.list.d") else []:
        with open(os.path.join("/etc/apt/sources.list.d", path)) as handle:
            text = handle.read()
        candidates += re.findall(r"^URIs:\s*(\S+)", text, re.M) if path.endswith(".sources") else \
            re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M)
    if os.path.exists("/etc/apt/sources.list"):
        with open("/etc/apt/sources.list") as handle:
            candidates += re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", handle.read(), re.M)
    for uri in candidates:
        if "security" not in uri:
            return uri
    raise SystemExit("verifier image: no Debian mirror in /etc/apt/sources.list[.d]; set NODES_MIRROR=<URL>")


def _slim_filter(info):
    """Keep owners, modes and mtimes (Debian's stdlib .pyc are checked against them); drop what SLIM names (the
    folders themselves stay, and so do the packages' copyright files)."""
    name = info.name
    for prefix in SLIM:
        if name.startswith(prefix + "/"):
            if prefix == "usr/share/doc" and (name.endswith("/copyright") or
                                              (info.isdir() and name.count("/") == 3)):
                break
            return None
    info.uname = info.gname = ""
    return info


def base_layer():
    """The debootstrap'd bookworm rootfs as a layer tar, made once per machine."""
    tarball = os.path.join(CACHE, "base-%s-python3.tar" % SUITE)
    if os.path.exists(tarball):
        return tarball
    if not shutil.which("debootstrap"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if subprocess.run(["apt-get", "install", "-y", "-q", "debootstrap"], env=env, capture_output=True,
                          check=False).returncode:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
            subprocess.run(["apt-get", "install", "-y", "-q", "debootstrap"], env=env, capture_output=True, check=True)
    os.makedirs(CACHE, exist_ok=True)
    root = tempfile.mkdtemp(prefix="rootfs.", dir=CACHE)
    started = time.time()
    try:
        mirror = _mirror()
        log("debootstrap %s from %s (%s; once per machine)" % (SUITE, mirror, BASE_PACKAGES))
        with open(os.path.join(CACHE, "debootstrap.log"), "w") as out:
            proc = subprocess.run(["debootstrap", "--variant=minbase", "--include=" + BASE_PACKAGES, SUITE, root,
                                   mirror], stdout=out, stderr=subprocess.STDOUT, check=False)
        if proc.returncode:
            with open(os.path.join(CACHE, "debootstrap.log")) as handle:
                raise SystemExit("verifier image: debootstrap failed:\n" + handle.read()[-3000:])
        probe = "import sys; print('python%d.%d' % sys.version_info[:2])"
        found = subprocess.run(["chroot", root, "python3", "-c", probe], capture_output=True, text=True,
                               check=True).stdout.strip()
        if found != PYTHON:
            raise SystemExit("verifier image: %s has %s, this host %s: the dependencies' wheels must match"
                             % (SUITE, found, PYTHON))
        with open(os.path.join(root, "etc", "machine-id"), "w"):
            pass
        with tarfile.open(tarball + ".tmp", "w", format=tarfile.PAX_FORMAT) as archive:
            for name in sorted(os.listdir(root)):
                archive.add(os.path.join(root, name), arcname=name, filter=_slim_filter)
        os.replace(tarball + ".tmp", tarball)
        log("base layer %s (%.0f MB) in %.0f s" % (tarball, os.path.getsize(tarball) / 1e6, time.time() - started))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return tarball


def base_file(base_tar, name):
    with tarfile.open(base_tar) as archive:
        return archive.extractfile(name).read()


# ---------------------------------------------------------------- 2. the pinned runtime dependencies

def runtime_requirements():
    with open(os.path.join(ROOT, "requirements-dev.txt")) as handle:
        lines = [line.strip() for line in handle if RUNTIME_DEPS.match(line)]
    if len(lines) != 4:
        raise SystemExit("verifier image: requirements-dev.txt must pin ansible-core, kubernetes, PyYAML and jmespath "
                         "(found %s)" % lines)
    return lines


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def deps_layer():
    """pip install --target of the 4 pinned lines; the layer tar is cached per requirements and Python."""
    lines = runtime_requirements()
    key = hashlib.sha256(json.dumps([lines, PYTHON, sys.platform, 1]).encode()).hexdigest()[:16]
    tarball = os.path.join(CACHE, "deps-%s.tar" % key)
    if os.path.exists(tarball):
        return tarball
    os.makedirs(CACHE, exist_ok=True)
    started = time.time()
    work = tempfile.mkdtemp(prefix="deps.", dir=CACHE)
    try:
        requirements = os.path.join(work, "requirements.txt")
        with open(requirements, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        target = os.path.join(work, "target")
        log("pip install --target (%s)" % ", ".join(lines))
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
                        "--only-binary=:all:", "--target", target, "-r", requirements], check=True)
        # .pyc that stay valid in a layer whose mtimes are 0 (the root file system is read-only in the pod)
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                        target], check=True, stdout=subprocess.DEVNULL)
        layer = images.Layer()
        site = "usr/local/lib/%s/dist-packages" % PYTHON
        scripts = os.path.join(target, "bin")
        for name in sorted(os.listdir(scripts)) if os.path.isdir(scripts) else []:
            if not os.path.isfile(os.path.join(scripts, name)):
                continue  # compileall's __pycache__ of the scripts
            with open(os.path.join(scripts, name), "rb") as handle:
                data = handle.read()
            if data.startswith(b"#!"):  # pip wrote this host's interpreter: the image's is /usr/bin/python3
                data = b"#!/usr/bin/python3" + data[data.index(b"\n"):]
            layer.add_file("usr/local/bin/" + name, data=data, mode=0o755)
        for dirpath, dirnames, filenames in os.walk(target):
            dirnames.sort()
            rel = os.path.relpath(dirpath, target)
            if rel == "bin" or rel.startswith("bin" + os.sep):
                continue
            base = site if rel == "." else site + "/" + rel.replace(os.sep, "/")
            layer.add_dir(base, mode=0o755)
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    layer.add_symlink(base + "/" + name, os.readlink(path))
                else:
                    layer.add_file(base + "/" + name, source=path, mode=_mode(path) & 0o755 | 0o644)
        with open(tarball + ".tmp", "wb") as handle:
            handle.write(layer.tar())
        os.replace(tarball + ".tmp", tarball)
        size = os.path.getsize(tarball) / 1e6
        log("dependencies layer %s (%.0f MB) in %.0f s" % (tarball, size, time.time() - started))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball


# ---------------------------------------------------------------- 3. the collection (COPY .) and the user

def _ignore_patterns():
    with open(os.path.join(ROOT, ".containerignore")) as handle:
        lines = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    patterns = []
    for line in lines:  # the .containerignore syntax this file uses: *, ?, **/ (no ! exceptions)
        if line.startswith("!"):
            raise SystemExit("verifier image: '!' patterns in .containerignore are not supported here: %s" % line)
        regex = ""
        i = 0
        text = line.strip("/")
        while i < len(text):
            if text.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif text[i] == "*":
                regex += "[^/]*"
                i += 1
            elif text[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(text[i])
                i += 1
        patterns.append(re.compile(regex + r"\Z"))
    return patterns


def context_files():
    """The build context of `COPY .`: every file under the collection root that .containerignore keeps (a path
    is left out when it or a folder above it matches)."""
    patterns = _ignore_patterns()

    def ignored(rel):
        return any(p.match(rel) for p in patterns)
    found = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        dirnames[:] = sorted(d for d in dirnames if not ignored(rel_dir + d))
        for name in sorted(filenames):
            if not ignored(rel_dir + name):
                found.append(rel_dir + name)
    return found


def collection_layer(base_tar):
    layer = images.Layer()
    for rel in context_files():
        path = os.path.join(ROOT, rel)
        target = COLLECTION_DIR.strip("/") + "/" + rel
        if os.path.islink(path):
            layer.add_symlink(target, os.readlink(path))
        else:
            layer.add_file(target, source=path, mode=0o755 if _mode(path) & 0o111 else 0o644)
    layer.add_file(ENTRYPOINT, source=os.path.join(ROOT, "roles", "verify_in_cluster", "files",
                                                   "ai-conformance-verify"), mode=0o755)
    # useradd --uid 10001 --user-group --home-dir /tmp --no-create-home --shell /usr/sbin/nologin verifier
    entries = {
        "etc/passwd": b"verifier:x:%d:%d::/tmp:/usr/sbin/nologin\n" % (UID, UID),
        "etc/group": b"verifier:x:%d:\n" % UID,
        "etc/shadow": b"verifier:!::0:99999:7:::\n",
        "etc/gshadow": b"verifier:!::\n",
    }
    for name, line in entries.items():
        before = base_file(base_tar, name)
        mode = 0o640 if "shadow" in name else 0o644
        layer.add_file(name, data=before if line in before else before + line, mode=mode)
    return layer


# ---------------------------------------------------------------- the image

def build(out_dir):
    """Write <out_dir>/verifier.tar (rewritten only when it changes); returns (reference, digest, seconds)."""
    started = time.time()
    ref = image_ref()
    base = base_layer()
    deps = deps_layer()
    path = os.path.join(out_dir, "verifier.tar")
    digest = images.write_image(path, ref, [CachedLayer(base), CachedLayer(deps), collection_layer(base)],
                                entrypoint=[ENTRYPOINT], cmd=["job"], env=ENV, workdir="/tmp",
                                user="%d:%d" % (UID, UID))
    return ref, digest, time.time() - started


def write_hosts_toml(lab, realnodes):
    """The registry mirror configuration for every image host the lab's registry serves, in each real node
    (realnodes.prepare_node writes it for the hosts known when the node starts; containerd reads it per pull)."""
    for name in lab._state().get("real_nodes") or []:
        certs = os.path.join(realnodes.node_dir(lab, name), "rootfs", "etc", "containerd", "certs.d")
        for host in realnodes.registry_hosts(lab):
            path = os.path.join(certs, host, "hosts.toml")
            if os.path.exists(path):
                continue
            upstream = "https://registry-1.docker.io" if host == "docker.io" else "https://" + host
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as handle:
                handle.write('server = "%s"\n\n[host."http://%s:%d"]\n  capabilities = ["pull", "resolve"]\n'
                             % (upstream, realnodes.HOST_IP, realnodes.REGISTRY_PORT))


# Images built on demand live beside the lab's own (.lab/images), not among them: every node imports each tar of
# .lab/images when it starts, and these are not part of `make lab`.
ON_DEMAND = os.path.join(ROOT, ".lab", "images-on-demand")
OURS = ("verifier.tar", "sonobuoy.tar")


def serve(lab, realnodes, builders=None):
    """Build (the verifier image, or the given image builders) into .lab/images-on-demand, serve them with the
    lab's own images from its registry (a catalog of both folders) and give the nodes the mirror configuration: a
    pod naming the image pulls it from the lab's registry. The lab's next `up` serves its own images only again."""
    results = [build(ON_DEMAND)] if builders is None else [b(ON_DEMAND) for b in builders]
    for name in OURS:  # written into .lab/images by an earlier version of this file: no longer imported at start
        for path in (os.path.join(realnodes.image_dir(lab), name), os.path.join(realnodes.image_dir(lab),
                                                                                name + ".digest")):
            if os.path.exists(path):
                os.remove(path)
    both = os.path.join(ROOT, ".lab", "build", "registry-images")
    shutil.rmtree(both, ignore_errors=True)
    os.makedirs(both)
    for folder in (realnodes.image_dir(lab), ON_DEMAND):
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if name.endswith(".tar") and not os.path.exists(os.path.join(both, name)):
                os.symlink(os.path.join(folder, name), os.path.join(both, name))
    realnodes.registry.prepare(both, realnodes.registry_dir(lab))
    write_hosts_toml(lab, realnodes)
    return results


def serve_command(argv, usage, build_binaries, image_builders, describe):
    """`<script> serve` of a lab script whose images are built on demand: build, serve the images, print one JSON
    line (describe(lab) plus the first image's digest)."""
    import lab  # noqa: PLC0415
    import realnodes  # noqa: PLC0415
    if argv[1:] != ["serve"]:
        raise SystemExit(usage)
    build_binaries(lab)
    digest = serve(lab, realnodes, image_builders(lab))[0]
    print(json.dumps(dict(describe(lab), digest=digest)))


def main(argv):
    if argv[1:] == ["build"]:
        out = ON_DEMAND
        ref, digest, seconds = build(out)
        size = os.path.getsize(os.path.join(out, "verifier.tar"))
        print(json.dumps({"image": ref, "digest": digest, "seconds": round(seconds, 1), "bytes": size}))
    elif argv[1:] == ["serve"]:
        import lab  # noqa: PLC0415
        import realnodes  # noqa: PLC0415
        ref, digest, seconds = serve(lab, realnodes)[0]
        print(json.dumps({"image": ref, "digest": digest, "seconds": round(seconds, 1)}))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
