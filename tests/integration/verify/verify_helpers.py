"""Running playbooks/verify.yml from the integration tests, and reading what it wrote."""

import glob
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PLAYBOOK = os.path.join(ROOT, "playbooks", "verify.yml")
LAB_INVENTORY = os.path.join(ROOT, ".lab", "inventory")
PROBE_SELECTOR = "k8s-ai-conformance/probe=true"
METADATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab-metadata.yml")


def collections_path():
    """.collections with this checkout linked in as k8s_ai.conformance (as `make collections` does)."""
    base = os.path.join(ROOT, ".collections")
    link = os.path.join(base, "ansible_collections", "k8s_ai", "conformance")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)
    return base


sys.path.insert(0, collections_path())


def env():
    out = dict(os.environ)
    out.update(ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_ROLES_PATH=os.path.join(ROOT, "roles"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", PATH=VENV_BIN + os.pathsep + out.get("PATH", ""))
    out.pop("KUBECONFIG", None)
    out.pop("K8S_AUTH_KUBECONFIG", None)
    return out


def command(tmp_path, extra_vars, check=False, inventory=None, metadata=True):
    vars_file = tmp_path / ("vars-%d.json" % len(list(tmp_path.glob("vars-*.json"))))
    data = {"verify_report_dir": str(tmp_path / "report")}
    data.update(extra_vars)
    vars_file.write_text(json.dumps(data))
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), PLAYBOOK]
    if inventory:
        cmd += ["-i", inventory]
    if metadata:
        cmd += ["-e", "@" + METADATA_FILE]
    cmd += ["-e", "@" + str(vars_file)]
    if check:
        cmd.append("--check")
    return cmd


def run_verify(tmp_path, extra_vars, check=False, timeout=1200, inventory=None, metadata=True):
    """Run verify.yml; returns (returncode, combined output, report_dir)."""
    proc = subprocess.run(command(tmp_path, extra_vars, check, inventory, metadata), cwd=str(tmp_path),
                          env=env(), capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr, extra_vars.get("verify_report_dir", str(tmp_path / "report"))


def start_verify(tmp_path, extra_vars, log):
    """Start verify.yml in its own process group (for interruption); output to `log`."""
    with open(log, "w") as handle:
        return subprocess.Popen(command(tmp_path, extra_vars), cwd=str(tmp_path), env=env(), stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)


def report_dirs(report_dir):
    return sorted(os.path.dirname(p) for p in glob.glob(os.path.join(report_dir, "v*", "*", "report.json")))


def load_results(report_dir):
    dirs = report_dirs(report_dir)
    assert dirs, "no report written under %s" % report_dir
    with open(os.path.join(dirs[0], "report.json")) as handle:
        return dirs[0], json.load(handle)


def probe_namespaces(kubectl, prefix):
    """Probe namespaces of this prefix that are not being deleted (kubectl: the integration conftest's Kubectl)."""
    out = kubectl.json("get", "namespaces", "-l", PROBE_SELECTOR)
    return [n["metadata"]["name"] for n in out.get("items", [])
            if n["metadata"]["name"].startswith(prefix + "-") and (n.get("status") or {}).get("phase") != "Terminating"]


def wait_no_probe_namespaces(kubectl, prefix, seconds=180):
    deadline = time.time() + seconds
    left = probe_namespaces(kubectl, prefix)
    while left and time.time() < deadline:
        time.sleep(3)
        left = probe_namespaces(kubectl, prefix)
    return left


def write_kubeconfig(path, server, token=None, ca_data=None, insecure=False, context="probe", client=None):
    user = dict(client or {})
    if token:
        user["token"] = token
    cluster = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": context,
           "clusters": [{"name": "c", "cluster": cluster}],
           "users": [{"name": "u", "user": user}],
           "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}]}
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def lab_cluster(kubeconfig):
    with open(kubeconfig) as handle:
        doc = yaml.safe_load(handle)
    ctx_name = doc.get("current-context")
    ctx = [c for c in doc["contexts"] if c["name"] == ctx_name][0]["context"]
    cluster = [c for c in doc["clusters"] if c["name"] == ctx["cluster"]][0]["cluster"]
    user = [u for u in doc["users"] if u["name"] == ctx["user"]][0]["user"]
    return doc, cluster, user


def secrets_of(kubeconfig):
    """Secret strings of a kubeconfig that must never appear in a report."""
    _doc, _cluster, user = lab_cluster(kubeconfig)
    return [v for k, v in user.items() if k in ("token", "client-key-data", "client-certificate-data", "password")
            and isinstance(v, str) and len(v) > 8]


class FakeApiServer:
    """A tiny HTTP API server: /version says `version`, reviews are allowed, everything else 404."""

    def __init__(self, version="v1.31.0"):
        outer = self
        self.version = version

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.startswith("/version"):
                    major, minor = re.match(r"v(\d+)\.(\d+)", outer.version).groups()
                    return self._send(200, {"major": major, "minor": minor, "gitVersion": outer.version})
                if self.path in ("/api", "/apis"):
                    return self._send(200, {"kind": "APIGroupList", "groups": []} if self.path == "/apis"
                                      else {"kind": "APIVersions", "versions": ["v1"]})
                return self._send(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404,
                                        "message": "the server could not find the requested resource"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if "accessreviews" in self.path:
                    body["status"] = {"allowed": True}
                    return self._send(201, body)
                if "selfsubjectreviews" in self.path:
                    body["status"] = {"userInfo": {"username": "fake-admin"}}
                    return self._send(201, body)
                return self._send(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404,
                                        "message": "the server could not find the requested resource"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
