"""playbooks/verify.yml over a fleet (inventory hosts = clusters), without any real cluster.

Three "clusters": one whose kubeconfig does not exist, one whose API server cannot be reached, and one tiny fake
API server (it serves /version and allows every review, nothing else) with a previous report to drift from.
Each gets its own report with a clear error, the fleet summary lists all three, and nothing prints a traceback.
The one-cluster layout of the README (localhost, no fleet group) still writes <dir>/v<minor>/<platform>/.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml
from unit_collection import ROOT, VENV_BIN, write_report

sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "verify"))
from verify_helpers import FakeApiServer, collections_path, write_kubeconfig  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils import drift  # noqa: E402

PLAYBOOK = os.path.join(ROOT, "playbooks", "verify.yml")
FAST = {"verify_checks": ["dra_support"], "verify_check_timeout": 120, "verify_timeout": 20,
        "verify_request_timeout": 5, "verify_metadata": {"platformName": "Fleet Lab"}}


def ansible_playbook(tmp_path, inventory, *extra):
    if not os.path.exists(os.path.join(VENV_BIN, "ansible-playbook")):
        pytest.fail("no .venv/bin/ansible-playbook: run `make venv`")
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    env.pop("KUBECONFIG", None)
    env.pop("K8S_AUTH_KUBECONFIG", None)
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", str(inv), "-f", "5", PLAYBOOK]
                          + list(extra), cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


def results_under(root):
    dirs = sorted(os.path.dirname(p) for p in
                  (drift.report_json_in(d) for d in
                   [os.path.join(root, v, p) for v in os.listdir(root) if v.startswith("v")
                    for p in os.listdir(os.path.join(root, v))]) if p)
    assert len(dirs) == 1, (root, dirs)
    return dirs[0], drift.load_report(dirs[0])[1]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    report_dir = tmp / "reports"
    with FakeApiServer("v1.35.4") as api:
        fake_kc = write_kubeconfig(tmp / "fake.kubeconfig", api.url, token="x" * 20, context="fake")
        unreachable_kc = write_kubeconfig(tmp / "west.kubeconfig", "https://127.0.0.1:1", token="y" * 20,
                                          insecure=True, context="west")
        # the fake cluster had dra_support Implemented last time: this run (nothing served) is a regression
        previous = write_report(tmp / "previous" / "fake-lab", {"dra_support": "Implemented"}, version="1.35",
                                platform="fleet-lab")
        inventory = {"all": {
            "children": {"ai_clusters": {"hosts": {
                "gpu-east": {"k8s_ai_kubeconfig": str(tmp / "missing.kubeconfig")},
                "gpu-west": {"verify_kubeconfig": unreachable_kc, "verify_context": "west"},
                "fake-lab": {"k8s_ai_kubeconfig": fake_kc, "k8s_ai_context": "fake",
                             "verify_metrics_file": str(tmp / "textfile" / "fake-lab.prom")},
            }}},
            "vars": dict(FAST, verify_report_dir=str(report_dir), verify_fail_on_must=False,
                         verify_previous_report=str(tmp / "previous"), verify_fail_on_regression=True),
        }}
        rc, out = ansible_playbook(tmp, inventory)
    return {"rc": rc, "out": out, "root": str(report_dir), "tmp": tmp, "previous": previous}


def test_no_traceback_and_the_run_fails(fleet):
    assert fleet["rc"] != 0, fleet["out"][-4000:]
    assert "Traceback" not in fleet["out"], fleet["out"][-4000:]


def test_one_report_folder_per_cluster(fleet):
    assert sorted(n for n in os.listdir(fleet["root"]) if not n.startswith("fleet.")) == \
        ["fake-lab", "gpu-east", "gpu-west"]
    for name in ("gpu-east", "gpu-west", "fake-lab"):
        path, data = results_under(os.path.join(fleet["root"], name))
        assert data["run"]["cluster"] == name
        for artefact in ("PRODUCT.yaml", "report.html", "junit.xml"):
            assert os.path.isfile(os.path.join(path, artefact)), (name, artefact)


def test_each_bad_cluster_says_what_is_wrong(fleet):
    _path, east = results_under(os.path.join(fleet["root"], "gpu-east"))
    assert any("verify_kubeconfig" in e and "does not exist" in e for e in east["errors"]), east["errors"]
    assert all(not r["verified"] for r in east["requirements"])
    _path, west = results_under(os.path.join(fleet["root"], "gpu-west"))
    assert any("verify_kubeconfig" in e and "127.0.0.1:1" in e for e in west["errors"]), west["errors"]
    out = fleet["out"]
    assert "missing.kubeconfig does not exist" in out and "127.0.0.1:1" in out


def test_drift_and_fail_on_regression(fleet):
    _path, data = results_under(os.path.join(fleet["root"], "fake-lab"))
    assert data["errors"] == []
    assert data["drift"]["status"] == "compared"
    assert data["drift"]["baseline"]["path"].startswith(fleet["previous"])
    assert [e["id"] for e in data["drift"]["regressions"] if e["list"] == "checklist"] == ["dra_support"]
    assert "Regression since the previous report" in fleet["out"]
    assert "REGRESSION dra_support [MUST]" in fleet["out"]


def test_metrics_file_of_one_cluster(fleet):
    text = (fleet["tmp"] / "textfile" / "fake-lab.prom").read_text()
    assert 'k8s_ai_conformance_requirement_status{cluster="fake-lab",checklist="1.35",id="dra_support",' \
           'level="MUST",section="accelerators"} 0' in text
    assert 'k8s_ai_conformance_requirement_regressed{cluster="fake-lab",checklist="1.35",id="dra_support"' in text


def test_fleet_summary(fleet):
    with open(os.path.join(fleet["root"], "fleet.json")) as handle:
        doc = json.load(handle)
    states = {c["name"]: c["state"] for c in doc["clusters"]}
    assert states == {"gpu-east": "not verified", "gpu-west": "not verified", "fake-lab": "not conformant"}
    assert doc["verdict"] == "0 of 3 cluster(s) conformant"
    east = [c for c in doc["clusters"] if c["name"] == "gpu-east"][0]
    assert "does not exist" in east["error"]
    lab = [c for c in doc["clusters"] if c["name"] == "fake-lab"][0]
    assert lab["regressions"] == ["dra_support", "HW-1.1"]  # the checklist id and the whitepaper item of the check
    with open(os.path.join(fleet["root"], "fleet.html")) as handle:
        page = handle.read()
    for name in ("gpu-east", "gpu-west", "fake-lab"):
        assert 'id="cluster-%s"' % name in page
    for href in [c["html_path"] for c in doc["clusters"]]:
        assert os.path.isfile(href)
        assert 'href="%s"' % os.path.relpath(href, fleet["root"]) in page
    with open(os.path.join(fleet["root"], "fleet.md")) as handle:
        assert "| gpu-east | not verified |" in handle.read()
    assert "fleet: 0 of 3 cluster(s) conformant" in fleet["out"]


def test_one_cluster_layout_is_unchanged(tmp_path):
    """The README's inventory: localhost verifies the cluster of k8s_ai_kubeconfig; no per-host folder, no fleet."""
    report_dir = tmp_path / "reports"
    inventory = {"all": {"hosts": {"localhost": {"ansible_connection": "local"}},
                         "children": {"accelerator_nodes": {"hosts": {}}},
                         "vars": dict(FAST, k8s_ai_kubeconfig=str(tmp_path / "nope.kubeconfig"),
                                      verify_report_dir=str(report_dir))}}
    rc, out = ansible_playbook(tmp_path, inventory)
    assert rc != 0 and "Traceback" not in out, out[-3000:]
    assert "verify_kubeconfig" in out and "does not exist" in out
    assert os.listdir(report_dir) == ["v1.36"]
    path, data = results_under(str(report_dir))
    assert path == str(report_dir / "v1.36" / "fleet-lab")
    assert "cluster" not in data["run"]
    assert not (report_dir / "fleet.html").exists()
