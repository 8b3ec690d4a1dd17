#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: driver_runtime_management
short_description: Verify that accelerator drivers and container runtime configuration are verifiable per node
description:
  - Checks the C(driver_runtime_management) requirement (accelerators, SHOULD) of the AI conformance checklist.
  - Static part - the DRA drivers' ResourceSlices advertise a driver version (attribute C(driverVersion)) for
    every device, and each node reports one consistent version per driver (the DRA mechanism the requirement
    asks for). This is what the API claims; on its own it never makes the check Implemented.
  - Positive case 1 (node side, I(node_facts) gathered on the accelerator hosts by C(accelerator_node_facts)) -
    the driver the host really runs equals what the ResourceSlices of that node advertise; mismatches are listed
    per node.
  - Positive case 2 (node side, I(node_facts)) - the container runtime of every accelerator node is configured for
    device injection - containerd with CDI enabled and CDI spec files (what DRA drivers use), or a vendor runtime
    handler (C(nvidia), ...) for device-plugin setups.
  - No negative case - a refusal that only driver management could produce does not exist; a wrong version on a
    node is what positive case 1 reports.
  - Optional part - the DRA driver's kubelet-plugin DaemonSet is fully ready.
  - Without I(node_facts) the node-side cases could not run (outcome error) - the check is then Not Implemented and
    not verified, with a note that node-side verification needs hosts in the C(accelerator_nodes) inventory group.
  - Vendor-neutral - every DRA driver that publishes devices is considered; nothing is tied to a vendor.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  node_facts:
    description:
      - Node facts keyed by Kubernetes node name, in the schema of C(accelerator_node_facts) (C(driver_version),
        C(accelerators), C(containerd), C(cdi_spec_files), ...).
      - Empty or omitted - node-side verification is not done (and said so in the notes).
    type: dict
    default: {}
  drivers:
    description:
      - DRA driver names to verify. Default - every driver whose ResourceSlices publish devices.
    type: list
    elements: str
    default: []
  version_attribute:
    description:
      - Name of the device attribute carrying the driver version (with or without the driver's domain prefix).
    type: str
    default: driverVersion
  driver_daemonset:
    description:
      - C(namespace/name) of the DRA driver's DaemonSet. Default - DaemonSets whose name mentions C(dra) and
        the vendor part of a driver name (C(gpu.nvidia.com) -> C(nvidia)) are found by discovery.
    type: str
"""

EXAMPLES = r"""
- name: Verify driver and runtime management from the API and the nodes' own facts
  k8s_ai.conformance.driver_runtime_management:
    kubeconfig: "{{ kubeconfig }}"
    node_facts: "{{ accelerator_facts_by_node }}"
  delegate_to: localhost
  register: drm

- name: API-only verification of one driver
  k8s_ai.conformance.driver_runtime_management:
    drivers: [gpu.nvidia.com]
"""

RETURN = r"""
result:
  description: Check result (docs/architecture.md schema).
  returned: always
  type: dict
  contains:
    check: {description: C(driver_runtime_management), type: str, returned: always}
    status: {description: "Implemented, Partially Implemented, Not Implemented or N/A.", type: str, returned: always}
    verified: {description: False when a part could not run., type: bool, returned: always}
    summary: {description: One line., type: str, returned: always}
    notes: {description: "Why, including what could not be verified on the nodes.", type: str, returned: always}
    parts: {description: "Parts (static, node-side positive) with outcome and detail (mismatches per node).",
            type: list, returned: always}
    evidence: {description: What was read and what came back., type: list, returned: always}
"""

from ansible_collections.k8s_ai.conformance.plugins.module_utils.accelerators import attribute_value  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402

VENDOR_RUNTIMES = ("nvidia", "amd", "rocm", "intel", "habana", "neuron")  # legacy runtime-hook handlers
ARGUMENT_SPEC = {
    "node_facts": {"type": "dict", "default": {}},
    "drivers": {"type": "list", "elements": "str", "default": []},
    "version_attribute": {"type": "str", "default": "driverVersion"},
    "driver_daemonset": {"type": "str"},
}


def verify(check):
    check.static("ResourceSlices advertise a driver version per device and node", dra_versions_advertised)
    check.positive("node-reported driver versions match the ResourceSlices", node_versions_match)
    check.positive("container runtime configured for device injection on accelerator nodes", runtime_configured)
    check.static("DRA driver DaemonSet ready", driver_daemonset_ready, required=False)


NO_NODE_FACTS = ("node-side verification (driver loaded on the host, container runtime/CDI configuration) was not "
                 "done: it needs hosts in the accelerator_nodes inventory group (node_facts)")


# ---- pure logic (unit-tested) -------------------------------------------------------------------
def normalise_version(value):
    text = str(attribute_value(value) if value is not None else "").strip()
    return text[1:] if text[:1] in ("v", "V") and text[1:2].isdigit() else text


def versions_by_node(slices, attribute, drivers=None):
    """{driver: {node: {"versions": set, "devices": n, "missing": n}}} from ResourceSlices."""
    out = {}
    for sl in slices:
        spec = sl.get("spec") or {}
        driver = spec.get("driver") or "?"
        if drivers and driver not in drivers:
            continue
        for dev in spec.get("devices") or []:
            basic = dev.get("basic") or dev
            node = dev.get("nodeName") or spec.get("nodeName") or "<not node-local>"
            entry = out.setdefault(driver, {}).setdefault(node, {"versions": set(), "devices": 0, "missing": 0})
            entry["devices"] += 1
            attrs = basic.get("attributes") or {}
            value = attrs.get(attribute, attrs.get("%s/%s" % (driver, attribute)))
            if value is None:
                entry["missing"] += 1
            else:
                entry["versions"].add(normalise_version(value))
    return out


def compare_node_facts(by_driver, node_facts):
    """(matches, problems): node facts' driver version vs the versions advertised on that node."""
    matches, problems = [], []
    for node, facts in sorted(node_facts.items()):
        facts = facts or {}
        name = facts.get("node_name") or node
        reported = normalise_version(facts.get("driver_version")) if facts.get("driver_version") else ""
        advertised = set()
        for nodes in by_driver.values():
            advertised |= (nodes.get(name) or {}).get("versions", set())
        if not facts.get("accelerators") and not reported:
            if advertised:
                problems.append("%s: ResourceSlices advertise driver %s but the node reports no accelerator driver"
                                % (name, "/".join(sorted(advertised))))
            continue
        if not advertised:
            problems.append("%s: node reports driver %s but no ResourceSlice advertises a driver version for it"
                            % (name, reported or "?"))
        elif not reported:
            problems.append("%s: node has accelerators but reports no driver version" % name)
        elif reported not in advertised or len(advertised) > 1:
            problems.append("%s: node reports driver %s, ResourceSlices advertise %s"
                            % (name, reported, "/".join(sorted(advertised))))
        else:
            matches.append("%s=%s" % (name, reported))
    return matches, problems


def runtime_problems(node_facts):
    """Per accelerator node: containerd present, CDI enabled, CDI specs present."""
    ok, problems = [], []
    for node, facts in sorted(node_facts.items()):
        facts = facts or {}
        name = facts.get("node_name") or node
        if not facts.get("accelerators") and not facts.get("driver_version"):
            continue
        runtime = facts.get("containerd") or {}
        vendor_runtimes = [r for r in runtime.get("runtimes") or [] if any(v in r.lower() for v in VENDOR_RUNTIMES)]
        missing = []
        if not runtime.get("present"):
            missing.append("containerd not found")
        elif runtime.get("cdi_enabled") and facts.get("cdi_spec_files"):
            ok.append("%s (containerd %s, CDI with %d spec file(s))" % (name, runtime.get("version") or "?",
                                                                        len(facts["cdi_spec_files"])))
            continue
        elif vendor_runtimes:
            ok.append("%s (containerd %s, runtime handler %s)" % (name, runtime.get("version") or "?",
                                                                  ", ".join(vendor_runtimes)))
            continue
        else:
            if runtime.get("cdi_enabled") is None:
                missing.append("CDI setting of containerd unknown")
            elif not runtime.get("cdi_enabled"):
                missing.append("CDI not enabled in containerd %s" % (runtime.get("version") or ""))
            if not facts.get("cdi_spec_files"):
                missing.append("no CDI spec files")
            missing.append("no accelerator runtime handler")
        problems.append("%s: %s" % (name, ", ".join(missing)))
    return ok, problems


# ---- parts --------------------------------------------------------------------------------------
def dra_versions_advertised(check):
    api = check.accelerators.get("dra_api")
    check.require(api, "the DRA API (resource.k8s.io) is not served")
    wanted = check.params.get("drivers") or []
    slices = check.list("ResourceSlices", check.cluster.path(api, "resourceslices"))
    by_driver = versions_by_node(slices, check.params["version_attribute"], wanted)
    check.facts["by_driver"] = by_driver
    attribute = check.params["version_attribute"]
    check.record("driver versions advertised per node", "ResourceSlices attribute %s" % attribute,
                 response={d: {n: {"versions": sorted(e["versions"]), "devices": e["devices"], "missing": e["missing"]}
                               for n, e in nodes.items()} for d, nodes in by_driver.items()})
    check.require(by_driver, "no ResourceSlice publishes devices%s" % (" for %s" % ", ".join(wanted) if wanted else ""))
    problems, good = [], []
    for driver, nodes in sorted(by_driver.items()):
        for node, entry in sorted(nodes.items()):
            if entry["missing"]:
                problems.append("%s on %s: %d of %d devices without %s"
                                % (driver, node, entry["missing"], entry["devices"], attribute))
            elif len(entry["versions"]) > 1:
                problems.append("%s on %s: mixed versions %s" % (driver, node, "/".join(sorted(entry["versions"]))))
            else:
                good.append("%s on %s: %s" % (driver, node, next(iter(entry["versions"]))))
    check.require(not problems, "; ".join(problems[:10]))
    return "%d driver/node pairs advertise one driver version each: %s" % (len(good), "; ".join(good[:6]))


def node_versions_match(check, probe):
    if not check.params.get("node_facts"):
        check.cannot_run(NO_NODE_FACTS)
    by_driver = check.facts.get("by_driver") or {}
    matches, problems = compare_node_facts(by_driver, check.params["node_facts"])
    check.record("compare node facts with ResourceSlices", "node_facts vs ResourceSlices",
                 response={"matches": matches, "mismatches": problems})
    check.require(not problems, "mismatch: " + "; ".join(problems[:10]))
    check.require(matches, "no node in node_facts reports an accelerator driver")
    return "driver version on the node equals the advertised one: %s" % ", ".join(matches[:10])


def runtime_configured(check, probe):
    if not check.params.get("node_facts"):
        check.cannot_run(NO_NODE_FACTS)
    ok, problems = runtime_problems(check.params["node_facts"])
    check.require(not problems, "; ".join(problems[:10]))
    check.require(ok, "no accelerator node in node_facts")
    return "runtime configured: %s" % "; ".join(ok[:10])


def driver_daemonset_ready(check):
    given = check.params.get("driver_daemonset")
    if given:
        namespace, _unused, name = given.partition("/")
        check.require(namespace and name, "driver_daemonset must be namespace/name, got %r" % given)
        found = [check.read("driver DaemonSet", check.cluster.path("apps/v1", "daemonsets", namespace, name))]
    else:
        tokens = set()
        for driver in (check.facts.get("by_driver") or {}):
            labels = driver.split(".")
            tokens.add(labels[1] if len(labels) > 2 else labels[0])
        daemonsets = check.list("DaemonSets (all namespaces)", "/apis/apps/v1/daemonsets")
        found = [d for d in daemonsets if "dra" in d["metadata"]["name"]
                 and any(t and t in d["metadata"]["name"] for t in tokens)]
        check.require(found, "no DaemonSet named like a DRA driver for %s (set driver_daemonset)"
                      % (", ".join(sorted(tokens)) or "?"))
    states = []
    for ds in found:
        status = ds.get("status") or {}
        desired, ready = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
        states.append("%s/%s %d/%d ready" % (ds["metadata"].get("namespace"), ds["metadata"]["name"], ready, desired))
        check.require(desired > 0 and ready == desired, "not ready: %s" % states[-1])
    return "; ".join(states)


def main():
    run_check("driver_runtime_management", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
