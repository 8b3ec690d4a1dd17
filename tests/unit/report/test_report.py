"""Report writers: layout, PRODUCT.yaml (valid, same structure as the official template), junit, html, json."""

import json
import os
import re
import xml.etree.ElementTree as ET

import pytest
import yaml
from conftest import GOOD_METADATA, make_result

from ansible_collections.k8s_ai.conformance.plugins.module_utils import catalog, report, validate

SECRET_JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def read(path):
    with open(path) as handle:
        return handle.read()


def all_implemented(version):
    return [make_result(c) for c in catalog.checks_for(version)]


def write(tmp_path, version="1.35", results=None, **kwargs):
    kwargs.setdefault("metadata", dict(GOOD_METADATA, k8sConformanceUrl=GOOD_METADATA["k8sConformanceUrl"]
                                       .replace("v1.35", "v%s" % version)))
    rep = report.build_report(version, kwargs.pop("platform", "lab"),
                              all_implemented(version) if results is None else results, **kwargs)
    return rep, rep.write(str(tmp_path))


def load_yaml(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize("version", sorted(catalog.OFFICIAL))
def test_layout_and_valid_product(tmp_path, version):
    _rep, out = write(tmp_path, version)
    assert out["path"] == os.path.join(str(tmp_path), "v%s" % version, "lab")
    for name in ("PRODUCT.yaml", "junit.xml", "report.json", "report.html", "whitepaper.md"):
        assert os.path.isfile(os.path.join(out["path"], name)), name
    for name in ("results.json", "e2e.log"):  # validate.go would parse these names as go test output
        assert not os.path.exists(os.path.join(out["path"], name)), name
    for check in catalog.checks_for(version):
        assert os.path.isfile(os.path.join(out["path"], "evidence", "%s.md" % check))
    assert out["validation"]["valid"], out["validation"]["errors"]
    again = validate.validate_file(os.path.join(out["path"], "PRODUCT.yaml"))
    assert again["valid"] and again["warnings"] == [], again["warnings"]
    assert out["verdict"].startswith("conformant")


def test_product_has_the_structure_of_the_official_template(tmp_path, shared_checklists):
    for version, template_path in shared_checklists.items():
        _rep, out = write(tmp_path / version, version)
        ours = load_yaml(os.path.join(out["path"], "PRODUCT.yaml"))
        official = load_yaml(template_path)
        assert list(ours) == list(official) == ["metadata", "spec"]
        assert list(ours["spec"]) == list(official["spec"]), version
        for section in official["spec"]:
            assert [r["id"] for r in ours["spec"][section]] == [r["id"] for r in official["spec"][section]]
            assert [r["level"] for r in ours["spec"][section]] == [r["level"] for r in official["spec"][section]]
            for req in ours["spec"][section]:
                assert set(req) == {"id", "description", "level", "status", "evidence", "notes"}
        assert set(official["metadata"]) <= set(ours["metadata"])
        assert ours["metadata"]["kubernetesVersion"] == official["metadata"]["kubernetesVersion"]


def test_descriptions_are_our_own_words(tmp_path, shared_checklists):
    official = load_yaml(shared_checklists["1.35"])
    texts = {r["id"]: r["description"] for reqs in official["spec"].values() for r in reqs}
    for rid, text in texts.items():
        assert catalog.DESCRIPTIONS[rid] != text


def test_merge_into_official_template_keeps_its_text(tmp_path, shared_checklists):
    _rep, out = write(tmp_path, "1.35", template_path=shared_checklists["1.35"])
    ours = load_yaml(os.path.join(out["path"], "PRODUCT.yaml"))
    official = load_yaml(shared_checklists["1.35"])
    for section, reqs in official["spec"].items():
        for mine, theirs in zip(ours["spec"][section], reqs):
            assert mine["description"] == theirs["description"]
            assert mine["status"] == "Implemented"
            assert mine["evidence"] == ["evidence/%s.md" % mine["id"],
                                        "file://junit.xml#%s" % catalog.junit_test_name(mine["id"])]
    assert ours["metadata"]["vendorName"] == GOOD_METADATA["vendorName"]
    assert out["validation"]["valid"], out["validation"]["errors"]
    data = json.loads(read(os.path.join(out["path"], "report.json")))
    assert data["checklist"]["descriptions"] == "template"


def test_template_of_another_version_is_refused(shared_checklists):
    with pytest.raises(ValueError, match="is for v1.34 but the checklist in use is v1.35"):
        report.load_template(shared_checklists["1.34"], "1.35")


def test_template_not_yaml_or_not_a_checklist(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("metadata: [\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        report.load_template(str(bad), "1.35")
    bad.write_text("just: text\n")
    with pytest.raises(ValueError, match="not a checklist"):
        report.load_template(str(bad), "1.35")
    with pytest.raises(ValueError, match="does not exist"):
        report.load_template(str(tmp_path / "nope.yaml"), "1.35")


def test_missing_checks_are_not_verified_never_passed(tmp_path):
    results = [make_result("dra_support")]
    rep, out = write(tmp_path, results=results, missing={"gang_scheduling": "check module not available"})
    rows = {r["id"]: r for r in rep.official_rows()}
    assert rows["dra_support"]["status"] == "Implemented"
    assert rows["gang_scheduling"]["status"] == "Not Implemented"
    assert not rows["gang_scheduling"]["verified"]
    assert "check module not available" in rows["gang_scheduling"]["notes"]
    assert "gang_scheduling" in out["must_failures"]
    assert not out["validation"]["valid"]


def test_input_error_marks_everything_not_verified(tmp_path):
    rep, out = write(tmp_path, results=[], errors=["verify_kubeconfig: file /nope does not exist"])
    assert all(not r["verified"] for r in rep.official_rows())
    assert "the run stopped before this check: verify_kubeconfig" in rep.official_rows()[0]["notes"]
    assert out["verdict"].startswith("not verified")
    html = read(os.path.join(out["path"], "report.html"))
    assert "verify_kubeconfig: file /nope does not exist" in html


def test_junit_failure_error_skipped(tmp_path):
    results = all_implemented("1.35")
    by = {r["check"]: r for r in results}
    by["gang_scheduling"].update(status="Not Implemented", summary="partial admission seen")
    by["cluster_autoscaling"].update(status="N/A", notes="bare metal, no autoscaler")
    by["pod_autoscaling"].update(status="Not Implemented", verified=False, summary="not verified: timeout")
    by["gpu_sharing"].update(status="Not Implemented")
    by["virtualized_accelerator"].update(status="Not Implemented", verified=False)
    _rep, out = write(tmp_path, results=list(by.values()))
    tree = ET.parse(os.path.join(out["path"], "junit.xml"))
    suite = tree.getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert len(cases) == len(catalog.checklist("1.35"))
    assert cases["TestGangScheduling"].find("failure") is not None
    assert cases["TestAcceleratorClusterAutoscaling"].find("skipped") is not None
    assert cases["TestPodAutoscaling"].find("error") is not None
    for name in ("TestGpuSharing", "TestVirtualizedAccelerator"):  # SHOULDs: never a failing testcase
        assert cases[name].find("failure") is None and cases[name].find("error") is None
        assert cases[name].find("skipped") is not None
    assert list(cases["TestDraSupport"]) == [cases["TestDraSupport"].find("system-out")]
    assert suite.get("failures") == "1" and suite.get("errors") == "1" and suite.get("skipped") == "3"
    assert suite.get("tests") == str(len(cases))


def test_junit_testcases_are_named_as_validate_go_maps_them(tmp_path):
    _rep, out = write(tmp_path, "1.37")
    names = [c.get("name") for c in ET.parse(os.path.join(out["path"], "junit.xml")).getroot().iter("testcase")]
    for rid, test in (("secure_accelerator_access", "TestSecureAcceleratorAccess"),
                      ("gang_scheduling", "TestGangScheduling"),
                      ("cluster_autoscaling", "TestAcceleratorClusterAutoscaling"),
                      ("ai_inference", "TestAiInference"), ("workload_sandboxing", "TestWorkloadSandboxing")):
        assert catalog.junit_test_name(rid) == test and test in names
    assert len(set(names)) == len(names) == len(catalog.checklist("1.37"))


@pytest.mark.parametrize("version", sorted(catalog.OFFICIAL))
def test_artifacts_pass_validate_go_artifact_rules(tmp_path, version):
    """Every Implemented requirement links junit.xml#<its test>, which validate.go finds passing."""
    _rep, out = write(tmp_path, version)
    product = load_yaml(os.path.join(out["path"], "PRODUCT.yaml"))
    with open(os.path.join(out["path"], "junit.xml"), "rb") as handle:
        junit = validate.parse_junit(handle.read())
    assert junit.failures == []
    for reqs in product["spec"].values():
        for entry in reqs:
            links = [e for e in entry["evidence"] if "junit.xml" in e]
            assert links == ["file://junit.xml#%s" % catalog.junit_test_name(entry["id"])]
            assert junit.outcome_for(links[0].split("#")[1]) == "pass"
    assert out["validation"]["valid"] and not any("recommended" in w for w in out["validation"]["warnings"])


def test_not_implemented_never_links_a_passing_test(tmp_path):
    results = all_implemented("1.37")
    for r in results:
        if r["check"] in ("gang_scheduling", "gpu_sharing"):
            r.update(status="Not Implemented")
        if r["check"] == "workload_sandboxing":
            r.update(status="Partially Implemented", verified=False)
    _rep, out = write(tmp_path, "1.37", results=results)
    product = load_yaml(os.path.join(out["path"], "PRODUCT.yaml"))
    rows = {e["id"]: e for reqs in product["spec"].values() for e in reqs}
    for rid in ("gang_scheduling", "gpu_sharing", "workload_sandboxing"):
        assert rows[rid]["evidence"] == ["evidence/%s.md" % rid]
    errors = out["validation"]["errors"]
    # only the MUST: the SHOULDs that are not Implemented leave the submission valid
    assert "Requirement 'gang_scheduling' is MUST level but status is 'Not Implemented'. It must be 'Implemented'." \
        in errors
    assert "Test artifact file://junit.xml contains failing tests: TestGangScheduling" in errors
    assert len(errors) == 2, errors


def test_should_not_implemented_keeps_the_submission_valid(tmp_path):
    results = all_implemented("1.36")
    for r in results:
        if r["check"] in ("gpu_sharing", "disaggregated_inference"):
            r.update(status="Not Implemented", verified=r["check"] == "gpu_sharing")
    _rep, out = write(tmp_path, "1.36", results=results)
    assert out["validation"]["valid"], out["validation"]["errors"]


def test_stale_results_json_of_an_older_run_is_removed(tmp_path):
    folder = tmp_path / "v1.35" / "lab"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"tool": report.TOOL, "requirements": []}))
    write(tmp_path)
    assert not (folder / "results.json").exists()
    (folder / "results.json").write_text('{"Action": "pass", "Test": "TestX"}\n')  # not ours: kept
    write(tmp_path)
    assert (folder / "results.json").exists()


def test_must_na_is_reported_and_warned(tmp_path):
    results = all_implemented("1.35")
    for r in results:
        if r["check"] == "cluster_autoscaling":
            r.update(status="N/A", notes="no cluster autoscaler on bare metal")
    _rep, out = write(tmp_path, results=results)
    assert out["must_na"] == ["cluster_autoscaling"] and out["must_failures"] == []
    assert not out["validation"]["valid"] and out["validation"]["na_rule"] == "upstream"
    assert "Requirement 'cluster_autoscaling' is MUST level but status is 'N/A'. It must be 'Implemented'." \
        in out["validation"]["errors"]
    assert "validate.go on main today rejects" in out["verdict"]
    page = read(os.path.join(out["path"], "report.html"))
    assert "Rules applied: " in page and "a MUST must be" in page


def test_must_na_under_the_pending_rule(tmp_path):
    results = all_implemented("1.37")
    for r in results:
        if r["check"] == "cluster_autoscaling":
            r.update(status="N/A", notes="no cluster autoscaler on bare metal")
    _rep, out = write(tmp_path, "1.37", results=results, na_rule="pending")
    assert out["validation"]["valid"], out["validation"]["errors"]
    assert out["validation"]["na_rule"] == "pending" and "PR #146" in out["validation"]["rule"]
    assert "PR #146" in out["verdict"]
    data = json.loads(read(os.path.join(out["path"], "report.json")))
    assert data["validation"]["na_rule"] == "pending"


def test_na_without_notes_gets_a_reason(tmp_path):
    results = [make_result("gpu_sharing", "N/A", summary="no sharing-capable accelerator")]
    rep, _out = write(tmp_path, results=results)
    row = [r for r in rep.official_rows() if r["id"] == "gpu_sharing"][0]
    assert row["notes"].strip()


def test_secrets_never_written(tmp_path):
    result = make_result("dra_support")
    result["evidence"].append({
        "title": "secret things", "action": "GET /api/v1/secrets",
        "request": {"headers": {"Authorization": "Bearer " + SECRET_JWT}, "token": "s3cr3t-t0ken-value"},
        "response": {"kind": "Secret", "data": {"password": "aHVudGVyMg=="},
                     "text": "client-key-data: -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
                     "log": "curl -H 'Authorization: Bearer abcdefghijklmnop'"},
    })
    _rep, out = write(tmp_path, results=[result])
    for root, _dirs, files in os.walk(out["path"]):
        for name in files:
            text = read(os.path.join(root, name))
            for secret in (SECRET_JWT, "s3cr3t-t0ken-value", "aHVudGVyMg==", "MIIE", "abcdefghijklmnop"):
                assert secret not in text, (name, secret)


def test_html_is_self_contained(tmp_path):
    _rep, out = write(tmp_path)
    page = read(os.path.join(out["path"], "report.html"))
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<(script|link|img)\b[^>]*(src|href)=\"(https?:)?//", page)
    assert "url(http" not in page and "@import" not in page
    assert 'id="check-gang_scheduling"' in page and "evidence/gang_scheduling.md" in page


def test_html_escapes_results(tmp_path):
    result = make_result("dra_support", summary="<script>alert(1)</script>")
    _rep, out = write(tmp_path, results=[result])
    page = read(os.path.join(out["path"], "report.html"))
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_whitepaper_table(tmp_path):
    results = all_implemented("1.35")
    for r in results:
        if r["check"] == "csi_storage":
            r.update(status="Partially Implemented")
        if r["check"] == "otel_tracing":
            r.update(status="Not Implemented")
    _rep, out = write(tmp_path, results=results)
    text = read(os.path.join(out["path"], "whitepaper.md"))
    rows = [line for line in text.splitlines() if re.match(r"^\| [^|]*\| (HW|WL|NET|STO|SEC|OBS)-", line)]
    assert len(rows) == 18
    levels = {line.split("|")[2].strip(): line.split("|")[4].strip() for line in rows}
    assert levels["HW-1.1"] == "Full" and levels["STO-4.1"] == "Partial" and levels["OBS-6.2"] == "No"
    assert "Support Level (No/Partial/Full)" in text


def test_results_json_has_everything(tmp_path):
    _rep, out = write(tmp_path, server_version="v1.35.4", run={"run_id": "r1"})
    data = json.loads(read(os.path.join(out["path"], "report.json")))
    assert data["checklist"]["version"] == "1.35" and data["server_version"] == "v1.35.4"
    assert len(data["requirements"]) == len(catalog.checklist("1.35"))
    assert len(data["whitepaper"]) == 18
    assert {c["check"] for c in data["checks"]} >= set(catalog.checks_for("1.35"))
    assert data["validation"]["valid"] and data["run"] == {"run_id": "r1"}
    assert "report.json" in data["files"] and "results.json" not in data["files"]


def test_evidence_file_is_readable(tmp_path):
    _rep, out = write(tmp_path)
    text = read(os.path.join(out["path"], "evidence", "gang_scheduling.md"))
    assert text.startswith("# Evidence: gang_scheduling")
    assert "| Status | **Implemented** |" in text and "WL-2.3" in text and "GET /api/v1/nodes" in text


def test_invalid_result_shape_is_not_trusted(tmp_path):
    rep, _out = write(tmp_path, results=[{"check": "dra_support", "status": "Great", "verified": True}])
    row = [r for r in rep.official_rows() if r["id"] == "dra_support"][0]
    assert row["status"] == "Not Implemented" and not row["verified"]


@pytest.mark.parametrize("name, expected", [("lab", "lab"), ("My Platform", "My-Platform"), ("../etc", "etc"),
                                            ("", "my-platform")])
def test_platform_names(name, expected):
    assert report.sanitize_platform(name)[0] == expected


def test_unknown_version_refused():
    with pytest.raises(catalog.CatalogError, match="supported checklist versions"):
        report.Report("1.20", "lab", [])
