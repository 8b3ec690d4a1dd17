#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: conformance_validate
short_description: Validate a PRODUCT.yaml of a Kubernetes AI conformance submission as upstream does
description:
  - Gives the verdict of the upstream validator of cncf/k8s-ai-conformance (C(scripts/validate.go)), with its
    messages, on a C(PRODUCT.yaml) - our own code applying the same rules. Stricter opinions of ours are warnings.
  - "Loading as C(yaml.v3) loads into validate.go's typed structs - only the first YAML document; duplicate mapping
    keys and values of the wrong type anywhere reject the whole file; any scalar is text in a string field
    (C(notes: 42) is the string C(42)); null list items are dropped."
  - The checklist version is the C(vX.Y) directory above the product folder (C(.../v1.37/<product>/PRODUCT.yaml)).
    Metadata - required fields (camelCase or snake_case), strings, not empty, no C([placeholder]), the
    C(k8sConformanceUrl) pattern. Spec - every category and requirement id of the checklist, the four statuses,
    MUST requirements Implemented, notes for N/A.
  - Evidence - local files (bare, C(file://), with a C(#fragment); absolute paths are joined with the product
    folder) must exist inside the product folder; C(junit.xml), C(results.json) (C(go test -json)) and C(e2e.log)
    are parsed, a failing test is an error, the C(#Test...) fragment or the test validate.go maps the id to
    (TestSecureAcceleratorAccess, TestGangScheduling, TestAcceleratorClusterAutoscaling) must pass; from v1.37 an
    Implemented mapped requirement without such an artifact is a warning.
  - The network rules (URLs reachable, C(vendorName) a CNCF member in the landscape) are listed in
    RV(results[].not_checked) unless O(online=true).
  - The same validator runs from the command line -
    C(python -m ansible_collections.k8s_ai.conformance.plugins.module_utils.validate PATH...).
version_added: 0.1.0
author: k8s_ai.conformance developers (@k8s-ai-conformance)
options:
  path:
    description: PRODUCT.yaml file(s) to validate.
    type: list
    elements: path
    required: true
  version:
    description: Checklist version to validate against. Default - the C(vX.Y) directory above each product folder.
    type: str
  na_rule:
    description:
      - N/A on a MUST requirement. V(upstream) - what validate.go on main does today, a MUST must be Implemented.
      - "V(pending) - the open upstream change (cncf/k8s-ai-conformance PR #146) - C(cluster_autoscaling) may be N/A
        with notes (a warning), notes of only whitespace count as missing."
      - Every result says which rule applied (RV(results[].rule)).
    type: str
    choices: [upstream, pending]
    default: upstream
  online:
    description: Also check the network rules - every URL reachable (HEAD, then GET), C(vendorName) among the CNCF
      members of the CNCF landscape.
    type: bool
    default: false
  strict:
    description: Treat warnings as errors.
    type: bool
    default: false
  fail_on_error:
    description: Fail the task when a file is invalid. V(false) only reports.
    type: bool
    default: true
notes:
  - Read-only; supports check mode.
  - Any input gives one line per problem in RV(lines), never a traceback - an empty file, a file that is not YAML,
    not a mapping, not UTF-8 or of the wrong types.
"""

EXAMPLES = r"""
- name: Validate the report written by the verify role
  k8s_ai.conformance.conformance_validate:
    path: ai-conformance-report/v1.37/my-platform/PRODUCT.yaml

- name: Validate with the pending upstream rule for N/A on cluster_autoscaling, and check the URLs
  k8s_ai.conformance.conformance_validate:
    path: ai-conformance-report/v1.37/my-platform/PRODUCT.yaml
    na_rule: pending
    online: true

- name: Validate every submission in a checkout of cncf/k8s-ai-conformance, report only
  k8s_ai.conformance.conformance_validate:
    path: "{{ query('ansible.builtin.fileglob', 'k8s-ai-conformance/v1.35/*/PRODUCT.yaml') }}"
    fail_on_error: false
  register: validation
"""

RETURN = r"""
valid:
  description: Every file passed (no errors; with O(strict), no warnings either).
  returned: always
  type: bool
lines:
  description: One line per problem, each starting with the file - a verdict line per file, then its errors,
    warnings and notes.
  returned: always
  type: list
  elements: str
  sample:
    - "v1.37/lab/PRODUCT.yaml: INVALID (checklist v1.37; rules of validate.go, na_rule=upstream, network rules not
      checked offline)"
    - "v1.37/lab/PRODUCT.yaml: error: Metadata field vendorName has placeholder value: [Vendor Name]"
results:
  description: One entry per file.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: "The file."
      type: str
    version:
      description: "Checklist version used."
      type: str
    valid:
      description: "No errors."
      type: bool
    errors:
      description: "What validate.go rejects, with its messages (one line each)."
      type: list
      elements: str
    warnings:
      description: "validate.go's warnings, and our stricter opinions (they never make a file invalid)."
      type: list
      elements: str
    info:
      description: "SHOULD requirements left unanswered, rules not checked offline, notes on the N/A rule."
      type: list
      elements: str
    not_checked:
      description: "Network rules not checked (without O(online))."
      type: list
      elements: str
    na_rule:
      description: "The N/A rule applied (V(upstream) or V(pending))."
      type: str
    online:
      description: "Whether the network rules were checked."
      type: bool
    rule:
      description: "The rules applied, in words."
      type: str
  sample:
    - path: ai-conformance-report/v1.37/lab/PRODUCT.yaml
      version: "1.37"
      valid: false
      errors: ["Metadata field vendorName has placeholder value: [Vendor Name]"]
      warnings: []
      info: []
      not_checked: ["vendorName 'Example' is a CNCF member in the CNCF Landscape"]
      na_rule: upstream
      online: false
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils import validate  # noqa: E402


def run(module):
    params = module.params
    members = None
    if params["online"]:  # fetchCNCFMembers once for all files, as validate.go's main does
        try:
            members = validate.fetch_cncf_members()
        except ValueError as exc:
            members = exc
    results = [validate.validate_file(p, params["version"], params["na_rule"], params["online"], members)
               for p in params["path"]]
    strict = params["strict"]
    lines = [line for r in results for line in validate.result_lines(r, strict)]
    valid = all(r["valid"] and not (strict and r["warnings"]) for r in results)
    out = {"changed": False, "valid": valid, "results": results, "lines": lines}
    if not valid and params["fail_on_error"]:
        problems = ["%s: %s" % (r["path"], e) for r in results for e in r["errors"] + (r["warnings"] if strict else [])]
        module.fail_json(msg="PRODUCT.yaml validation failed (%d problem(s)): %s"
                         % (len(problems), "; ".join(problems)), **out)
    module.exit_json(**out)


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "list", "elements": "path", "required": True},
            "version": {"type": "str"},
            "na_rule": {"type": "str", "choices": ["upstream", "pending"], "default": "upstream"},
            "online": {"type": "bool", "default": False},
            "strict": {"type": "bool", "default": False},
            "fail_on_error": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    try:
        run(module)
    except Exception as exc:  # pylint: disable=broad-except  # never a bare traceback for the user
        module.fail_json(msg="conformance_validate failed: %s: %s" % (exc.__class__.__name__, exc),
                         exception=traceback.format_exc())


if __name__ == "__main__":
    main()
