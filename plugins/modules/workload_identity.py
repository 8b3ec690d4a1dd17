#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: workload_identity
short_description: Verify workload identity (SPIFFE/SPIRE provider, audience-bound service-account tokens)
description:
  - Whitepaper check (workload identity, e.g. SPIFFE).
  - Static - a SPIFFE workload identity provider is installed - SPIRE's ClusterSPIFFEID API, a SPIFFE CSI driver
    (C(csi.spiffe.io), cert-manager C(spiffe.csi.cert-manager.io)) or a SPIRE agent DaemonSet.
  - Positive - a workload's identity is issued and verifiable - a token requested for a probe service account and
    an audience is accepted by TokenReview for that audience and names the workload's service account.
  - Negative - the same token presented for another audience is rejected; and after the service account is
    deleted, the bound token is rejected.
  - The token cases need the SPIFFE provider found by the static part - audience-bound, revocable service-account
    tokens are what a SPIFFE provider's Kubernetes attestation (SPIRE's C(k8s_psat)) verifies, but the API server
    issues them on any cluster, so without a provider they prove nothing about workload identity and fail.
    That the provider issues an SVID to the pod is not verified (the notes say so).
  - Tokens are never written to the evidence.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  audience:
    description: Audience requested for the probe token.
    type: str
    default: ai-conformance.example
"""

EXAMPLES = r"""
- name: Verify workload identity
  k8s_ai.conformance.workload_identity:
    kubeconfig: "{{ kubeconfig }}"
  delegate_to: localhost
"""

RETURN = r"""
result:
  description: Check result (docs/architecture.md schema).
  returned: always
  type: dict
  contains:
    status: {description: "Implemented, Partially Implemented, Not Implemented or N/A.", type: str, returned: always}
    verified: {description: False when a part could not run., type: bool, returned: always}
    parts: {description: Parts with outcome and detail., type: list, returned: always}
    evidence: {description: Providers found and token reviews (without tokens)., type: list, returned: always}
"""

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402

SPIFFE_CSI_DRIVERS = ("csi.spiffe.io", "spiffe.csi.cert-manager.io")
ARGUMENT_SPEC = {
    "audience": {"type": "str", "default": "ai-conformance.example"},
}


def verify(check):
    check.note("the SPIFFE provider's SVID issuance to a pod is not verified; the token cases show the audience-"
               "bound, revocable workload credentials its Kubernetes attestation relies on")
    check.static("a SPIFFE workload identity provider is installed", spiffe_provider)
    check.positive("an audience-bound workload token is issued and accepted for its audience", token_accepted)
    check.negative("the token is rejected for another audience", wrong_audience_rejected)
    check.negative("the token is rejected once its service account is deleted", deleted_account_rejected,
                   required=False)


def spiffe_provider(check):
    found = []
    if not check.crds_established(["clusterspiffeids.spire.spiffe.io"]):
        found.append("SPIRE controller manager (ClusterSPIFFEID)")
    drivers = [d["metadata"]["name"] for d in check.list("CSIDrivers", "/apis/storage.k8s.io/v1/csidrivers")]
    found += ["SPIFFE CSI driver %s" % d for d in drivers if d in SPIFFE_CSI_DRIVERS]
    agents = [d for d in check.list("DaemonSets (all namespaces)", "/apis/apps/v1/daemonsets")
              if "spire-agent" in d["metadata"]["name"]]
    found += ["SPIRE agent %s/%s" % (d["metadata"]["namespace"], d["metadata"]["name"]) for d in agents]
    check.require(found, "no SPIFFE provider (no ClusterSPIFFEID API, no SPIFFE CSI driver, no spire-agent DaemonSet)")
    check.facts["provider"] = found
    return "; ".join(found)


def review(check, token, audience, title):
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token, "audiences": [audience]}}
    with check.evidence.step(title, "POST /apis/authentication.k8s.io/v1/tokenreviews",
                             request={"spec": {"token": "<redacted>", "audiences": [audience]}}) as step:
        status = check.cluster.create("/apis/authentication.k8s.io/v1/tokenreviews", body).get("status") or {}
        step.response = status
    return status


def token_accepted(check, probe):
    check.require(check.facts.get("provider"), "not meaningful without a SPIFFE provider: the API server issues "
                  "audience-bound tokens on any cluster")
    sa = probe.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "workload"}})
    path = check.cluster.path("v1", "serviceaccounts", probe.namespace, "workload", "token")
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"audiences": [check.params["audience"]], "expirationSeconds": 600}}
    with check.evidence.step("request a token for the workload", "POST " + path, request=request) as step:
        answer = check.cluster.create(path, request)
        step.response = {"expirationTimestamp": (answer.get("status") or {}).get("expirationTimestamp"),
                         "token": "<redacted>"}
    token = (answer.get("status") or {}).get("token")
    check.require(token, "TokenRequest returned no token")
    status = review(check, token, check.params["audience"], "review the token for its audience")
    expected = "system:serviceaccount:%s:%s" % (probe.namespace, sa["metadata"]["name"])
    user = (status.get("user") or {}).get("username")
    check.require(status.get("authenticated") is True, "TokenReview did not authenticate the token: %s"
                  % status.get("error", ""))
    check.require(user == expected, "token identifies %s, expected %s" % (user, expected))
    check.facts["token"], check.facts["sa"] = token, sa
    return "token for audience %s authenticated as %s" % (check.params["audience"], user)


def wrong_audience_rejected(check, probe):
    token = check.facts.get("token") or check.fail("no token was issued")
    status = review(check, token, "ai-conformance-other-audience", "review the token for another audience")
    check.require(status.get("authenticated") is not True, "token accepted for an audience it was not issued for")
    return "rejected for another audience: %s" % (status.get("error") or "not authenticated")


def deleted_account_rejected(check, probe):
    token, sa = check.facts.get("token"), check.facts.get("sa")
    check.require(token and sa, "no token was issued")
    probe.delete(sa)
    probe.wait_until(lambda: review(check, token, check.params["audience"], "review after deleting the account"),
                     lambda s: s.get("authenticated") is not True, "token rejected after its account is deleted",
                     timeout=min(check.timeout, 30))
    return "bound token rejected once the service account was deleted"


def main():
    run_check("workload_identity", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
