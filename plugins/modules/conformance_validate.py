#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: conformance_validate
short_description: Validate a PRODUCT.yaml of a Kubernetes AI conformance submission offline
description:
  - Checks a C(PRODUCT.yaml) against every rule of the upstream validator of cncf/k8s-ai-conformance
    (C(scripts/validate.go)) that can be checked without network access - the checklist version taken from the
    path (C(.../v1.35/<platform>/PRODUCT.yaml)); the required metadata fields (camelCase or snake_case), strings
    and not empty, no C([placeholder]) values, the C(k8sConformanceUrl) pattern
    C(https://github.com/cncf/k8s-conformance/tree/(master|main)/vX.Y/<product>), an SVG/EPS/AI
    C(productLogoUrl); every category and requirement id of the checklist; statuses from the four allowed; MUST
    requirements Implemented; notes for N/A; local evidence files present beside the file.
  - A MUST answered N/A is a warning (our status rules allow N/A with a reason; today's upstream validator rejects
    it). What needs the network upstream (URLs reachable, vendorName a CNCF member) is listed in RV(results[].info).
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
    description: Checklist version to validate against. Default - from each path (C(v1.35) directory).
    type: str
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
"""

EXAMPLES = r"""
- name: Validate the report written by the verify role
  k8s_ai.conformance.conformance_validate:
    path: ai-conformance-report/v1.35/my-platform/PRODUCT.yaml

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
      description: "Rule violations (the upstream validator would reject these)."
      type: list
      elements: str
    warnings:
      description: "Findings that are not errors here (MUST answered N/A and version mismatches)."
      type: list
      elements: str
    info:
      description: "What was not checked offline, SHOULD requirements left unanswered."
      type: list
      elements: str
  sample:
    - path: ai-conformance-report/v1.35/lab/PRODUCT.yaml
      version: "1.35"
      valid: false
      errors: ["Metadata field vendorName has placeholder value: [Vendor Name]"]
      warnings: []
      info: []
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils import validate  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "list", "elements": "path", "required": True},
            "version": {"type": "str"},
            "strict": {"type": "bool", "default": False},
            "fail_on_error": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    results = [validate.validate_file(p, module.params["version"]) for p in module.params["path"]]
    strict = module.params["strict"]
    valid = all(r["valid"] and not (strict and r["warnings"]) for r in results)
    out = {"changed": False, "valid": valid, "results": results}
    if not valid and module.params["fail_on_error"]:
        problems = ["%s: %s" % (r["path"], e) for r in results for e in r["errors"] + (r["warnings"] if strict else [])]
        module.fail_json(msg="PRODUCT.yaml validation failed: %s" % "; ".join(problems), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
