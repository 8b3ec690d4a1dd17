"""A broken cluster gets the right non-Implemented answer: the checks run against the lab while one of
its real components is stopped or unreachable, and the component is restored afterwards."""

import json
import os
import subprocess
import sys

import pytest

from ..checks.test_core_checks import run

# isort: split
from ansible_collections.k8s_ai.conformance.plugins.modules import (  # noqa: E402  (path set up by the import above)
    dra_support,
    gang_scheduling,
    robust_controller,
)

LAB_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "lab", "lab.py")
SHORT = {"timeout": 20}


def lab(*args):
    subprocess.run([sys.executable, LAB_PY] + list(args), check=True, capture_output=True, text=True)


@pytest.fixture
def stopped(request):
    """Stop the named lab process for the test; start it again afterwards, whatever happened."""
    name = request.param
    lab("stop", name)
    yield name
    lab("start", name)
    if name in ("kueue", "jobset"):
        lab("controllers", "--no-install")  # waits until its webhooks serve again


def not_passed(result, kinds):
    return [p for p in result["parts"] if p["kind"] in kinds and p["required"] and p["outcome"] != "passed"]


@pytest.mark.parametrize("stopped", ["kube-scheduler"], indirect=True)
def test_scheduler_stopped_dra_support_is_not_implemented(lab_kubeconfig, stopped):
    result = run(dra_support, lab_kubeconfig, **SHORT)
    assert result["status"] != "Implemented", json.dumps(result["parts"], indent=1)
    # The API still serves DRA: the static part passes; the pod is never scheduled.
    assert [p["outcome"] for p in result["parts"] if p["kind"] == "static"] == ["passed"] * len(
        [p for p in result["parts"] if p["kind"] == "static"])
    assert not_passed(result, ("positive",)), result["parts"]


@pytest.mark.parametrize("stopped", ["kueue"], indirect=True)
def test_kueue_controller_stopped_gang_scheduling_is_not_implemented(lab_kubeconfig, stopped):
    result = run(gang_scheduling, lab_kubeconfig, **SHORT)
    assert result["status"] != "Implemented", json.dumps(result["parts"], indent=1)
    assert not_passed(result, ("positive", "negative")), result["parts"]


def test_unreachable_webhook_is_not_taken_for_a_rejection(lab_kubeconfig, kubectl):
    """Kueue's webhook Service points at a port nobody listens on: an invalid object is still refused
    (failurePolicy Fail), but by the API server's failed call, which must not count as the operator's
    webhook rejecting it."""
    service = ["-n", "kueue-system", "get", "service", "kueue-webhook-service", "-o", "json"]
    original = json.loads(kubectl.run(*service).stdout)["spec"]["ports"][0]["targetPort"]

    def target_port(port):
        patch = json.dumps([{"op": "replace", "path": "/spec/ports/0/targetPort", "value": port}])
        kubectl.run("-n", "kueue-system", "patch", "service", "kueue-webhook-service", "--type=json", "-p", patch)
    target_port(9)  # discard: nobody listens there
    try:
        result = run(robust_controller, lab_kubeconfig, operators=["kueue"], **SHORT)
    finally:
        target_port(original)
    assert result["status"] != "Implemented", json.dumps(result["parts"], indent=1)
    assert not_passed(result, ("positive", "negative")), result["parts"]
