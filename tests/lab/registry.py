"""A read-only image registry for the real nodes, serving the images the lab built (tests/lab/images.py).

Manifests that say `imagePullPolicy: Always` (Kueue's release manifest does) make the kubelet ask the
registry every time; there is no registry here and no internet. Each node's containerd is told (hosts.toml,
the standard registry mirror configuration) to ask this server first for registry.k8s.io, docker.io and
the other hosts the images are named after, so an unchanged manifest pulls the image it names. It serves
the OCI distribution API's read side only: GET/HEAD /v2/, manifests by tag or digest, blobs by digest.

    registry.py prepare IMAGES_DIR OUT_DIR     unpack the OCI layout tars into blobs + catalog.json
    registry.py serve OUT_DIR HOST PORT
"""

import hashlib
import http.server
import json
import os
import re
import shutil
import sys
import tarfile

MANIFEST_PATH = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+)$")


def split_reference(ref):
    """registry.k8s.io/kueue/kueue:v0.19.2 -> (registry.k8s.io, kueue/kueue, v0.19.2)."""
    host, _sep, rest = ref.partition("/")
    name, _sep, tag = rest.rpartition(":")
    return host, name, tag


def prepare(image_dir, out_dir):
    blobs = os.path.join(out_dir, "blobs")
    os.makedirs(blobs, exist_ok=True)
    catalog = {}
    for tar_name in sorted(os.listdir(image_dir)):
        if not tar_name.endswith(".tar"):
            continue
        with tarfile.open(os.path.join(image_dir, tar_name)) as archive:
            index = json.load(archive.extractfile("index.json"))
            for member in archive.getmembers():
                if member.isfile() and member.name.startswith("blobs/sha256/"):
                    target = os.path.join(blobs, os.path.basename(member.name))
                    if not os.path.exists(target):
                        with archive.extractfile(member) as src, open(target + ".tmp", "wb") as dst:
                            shutil.copyfileobj(src, dst)
                        os.replace(target + ".tmp", target)
        for descriptor in index["manifests"]:
            ref = (descriptor.get("annotations") or {}).get("io.containerd.image.name")
            if ref:
                host, name, tag = split_reference(ref)
                catalog.setdefault(host, {}).setdefault(name, {})[tag] = {
                    "digest": descriptor["digest"], "mediaType": descriptor["mediaType"]}
    with open(os.path.join(out_dir, "catalog.json.tmp"), "w") as handle:
        json.dump(catalog, handle, indent=1, sort_keys=True)
    os.replace(os.path.join(out_dir, "catalog.json.tmp"), os.path.join(out_dir, "catalog.json"))
    return catalog


class Handler(http.server.BaseHTTPRequestHandler):
    root = None

    def log_message(self, fmt, *args):  # one line per request on stderr (the lab's log file)
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def _reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _blob(self, digest):
        path = os.path.join(self.root, "blobs", digest.split(":", 1)[-1])
        if not re.match(r"^sha256:[0-9a-f]{64}$", digest) or not os.path.exists(path):
            return None
        with open(path, "rb") as handle:
            return handle.read()

    def do_GET(self):  # noqa: N802  (http.server's naming)
        path, _sep, query = self.path.partition("?")
        if path in ("/v2", "/v2/"):
            return self._reply(200, b"{}", {"Content-Type": "application/json"})
        match = MANIFEST_PATH.match(path)
        if not match:
            return self._reply(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
        name, kind, ref = match.group("name", "kind", "ref")
        if kind == "blobs":
            data = self._blob(ref)
            if data is None:
                return self._reply(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
            return self._reply(200, data, {"Content-Type": "application/octet-stream", "Docker-Content-Digest": ref})
        with open(os.path.join(self.root, "catalog.json")) as handle:
            catalog = json.load(handle)
        # containerd names the upstream host in ?ns=; without it, any host's image of that name.
        hosts = [dict(re.findall(r"(\w+)=([^&]+)", query)).get("ns")] if "ns=" in query else sorted(catalog)
        for host in hosts:
            tags = catalog.get(host, {}).get(name, {})
            entry = tags.get(ref) or next((t for t in tags.values() if t["digest"] == ref), None)
            if entry:
                data = self._blob(entry["digest"])
                if data is not None and "sha256:" + hashlib.sha256(data).hexdigest() == entry["digest"]:
                    return self._reply(200, data, {"Content-Type": entry["mediaType"],
                                                   "Docker-Content-Digest": entry["digest"]})
        return self._reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

    do_HEAD = do_GET


def serve(root, host, port):
    Handler.root = root
    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(__doc__)
