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
    (("passed", "failed", "failed"), NOT_IMPLEMENTED, True),  # only the static part passed: behaviour not seen
    (("failed", "passed", "passed"), PARTIAL, True),
    ((), NOT_IMPLEMENTED, False),
])
def test_status_rules(outcomes, status, verified):
    assert decide(parts(*outcomes)) == (status, verified)


def test_optional_parts_never_lower_the_status():
    ps = parts("passed", "passed") + parts("failed", "error", required=False)
    status, verified = decide(ps)
    assert status == IMPLEMENTED
    assert verified is False  # but the error still says something could not run


def test_check_mode_never_claims_a_behavioural_requirement():
    ps = [make_part("api", "static", "passed"), make_part("pos", "positive", "skipped"),
          make_part("neg", "negative", "skipped")]
    assert decide(ps, check_mode=True) == (NOT_IMPLEMENTED, False)
    ps[0]["outcome"] = "failed"
    assert decide(ps, check_mode=True) == (NOT_IMPLEMENTED, False)
    ps[0]["outcome"] = "passed"
    result = build_result("gang_scheduling", ps, [], "2026-01-01T00:00:00Z", 1.0, check_mode=True)
    assert result["status"] == NOT_IMPLEMENTED and result["verified"] is False and result["behavioural"] is True
    assert "behaviour not probed" in result["summary"] and "check mode" in result["notes"]


def test_check_mode_keeps_a_static_only_verdict():
    ps = [make_part("module loaded", "static", "passed"), make_part("csi", "static", "failed", required=False)]
    assert decide(ps, check_mode=True, static_only=True) == (IMPLEMENTED, True)


# ---- the honesty rule: behaviour must be observed -------------------------------------------------
def part(kind, outcome, required=True, name=None):
    return make_part(name or "%s-%s" % (kind, outcome), kind, outcome, "", required)


@pytest.mark.parametrize("ps,status", [
    # static parts alone never make a behavioural requirement Implemented (driver_runtime_management seen so)
    ([part("static", "passed")], NOT_IMPLEMENTED),
    ([part("static", "passed"), part("static", "passed", name="s2")], NOT_IMPLEMENTED),
    # ... nor Partially Implemented when every behavioural part failed (gang_scheduling, Kueue controller stopped)
    ([part("static", "passed"), part("positive", "failed"), part("negative", "failed")], NOT_IMPLEMENTED),
    # a behavioural part that did not run is not observed behaviour
    ([part("static", "passed"), part("positive", "skipped")], NOT_IMPLEMENTED),
    ([part("static", "passed"), part("positive", "failed"), part("positive", "passed", required=False)],
     NOT_IMPLEMENTED),  # an optional behavioural part never carries the verdict either
    # some behaviour observed: partial
    ([part("static", "passed"), part("positive", "passed"), part("negative", "failed")], PARTIAL),
    ([part("static", "failed"), part("positive", "passed"), part("negative", "passed")], PARTIAL),
    ([part("static", "passed"), part("positive", "failed"), part("negative", "passed")], PARTIAL),
    # Implemented needs every required part AND a passed positive one
    ([part("static", "passed"), part("positive", "passed"), part("negative", "passed")], IMPLEMENTED),
    ([part("positive", "passed")], IMPLEMENTED),
    ([part("static", "passed"), part("negative", "passed")], PARTIAL),  # a refusal alone is not the capability
    ([part("static", "passed"), part("positive", "passed"), part("negative", "skipped")], PARTIAL),
])
def test_behaviour_must_be_observed(ps, status):
    assert decide(ps)[0] == status


def test_a_part_that_could_not_run_is_never_passed():
    ps = [part("static", "passed"), part("positive", "error"), part("negative", "passed")]
    assert decide(ps) == (NOT_IMPLEMENTED, False)
    ps = [part("static", "error"), part("positive", "passed"), part("negative", "passed")]
    assert decide(ps) == (NOT_IMPLEMENTED, False)
    ps = [part("static", "passed"), part("positive", "passed"), part("negative", "error", required=False)]
    assert decide(ps) == (IMPLEMENTED, False)  # an optional part that could not run: not verified, status kept


def test_static_only_checks_follow_the_plain_rules():
    assert decide([part("static", "passed")], static_only=True) == (IMPLEMENTED, True)
    assert decide([part("static", "passed"), part("static", "failed", name="x")], static_only=True) == (PARTIAL, True)
    assert decide([part("static", "failed")], static_only=True) == (NOT_IMPLEMENTED, True)
    assert decide([part("static", "error")], static_only=True) == (NOT_IMPLEMENTED, False)
    assert decide([part("static", "skipped")], static_only=True) == (NOT_IMPLEMENTED, True)


def test_notes_say_why_static_parts_did_not_carry_the_verdict():
    ps = [make_part("Kueue CRDs Established", "static", "passed", "4 CRDs"),
          make_part("gang admitted", "positive", "failed", "Workload not admitted"),
          make_part("gang refused", "negative", "failed", "no QuotaReserved=False")]
    result = build_result("gang_scheduling", ps, [], "2026-01-01T00:00:00Z", 1.0)
    assert result["status"] == NOT_IMPLEMENTED and result["verified"] is True
    assert "behaviour not observed" in result["notes"] and "gang admitted failed" in result["notes"]
    static = build_result("fault_detection", [make_part("conditions", "static", "passed", "fresh")], [],
                          "2026-01-01T00:00:00Z", 1.0, static_only="faults are not injected")
    assert static["status"] == IMPLEMENTED and static["behavioural"] is False
    assert static["static_only"] == "faults are not injected"
    assert "static-only requirement: faults are not injected" in static["notes"] and "conditions: fresh" in \
        static["notes"]


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
