#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: workload_sandboxing
short_description: Verify that workloads can run in a sandboxed runtime (gVisor, Kata, ...)
description:
  - Checks the C(workload_sandboxing) requirement (security, SHOULD, checklist 1.37).
  - Static - a RuntimeClass whose handler is a sandbox runtime (C(runsc), C(gvisor), C(kata*), C(firecracker),
    C(clh), ...) exists, or the one named by I(runtime_class).
  - Static (with I(node_facts)) - the handler is configured in containerd on the nodes the RuntimeClass
    schedules to (not only a RuntimeClass object in the API).
  - Positive - a pod with that C(runtimeClassName) is admitted, scheduled to a node that supports it and runs.
  - Positive - isolation - the pod's log shows a kernel release different from the host kernel the node
    reports (a sandbox has its own kernel or kernel emulation). Needs a real container runtime; on a
    simulated node there is no log and the part reports that it could not run.
  - Negative - the container runtime refuses a handler it does not have - a pod of a probe-owned RuntimeClass
    whose handler no node configures, pinned to the node where the sandboxed pod ran, gets the kubelet's
    C(FailedCreatePodSandBox) event and never runs. Only a runtime that really dispatches on the handler name
    refuses it (a simulated node runs it, so the case fails there); it runs only after the sandboxed pod ran.
    (That admission rejects a RuntimeClass name that does not exist holds on every cluster, sandbox or not, so it
    proves nothing about sandboxing and is not a part.)
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  runtime_class:
    description: RuntimeClass to probe. Default - the first RuntimeClass with a sandbox handler.
    type: str
  node_facts:
    description: Node facts keyed by node name (schema of C(accelerator_node_facts)); C(containerd.runtimes) is used.
    type: dict
    default: {}
  probe_image:
    description: Image of the probe pod (needs C(sh) and C(uname)).
    type: str
    default: busybox:1.36
"""

EXAMPLES = r"""
- name: Verify sandboxed workloads with gVisor
  k8s_ai.conformance.workload_sandboxing:
    kubeconfig: "{{ kubeconfig }}"
    runtime_class: gvisor
    node_facts: "{{ accelerator_facts_by_node | default({}) }}"
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
    parts: {description: "Static, positive and negative parts with outcome and detail.", type: list, returned: always}
    evidence: {description: What was created/read and what came back., type: list, returned: always}
"""

import re  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import command_pod  # noqa: E402

ARGUMENT_SPEC = {
    "runtime_class": {"type": "str"},
    "node_facts": {"type": "dict", "default": {}},
    "probe_image": {"type": "str", "default": "busybox:1.36"},
}
SANDBOX_HANDLER = re.compile(r"(runsc|gvisor|kata|firecracker|(^|[-_])fc($|[-_])|clh|cloud-hypervisor|dragonball|"
                             r"qemu|sandbox|urunc)", re.I)
KERNEL_MARK = "SANDBOX_KERNEL="
MISSING_HANDLER = "ai-conformance-no-such-handler"
SANDBOX_REFUSED = "FailedCreatePodSandBox"  # kubelet's event when the runtime cannot create the pod sandbox


def verify(check):
    check.static("a RuntimeClass with a sandbox handler exists", sandbox_runtime_class)
    if check.params.get("node_facts"):
        check.static("the sandbox handler is configured in containerd on the nodes", handler_on_nodes)
    else:
        check.note("node-side check of the containerd runtime configuration not done: needs hosts in the "
                   "accelerator_nodes inventory group (node_facts)")
    check.positive("a pod with the sandbox RuntimeClass is scheduled and runs", sandboxed_pod_runs)
    check.positive("the sandboxed pod sees a kernel other than the host's", sandbox_isolated)
    check.negative("the runtime refuses a RuntimeClass handler no node has", missing_handler_refused)


def is_sandbox_handler(handler):
    return bool(handler and SANDBOX_HANDLER.search(handler))


def matches_selector(labels, selector):
    return all((labels or {}).get(k) == v for k, v in (selector or {}).items())


def sandbox_runtime_class(check):
    classes = check.list("RuntimeClasses", "/apis/node.k8s.io/v1/runtimeclasses")
    wanted = check.params.get("runtime_class")
    if wanted:
        found = [rc for rc in classes if rc["metadata"]["name"] == wanted]
        check.require(found, "RuntimeClass %r not found (have: %s)" % (wanted, ", ".join(
            rc["metadata"]["name"] for rc in classes) or "none"))
    else:
        found = [rc for rc in classes if is_sandbox_handler(rc.get("handler"))]
        check.require(found, "no RuntimeClass with a sandbox handler (have: %s)" % (", ".join(
            "%s->%s" % (rc["metadata"]["name"], rc.get("handler")) for rc in classes) or "none"))
    rc = found[0]
    check.facts["runtime_class"] = rc
    return "RuntimeClass %s (handler %s)" % (rc["metadata"]["name"], rc.get("handler"))


def handler_on_nodes(check):
    rc = check.facts.get("runtime_class") or check.fail("no sandbox RuntimeClass found")
    selector = ((rc.get("scheduling") or {}).get("nodeSelector")) or {}
    nodes = {n["metadata"]["name"]: n for n in check.nodes()}
    configured, missing = [], []
    for name, facts in sorted(check.params["node_facts"].items()):
        facts = facts or {}
        node = nodes.get(facts.get("node_name") or name)
        if node is not None and not matches_selector(node["metadata"].get("labels"), selector):
            continue
        runtimes = ((facts.get("containerd") or {}).get("runtimes")) or []
        (configured if rc.get("handler") in runtimes else missing).append(name)
    check.record("containerd runtimes on nodes", "node_facts containerd.runtimes",
                 response={"handler": rc.get("handler"), "configured": configured, "missing": missing})
    check.require(configured, "handler %s is configured on no node in node_facts" % rc.get("handler"))
    check.require(not missing, "handler %s missing in containerd on %s" % (rc.get("handler"), ", ".join(missing)))
    return "handler %s configured on %s" % (rc.get("handler"), ", ".join(configured))


def probe_pod(check, name, runtime_class, node=None):
    # the marker is joined by the shell, so a pod spec echoed back never looks like a log line
    pod = command_pod(name, "echo \"%s\"\"%s\"$(uname -r); sleep 300" % (KERNEL_MARK[:7], KERNEL_MARK[7:]),
                      image=check.params["probe_image"], runtime_class=runtime_class)
    if node:
        pod["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    return pod


def sandboxed_pod_runs(check, probe):
    rc = check.facts.get("runtime_class") or check.fail("no sandbox RuntimeClass found")
    pod = probe.create(probe_pod(check, "sandboxed", rc["metadata"]["name"]))
    pod = probe.wait_for(pod, lambda p: (p.get("status") or {}).get("phase") in ("Running", "Succeeded"),
                         "sandboxed pod running")
    node_name = pod["spec"].get("nodeName")
    node = check.read("node of the sandboxed pod", check.cluster.path("v1", "nodes", name=node_name))
    selector = (rc.get("scheduling") or {}).get("nodeSelector") or {}
    check.require(matches_selector(node["metadata"].get("labels"), selector),
                  "pod ran on %s, which lacks the RuntimeClass node selector %s" % (node_name, selector))
    check.facts["pod"], check.facts["node"] = pod, node
    return "pod %s runs with RuntimeClass %s on %s" % (pod["metadata"]["name"], rc["metadata"]["name"], node_name)


def sandbox_isolated(check, probe):
    pod, node = check.facts.get("pod"), check.facts.get("node")
    check.require(pod, "no sandboxed pod ran")
    host_kernel = ((node.get("status") or {}).get("nodeInfo") or {}).get("kernelVersion") or "?"
    # no log, or a log without our line: the probe's command never ran (could not run, not failed)
    log = probe.wait_for_log(pod, KERNEL_MARK, "the sandboxed pod logged its kernel", timeout=min(check.timeout, 30))
    seen = log.split(KERNEL_MARK, 1)[1].split()[0] if KERNEL_MARK in log else ""
    check.record("kernel seen in the sandbox vs the host", "pod log vs node status.nodeInfo.kernelVersion",
                 response={"sandbox": seen, "host": host_kernel})
    check.require(seen and seen != host_kernel,
                  "sandbox kernel %r equals the host kernel %r: no kernel isolation observed" % (seen, host_kernel))
    return "sandbox kernel %s, host kernel %s" % (seen, host_kernel)


def missing_handler_refused(check, probe):
    pod, node = check.facts.get("pod"), check.facts.get("node")
    check.require(pod, "not meaningful: no sandboxed pod ran, so a refused one would prove nothing")
    node_name = node["metadata"]["name"]
    rc = probe.create({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"generateName": "probe-"},
                       "handler": MISSING_HANDLER})
    refused = probe.create(probe_pod(check, "no-handler", rc["metadata"]["name"], node=node_name))
    events = probe.wait_until(lambda: probe.list("v1", "Event", field_selector="involvedObject.name=no-handler"),
                              lambda evs: any(e.get("reason") == SANDBOX_REFUSED for e in evs),
                              "kubelet reports %s for the pod of handler %s on %s" % (SANDBOX_REFUSED, MISSING_HANDLER,
                                                                                      node_name))
    probe.stays(refused, lambda p: (p.get("status") or {}).get("phase") != "Running",
                "the pod of handler %s never runs" % MISSING_HANDLER, seconds=3)
    message = next(e.get("message", "") for e in events if e.get("reason") == SANDBOX_REFUSED)
    return "handler %s refused on %s: %s" % (MISSING_HANDLER, node_name, message[:200])


def main():
    run_check("workload_sandboxing", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
