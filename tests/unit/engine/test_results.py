import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils.results import (
    IMPLEMENTED,
    NOT_APPLICABLE,
    NOT_IMPLEMENTED,
    PARTIAL,
    build_result,
    decide,
    make_part,
)


def parts(*outcomes, required=True):
    kinds = ["static", "positive", "negative"]
    return [make_part("p%d" % i, kinds[i % 3], o, "d%d" % i, required) for i, o in enumerate(outcomes)]


@pytest.mark.parametrize("outcomes,status,verified", [
    (("passed", "passed", "passed"), IMPLEMENTED, True),
    (("passed", "failed", "passed"), PARTIAL, True),
    (("failed", "failed"), NOT_IMPLEMENTED, True),
    (("passed", "error", "passed"), NOT_IMPLEMENTED, False),   # an error never counts as passed
    (("passed", "passed", "skipped"), PARTIAL, True),         # skipped outside check mode is not passed
    ((), NOT_IMPLEMENTED, False),
])
def test_status_rules(outcomes, status, verified):
    assert decide(parts(*outcomes)) == (status, verified)


def test_optional_parts_never_lower_the_status():
    ps = parts("passed", "passed") + parts("failed", "error", required=False)
    status, verified = decide(ps)
    assert status == IMPLEMENTED
    assert verified is False  # but the error still says something could not run


def test_check_mode_counts_static_only_and_is_not_verified():
    ps = [make_part("api", "static", "passed"), make_part("pos", "positive", "skipped"),
          make_part("neg", "negative", "skipped")]
    assert decide(ps, check_mode=True) == (IMPLEMENTED, False)
    ps[0]["outcome"] = "failed"
    assert decide(ps, check_mode=True) == (NOT_IMPLEMENTED, False)


def test_na_needs_a_reason_and_is_reported():
    ps = [make_part("autoscaler present", "static", "skipped")]
    assert decide(ps, na_reason="bare metal")[0] == NOT_APPLICABLE
    assert decide(ps)[0] == NOT_IMPLEMENTED
    result = build_result("cluster_autoscaling", ps, [], "2026-01-01T00:00:00Z", 1.0, na_reason="bare metal")
    assert result["status"] == NOT_APPLICABLE and result["na_reason"] == "bare metal"
    assert "bare metal" in result["notes"] and "bare metal" in result["summary"]


def test_result_schema_and_notes_name_what_failed_or_could_not_run():
    ps = [make_part("api served", "static", "passed", "ok"), make_part("pod scheduled", "positive", "failed", "no"),
          make_part("refused", "negative", "error", "403 on pods")]
    result = build_result("x", ps, [{"title": "t", "action": "a", "duration_s": 0}], "2026-01-01T00:00:00Z", 2.34567,
                          api_requests=7)
    assert set(result) >= {"check", "status", "verified", "summary", "notes", "parts", "evidence", "duration_s",
                           "started"}
    assert result["status"] == NOT_IMPLEMENTED and result["verified"] is False
    assert "pod scheduled failed: no" in result["notes"]
    assert "could not run refused: 403 on pods" in result["notes"]
    assert result["duration_s"] == 2.346 and result["api_requests"] == 7


def test_make_part_rejects_unknown_values():
    with pytest.raises(ValueError):
        make_part("x", "behaviour", "passed")
    with pytest.raises(ValueError):
        make_part("x", "static", "ok")
