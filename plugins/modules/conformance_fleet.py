#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: conformance_fleet
short_description: Write the fleet summary of Kubernetes AI conformance reports of many clusters
description:
  - Reads the report of every cluster of a fleet run (one report folder per cluster, written by
    M(k8s_ai.conformance.conformance_report)) and writes C(fleet.html), C(fleet.json) and C(fleet.md) into O(dest)
    - one row per cluster (state, checklist, server version, verdict, MUST requirements not Implemented, drift,
    link to its C(report.html)) and a requirement-by-cluster table.
  - A cluster whose report is missing or unreadable is listed with its error, never dropped and never counted as
    conformant.
version_added: 0.1.0
author: k8s_ai.conformance developers (@k8s-ai-conformance)
options:
  dest:
    description: Directory to write C(fleet.html), C(fleet.json) and C(fleet.md) into (created when missing).
    type: path
    required: true
  clusters:
    description: The clusters of the fleet.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the cluster (the inventory host).
        type: str
        required: true
      report_path:
        description: Folder (or JSON file) of the cluster's report; empty when none was written.
        type: str
      error:
        description: What stopped or failed the cluster's run, if anything.
        type: str
  expected:
    description:
      - Names of every cluster of the fleet. One that is not in O(clusters) is listed as having no report (its run
        failed before it could say where its report is).
    type: list
    elements: str
    default: []
notes:
  - The module always runs, also in check mode (it writes only report files, never to a cluster).
"""

EXAMPLES = r"""
- name: Write the fleet summary
  k8s_ai.conformance.conformance_fleet:
    dest: ./ai-conformance-report
    clusters:
      - {name: gpu-east, report_path: ./ai-conformance-report/gpu-east/v1.35/gpu-east}
      - {name: gpu-west, error: "verify_kubeconfig: /etc/k8s/west.kubeconfig does not exist"}
"""

RETURN = r"""
paths:
  description: Files written.
  returned: always
  type: list
  elements: str
state:
  description:
    - Worst state among the clusters - V(no report), V(not verified), V(not conformant), V(regressed), V(conformant).
  returned: always
  type: str
counts:
  description: Number of clusters per state.
  returned: always
  type: dict
verdict:
  description: One line, e.g. C(1 of 2 cluster(s) conformant).
  returned: always
  type: str
lines:
  description: One line per cluster - name, state, verdict, drift.
  returned: always
  type: list
  elements: str
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils import fleet  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "clusters": {"type": "list", "elements": "dict", "required": True, "options": {
                "name": {"type": "str", "required": True},
                "report_path": {"type": "str"},
                "error": {"type": "str"},
            }},
            "expected": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    clusters = list(module.params["clusters"])
    named = {c["name"] for c in clusters}
    for name in module.params["expected"]:
        if name not in named:
            clusters.append({"name": name, "report_path": None,
                             "error": "the run of this cluster failed before it could say where its report is"})
    try:
        doc, paths = fleet.write(module.params["dest"], clusters)
    except OSError as exc:
        module.fail_json(msg="cannot write the fleet summary under %s: %s" % (module.params["dest"], exc))
    except Exception as exc:  # never a bare traceback for the user
        module.fail_json(msg="conformance_fleet failed: %s: %s" % (exc.__class__.__name__, exc),
                         exception=traceback.format_exc())
    module.exit_json(changed=True, paths=paths, state=doc["state"], counts=doc["counts"], verdict=doc["verdict"],
                     lines=fleet.lines(doc))


if __name__ == "__main__":
    main()
