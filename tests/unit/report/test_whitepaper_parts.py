"""WL-2.2 (JobSet) is judged on robust_controller's JobSet parts alone: that check is Implemented on whichever
operator works (KubeRay, Kueue), which says nothing about JobSet."""

from conftest import make_result

from ansible_collections.k8s_ai.conformance.plugins.module_utils import report


def part(name, kind, outcome, required=True):
    return {"name": name, "kind": kind, "required": required, "outcome": outcome, "detail": "d"}


def robust(*parts):
    res = make_result("robust_controller")
    res["parts"] = [part("an AI operator's CRDs are Established", "static", "passed")] + list(parts)
    return res


def wl22(res):
    rep = report.build_report("1.35", "lab", [res])
    return [r for r in rep.whitepaper_rows() if r["id"] == "WL-2.2"][0]


def operator_parts(op, outcome="passed", required=True):
    return [part("%s: validating webhook registered and its pods Ready" % op, "static", outcome, required),
            part("%s: a valid custom resource is accepted and reconciled" % op, "positive", outcome, required),
            part("%s: an invalid custom resource is rejected by the webhook" % op, "negative", outcome, required)]


def test_jobset_working_is_full_even_when_another_operator_carries_the_verdict():
    row = wl22(robust(*(operator_parts("kuberay") + operator_parts("jobset", required=False))))
    assert row["status"] == "Implemented" and row["support"] == "Full"
    assert "jobset parts: Implemented (3/3 passed)" in row["summary"]


def test_no_jobset_is_no_support_although_robust_controller_is_implemented():
    res = robust(*operator_parts("kuberay"))
    assert res["status"] == "Implemented"
    row = wl22(res)
    assert row["status"] == "Not Implemented" and row["support"] == "No"
    assert "no jobset part ran" in row["summary"]


def test_a_broken_jobset_webhook_is_partial_at_most():
    parts = operator_parts("kuberay") + operator_parts("jobset", required=False)
    parts[-1] = part("jobset: an invalid custom resource is rejected by the webhook", "negative", "failed", False)
    row = wl22(robust(*parts))
    assert row["status"] == "Partially Implemented" and row["support"] == "Partial"
