#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: run_checks
short_description: Run many check modules at once on the controller, each as soon as it may start
description:
  - What the verify role runs. The checks (module names of this collection, e.g. C(dra_support)) run in the
    controller's process, in threads, with one connection pool to the API server. There are no batches - a check
    starts the moment fewer than O(concurrency) checks run and the resources it uses are free (O(uses)).
  - Discovery documents and the accelerator discovery (DeviceClasses, ResourceSlices, Nodes) are fetched once per
    run and shared by the checks; each check still records them as evidence and counts its own API requests.
  - "One progress line per requirement is printed the moment its check finishes
    (C(dra_support [MUST]: Implemented - ...))."
  - Each check's options are validated as the module itself would validate them; a check whose options are bad
    gets an error part naming them (not verified), and the other checks run.
  - A check still running after O(check_timeout) seconds is recorded in RV(missing) as not finished; its probe
    namespace carries an expiry and is removed by the next run.
  - Each check can also be run on its own as a module, e.g. C(ansible -m k8s_ai.conformance.dra_support localhost).
version_added: 0.2.0
author: k8s_ai.conformance developers (@k8s-ai-conformance)
options:
  checks:
    description: Check module names, in the order they should start when they can.
    type: list
    elements: str
    required: true
  common:
    description:
      - Options given to every check (the options all check modules share - kubeconfig, context,
        validate_certs, timeout, probe_namespace_prefix).
    type: dict
    default: {}
  options:
    description: Per-check options by check name, merged over O(common) (see C(ansible-doc k8s_ai.conformance.<check>)).
    type: dict
    default: {}
  node_facts:
    description: Node facts (module accelerator_node_facts, by host) given to the checks of O(node_facts_checks).
    type: dict
    default: {}
  node_facts_checks:
    description: Checks that take the option C(node_facts).
    type: list
    elements: str
    default: []
  concurrency:
    description: How many checks run at once (at least 1).
    type: int
    default: 8
  uses:
    description:
      - "What the checks use, C({check: {resource: shared|exclusive}}). Any number of checks share a resource;
        an exclusive user has it alone. Checks with nothing in common run side by side."
    type: dict
    default: {}
  check_timeout:
    description: Seconds one check may run once started.
    type: int
    default: 900
  labels:
    description:
      - Progress labels by check name (the requirements it answers, e.g. C(dra_support [MUST])); the check name
        when absent.
    type: dict
    default: {}
notes:
  - Runs on the controller as an action plugin; the connection of the host is not used.
  - Never changes the cluster beyond the checks' probe objects, which are deleted; C(changed) is always false.
  - In check mode the checks run their static parts only, as each module does.
seealso:
  - module: k8s_ai.conformance.dra_support
  - module: k8s_ai.conformance.conformance_report
"""

EXAMPLES = r"""
- name: Run two checks, DRA and gang scheduling, at most two at a time
  k8s_ai.conformance.run_checks:
    checks: [dra_support, gang_scheduling]
    common:
      kubeconfig: ~/.kube/config
      timeout: 60
    options:
      gang_scheduling:
        cluster_queue: gpu-queue
    concurrency: 2
  register: run

- name: The checks that use the whole accelerator capacity never overlap the ones that take a device
  k8s_ai.conformance.run_checks:
    checks: [cluster_autoscaling, dra_support, gpu_sharing]
    uses:
      cluster_autoscaling: {accelerators: exclusive}
      dra_support: {accelerators: shared}
      gpu_sharing: {accelerators: shared}
"""

RETURN = r"""
results:
  description: One result per check that ran (schema of the check modules' C(result)), in the order of O(checks).
  returned: always
  type: list
  elements: dict
missing:
  description: Checks without a usable result, with the reason (module not found, bad options, not finished).
  returned: always
  type: dict
timing:
  description:
    - Per check - C(queued_s) (seconds from the start of the run until it started) and C(duration_s); and C(wall_s)
      for the whole run.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = {
    "checks": {"type": "list", "elements": "str", "required": True},
    "common": {"type": "dict", "default": {}},
    "options": {"type": "dict", "default": {}},
    "node_facts": {"type": "dict", "default": {}},
    "node_facts_checks": {"type": "list", "elements": "str", "default": []},
    "concurrency": {"type": "int", "default": 8},
    "uses": {"type": "dict", "default": {}},
    "check_timeout": {"type": "int", "default": 900},
    "labels": {"type": "dict", "default": {}},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg="k8s_ai.conformance.run_checks runs on the controller as an action plugin; "
                         "call it as a task, not through the module path")


if __name__ == "__main__":
    main()
