"""Shared by the in-cluster tests: the lab's real nodes, the images built on demand, the RBAC they create and
remove, rendering and running roles/verify_in_cluster."""

import glob
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from ..verify.verify_helpers import ROOT, VENV_BIN, env

LAB_DIR = os.path.join(ROOT, "tests", "lab")
sys.path.insert(0, LAB_DIR)
import realnodes  # noqa: E402  (tests/lab/realnodes.py: the real-node label)

PLAYBOOK = os.path.join(ROOT, "playbooks", "verify_in_cluster.yml")
CLUSTERROLE_FILE = os.path.join(ROOT, "roles", "verify", "files", "verifier-clusterrole.yaml")
REAL = {realnodes.REAL_LABEL: "true"}
SA_USER = "system:serviceaccount:ai-conformance:ai-conformance-verifier"
# A few cheap static checks and one behavioural one (dra_support: a claim allocated, a pod on it, its negative).
CHECKS = ["multi_nic", "confidential_computing", "ai_workload_crds", "dra_support"]


def in_cluster_vars(prefix):
    """verify_ variables of the run inside the pod (as the lab inventory gives verify, restricted to CHECKS)."""
    with open(os.path.join(ROOT, "tests", "integration", "verify", "lab-metadata.yml")) as handle:
        metadata = yaml.safe_load(handle)
    return dict(metadata, verify_checks=CHECKS, verify_fail_on_must=False, verify_include_whitepaper=True,
                verify_probe_namespace_prefix=prefix, verify_command_node_selector=REAL, verify_check_timeout=300)


def require_real_nodes(lab):
    if not lab.get("real_nodes"):
        pytest.skip("the lab has no real nodes (make lab LAB_ARGS=--real-nodes 0): the verifier image and sonobuoy "
                    "run as pods, which kwok nodes cannot run")


def load_all(path):
    with open(path) as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


def _path_of(kubectl, doc):
    kind = doc["kind"].lower()
    args = [kind, doc["metadata"]["name"]]
    if doc["metadata"].get("namespace"):
        args += ["-n", doc["metadata"]["namespace"]]
    return args


class CreatedObjects:
    """Applies objects and deletes, at the end, those that did not exist before (the lab is shared: a ClusterRole
    another test applied stays)."""

    def __init__(self, kubectl):
        self.kubectl = kubectl
        self.created = []

    def apply(self, docs):
        for doc in docs:
            if doc["kind"] == "Namespace" or not any(
                    d["kind"] == "Namespace" and d["metadata"]["name"] == doc["metadata"].get("namespace")
                    for d in self.created):
                found = self.kubectl.run("get", *_path_of(self.kubectl, doc), "-o", "name", check=False)
                if found.returncode != 0:
                    self.created.append(doc)
        self.kubectl.run("apply", "--server-side", "--force-conflicts", "--field-manager", "it-in-cluster", "-f", "-",
                         input=yaml.safe_dump_all(docs))

    def delete(self):
        left = []
        for doc in reversed(self.created):
            self.kubectl.run("delete", *_path_of(self.kubectl, doc), "--ignore-not-found", "--wait=false",
                             check=False)
        for doc in self.created:
            if doc["kind"] == "Namespace":
                self.kubectl.run("wait", "--for=delete", "namespace/" + doc["metadata"]["name"], "--timeout=100s",
                                 check=False)
        for doc in self.created:
            if self.kubectl.run("get", *_path_of(self.kubectl, doc), "-o", "name", check=False).returncode == 0:
                left.append("%s/%s" % (doc["kind"], doc["metadata"]["name"]))
        return left


def role(tmp_path, name, extra, timeout=1500):
    """ansible-playbook playbooks/verify_in_cluster.yml with `extra` (a vars file); (rc, output, seconds)."""
    vars_file = tmp_path / ("%s.json" % name)
    vars_file.write_text(json.dumps(extra))
    started = time.time()
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), PLAYBOOK, "-e", "@%s" % vars_file],
                          cwd=str(tmp_path), env=env(), capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr, time.time() - started


def report_dir_under(path):
    """The folder holding report.json under `path` (v<minor>/<platform>/)."""
    found = sorted(glob.glob(os.path.join(str(path), "**", "report.json"), recursive=True))
    listed = sorted(glob.glob(os.path.join(str(path), "**"), recursive=True))[:40]
    assert found, "no report.json under %s: %s" % (path, listed)
    return os.path.dirname(found[0])


def assert_complete_report(folder):
    """PRODUCT.yaml, report.json with a result for every check of CHECKS, junit.xml with its testcases."""
    for name in ("PRODUCT.yaml", "report.json", "junit.xml"):
        assert os.path.getsize(os.path.join(folder, name)) > 0, name
    with open(os.path.join(folder, "report.json")) as handle:
        report = json.load(handle)
    with open(os.path.join(folder, "PRODUCT.yaml")) as handle:
        assert yaml.safe_load(handle), "PRODUCT.yaml is empty"
    return report
