"""The catalog against the official checklist files: ids, sections, levels, order; id -> check."""

import re

import pytest
import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils import catalog


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def test_every_shared_checklist_is_in_the_catalog(shared_checklists):
    for version in shared_checklists:
        assert version in catalog.OFFICIAL, "checklist %s is not in the catalog" % version


def test_ids_sections_levels_and_order_match_the_shared_files(shared_checklists):
    for version, path in shared_checklists.items():
        doc = load(path)
        expected = [(rid["id"], section, rid["level"]) for section, reqs in doc["spec"].items() for rid in reqs]
        actual = [(i["id"], i["section"], i["level"]) for i in catalog.checklist(version)]
        assert actual == expected, "checklist %s differs from %s" % (version, path)
        assert [s for s, _ids in catalog.sections(version)] == list(doc["spec"]), version
        assert doc["metadata"]["kubernetesVersion"] == "v%s" % version


def test_every_id_of_every_shared_file_maps_onto_a_check(shared_checklists):
    for version, path in shared_checklists.items():
        for section, reqs in load(path)["spec"].items():
            for req in reqs:
                check = catalog.OFFICIAL_ID_TO_CHECK.get(req["id"])
                assert check in catalog.CHECKS, "%s/%s/%s maps onto no check" % (version, section, req["id"])
                assert req["id"] in catalog.DESCRIPTIONS


def test_template_metadata_fields_are_known(shared_checklists):
    known = {f for f, _r in catalog.METADATA_FIELDS}
    for _version, path in shared_checklists.items():
        assert set(load(path)["metadata"]) <= known


def test_137_is_136_plus_workload_sandboxing():
    v136 = [(i["id"], i["section"], i["level"]) for i in catalog.checklist("1.36")]
    v137 = [(i["id"], i["section"], i["level"]) for i in catalog.checklist("1.37")]
    assert [x for x in v137 if x[0] != "workload_sandboxing"] == v136
    assert ("workload_sandboxing", "security", "SHOULD") in v137
    assert [s for s, _unused in catalog.sections("1.37")] == list(catalog.SECTIONS)


@pytest.mark.parametrize("value, minor", [("v1.35.4", "1.35"), ("1.35", "1.35"), ("v1.36", "1.36"),
                                          ("1.34.2+k3s1", "1.34"), ("v1.33.0-eks-1", "1.33")])
def test_parse_minor(value, minor):
    assert catalog.parse_minor(value) == minor


@pytest.mark.parametrize("value", ["banana", "", "1", "v1.x"])
def test_parse_minor_rejects_garbage(value):
    with pytest.raises(catalog.CatalogError, match="version"):
        catalog.parse_minor(value)


def test_select_version_server_and_pin():
    assert catalog.select_version("v1.35.4") == ("1.35", "server")
    assert catalog.select_version("v1.35.4", pinned="1.34") == ("1.34", "pinned")
    assert catalog.select_version(None, pinned="v1.37") == ("1.37", "pinned")


@pytest.mark.parametrize("server, pinned, needle", [("v1.31.2", None, "v1.31.2"), (None, "1.20", "1.20"),
                                                    (None, None, "unknown")])
def test_select_version_names_the_input_and_the_supported_versions(server, pinned, needle):
    with pytest.raises(catalog.CatalogError) as info:
        catalog.select_version(server, pinned=pinned)
    message = str(info.value)
    assert needle in message
    assert "1.33, 1.34, 1.35, 1.36, 1.37" in message


def test_whitepaper_profile():
    items = catalog.whitepaper()
    assert len(items) == 18
    ids = [i["id"] for i in items]
    assert len(set(ids)) == 18
    assert ids[0] == "HW-1.1" and ids[-1] == "OBS-6.2"
    for item in items:
        assert re.match(r"^(HW|WL|NET|STO|SEC|OBS)-\d\.\d$", item["id"])
        assert item["check"] in catalog.CHECKS
        assert item["level"] in (catalog.MUST, catalog.SHOULD)
    assert {i["check"] for i in items if i["id"] in ("WL-2.2", "WL-2.3")} == {"robust_controller", "gang_scheduling"}


def test_every_check_is_used_by_some_checklist():
    used = {c for v in catalog.OFFICIAL for c in catalog.checks_for(v)}
    assert used == set(catalog.CHECKS)


def test_checks_for_is_ordered_and_unique():
    checks = catalog.checks_for("1.35")
    assert checks[0] == "dra_support"
    assert len(checks) == len(set(checks))
    assert "otel_tracing" in checks and "otel_tracing" not in catalog.checks_for("1.35", include_whitepaper=False)


def test_validate_checks_names_unknown():
    with pytest.raises(catalog.CatalogError, match="nope"):
        catalog.validate_checks(["dra_support", "nope"])


def test_support_levels():
    assert [catalog.support_level(s) for s in catalog.STATUSES] == ["Full", "Partial", "No", "No"]
