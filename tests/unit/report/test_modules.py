"""conformance_report (plan offline, write) and conformance_validate, run as Ansible runs a module."""

import json
import os
import subprocess
import sys

from conftest import COLLECTIONS_BASE, GOOD_METADATA, ROOT, make_result


def run_module(name, args, tmp_path):
    args_file = tmp_path / ("%s-args.json" % name)
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "plugins", "modules", "%s.py" % name), str(args_file)],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=COLLECTIONS_BASE),
                          cwd=str(tmp_path), timeout=120, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def test_plan_offline_pinned(tmp_path):
    out = run_module("conformance_report", {"mode": "plan", "connect": False, "checklist_version": "v1.37",
                                            "metadata": GOOD_METADATA, "report_dir": str(tmp_path / "r")}, tmp_path)
    assert out["errors"] == [] and not out.get("failed")
    plan = out["plan"]
    assert plan["version"] == "1.37" and plan["version_reason"] == "pinned"
    assert plan["platform"] == "lab-platform"
    assert plan["report_path"] == str(tmp_path / "r" / "v1.37" / "lab-platform")
    assert "workload_sandboxing" in plan["checks"]
    assert "SEC-5.3 [SHOULD]" in plan["labels"]["workload_sandboxing"]
    assert plan["levels"]["gang_scheduling"] == "MUST"


def test_plan_reports_every_bad_input_by_name(tmp_path):
    out = run_module("conformance_report", {
        "mode": "plan", "connect": False, "checklist_version": "1.99", "checks": ["dra_support", "nope"],
        "metadata": {"platformName": ["x"], "colour": "blue"}, "platform": "a/b",
        "template": str(tmp_path / "missing.yaml"), "report_dir": str(tmp_path / "r")}, tmp_path)
    inputs = {e["input"] for e in out["errors"]}
    assert inputs == {"checklist_version", "checks", "metadata", "platform", "checklist_template"}, out["errors"]
    assert out["plan"]["version_reason"] == "fallback"
    assert any("colour" in w for w in out["warnings_found"])


def test_plan_kubeconfig_missing(tmp_path):
    out = run_module("conformance_report", {"mode": "plan", "kubeconfig": str(tmp_path / "kc"),
                                            "report_dir": str(tmp_path / "r")}, tmp_path)
    assert out["errors"][0]["input"] == "kubeconfig" and "does not exist" in out["errors"][0]["msg"]


def test_write_and_validate(tmp_path):
    meta = dict(GOOD_METADATA)
    results = [make_result(c) for c in ("dra_support", "gang_scheduling")]
    out = run_module("conformance_report", {"mode": "write", "checklist_version": "1.35", "platform": "lab",
                                            "metadata": meta, "results": results, "report_dir": str(tmp_path / "r"),
                                            "missing": {"otel_tracing": "check module not available"}}, tmp_path)
    assert out["changed"] and out["report_path"] == str(tmp_path / "r" / "v1.35" / "lab")
    assert "gang_scheduling" not in out["must_failures"] and "ai_inference" in out["must_failures"]
    assert any(line.startswith("dra_support") and "Implemented" in line for line in out["lines"])
    product = os.path.join(out["report_path"], "PRODUCT.yaml")
    val = run_module("conformance_validate", {"path": [product], "fail_on_error": False}, tmp_path)
    assert val["valid"] is False and val["results"][0]["errors"]
    failed = run_module("conformance_validate", {"path": [product]}, tmp_path)
    assert failed["failed"] and "ai_inference" in failed["msg"]


def test_write_unknown_version_falls_back_and_says_so(tmp_path):
    out = run_module("conformance_report", {"mode": "write", "checklist_version": "1.20", "platform": "lab",
                                            "report_dir": str(tmp_path / "r")}, tmp_path)
    assert out["report_path"].endswith(os.path.join("v1.36", "lab"))
    with open(os.path.join(out["report_path"], "report.json")) as handle:
        assert any("1.20" in e for e in json.load(handle)["errors"])


def test_validate_module_lines_and_rules(tmp_path):
    out = run_module("conformance_report", {"mode": "write", "checklist_version": "1.37", "platform": "lab",
                                            "metadata": dict(GOOD_METADATA, k8sConformanceUrl=GOOD_METADATA[
                                                "k8sConformanceUrl"].replace("v1.35", "v1.37")),
                                            "results": [make_result("cluster_autoscaling", "N/A", notes="bare metal")],
                                            "report_dir": str(tmp_path / "r"), "na_rule": "pending"}, tmp_path)
    assert out["validation"]["na_rule"] == "pending"
    product = os.path.join(out["report_path"], "PRODUCT.yaml")
    val = run_module("conformance_validate", {"path": [product], "fail_on_error": False, "na_rule": "pending"},
                     tmp_path)
    assert val["results"][0]["na_rule"] == "pending" and "PR #146" in val["results"][0]["rule"]
    assert val["lines"][0].startswith(product + ": INVALID") and all("\n" not in line for line in val["lines"])
    assert not any("cluster_autoscaling' is MUST level but status is 'N/A'" in e for e in val["results"][0]["errors"])
    upstream = run_module("conformance_validate", {"path": [product], "fail_on_error": False}, tmp_path)
    assert any("cluster_autoscaling' is MUST level but status is 'N/A'" in e for e in upstream["results"][0]["errors"])


def test_validate_module_on_bad_input_gives_lines_not_tracebacks(tmp_path):
    inputs = {"empty": b"", "not-yaml": b"metadata: [\n", "list": b"- a\n", "scalar": b"42\n",
              "not-utf8": b"metadata:\n  vendorName: \xff\xfe\n", "types": b"metadata: {a: 1, a: 2}\nspec: x\n"}
    paths = []
    for name, data in inputs.items():
        folder = tmp_path / "v1.35" / name
        folder.mkdir(parents=True)
        (folder / "PRODUCT.yaml").write_bytes(data)
        paths.append(str(folder / "PRODUCT.yaml"))
    paths.append(str(tmp_path / "nowhere" / "PRODUCT.yaml"))
    out = run_module("conformance_validate", {"path": paths}, tmp_path)
    assert out["failed"] and not out["valid"] and len(out["results"]) == len(paths)
    for result in out["results"]:
        assert result["errors"], result
    assert all(line.split(": ")[0] in paths for line in out["lines"])
    assert "problem(s)" in out["msg"] and "\n" not in out["msg"]
