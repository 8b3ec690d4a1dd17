"""fleet.py and the conformance_fleet module: one summary over many cluster reports."""

import json
import os

from unit_collection import run_module, write_report

from ansible_collections.k8s_ai.conformance.plugins.module_utils import fleet

GOOD = {"dra_support": "Implemented", "ai_inference": "Implemented", "gang_scheduling": "Implemented",
        "cluster_autoscaling": "N/A", "pod_autoscaling": "Implemented", "accelerator_metrics": "Implemented",
        "ai_service_metrics": "Implemented", "secure_accelerator_access": "Implemented",
        "robust_controller": "Implemented"}


def test_states_and_worst_first(tmp_path):
    good = write_report(tmp_path / "good", GOOD, version="1.34")
    bad = write_report(tmp_path / "bad", dict(GOOD, gang_scheduling="Not Implemented"), version="1.34")
    doc = fleet.summary([{"name": "b-good", "report_path": good}, {"name": "a-bad", "report_path": bad},
                         {"name": "c-none", "error": "verify_kubeconfig: x does not exist"},
                         {"name": "d-garbage", "report_path": str(tmp_path)}])
    states = {c["name"]: c["state"] for c in doc["clusters"]}
    assert states == {"b-good": "conformant", "a-bad": "not conformant", "c-none": "no report",
                      "d-garbage": "no report"}
    assert [c["name"] for c in doc["clusters"]] == ["a-bad", "b-good", "c-none", "d-garbage"]
    assert doc["state"] == "no report" and doc["verdict"] == "1 of 4 cluster(s) conformant"
    none = doc["clusters"][2]
    assert "x does not exist" in none["verdict"]
    assert "holds no k8s_ai.conformance report" in doc["clusters"][3]["verdict"]
    assert doc["clusters"][0]["must_failures"] == ["gang_scheduling"]
    assert "gang_scheduling" in doc["requirement_ids"]


def test_a_failed_run_with_a_clean_report_is_not_conformant(tmp_path):
    good = write_report(tmp_path / "good", GOOD, version="1.34")
    entry = fleet.cluster_entry("x", good, error="the play failed after the report")
    assert entry["state"] == "not verified"


def test_pages_escape_and_link(tmp_path):
    good = write_report(tmp_path / "fleet" / "<east>", GOOD, version="1.34")
    doc, paths = fleet.write(str(tmp_path / "fleet"), [{"name": "<east>", "report_path": good},
                                                       {"name": "west|1", "error": "boom <b>"}])
    assert [os.path.basename(p) for p in paths] == ["fleet.json", "fleet.md", "fleet.html"]
    page = (tmp_path / "fleet" / "fleet.html").read_text()
    assert "&lt;east&gt;" in page and "<east>" not in page and "boom &lt;b&gt;" in page
    assert 'href="&lt;east&gt;/v1.34/lab/report.html"' in page
    md = (tmp_path / "fleet" / "fleet.md").read_text()
    assert "west\\|1" in md and "- **west\\|1**: boom <b>" in md
    assert json.loads((tmp_path / "fleet" / "fleet.json").read_text())["counts"]["conformant"] == 1
    assert doc["clusters"][0]["requirements"]["gang_scheduling"] == {"status": "Implemented", "verified": True,
                                                                     "level": "MUST"}


def test_module_lists_expected_clusters_without_an_entry(tmp_path):
    good = write_report(tmp_path / "r" / "a", GOOD, version="1.34")
    out = run_module("conformance_fleet", {"dest": str(tmp_path / "r"), "expected": ["a", "b"],
                                           "clusters": [{"name": "a", "report_path": good}]}, tmp_path)
    assert out["changed"] and out["state"] == "no report", out
    assert out["counts"]["conformant"] == 1 and out["counts"]["no report"] == 1
    assert any(line.startswith("b ") and "failed before" in line for line in out["lines"])
    assert all(os.path.isfile(p) for p in out["paths"])


def test_module_names_an_unwritable_destination(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = run_module("conformance_fleet", {"dest": str(blocker / "sub"), "clusters": [{"name": "a"}]}, tmp_path)
    assert out["failed"] and str(blocker / "sub") in out["msg"]
