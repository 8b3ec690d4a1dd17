"""tests/lab/lab.py settings that size the simulated cluster's load (no lab needed)."""

import os
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
import lab  # noqa: E402


def test_default_lab_keeps_a_kubelets_lease_and_the_default_grace_period():
    assert lab.node_lease_seconds(3) == 40
    assert lab.node_grace_flags(3) == []


def test_lease_renewals_stay_under_the_lab_budget_at_2000_nodes():
    lease = lab.node_lease_seconds(2001)
    renewals_per_second = 2001 / (lease / 4)  # kwok renews at a quarter of the lease, as a kubelet does
    assert renewals_per_second <= lab.LEASE_RENEWALS_PER_S
    grace = int(lab.node_grace_flags(2001)[0].split("=")[1].rstrip("s"))
    assert grace > lease  # a node is not marked NotReady while its lease is still valid
