"""The offline PRODUCT.yaml validator: one failing case per rule of the upstream validator."""

import copy
import os
import subprocess
import sys

import pytest
import yaml
from conftest import COLLECTIONS_BASE, GOOD_METADATA

from ansible_collections.k8s_ai.conformance.plugins.module_utils import catalog, validate


def good_doc(version="1.35"):
    spec = {}
    for item in catalog.checklist(version):
        spec.setdefault(item["section"], []).append({
            "id": item["id"], "description": "d", "level": item["level"], "status": "Implemented",
            "evidence": ["evidence/%s.md" % item["check"]], "notes": ""})
    return {"metadata": dict(GOOD_METADATA, kubernetesVersion="v%s" % version), "spec": spec}


def write(tmp_path, doc, version="1.35", evidence=True, raw=None):
    target = tmp_path / ("v%s" % version) / "lab"
    (target / "evidence").mkdir(parents=True, exist_ok=True)
    if evidence:
        for check in catalog.CHECKS:
            (target / "evidence" / ("%s.md" % check)).write_text("# evidence\n")
    path = target / "PRODUCT.yaml"
    path.write_text(raw if raw is not None else yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def req(doc, rid):
    for reqs in doc["spec"].values():
        for item in reqs:
            if item["id"] == rid:
                return item
    raise KeyError(rid)


def errors_of(tmp_path, doc, **kwargs):
    result = validate.validate_file(write(tmp_path, doc, **kwargs))
    return result["errors"], result


@pytest.mark.parametrize("version", sorted(catalog.OFFICIAL))
def test_good_document_is_valid(tmp_path, version):
    errors, result = errors_of(tmp_path, good_doc(version), version=version)
    assert errors == [] and result["valid"] and result["version"] == version
    assert any("not checked offline" in i for i in result["info"])


def test_path_without_version(tmp_path):
    path = tmp_path / "PRODUCT.yaml"
    path.write_text(yaml.safe_dump(good_doc()))
    (tmp_path / "evidence").mkdir()
    for check in catalog.CHECKS:
        (tmp_path / "evidence" / ("%s.md" % check)).write_text("x\n")
    result = validate.validate_file(str(path))
    assert not result["valid"] and "Could not determine version from path" in result["errors"][0]
    assert validate.validate_file(str(path), version="1.35")["valid"]


def test_unknown_version_directory(tmp_path):
    errors, _unused = errors_of(tmp_path, good_doc(), version="1.20")
    assert "no checklist for version 1.20" in errors[0]


def test_missing_metadata(tmp_path):
    doc = good_doc()
    del doc["metadata"]
    errors, _unused = errors_of(tmp_path, doc)
    assert "Missing 'metadata' section" in errors


@pytest.mark.parametrize("field", [f for f, required in catalog.METADATA_FIELDS if required])
def test_missing_required_metadata_field(tmp_path, field):
    doc = good_doc()
    del doc["metadata"][field]
    errors, _unused = errors_of(tmp_path, doc)
    assert "Missing metadata field: %s (or %s)" % (field, validate.snake_case(field)) in errors


def test_optional_repo_url_may_be_absent_or_empty(tmp_path):
    doc = good_doc()
    doc["metadata"]["repoUrl"] = ""
    assert errors_of(tmp_path, doc)[0] == []
    del doc["metadata"]["repoUrl"]
    assert errors_of(tmp_path, doc)[0] == []


def test_snake_case_metadata_is_accepted(tmp_path):
    doc = good_doc()
    doc["metadata"] = {validate.snake_case(k): v for k, v in doc["metadata"].items()}
    assert "k8s_conformance_url" in doc["metadata"]
    assert errors_of(tmp_path, doc)[0] == []


def test_metadata_not_a_string(tmp_path):
    doc = good_doc()
    doc["metadata"]["platformVersion"] = 1.0
    assert "Metadata field platformVersion is not a string" in errors_of(tmp_path, doc)[0]


def test_metadata_empty(tmp_path):
    doc = good_doc()
    doc["metadata"]["vendorName"] = ""
    assert "Metadata field vendorName is empty" in errors_of(tmp_path, doc)[0]


def test_metadata_placeholder(tmp_path):
    doc = good_doc()
    doc["metadata"]["vendorName"] = "[Vendor Name]"
    assert "Metadata field vendorName has placeholder value: [Vendor Name]" in errors_of(tmp_path, doc)[0]


@pytest.mark.parametrize("url", ["https://github.com/cncf/k8s-conformance/pull/3718",
                                 "http://github.com/cncf/k8s-conformance/tree/master/v1.35/lab",
                                 "https://github.com/cncf/k8s-conformance/tree/dev/v1.35/lab",
                                 "https://github.com/cncf/k8s-conformance/tree/master/v1.35/lab/extra"])
def test_k8s_conformance_url_pattern(tmp_path, url):
    doc = good_doc()
    doc["metadata"]["k8sConformanceUrl"] = url
    errors = errors_of(tmp_path, doc)[0]
    assert any(e.startswith("Invalid k8sConformanceUrl format") for e in errors)


def test_k8s_conformance_url_main_branch_and_slash(tmp_path):
    doc = good_doc()
    doc["metadata"]["k8sConformanceUrl"] = "https://github.com/cncf/k8s-conformance/tree/main/v1.35/lab/"
    assert errors_of(tmp_path, doc)[0] == []


def test_logo_must_be_svg_eps_or_ai(tmp_path):
    doc = good_doc()
    doc["metadata"]["productLogoUrl"] = "https://example.com/logo.png"
    assert any("productLogoUrl must link to an SVG" in e for e in errors_of(tmp_path, doc)[0])


def test_kubernetes_version_mismatch_is_a_warning(tmp_path):
    doc = good_doc()
    doc["metadata"]["kubernetesVersion"] = "v1.34"
    errors, result = errors_of(tmp_path, doc)
    assert errors == [] and any("differs" in w for w in result["warnings"])


def test_missing_spec(tmp_path):
    doc = good_doc()
    del doc["spec"]
    assert "Missing 'spec' section" in errors_of(tmp_path, doc)[0]


def test_missing_category(tmp_path):
    doc = good_doc()
    del doc["spec"]["operator"]
    assert "Missing spec category: operator" in errors_of(tmp_path, doc)[0]


def test_missing_requirement(tmp_path):
    doc = good_doc()
    doc["spec"]["schedulingOrchestration"] = [r for r in doc["spec"]["schedulingOrchestration"]
                                              if r["id"] != "pod_autoscaling"]
    assert "Missing requirement 'pod_autoscaling' in category 'schedulingOrchestration'" in errors_of(tmp_path, doc)[0]


def test_invalid_status(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing")["status"] = "Done"
    assert any(e.startswith("Invalid status 'Done' for 'gpu_sharing'") for e in errors_of(tmp_path, doc)[0])


@pytest.mark.parametrize("status", ["Not Implemented", "Partially Implemented", ""])
def test_must_must_be_implemented(tmp_path, status):
    doc = good_doc()
    req(doc, "gang_scheduling")["status"] = status
    errors = errors_of(tmp_path, doc)[0]
    message = "Requirement 'gang_scheduling' is MUST level but status is '%s'. It must be 'Implemented'." % status
    assert message in errors


def test_must_answered_na_is_a_warning_naming_the_upstream_validator(tmp_path):
    doc = good_doc()
    req(doc, "cluster_autoscaling").update(status="N/A", notes="bare metal: no cluster autoscaler")
    errors, result = errors_of(tmp_path, doc)
    assert errors == []
    assert any("cluster_autoscaling" in w and "upstream validator rejects" in w for w in result["warnings"])


def test_na_needs_notes(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing").update(status="N/A", notes="")
    assert "Notes required for 'gpu_sharing' when status is N/A" in errors_of(tmp_path, doc)[0]


def test_should_left_blank_is_accepted(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing").update(status="", evidence=[])
    errors, result = errors_of(tmp_path, doc)
    assert errors == [] and any("gpu_sharing" in i for i in result["info"])


def test_should_with_evidence_but_no_status_is_invalid(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing").update(status="")
    assert any(e.startswith("Invalid status '' for 'gpu_sharing'") for e in errors_of(tmp_path, doc)[0])


def test_local_evidence_file_must_exist(tmp_path):
    doc = good_doc()
    errors = errors_of(tmp_path, doc, evidence=False)[0]
    assert any(e.startswith("Invalid evidence file for 'dra_support': evidence/dra_support.md") for e in errors)


def test_evidence_urls_are_not_checked_offline(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing")["evidence"] = ["https://example.com/doc"]
    errors, result = errors_of(tmp_path, doc)
    assert errors == [] and any("evidence URL" in i for i in result["info"])


def test_evidence_must_be_a_list_of_strings(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing")["evidence"] = "evidence/gpu_sharing.md"
    assert "evidence of 'gpu_sharing' must be a list of strings" in errors_of(tmp_path, doc)[0]


def test_not_yaml(tmp_path):
    errors, _unused = errors_of(tmp_path, None, raw="metadata: [unclosed\n")
    assert errors[0].startswith("Error loading")


def test_missing_file(tmp_path):
    result = validate.validate_file(str(tmp_path / "v1.35" / "x" / "PRODUCT.yaml"))
    assert "does not exist" in result["errors"][0]


def test_official_template_is_rejected_for_placeholders(tmp_path, shared_checklists):
    with open(shared_checklists["1.35"]) as handle:
        raw = handle.read()
    errors, _unused = errors_of(tmp_path, None, raw=raw)
    assert any("placeholder" in e for e in errors)
    assert any("MUST level but status is ''" in e for e in errors)


def test_cli_exit_codes(tmp_path):
    good = write(tmp_path, good_doc())
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_BASE)
    module = "ansible_collections.k8s_ai.conformance.plugins.module_utils.validate"
    ok = subprocess.run([sys.executable, "-m", module, good], capture_output=True, text=True, env=env, check=False)
    assert ok.returncode == 0 and "valid" in ok.stdout
    bad_doc = copy.deepcopy(good_doc())
    bad_doc["metadata"]["vendorName"] = "[Vendor Name]"
    bad = write(tmp_path / "b", bad_doc)
    out = subprocess.run([sys.executable, "-m", module, bad], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 1 and "placeholder" in out.stdout
