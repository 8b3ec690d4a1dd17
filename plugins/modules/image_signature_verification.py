#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: image_signature_verification
short_description: Verify that admission enforces container image signatures
description:
  - Whitepaper check (image signature verification).
  - Static - an admission policy that verifies image signatures is in place - sigstore policy-controller
    ClusterImagePolicies, Kyverno ClusterPolicies with C(verifyImages) rules or ImageValidatingPolicies, or Ratify
    verifiers.
  - Negative - a pod with an unsigned image (I(unsigned_image)) is rejected at admission (server-side dry run, in a
    namespace opted in to enforcement).
  - Positive - a pod with a signed image the policy trusts (I(signed_image)) is admitted (server-side dry run).
    Without I(signed_image) this part cannot be chosen for you and reports that it was not run, so the check is
    at most Partially Implemented - a policy that refuses every image also refuses the unsigned one.
  - The refusal must come from a signature verdict (its message names a signature, verification, cosign,
    notation, attestation or sigstore); another policy's or quota's refusal fails the negative case.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  unsigned_image:
    description: An image reference that carries no signature trusted by the policy.
    type: str
    default: docker.io/library/busybox:1.36
  signed_image:
    description: An image reference signed by a key/identity the policy trusts.
    type: str
  namespace_labels:
    description: Labels set on the probe namespace so that enforcement applies to it.
    type: dict
    default: {policy.sigstore.dev/include: "true"}
"""

EXAMPLES = r"""
- name: Verify image signature enforcement
  k8s_ai.conformance.image_signature_verification:
    kubeconfig: "{{ kubeconfig }}"
    signed_image: registry.example.com/ai/serving@sha256:0123...
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
    evidence: {description: Policies found and admission answers., type: list, returned: always}
"""

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import pod_manifest  # noqa: E402

ENGINES = (
    ("policy.sigstore.dev/v1beta1", "clusterimagepolicies", "sigstore policy-controller ClusterImagePolicy", None),
    ("policy.sigstore.dev/v1alpha1", "clusterimagepolicies", "sigstore policy-controller ClusterImagePolicy", None),
    ("kyverno.io/v1", "clusterpolicies", "Kyverno ClusterPolicy with verifyImages",
     lambda p: any(r.get("verifyImages") for r in (p.get("spec") or {}).get("rules") or [])),
    ("policies.kyverno.io/v1", "imagevalidatingpolicies", "Kyverno ImageValidatingPolicy", None),
    ("policies.kyverno.io/v1alpha1", "imagevalidatingpolicies", "Kyverno ImageValidatingPolicy", None),
    ("config.ratify.deislabs.io/v1beta1", "verifiers", "Ratify verifier", None),
)
# What a refusal must mention to be a signature verdict; "policy" alone is not one (any admission policy says it).
SIGNATURE_WORDS = ("signature", "signed", "verif", "cosign", "notation", "attest", "sigstore")
ARGUMENT_SPEC = {
    "unsigned_image": {"type": "str", "default": "docker.io/library/busybox:1.36"},
    "signed_image": {"type": "str"},
    "namespace_labels": {"type": "dict", "default": {"policy.sigstore.dev/include": "true"}},
}


def verify(check):
    check.static("an image signature verification policy is enforced at admission", policy_present)
    check.negative("a pod with an unsigned image is rejected", unsigned_rejected)
    check.positive("a pod with a signed, trusted image is admitted", signed_admitted)


def policy_present(check):
    found = []
    for api_version, plural, label, keep in ENGINES:
        if plural not in check.cluster.served_resources(api_version):
            continue
        items = check.list(label, check.cluster.path(api_version, plural))
        items = [i for i in items if keep is None or keep(i)]
        found += ["%s %s" % (label, i["metadata"]["name"]) for i in items]
    check.require(found, "no signature verification policy (sigstore ClusterImagePolicy, Kyverno verifyImages, "
                         "ImageValidatingPolicy, Ratify verifier)")
    check.facts["policies"] = found
    return "; ".join(found[:8])


def admission(check, probe, name, image):
    if not check.facts.get("labelled"):
        path = check.cluster.path("v1", "namespaces", name=probe.namespace)
        labels = dict(check.params["namespace_labels"] or {})
        if labels:
            with check.evidence.step("opt the probe namespace in to enforcement", "PATCH " + path,
                                     request={"metadata": {"labels": labels}}):
                check.cluster.patch(path, {"metadata": {"labels": labels}})
        check.facts["labelled"] = True
    pod = pod_manifest(name, image=image)
    return probe.try_create(pod, title="admit pod with image %s (dry run)" % image, dry_run=True)


def unsigned_rejected(check, probe):
    check.require(check.facts.get("policies"), "not run: no signature verification policy")
    created, error = admission(check, probe, "unsigned", check.params["unsigned_image"])
    check.require(created is None, "pod with unsigned image %s was admitted" % check.params["unsigned_image"])
    message = (error.server_message or str(error)).lower()
    check.require(any(w in message for w in SIGNATURE_WORDS),
                  "rejected, but not for its signature: %s" % message[:200])
    return "rejected (%s): %s" % (error.status, (error.server_message or str(error))[:200])


def signed_admitted(check, probe):
    check.require(check.facts.get("policies"), "not run: no signature verification policy")
    image = check.params.get("signed_image")
    if not image:
        check.skip("not run: set signed_image to an image the policy trusts (it cannot be chosen for you)")
    created, error = admission(check, probe, "signed", image)
    check.require(created is not None, "signed image %s rejected: %s" % (image, error and error.server_message))
    return "pod with signed image %s admitted" % image


def main():
    run_check("image_signature_verification", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
