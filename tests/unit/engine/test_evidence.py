import time

from ansible_collections.k8s_ai.conformance.plugins.module_utils import evidence as ev


def test_trim_drops_managed_fields_last_applied_and_secret_data():
    obj = {"kind": "Secret", "metadata": {"name": "s", "managedFields": [{"x": 1}],
                                          "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}",
                                                          "keep": "me"}},
           "data": {"token": "c2VjcmV0"}}
    out = ev.trim(obj)
    assert "managedFields" not in out["metadata"]
    assert out["metadata"]["annotations"] == {"keep": "me"}
    assert out["data"] == {"token": "<redacted>"}
    assert obj["data"]["token"] == "c2VjcmV0"  # the original is untouched


def test_trim_cuts_long_lists_and_strings():
    out = ev.trim({"items": list(range(100)), "text": "x" * 5000})
    assert len(out["items"]) == ev.MAX_LIST_ITEMS + 1 and out["items"][-1] == "... 80 more"
    assert len(out["text"]) < 2100 and out["text"].endswith("(3000 characters cut)")


def test_trim_bounds_depth():
    deep = {}
    node = deep
    for _unused in range(50):
        node["a"] = {}
        node = node["a"]
    text = repr(ev.trim(deep))
    assert "..." in text and text.count("{") <= ev.MAX_DEPTH + 2


def test_step_records_timing_response_and_exception():
    evidence = ev.Evidence()
    with evidence.step("create", "POST /x", request={"a": 1}) as step:
        time.sleep(0.01)
        step.response = {"ok": True}
    try:
        with evidence.step("boom", "GET /y"):
            raise RuntimeError("denied")
    except RuntimeError:
        pass
    first, second = evidence.entries
    assert first["request"] == {"a": 1} and first["response"] == {"ok": True} and first["duration_s"] >= 0.01
    assert second["error"] == "denied" and "response" not in second
