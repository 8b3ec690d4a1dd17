"""Container images for the lab's real nodes, without a registry.

Each image is an OCI image layout in a tar (oci-layout, index.json, blobs/sha256/...) made from files
on this machine: our own static builds (pause), Go builds of upstream modules (CoreDNS, the
controllers) and Debian's busybox-static. The index carries the upstream reference in the
`io.containerd.image.name` annotation, so `ctr -n k8s.io images import` stores it under the name a real
cluster pulls and manifests keep their upstream image references (imagePullPolicy IfNotPresent).
Layers are deterministic (sorted, mtime 0, root-owned), so an unchanged image has an unchanged digest
and a node that already has it imports nothing.
"""

import hashlib
import io
import json
import os
import subprocess
import tarfile

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"


class Layer:
    """Files of one layer: add_file (from disk or bytes), add_dir, add_symlink."""

    def __init__(self):
        self.entries = {}

    def add_dir(self, path, mode=0o755):
        self.entries[path.strip("/")] = ("dir", None, mode)

    def add_file(self, path, source=None, data=None, mode=0o755):
        if data is None:
            with open(source, "rb") as handle:
                data = handle.read()
        self.entries[path.strip("/")] = ("file", data, mode)

    def add_symlink(self, path, target):
        self.entries[path.strip("/")] = ("symlink", target, 0o777)

    def tar(self):
        parents = set()
        for path in self.entries:
            parts = path.split("/")[:-1]
            parents.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
        for parent in parents:
            self.entries.setdefault(parent, ("dir", None, 0o755))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for path in sorted(self.entries):
                kind, payload, mode = self.entries[path]
                info = tarfile.TarInfo(path)
                info.mtime, info.uid, info.gid, info.mode = 0, 0, 0, mode
                if kind == "dir":
                    info.type = tarfile.DIRTYPE
                    archive.addfile(info)
                elif kind == "symlink":
                    info.type, info.linkname = tarfile.SYMTYPE, payload
                    archive.addfile(info)
                else:
                    info.size = len(payload)
                    archive.addfile(info, io.BytesIO(payload))
        return buffer.getvalue()


def _blob(blobs, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"digest": digest, "size": len(data)}


def _json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def write_image(path, ref, layers, entrypoint=None, cmd=None, env=None, workdir="/", user=None,
                exposed_ports=None):
    """Write an OCI layout tar for `ref` (e.g. registry.k8s.io/pause:3.10). Returns the manifest digest;
    the file is rewritten only when its content changes."""
    blobs = {}
    layer_data = [layer.tar() for layer in layers]
    config = {
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Env": list(env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
                   "WorkingDir": workdir},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(d).hexdigest() for d in layer_data]},
    }
    if entrypoint:
        config["config"]["Entrypoint"] = list(entrypoint)
    if cmd:
        config["config"]["Cmd"] = list(cmd)
    if user:
        config["config"]["User"] = user
    if exposed_ports:
        config["config"]["ExposedPorts"] = {"%s" % p: {} for p in exposed_ports}
    manifest = {
        "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
        "config": dict(_blob(blobs, _json(config)), mediaType=CONFIG_MEDIA_TYPE),
        "layers": [dict(_blob(blobs, d), mediaType=LAYER_MEDIA_TYPE) for d in layer_data],
    }
    descriptor = dict(_blob(blobs, _json(manifest)), mediaType=MANIFEST_MEDIA_TYPE)
    descriptor["annotations"] = {"io.containerd.image.name": ref,
                                 "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1]}
    descriptor["platform"] = {"architecture": "amd64", "os": "linux"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [descriptor]}
    stamp = path + ".digest"
    if os.path.exists(path) and os.path.exists(stamp):
        with open(stamp) as handle:
            if handle.read().strip() == descriptor["digest"]:
                return descriptor["digest"]
    files = [("oci-layout", _json({"imageLayoutVersion": "1.0.0"})), ("index.json", _json(index))]
    files += [("blobs/sha256/" + digest.split(":", 1)[1], data) for digest, data in sorted(blobs.items())]
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)  # e.g. .lab/images-on-demand on a fresh clone
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as archive:
        for dirname in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(dirname)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            archive.addfile(info)
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)
    with open(stamp, "w") as handle:
        handle.write(descriptor["digest"] + "\n")
    return descriptor["digest"]


def base_layer():
    """What every image's root holds: /etc/passwd and /etc/group (root, nobody), /tmp."""
    layer = Layer()
    layer.add_file("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
                   mode=0o644)
    layer.add_file("etc/group", data=b"root:x:0:\nnobody:x:65534:\n", mode=0o644)
    layer.add_dir("tmp", mode=0o1777)
    layer.add_dir("root", mode=0o700)
    return layer


def binary_image(path, ref, binary, name, args=None, user=None):
    """One static binary at /<name> as the entrypoint (pause, CoreDNS, controllers)."""
    layer = base_layer()
    layer.add_file(name, source=binary)
    return write_image(path, ref, [layer], entrypoint=["/" + name], cmd=args, user=user)


BUSYBOX = "/bin/busybox"
GLIBC_DIR = "/lib/x86_64-linux-gnu"


def busybox_image(path, ref, busybox=BUSYBOX):
    """A busybox image from Debian's busybox-static (sh, wget, httpd, nc, nslookup, ...) and the glibc NSS
    modules its name lookups load."""
    if not os.path.exists(busybox):
        raise SystemExit("lab: %s not found: apt-get install -y busybox-static" % busybox)
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout.split()
    layer = base_layer()
    layer.add_file("bin/busybox", source=busybox)
    for applet in applets:
        if applet != "busybox":
            layer.add_symlink("bin/" + applet, "busybox")
    # A static glibc program still loads NSS modules for name lookups (wget http://name/); without them it
    # crashes. Debian's, from the host (the same glibc as the binary), as busybox's glibc variant ships them.
    for lib in ("libc.so.6", "libnss_dns.so.2", "libnss_files.so.2", "libresolv.so.2", "ld-linux-x86-64.so.2"):
        layer.add_file("lib/x86_64-linux-gnu/" + lib, source=os.path.realpath(os.path.join(GLIBC_DIR, lib)))
    layer.add_symlink("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    layer.add_file("etc/nsswitch.conf", data=b"passwd: files\ngroup: files\nhosts: files dns\n", mode=0o644)
    layer.add_dir("var/www")
    return write_image(path, ref, [layer], cmd=["sh"])
