# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function


class ModuleDocFragment:
    # Common arguments of every check module (k8s_ai.conformance.cluster).
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or its content as a YAML string or a dict.
      - When omitted, C($KUBECONFIG), then C(~/.kube/config), then the in-cluster service account are used.
    type: raw
  context:
    description:
      - Kubeconfig context to use. Defaults to the kubeconfig's current-context.
    type: str
  timeout:
    description:
      - Seconds to wait for each awaited condition of a behavioural probe (pod scheduled, claim allocated, ...).
    type: int
    default: 60
  probe_namespace_prefix:
    description:
      - Prefix of the throw-away namespaces the behavioural probes create (C(<prefix>-<check>-<random>)).
      - Probe namespaces are labelled C(app.kubernetes.io/managed-by=k8s-ai-conformance) and
        C(k8s-ai-conformance/probe=true); leftovers past their expiry are garbage-collected by the next run.
    type: str
    default: ai-conformance-probe
  command_node_selector:
    description:
      - "Node labels for the probe pods that must really run a command (their log, traffic or kernel is the
        evidence), e.g. C({lab.k8s-ai-conformance.io/real-node: 'true'}) on a cluster that mixes simulated
        nodes (kwok) with real ones. Merged into each such pod's nodeSelector (keys it already has are kept);
        pods with a nodeName keep it. Empty - any node."
    type: dict
    default: {}
  validate_certs:
    description:
      - Verify the API server's TLS certificate.
    type: bool
    default: true
    aliases: [verify_ssl]
notes:
  - Runs on the controller (use C(delegate_to=localhost) or a local connection). Needs the C(kubernetes) Python package.
  - Never changes the cluster beyond its own probe objects, which are always deleted; C(changed) is always false.
  - In check mode only the static part runs; behavioural parts are reported with outcome C(skipped).
requirements:
  - kubernetes >= 24.2.0
  - PyYAML
"""
