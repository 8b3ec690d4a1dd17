"""drift.py: regressions/improvements per requirement against a previous report, and where they are shown."""

import json
import os

import pytest
from unit_collection import METADATA, result, run_module, write_report

from ansible_collections.k8s_ai.conformance.plugins.module_utils import drift

BASE = {"dra_support": "Implemented", "gang_scheduling": "Implemented", "ai_inference": "Partially Implemented",
        "cluster_autoscaling": "N/A", "pod_autoscaling": "Not Implemented", "csi_storage": "Implemented"}


def doc(statuses, version="1.35", whitepaper=None, generated="2026-11-20T10:00:00Z"):
    rows = [{"id": rid, "check": rid, "level": "SHOULD" if rid == "dra_support" else "MUST", "section": "s",
             "status": st[0] if isinstance(st, tuple) else st, "verified": st[1] if isinstance(st, tuple) else True}
            for rid, st in statuses.items()]
    wp = [{"id": wid, "check": "x", "level": "MUST", "domain": "d", "status": st, "verified": True}
          for wid, st in (whitepaper or {}).items()]
    return {"tool": "k8s_ai.conformance", "generated": generated, "checklist": {"version": version},
            "requirements": rows, "whitepaper": wp, "run": {"run_id": "r0"}, "verdict": "v"}


# ------------------------------------------------------------------------------------------ classify
@pytest.mark.parametrize("old,new,kind", [
    ("Implemented", "Partially Implemented", "regression"),
    ("Implemented", "Not Implemented", "regression"),
    ("Partially Implemented", "Not Implemented", "regression"),
    ("Not Implemented", "Implemented", "improvement"),
    ("Partially Implemented", "Implemented", "improvement"),
    ("Implemented", "N/A", "change"),
    ("N/A", "Not Implemented", "change"),
    ("Implemented", "Implemented", None),
])
def test_classify(old, new, kind):
    assert drift.classify(old, True, new, True) == kind


def test_classify_verified_flip_is_a_change():
    assert drift.classify("Not Implemented", True, "Not Implemented", False) == "change"
    assert drift.classify("Not Implemented", False, "Not Implemented", False) is None


def test_compare_lists_each_kind():
    old = doc({"a": "Implemented", "b": "Not Implemented", "c": "Implemented", "d": "Implemented",
               "gone": "Implemented"}, whitepaper={"HW-1.1": "Implemented"})
    new = doc({"a": "Not Implemented", "b": "Implemented", "c": ("Implemented", True), "d": "N/A",
               "new": "Implemented"}, version="1.36", whitepaper={"HW-1.1": "Partially Implemented"},
              generated="2026-11-21T10:00:00Z")
    out = drift.compare(old, new, "/prev/results.json")
    assert out["status"] == "compared"
    assert [(e["id"], e["list"], e["from"], e["to"]) for e in out["regressions"]] == [
        ("a", "checklist", "Implemented", "Not Implemented"),
        ("HW-1.1", "whitepaper", "Implemented", "Partially Implemented")]
    assert [e["id"] for e in out["improvements"]] == ["b"]
    assert [e["id"] for e in out["changes"]] == ["d"]
    assert [e["id"] for e in out["added"]] == ["new"] and [e["id"] for e in out["removed"]] == ["gone"]
    assert out["unchanged"] == 1
    assert out["must_regressions"] == ["a"]
    assert out["checklist_changed"] is True
    assert out["baseline"] == {"path": "/prev/results.json", "generated": "2026-11-20T10:00:00Z",
                               "checklist_version": "1.35", "run_id": "r0", "cluster": None, "platform": None,
                               "verdict": "v"}
    assert out["summary"].startswith("since 2026-11-20T10:00:00Z: 2 regressions (MUST: a), 1 improvement")
    assert "previous report used checklist v1.35" in out["summary"]
    text = "\n".join(drift.lines(out))
    assert "REGRESSION a [MUST] (checklist): Implemented -> Not Implemented" in text
    assert "improvement b [MUST] (checklist): Not Implemented -> Implemented" in text


def test_no_whitepaper_in_this_run_is_not_a_removal():
    out = drift.compare(doc({"a": "Implemented"}, whitepaper={"HW-1.1": "Implemented"}), doc({"a": "Implemented"}))
    assert out["removed"] == [] and out["unchanged"] == 1
    assert out["summary"].endswith("0 regressions, 0 improvements")
    assert not drift.has_regression(out)


# ------------------------------------------------------------------------------------------ finding files
def test_load_report_from_file_folder_and_root(tmp_path):
    path = write_report(tmp_path / "r", BASE)
    json_file = os.path.join(path, drift.REPORT_JSON_NAMES[0])
    for given in (json_file, path, str(tmp_path / "r")):
        found, data = drift.load_report(given)
        assert found == json_file and data["platform"] == "lab"


def test_load_report_under_a_fleet_root(tmp_path):
    path = write_report(tmp_path / "fleet" / "cluster-a", BASE)
    found, _data = drift.load_report(str(tmp_path / "fleet"), cluster="cluster-a")
    assert found.startswith(path)


def test_newest_report_under_a_root_is_the_baseline(tmp_path):
    old = write_report(tmp_path / "r", BASE, version="1.34")
    new = write_report(tmp_path / "r", BASE, version="1.35")
    os.utime(os.path.join(old, drift.REPORT_JSON_NAMES[0]), (1, 1))
    assert drift.find_report_json(str(tmp_path / "r")).startswith(new)


def test_a_json_of_another_format_is_not_taken_for_the_report(tmp_path):
    """results.json may become go test -json (the upstream validator's format): the report JSON is found by content."""
    folder = tmp_path / "v1.35" / "lab"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text('{"Action":"pass","Test":"TestX"}\n{"Action":"pass"}\n')
    (folder / "report.json").write_text(json.dumps(doc({"a": "Implemented"})))
    found, data = drift.load_report(str(folder))
    assert found.endswith("report.json") and data["requirements"][0]["id"] == "a"


@pytest.mark.parametrize("content,needle", [
    ("{not json", "not valid JSON"),
    ('{"tool": "something else", "requirements": []}', "not a k8s_ai.conformance report"),
])
def test_bad_previous_file_names_the_path(tmp_path, content, needle):
    bad = tmp_path / "prev.json"
    bad.write_text(content)
    with pytest.raises(drift.DriftError) as err:
        drift.load_report(str(bad))
    assert needle in str(err.value) and str(bad) in str(err.value)


def test_missing_and_empty_previous_are_no_report_yet(tmp_path):
    with pytest.raises(drift.NoReport, match="does not exist"):
        drift.load_report(str(tmp_path / "nope"))
    with pytest.raises(drift.NoReport, match="holds no k8s_ai.conformance report"):
        drift.load_report(str(tmp_path))


# ------------------------------------------------------------------------------------------ rendering
def test_html_section_escapes_and_links():
    out = drift.compare(doc({"a<b>": "Implemented"}), doc({"a<b>": "Not Implemented"}))
    section = drift.html_section(out)
    assert 'id="drift"' in section and "a&lt;b&gt;" in section
    assert 'class="pill no">regression' in section
    assert "a<b>" not in section


def test_html_section_without_baseline():
    section = drift.html_section(drift.not_compared("no baseline", "/x does not exist", "/x"))
    assert "drift not computed: /x does not exist" in section


# ------------------------------------------------------------------------------------------ the module
def write_args(tmp_path, statuses, previous=None, **extra):
    args = {"mode": "write", "checklist_version": "1.35", "platform": "lab", "metadata": METADATA,
            "results": [result(c, s) for c, s in statuses.items()], "report_dir": str(tmp_path / "r")}
    if previous is not None:
        args["previous_report"] = previous
    args.update(extra)
    return args


def test_module_writes_drift_into_json_and_html(tmp_path):
    first = run_module("conformance_report", write_args(tmp_path, BASE), tmp_path)
    assert first["drift_lines"] == [] and first["regressions"] == [] and "drift" not in first
    worse = dict(BASE, gang_scheduling="Not Implemented", pod_autoscaling="Implemented")
    # the baseline is the folder this run overwrites: it is read before the new report is written
    out = run_module("conformance_report", write_args(tmp_path, worse, previous=str(tmp_path / "r")), tmp_path)
    assert out["regressions"] == ["gang_scheduling", "WL-2.3"], out["drift"]
    assert out["drift"]["must_regressions"] == ["gang_scheduling"]
    assert [e["id"] for e in out["drift"]["improvements"]] == ["pod_autoscaling"]
    assert out["drift_lines"][0].startswith("drift since ")
    _found, data = drift.load_report(out["report_path"])
    assert data["drift"]["regressions"][0]["id"] == "gang_scheduling"
    with open(os.path.join(out["report_path"], "report.html")) as handle:
        page = handle.read()
    assert 'id="drift"' in page and "Drift since the previous report" in page
    assert page.index('id="drift"') < page.index("Details per check")


def test_module_without_baseline_warns_and_writes(tmp_path):
    out = run_module("conformance_report", write_args(tmp_path, BASE, previous=str(tmp_path / "none")), tmp_path)
    assert not out.get("failed") and out["drift"]["status"] == "no baseline"
    _found, data = drift.load_report(out["report_path"])
    assert any("previous_report" in w and "does not exist" in w for w in data["warnings"])


def test_plan_names_a_bad_previous_report(tmp_path):
    bad = tmp_path / "prev.json"
    bad.write_text("[]")
    out = run_module("conformance_report", {"mode": "plan", "connect": False, "checklist_version": "1.35",
                                            "previous_report": str(bad), "report_dir": str(tmp_path / "r")}, tmp_path)
    assert [e["input"] for e in out["errors"]] == ["previous_report"], out["errors"]
    (tmp_path / "empty").mkdir()
    for first_run in (tmp_path / "nope", tmp_path / "empty"):
        missing = run_module("conformance_report", {"mode": "plan", "connect": False, "checklist_version": "1.35",
                                                    "previous_report": str(first_run),
                                                    "report_dir": str(tmp_path / "r")}, tmp_path)
        assert missing["errors"] == [] and any("first run" in w for w in missing["warnings_found"])


def test_cluster_name_is_kept_in_the_run(tmp_path):
    out = run_module("conformance_report", write_args(tmp_path, BASE, cluster="gpu-east"), tmp_path)
    assert drift.load_report(out["report_path"])[1]["run"]["cluster"] == "gpu-east"
