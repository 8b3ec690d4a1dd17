"""The PRODUCT.yaml validator: validate.go's verdict and messages, rule by rule (cncf/k8s-ai-conformance
scripts/validate.go; function names in the test names' docstrings), and each disagreement of issue 11."""

import copy
import json
import os
import subprocess
import sys

import pytest
import yaml
from conftest import COLLECTIONS_BASE, GOOD_METADATA

from ansible_collections.k8s_ai.conformance.plugins.module_utils import catalog, validate

MODULE = "ansible_collections.k8s_ai.conformance.plugins.module_utils.validate"


def good_doc(version="1.35"):
    spec = {}
    for item in catalog.checklist(version):
        spec.setdefault(item["section"], []).append({
            "id": item["id"], "description": "d", "level": item["level"], "status": "Implemented",
            "evidence": ["evidence/%s.md" % item["check"]], "notes": ""})
    meta = dict(GOOD_METADATA, kubernetesVersion="v%s" % version,
                k8sConformanceUrl=GOOD_METADATA["k8sConformanceUrl"].replace("v1.35", "v%s" % version))
    return {"metadata": meta, "spec": spec}


def write(tmp_path, doc=None, version="1.35", evidence=True, raw=None, platform="lab"):
    target = tmp_path / ("v%s" % version) / platform
    (target / "evidence").mkdir(parents=True, exist_ok=True)
    if evidence:
        for check in catalog.CHECKS:
            (target / "evidence" / ("%s.md" % check)).write_text("# evidence\n")
    path = target / "PRODUCT.yaml"
    if isinstance(raw, bytes):
        path.write_bytes(raw)
    else:
        path.write_text(raw if raw is not None else yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def req(doc, rid):
    for reqs in doc["spec"].values():
        for item in reqs:
            if item["id"] == rid:
                return item
    raise KeyError(rid)


def check(tmp_path, doc=None, **kwargs):
    rule = {k: kwargs.pop(k) for k in ("na_rule", "online", "members", "url_checker") if k in kwargs}
    return validate.validate_file(write(tmp_path, doc, **kwargs), **rule)


def errors_of(tmp_path, doc=None, **kwargs):
    result = check(tmp_path, doc, **kwargs)
    return result["errors"], result


def raw_doc(version="1.35"):
    return yaml.safe_dump(good_doc(version), sort_keys=False)


def replace_once(text, old, new):
    assert old in text, old
    return text.replace(old, new, 1)


# ------------------------------------------------------------------------- version and schema
@pytest.mark.parametrize("version", sorted(catalog.OFFICIAL))
def test_good_document_is_valid(tmp_path, version):
    errors, result = errors_of(tmp_path, good_doc(version), version=version)
    assert errors == [] and result["valid"] and result["version"] == version
    assert result["na_rule"] == "upstream" and "validate.go" in result["rule"]
    assert result["not_checked"] and any(i.startswith("not checked offline") for i in result["info"])


def test_path_without_version(tmp_path):
    (tmp_path / "evidence").mkdir()
    for name in catalog.CHECKS:
        (tmp_path / "evidence" / ("%s.md" % name)).write_text("x\n")
    path = tmp_path / "PRODUCT.yaml"
    path.write_text(raw_doc())
    result = validate.validate_file(str(path))
    assert not result["valid"] and result["errors"][0].startswith("Could not determine version from path")
    pinned = validate.validate_file(str(path), version="1.35")
    assert pinned["valid"] and any("layout" in w for w in pinned["warnings"])


def test_version_comes_from_the_product_folder_not_an_ancestor(tmp_path, monkeypatch):
    """validateProduct reads vX.Y from the path as given (vX.Y/<product>/PRODUCT.yaml); an ancestor named
    v1.34 (of the file, or of the working directory) never wins over the product folder's v1.35."""
    work = tmp_path / "v1.34" / "checkout"
    path = write(work, good_doc("1.35"), version="1.35")
    assert validate.validate_file(path)["version"] == "1.35"
    monkeypatch.chdir(str(work))
    result = validate.validate_file(os.path.join("v1.35", "lab", "PRODUCT.yaml"))
    assert result["version"] == "1.35" and result["valid"], result["errors"]


def test_unknown_version_directory(tmp_path):
    errors, _unused = errors_of(tmp_path, good_doc(), version="1.20")
    assert errors[0].startswith("Schema not found for v1.20") and "no checklist for version 1.20" in errors[0]


# -------------------------------------------------------------------------------- loading (yaml.v3)
@pytest.mark.parametrize("raw, message", [
    (b"", "Missing 'metadata' section"),
    (b"# only a comment\n", "Missing 'metadata' section"),
    (b"---\n", "Missing 'spec' section"),
    (b"~\n", "Missing 'spec' section"),
])
def test_empty_documents_decode_to_nothing(tmp_path, raw, message):
    """loadYaml: yaml.v3 decodes nothing (no error) from an empty or null document."""
    errors, _unused = errors_of(tmp_path, raw=raw)
    assert errors == ["Missing 'metadata' section", "Missing 'spec' section"] and message in errors


@pytest.mark.parametrize("raw, expected", [
    (b"metadata: [unclosed\n", "Error loading product: yaml: line "),
    (b"- a\n- b\n", "Error loading product: yaml: unmarshal errors: line 1: cannot unmarshal !!seq into "
                    "main.ConformanceDoc"),
    (b"just text\n", "Error loading product: yaml: unmarshal errors: line 1: cannot unmarshal !!str `just text` "
                     "into main.ConformanceDoc"),
    (b"\xff\xfe\x00garbage\x81", "Error loading product: yaml:"),
    (b"metadata: \x81\x82\n", "Error loading product: yaml:"),
    (b"metadata: x\nspec: 5\n", "Error loading product: yaml: unmarshal errors: line 1: cannot unmarshal !!str `x` "
                                "into map[string]interface {}"),
])
def test_files_that_do_not_load(tmp_path, raw, expected):
    errors, result = errors_of(tmp_path, raw=raw)
    assert not result["valid"] and errors[0].startswith(expected), errors
    assert all("\n" not in e for e in errors)


def test_every_type_error_is_reported_one_line_each(tmp_path):
    raw = raw_doc() + "  extra:\n    - id: x\n      level: [MUST]\n"
    errors, _unused = errors_of(tmp_path, raw=raw)
    assert errors == ["Error loading product: yaml: unmarshal errors: line %d: cannot unmarshal !!seq into string"
                      % (raw.count("\n"))]


@pytest.mark.parametrize("mutation, fragment", [
    # an extra category holding a scalar
    (("spec:\n", "spec:\n  extra: hello\n"), "cannot unmarshal !!str `hello` into []main.Requirement"),
    # level given as a list
    (("  level: MUST\n", "  level: [MUST]\n"), "cannot unmarshal !!seq into string"),
    # string evidence under an id the checklist does not have
    (("spec:\n", "spec:\n  extra:\n  - id: not_a_requirement\n    evidence: some/file.md\n"),
     "cannot unmarshal !!str `some/fi...` into []string"),
    # id given as a list
    (("- id: dra_support\n", "- id: [dra_support]\n"), "cannot unmarshal !!seq into string"),
    # a requirement that is a string
    (("  accelerators:\n", "  accelerators:\n  - dra_support\n"), "cannot unmarshal !!str `dra_sup...` into "
                                                                  "main.Requirement"),
    # metadata holding a list, spec a mapping of mappings
    (("metadata:\n", "metadata: [a]\nx:\n"), "cannot unmarshal !!seq into map[string]interface {}"),
    (("  accelerators:\n", "  accelerators: {a: b}\n  x:\n"), "cannot unmarshal !!map into []main.Requirement"),
])
def test_type_errors_anywhere_reject_the_file_at_load(tmp_path, mutation, fragment):
    """loadYaml: yaml.Unmarshal into the typed ConformanceDoc fails on any value that does not fit,
    also under categories and ids validate.go does not otherwise look at."""
    raw = replace_once(raw_doc(), *mutation)
    errors, _unused = errors_of(tmp_path, raw=raw)
    assert errors and all(e.startswith("Error loading product: yaml: unmarshal errors: line ") for e in errors)
    assert any(fragment in e for e in errors), errors


@pytest.mark.parametrize("mutation, key", [
    (("metadata:\n", "metadata:\n  vendorName: Other\n"), "vendorName"),
    (("spec:\n", "spec:\n  operator: []\n"), "operator"),
    (("  - id: dra_support\n", "  - id: dra_support\n    status: Implemented\n"), "status"),
    (("metadata:\n", "metadata:\n  extraInfo: {a: 1, a: 2}\n"), "a"),
    (("spec:\n", "spec:\n  extra:\n  - id: x\n    notes: a\n    notes: b\n"), "notes"),
])
def test_duplicate_mapping_keys_reject_the_file_at_load(tmp_path, mutation, key):
    """loadYaml: yaml.v3 (uniqueKeys) rejects a mapping key defined twice in any mapping it decodes."""
    raw = replace_once(raw_doc(), *mutation)
    errors, _unused = errors_of(tmp_path, raw=raw)
    assert any(e.startswith("Error loading product: yaml: unmarshal errors: line ") and
               ('mapping key "%s" already defined at line' % key) in e for e in errors), errors


def test_duplicates_under_an_unknown_top_level_key_are_not_decoded(tmp_path):
    """ConformanceDoc has only metadata and spec: yaml.v3 never decodes what other keys hold."""
    raw = raw_doc() + "comments:\n  a: 1\n  a: [2]\n"
    assert errors_of(tmp_path, raw=raw)[0] == []


def test_explicit_tag_that_does_not_fit_fails_the_load(tmp_path):
    raw = replace_once(raw_doc(), "notes: ''", "notes: !!int abc")
    assert errors_of(tmp_path, raw=raw)[0] == ["Error loading product: yaml: cannot decode !!str `abc` as a !!int"]


def test_alias_to_an_ancestor(tmp_path):
    """yaml.v3 fails on an alias only when decoding reaches the same alias again while expanding it."""
    raw = raw_doc() + "  extra: &loop\n  - id: x\n    evidence: *loop\n"
    assert errors_of(tmp_path, raw=raw)[0] == [
        "Error loading product: yaml: unmarshal errors: line %d: cannot unmarshal !!map into string"
        % (raw.count("\n") - 1)]
    raw = replace_once(raw_doc(), "metadata:\n", "metadata:\n  extraInfo: &x {b: *x}\n")
    assert errors_of(tmp_path / "m", raw=raw)[0] == ["Error loading product: yaml: anchor value contains itself"]


def test_merge_keys_are_applied(tmp_path):
    raw = replace_once(raw_doc(), "  - id: dra_support\n    description: d\n",
                       "  - <<: {description: from merge, notes: merged}\n    id: dra_support\n    description: d\n")
    assert errors_of(tmp_path, raw=raw)[0] == []


def test_second_document_is_ignored_with_a_warning(tmp_path):
    """yaml.Unmarshal reads the first document only - also when the second does not parse."""
    for tail in ("---\nmetadata: {}\n", "---\nmetadata: [unclosed\n"):
        errors, result = errors_of(tmp_path / str(len(tail)), raw=raw_doc() + tail)
        assert errors == [] and any("more than one YAML document" in w for w in result["warnings"])


def test_scalars_decode_into_string_fields_as_their_text(tmp_path):
    """yaml.v3 into Requirement's string fields: `notes: 42` is "42", `description: yes` is "yes"."""
    doc = good_doc()
    req(doc, "gpu_sharing").update(status="N/A", notes=42)
    req(doc, "dra_support")["description"] = True
    raw = yaml.safe_dump(doc, sort_keys=False).replace("description: true", "description: yes")
    assert "description: yes" in raw
    assert errors_of(tmp_path, raw=raw)[0] == []


def test_null_evidence_items_are_dropped(tmp_path):
    """yaml.v3 drops null items of a []string: a SHOULD with `evidence: [null]` and no status is unanswered."""
    doc = good_doc()
    req(doc, "gpu_sharing").update(status="", evidence=[None])
    req(doc, "dra_support")["evidence"] = [None, "evidence/dra_support.md"]
    errors, result = errors_of(tmp_path, doc)
    assert errors == [] and "SHOULD requirement 'gpu_sharing' left unanswered (accepted)" in result["info"]


def test_null_fields_are_empty_strings(tmp_path):
    doc = good_doc()
    req(doc, "gang_scheduling")["status"] = None
    errors = errors_of(tmp_path, doc)[0]
    assert "Requirement 'gang_scheduling' is MUST level but status is ''. It must be 'Implemented'." in errors


def test_number_evidence_is_its_text(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing")["evidence"] = [42]
    errors = errors_of(tmp_path, doc)[0]
    assert any(e.startswith("Invalid evidence file for 'gpu_sharing': 42 (not found at ") for e in errors)


# ---------------------------------------------------------------------------------------- metadata
def test_missing_metadata(tmp_path):
    doc = good_doc()
    del doc["metadata"]
    assert "Missing 'metadata' section" in errors_of(tmp_path, doc)[0]


@pytest.mark.parametrize("field", [f for f, required in catalog.METADATA_FIELDS if required])
def test_missing_required_metadata_field(tmp_path, field):
    doc = good_doc()
    del doc["metadata"][field]
    errors = errors_of(tmp_path, doc)[0]
    assert "Missing metadata field: %s (or %s)" % (field, validate.snake_case(field)) in errors


def test_null_metadata_field_is_missing(tmp_path):
    doc = good_doc()
    doc["metadata"]["vendorName"] = None
    assert "Missing metadata field: vendorName (or vendor_name)" in errors_of(tmp_path, doc)[0]


def test_optional_repo_url_may_be_absent_or_empty(tmp_path):
    doc = good_doc()
    doc["metadata"]["repoUrl"] = ""
    assert errors_of(tmp_path, doc)[0] == []
    del doc["metadata"]["repoUrl"]
    assert errors_of(tmp_path / "b", doc)[0] == []


def test_snake_case_metadata_is_accepted(tmp_path):
    doc = good_doc()
    doc["metadata"] = {validate.snake_case(k): v for k, v in doc["metadata"].items()}
    assert "k8s_conformance_url" in doc["metadata"]
    assert errors_of(tmp_path, doc)[0] == []


@pytest.mark.parametrize("text, is_string", [
    ("1.0", False), ("1", False), ("0x1F", False), ("true", False), ("2024-01-01", False), ("1e3", False),
    ("1.0.0", True), ("'1.0'", True), ("yes", True), ("v1.0", True), ("2024-13-01", True), ("1e400", True),
    ("!!str 1.0", True), ("0o17", False), ("089", False), ("1_000", False), (".5", False), ("~", None),
])
def test_metadata_values_keep_their_yaml_types(tmp_path, text, is_string):
    """Metadata is map[string]interface{}: yaml.v3 resolves plain scalars (YAML 1.2 core, timestamps)."""
    raw = replace_once(raw_doc(), "platformVersion: 1.0.0", "platformVersion: %s" % text)
    errors = errors_of(tmp_path, raw=raw)[0]
    if is_string is None:
        assert errors == ["Missing metadata field: platformVersion (or platform_version)"]
    elif is_string:
        assert errors == []
    else:
        assert errors == ["Metadata field platformVersion is not a string"]


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
                                 "https://github.com/cncf/k8s-conformance/tree/master/v1.35/lab/extra",
                                 "https://github.com/cncf/k8s-conformance/tree/master/v1.35/lab/\\n"])
def test_k8s_conformance_url_pattern(tmp_path, url):
    raw = replace_once(raw_doc(), "k8sConformanceUrl: %s" % GOOD_METADATA["k8sConformanceUrl"],
                       'k8sConformanceUrl: "%s"' % url)
    errors = errors_of(tmp_path, raw=raw)[0]
    assert any(e.startswith("Invalid k8sConformanceUrl format: ") for e in errors)
    assert all("\n" not in e for e in errors)


def test_k8s_conformance_url_main_branch_and_slash(tmp_path):
    doc = good_doc()
    doc["metadata"]["k8sConformanceUrl"] = "https://github.com/cncf/k8s-conformance/tree/main/v1.35/lab/"
    assert errors_of(tmp_path, doc)[0] == []


def test_png_logo_is_accepted_with_a_warning(tmp_path):
    """validate.go has no rule on the logo's file type (accepted submissions use PNG logos)."""
    doc = good_doc()
    doc["metadata"]["productLogoUrl"] = "https://example.com/images/logo.png"
    errors, result = errors_of(tmp_path, doc)
    assert errors == [] and result["valid"]
    assert any(w.startswith("productLogoUrl is not an SVG") for w in result["warnings"])


def test_kubernetes_version_mismatch_is_a_warning(tmp_path):
    doc = good_doc()
    doc["metadata"]["kubernetesVersion"] = "v1.34"
    errors, result = errors_of(tmp_path, doc)
    assert errors == [] and any("differs" in w for w in result["warnings"])


# -------------------------------------------------------------------------------------------- spec
def test_missing_spec(tmp_path):
    doc = good_doc()
    del doc["spec"]
    assert "Missing 'spec' section" in errors_of(tmp_path, doc)[0]


def test_missing_category(tmp_path):
    doc = good_doc()
    del doc["spec"]["operator"]
    assert "Missing spec category: operator" in errors_of(tmp_path, doc)[0]


def test_null_category_is_present_but_empty(tmp_path):
    doc = good_doc()
    doc["spec"]["operator"] = None
    errors = errors_of(tmp_path, doc)[0]
    assert errors == ["Missing requirement 'robust_controller' in category 'operator'"]


def test_missing_requirement(tmp_path):
    doc = good_doc()
    doc["spec"]["schedulingOrchestration"] = [r for r in doc["spec"]["schedulingOrchestration"]
                                              if r["id"] != "pod_autoscaling"]
    assert "Missing requirement 'pod_autoscaling' in category 'schedulingOrchestration'" in errors_of(tmp_path, doc)[0]


def test_unknown_ids_and_entries_without_id_are_warnings(tmp_path):
    doc = good_doc()
    doc["spec"]["operator"].append({"id": "not_in_checklist", "status": "Implemented"})
    doc["spec"]["operator"].append({"status": "Implemented"})
    doc["spec"]["extra"] = [{"id": "x"}]
    errors, result = errors_of(tmp_path, doc)
    assert errors == [] and len(result["warnings"]) == 3


def test_last_duplicate_id_wins(tmp_path):
    doc = good_doc()
    first = copy.deepcopy(req(doc, "robust_controller"))
    first["status"] = "Not Implemented"
    doc["spec"]["operator"].insert(0, first)
    errors, result = errors_of(tmp_path, doc)
    assert errors == [] and any("more than once" in w for w in result["warnings"])


def test_invalid_status(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing")["status"] = "Done"
    assert "Invalid status 'Done' for 'gpu_sharing'. Must be one of [Implemented Not Implemented Partially " \
           "Implemented N/A]" in errors_of(tmp_path, doc)[0]


@pytest.mark.parametrize("status", ["Not Implemented", "Partially Implemented", ""])
def test_must_must_be_implemented(tmp_path, status):
    doc = good_doc()
    req(doc, "gang_scheduling")["status"] = status
    message = "Requirement 'gang_scheduling' is MUST level but status is '%s'. It must be 'Implemented'." % status
    assert message in errors_of(tmp_path, doc)[0]


def test_should_left_blank_is_accepted(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing").update(status="", evidence=[], notes="anything")
    errors, result = errors_of(tmp_path, doc)
    assert errors == [] and any("gpu_sharing" in i for i in result["info"])


def test_should_with_evidence_but_no_status_is_invalid(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing").update(status="")
    assert any(e.startswith("Invalid status '' for 'gpu_sharing'") for e in errors_of(tmp_path, doc)[0])


# ---------------------------------------------------------------------------------- N/A (two rules)
def na_autoscaling(notes="bare metal: no cluster autoscaler"):
    doc = good_doc("1.37")
    req(doc, "cluster_autoscaling").update(status="N/A", notes=notes, evidence=[])
    return doc


def test_must_na_is_rejected_by_default_as_validate_go_does(tmp_path):
    errors, result = errors_of(tmp_path, na_autoscaling(), version="1.37")
    assert errors == ["Requirement 'cluster_autoscaling' is MUST level but status is 'N/A'. It must be 'Implemented'."]
    assert result["na_rule"] == "upstream" and "rejected" in result["rule"]
    assert any("na_rule=pending" in i for i in result["info"])


def test_pending_rule_accepts_cluster_autoscaling_na_with_notes(tmp_path):
    errors, result = errors_of(tmp_path, na_autoscaling(), version="1.37", na_rule="pending")
    assert errors == [] and result["valid"] and result["na_rule"] == "pending" and "PR #146" in result["rule"]
    assert "Requirement 'cluster_autoscaling' is MUST level and marked N/A; review the justification in notes" \
        in result["warnings"]


@pytest.mark.parametrize("notes", ["", "   \n"])
def test_pending_rule_needs_real_notes(tmp_path, notes):
    errors = errors_of(tmp_path, na_autoscaling(notes), version="1.37", na_rule="pending")[0]
    assert errors == ["Notes required for 'cluster_autoscaling' when status is N/A"]


def test_pending_rule_only_for_cluster_autoscaling(tmp_path):
    doc = good_doc("1.37")
    req(doc, "pod_autoscaling").update(status="N/A", notes="no HPA")
    req(doc, "cluster_autoscaling").update(status="Not Implemented")
    errors = errors_of(tmp_path, doc, version="1.37", na_rule="pending")[0]
    assert "Requirement 'pod_autoscaling' is MUST level but status is 'N/A'. It must be 'Implemented'." in errors
    assert "Requirement 'cluster_autoscaling' is MUST level but status is 'Not Implemented'. It must be " \
           "'Implemented', or 'N/A' with a justification in notes." in errors


def test_na_needs_notes(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing").update(status="N/A", notes="")
    assert "Notes required for 'gpu_sharing' when status is N/A" in errors_of(tmp_path, doc)[0]


def test_whitespace_only_na_notes_are_notes_for_validate_go(tmp_path):
    """validate.go today compares notes with "" (no trimming): whitespace is accepted; we warn."""
    doc = good_doc()
    req(doc, "gpu_sharing").update(status="N/A", notes="   ")
    errors, result = errors_of(tmp_path, doc)
    assert errors == [] and any("only whitespace" in w for w in result["warnings"])


def test_bad_na_rule_is_one_clean_error(tmp_path):
    result = check(tmp_path, good_doc(), na_rule="lenient")
    assert not result["valid"] and "na_rule='lenient' is not one of" in result["errors"][0]


# ------------------------------------------------------------------------------- evidence files
@pytest.mark.parametrize("link", ["evidence/gpu_sharing.md", "/evidence/gpu_sharing.md", "file://evidence/gpu_sharing.md",
                                  "file:///evidence/gpu_sharing.md", "file://v1.35/lab/evidence/gpu_sharing.md",
                                  "evidence/gpu_sharing.md#section", "  evidence/gpu_sharing.md  "])
def test_local_evidence_forms_resolve_in_the_product_folder(tmp_path, link):
    """resolveEvidencePath: bare, file://, absolute (joined with the product folder), own vX.Y/<product>/."""
    doc = good_doc()
    req(doc, "gpu_sharing")["evidence"] = [link]
    assert errors_of(tmp_path, doc)[0] == []


def test_absolute_evidence_path_is_joined_with_the_product_folder(tmp_path):
    """An absolute path that exists on the host is still looked up inside the product folder."""
    host_file = tmp_path / "host-evidence.md"
    host_file.write_text("x\n")
    doc = good_doc()
    req(doc, "gpu_sharing")["evidence"] = [str(host_file)]
    path = write(tmp_path / "r", doc)
    errors = validate.validate_file(path)["errors"]
    expected = os.path.join(os.path.dirname(path), str(host_file).lstrip("/"))
    assert errors == ["Invalid evidence file for 'gpu_sharing': %s (not found at %s)" % (host_file, expected)]


@pytest.mark.parametrize("link, reason", [
    ("../outside.md", 'path "../outside.md" escapes the product directory '),
    ("evidence/../../x.md", 'path "evidence/../../x.md" escapes the product directory '),
    ("./", 'path "./" escapes the product directory '),
    ("v1.35/other/junit.xml", 'path "v1.35/other/junit.xml" references a different product directory; '
                              "evidence must live in "),
    ("file://#TestX", "empty file path"),
])
def test_evidence_paths_that_are_refused(tmp_path, link, reason):
    doc = good_doc()
    req(doc, "gpu_sharing")["evidence"] = [link]
    errors = errors_of(tmp_path, doc)[0]
    assert len(errors) == 1 and errors[0].startswith("Invalid evidence file for 'gpu_sharing': %s (%s" % (link, reason))


def test_local_evidence_file_must_exist(tmp_path):
    errors = errors_of(tmp_path, good_doc(), evidence=False)[0]
    assert any(e.startswith("Invalid evidence file for 'dra_support': evidence/dra_support.md (not found at ")
               for e in errors)


def test_empty_evidence_entries_are_skipped(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing")["evidence"] = ["", "evidence/gpu_sharing.md"]
    assert errors_of(tmp_path, doc)[0] == []


# ---------------------------------------------------------------------------------- test artifacts
JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="test">
  <testcase name="TestSecureAcceleratorAccess" classname="test"></testcase>
  <testcase name="TestGangScheduling/fits" classname="test"></testcase>
  <testcase name="TestGangScheduling/never_partial" classname="test"></testcase>
  <testcase name="TestAcceleratorClusterAutoscaling" classname="test"><skipped message="no autoscaler"/></testcase>
  %s
</testsuite></testsuites>
"""


def artifact_doc(tmp_path, files, evidence, version="1.37", updates=None):
    doc = good_doc(version)
    for rid, links in evidence.items():
        req(doc, rid)["evidence"] = links
    for rid, fields in (updates or {}).items():
        req(doc, rid).update(fields)
    path = write(tmp_path, doc, version=version)
    for name, text in files.items():
        target = os.path.join(os.path.dirname(path), name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as handle:
            handle.write(text)
    return path


def test_junit_with_mapped_tests_passes(tmp_path):
    """checkArtifactEvidence: the mapped test (autoTestedRequirements) is found and passed (subtests count)."""
    path = artifact_doc(tmp_path, {"junit.xml": JUNIT % ""}, {
        "secure_accelerator_access": ["file://junit.xml"], "gang_scheduling": ["junit.xml"],
        "ai_inference": ["file://junit.xml#TestSecureAcceleratorAccess"]})
    result = validate.validate_file(path)
    assert result["errors"] == []
    assert [w.split("'")[1] for w in result["warnings"] if "recommended" in w] == ["cluster_autoscaling"]


def test_failing_test_in_an_artifact_is_an_error_once(tmp_path):
    failing = '<testcase name="TestOther"><failure message="boom"/></testcase>'
    path = artifact_doc(tmp_path, {"junit.xml": JUNIT % failing}, {
        "secure_accelerator_access": ["junit.xml"], "gang_scheduling": ["junit.xml"]})
    errors = validate.validate_file(path)["errors"]
    assert errors == ["Test artifact junit.xml contains failing tests: TestOther"]


def test_fragment_names_the_test(tmp_path):
    broken = JUNIT % '<testcase name="TestBroken"><error/></testcase>'
    path = artifact_doc(tmp_path, {"results/junit.xml": broken}, {
        "ai_inference": ["file://results/junit.xml#TestMissing"],
        "robust_controller": ["results/junit.xml#TestBroken"]})
    errors = validate.validate_file(path)["errors"]
    assert errors == ["Test artifact file://results/junit.xml contains failing tests: TestBroken",
                      "Test 'TestMissing' referenced by 'ai_inference' was not found in file://results/junit.xml",
                      "Test 'TestBroken' referenced by 'robust_controller' failed in results/junit.xml"]


def test_skipped_test_for_an_implemented_requirement_is_an_error(tmp_path):
    path = artifact_doc(tmp_path, {"junit.xml": JUNIT % ""}, {"cluster_autoscaling": ["junit.xml"]})
    assert validate.validate_file(path)["errors"] == [
        "Requirement 'cluster_autoscaling' is Implemented but test 'TestAcceleratorClusterAutoscaling' was skipped in "
        "junit.xml"]


def test_skipped_test_for_na_cluster_autoscaling_under_the_pending_rule(tmp_path):
    path = artifact_doc(tmp_path, {"junit.xml": JUNIT % ""}, {"cluster_autoscaling": ["junit.xml"]},
                        updates={"cluster_autoscaling": {"status": "N/A", "notes": "no autoscaler on bare metal"}})
    result = validate.validate_file(path, na_rule="pending")
    assert result["errors"] == [] and result["valid"]


def test_hybrid_verification_warning_from_137(tmp_path):
    """supportsHybridVerification: v1.37+ Implemented mapped requirements without an artifact get a warning."""
    result = check(tmp_path, good_doc("1.37"), version="1.37")
    warned = sorted(w.split("'")[1] for w in result["warnings"] if "recommended for v1.37+" in w)
    assert result["errors"] == [] and warned == sorted(catalog.UPSTREAM_TESTS)
    older = check(tmp_path / "o", good_doc("1.36"), version="1.36")
    assert not any("recommended" in w for w in older["warnings"])


GO_TEST_JSON = "\n".join(json.dumps(e) for e in [
    {"Action": "run", "Test": "TestGangScheduling"},
    {"Action": "pass", "Package": "p", "Test": "TestGangScheduling"},
    {"action": "pass", "package": "p", "test": "TestSecureAcceleratorAccess"},
    {"Action": "pass", "Package": "p"},
]) + "\n"


def test_results_json_in_go_test_json(tmp_path):
    path = artifact_doc(tmp_path, {"results.json": GO_TEST_JSON}, {
        "gang_scheduling": ["results.json"], "secure_accelerator_access": ["file://results.json"]})
    assert validate.validate_file(path)["errors"] == []


@pytest.mark.parametrize("text, error", [
    ('{"schema_version": 1, "checks": []}', "parsing go test JSON: no test events found"),
    (json.dumps({"a": 1}, indent=2), "parsing go test JSON at line 1: "),
    ('{"Action": 5}\n', "parsing go test JSON at line 1: json: cannot unmarshal number into Go struct field "
                        "goTestEvent.Action of type string"),
    ("[1]\n", "parsing go test JSON at line 1: json: cannot unmarshal array into Go value of type main.goTestEvent"),
    ('{"Action": "fail", "Package": "p"}\n', None),
])
def test_results_json_that_is_not_go_test_json(tmp_path, text, error):
    """parseGoTestJSON: a results.json that is not `go test -json` (e.g. a rich report) is an error."""
    path = artifact_doc(tmp_path, {"results.json": text}, {"ai_inference": ["results.json"]})
    errors = validate.validate_file(path)["errors"]
    if error is None:
        assert errors == ["Test artifact results.json contains failing tests: package p"]
    else:
        assert len(errors) == 1 and errors[0].startswith("Invalid test artifact for 'ai_inference': results.json (%s"
                                                         % error), errors


def test_e2e_log_go_test_v(tmp_path):
    log = "=== RUN   TestGangScheduling\n    --- PASS: TestGangScheduling/fits (1.0s)\n--- PASS: TestGangScheduling " \
          "(2.0s)\r\n--- SKIP: TestAcceleratorClusterAutoscaling (0.0s)\nPASS\n"
    path = artifact_doc(tmp_path, {"e2e.log": log}, {"gang_scheduling": ["e2e.log"]})
    assert validate.validate_file(path)["errors"] == []


def test_ginkgo_output_named_e2e_log_is_an_error(tmp_path):
    """An e2e.log that holds Ginkgo output, not `go test -v` lines, fails parseE2ELog (as upstream found)."""
    log = "Running Suite: Kubernetes e2e suite\nRan 11 of 7000 Specs in 300 seconds\nSUCCESS! -- 11 Passed\n"
    path = artifact_doc(tmp_path, {"e2e.log": log, "e2e-results.log": log}, {
        "ai_inference": ["e2e.log"], "robust_controller": ["e2e-results.log"]})
    assert validate.validate_file(path)["errors"] == [
        "Invalid test artifact for 'ai_inference': e2e.log (parsing e2e log: no '--- PASS/FAIL/SKIP:' result lines "
        "found)"]


@pytest.mark.parametrize("text, error", [
    ("<testsuites></testsuites>", "parsing JUnit XML: no <testcase> elements found"),
    ("<testsuites><testsuite><testcase name='a'>", "parsing JUnit XML: XML syntax error on line 1"),
    ("", "parsing JUnit XML: EOF"),
    ('<?xml version="1.0" encoding="ISO-8859-1"?><testsuite><testcase name="a"/></testsuite>',
     'parsing JUnit XML: xml: encoding "ISO-8859-1" declared but Decoder.CharsetReader is nil'),
])
def test_junit_that_does_not_parse(tmp_path, text, error):
    path = artifact_doc(tmp_path, {"JUnit.XML": text}, {"ai_inference": ["JUnit.XML"]})
    errors = validate.validate_file(path)["errors"]
    assert len(errors) == 1 and errors[0].startswith("Invalid test artifact for 'ai_inference': JUnit.XML (%s"
                                                     % error), errors


def test_junit_shapes(tmp_path):
    """parseJUnit: a bare <testsuite> root; junk after the root element is not read; namespaces ignored."""
    text = '<testsuite><testcase name="TestGangScheduling"/><wrapper><testcase name="TestHidden">' \
           '<failure/></testcase></wrapper></testsuite>\ntrailing junk <'
    path = artifact_doc(tmp_path, {"junit.xml": text}, {"gang_scheduling": ["junit.xml"]})
    assert validate.validate_file(path)["errors"] == []


def test_other_evidence_files_are_only_checked_to_exist(tmp_path):
    path = artifact_doc(tmp_path, {"install.log": "not a test log", "junit.xml.txt": "x"}, {
        "ai_inference": ["install.log", "junit.xml.txt"]})
    assert validate.validate_file(path)["errors"] == []


# --------------------------------------------------------------------------------- network rules
def test_network_rules_are_not_checked_offline(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing")["evidence"] = ["https://example.com/doc"]
    errors, result = errors_of(tmp_path, doc)
    assert errors == [] and not result["online"]
    assert any("https://example.com/doc" in n for n in result["not_checked"])
    assert any("vendorName 'Example Vendor' is a CNCF member" in n for n in result["not_checked"])
    assert any("k8sConformanceUrl" in n for n in result["not_checked"])


def test_online_rules_with_their_messages(tmp_path):
    doc = good_doc()
    req(doc, "gpu_sharing")["evidence"] = ["https://example.com/gone"]
    req(doc, "dra_support")["evidence"] = ["https://example.com/Logo%20Vertical.png"]
    down = {"https://example.com/gone": "status code 404", GOOD_METADATA["websiteUrl"]: "connection refused"}
    result = check(tmp_path, doc, online=True, members={"Someone Else"}, url_checker=down.get)
    assert result["online"] and result["not_checked"] == []
    assert sorted(result["errors"]) == sorted([
        "Invalid evidence URL for 'gpu_sharing': https://example.com/gone (status code 404)",
        "Invalid URL in metadata websiteUrl: https://example.com (connection refused)",
        "vendorName 'Example Vendor' does not match any CNCF member in the CNCF Landscape. The vendorName must "
        "exactly match the organization name listed at https://landscape.cncf.io/members"])
    ok = check(tmp_path / "ok", doc, online=True, members={"Example Vendor"}, url_checker=lambda url: None)
    assert ok["errors"] == [] and ok["valid"]


def test_online_k8s_conformance_url_not_accessible(tmp_path):
    url = GOOD_METADATA["k8sConformanceUrl"]
    result = check(tmp_path, good_doc(), online=True, members={"Example Vendor"},
                   url_checker=lambda u: "status code 404" if u == url else None)
    assert result["errors"] == ["k8sConformanceUrl is not accessible: %s (status code 404)" % url]


def test_online_landscape_unavailable_is_an_error(tmp_path):
    result = check(tmp_path, good_doc(), online=True, members=ValueError("failed to fetch CNCF landscape: offline"),
                   url_checker=lambda u: None)
    assert result["errors"] == ["failed to fetch CNCF landscape: offline"]


# ------------------------------------------------------- real submissions, reduced to hand-written facts
def test_accepted_on_prem_submission_shape(tmp_path):
    """Shape of accepted v1.36 submissions: SHOULDs left blank, evidence as URLs, a PNG logo, no repoUrl,
    cluster_autoscaling Implemented with notes saying its condition does not apply."""
    doc = good_doc("1.36")
    del doc["metadata"]["repoUrl"]
    doc["metadata"]["productLogoUrl"] = "https://vendor.example/img/logo.png"
    for item in catalog.checklist("1.36"):
        entry = req(doc, item["id"])
        if item["level"] == catalog.SHOULD:
            entry.update(status="", evidence=[], notes="")
        else:
            entry["evidence"] = ["https://docs.vendor.example/ai-conformance/%s/" % item["id"]]
    req(doc, "cluster_autoscaling")["notes"] = "No cluster autoscaler ships: fixed on-prem node pools."
    errors, result = errors_of(tmp_path, doc, version="1.36")
    assert errors == [] and result["valid"]


def test_submission_with_ginkgo_e2e_log_and_markdown_evidence(tmp_path):
    """Shape of a v1.35 submission: local markdown evidence, subfolders, and an e2e.log of Ginkgo output."""
    doc = good_doc("1.35")
    req(doc, "dra_support")["evidence"] = ["e2e.log", "dra/README.md"]
    path = write(tmp_path, doc, version="1.35")
    folder = os.path.dirname(path)
    os.makedirs(os.path.join(folder, "dra"))
    with open(os.path.join(folder, "dra", "README.md"), "w") as handle:
        handle.write("evidence\n")
    with open(os.path.join(folder, "e2e.log"), "w") as handle:
        handle.write("I1010 e2e.go:109] Starting e2e run\nRan 1 of 7000 Specs\nSUCCESS!\n")
    assert validate.validate_file(path)["errors"] == [
        "Invalid test artifact for 'dra_support': e2e.log (parsing e2e log: no '--- PASS/FAIL/SKIP:' result lines "
        "found)"]


def test_official_template_is_rejected_for_placeholders(tmp_path, shared_checklists):
    with open(shared_checklists["1.37"]) as handle:
        raw = handle.read()
    errors, _unused = errors_of(tmp_path, raw=raw, version="1.37")
    assert any("placeholder" in e for e in errors)
    assert any("MUST level but status is ''" in e for e in errors)
    assert "Missing metadata field: k8sConformanceUrl (or k8s_conformance_url)" in errors


# ------------------------------------------------------------------------------------ lines / CLI
def test_missing_file_and_directory(tmp_path):
    result = validate.validate_file(str(tmp_path / "v1.35" / "x" / "PRODUCT.yaml"))
    assert result["errors"] == ["Error loading product: open %s: no such file or directory"
                                % (tmp_path / "v1.35" / "x" / "PRODUCT.yaml")]
    folder = tmp_path / "v1.35" / "y" / "PRODUCT.yaml"
    folder.mkdir(parents=True)
    assert validate.validate_file(str(folder))["errors"][0].startswith("Error loading product: open ")


def test_result_lines_one_per_problem(tmp_path):
    doc = good_doc()
    doc["metadata"]["vendorName"] = "[Vendor\nName]"
    result = check(tmp_path, doc)
    lines = validate.result_lines(result)
    assert lines[0].endswith("na_rule=upstream, network rules not checked offline)") and "INVALID" in lines[0]
    assert len(lines) == 1 + len(result["errors"]) + len(result["warnings"]) + len(result["info"])
    assert all("\n" not in line for line in lines)


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_BASE)
    return subprocess.run([sys.executable, "-m", MODULE] + list(args), capture_output=True, text=True, env=env,
                          check=False, timeout=120)


def test_cli_exit_codes_and_rules(tmp_path):
    good = write(tmp_path, good_doc())
    ok = run_cli(good)
    assert ok.returncode == 0 and ": valid (" in ok.stdout
    bad_doc = copy.deepcopy(good_doc())
    bad_doc["metadata"]["vendorName"] = "[Vendor Name]"
    out = run_cli(write(tmp_path / "b", bad_doc))
    assert out.returncode == 1 and ": error: Metadata field vendorName has placeholder value" in out.stdout
    na = write(tmp_path / "n", na_autoscaling(), version="1.37")
    assert run_cli(na).returncode == 1
    pending = run_cli("--na-rule", "pending", na)
    assert pending.returncode == 0 and "na_rule=pending" in pending.stdout


@pytest.mark.parametrize("raw", [b"", b"\x00\x01\x02", b"\xff\xd8\xff\xe0 jpeg", b"[1, 2", b"metadata: {a: [}",
                                 b"- - - -", b"a: &x [*x]", b"? [a]\n: b\n", b"metadata:\n  ? [a]\n  : b\n",
                                 b"spec:\n  ? {a: b}\n  : []\n", b"metadata: !!binary AAAA\n", b"{" * 5000])
def test_cli_never_prints_a_traceback(tmp_path, raw):
    path = write(tmp_path, raw=raw)
    out = run_cli(path)
    assert "Traceback" not in out.stderr + out.stdout and out.returncode == 1, out.stderr
    assert all(line.startswith(path) for line in out.stdout.splitlines()), out.stdout


@pytest.mark.parametrize("raw, expected", [
    (b"metadata: &a {x: 1}\nspec: &a {}\nz: *a\n", None),  # yaml.v3 lets a later anchor redefine a name
    (b"metadata: {x: *nope}\n", "Error loading product: yaml: line 1: unknown anchor 'nope' referenced"),
    (b"metadata:\n  vendorName: \x81\n", "Error loading product: yaml: unacceptable character #x0081 at position "),
])
def test_parser_differences_follow_yaml_v3(tmp_path, raw, expected):
    errors = errors_of(tmp_path, raw=raw)[0]
    if expected is None:
        assert not any(e.startswith("Error loading product") for e in errors), errors
    else:
        assert len(errors) == 1 and errors[0].startswith(expected), errors
