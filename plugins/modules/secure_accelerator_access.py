#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: secure_accelerator_access
short_description: Prove accelerator access is mediated and isolated by DRA (or device plugins)
description:
  - "Checklist id C(secure_accelerator_access) (MUST): access to accelerators is isolated and mediated by the
    Kubernetes resource management framework, preventing unauthorized access or interference between workloads."
  - Static part - accelerators are published through DRA (DeviceClass + ResourceSlices) or a device plugin
    (extended resource in node allocatable).
  - Positive case - two pods with their own claims, pinned to the same accelerator node, each get a device and the
    two allocations never share a device; a pod without a claim on that node gets no device at all.
  - Negative case - while a probe claim holds one device of a node, a claim for every device that node can reach
    (satisfiable only by handing the held device out twice) stays unallocated and its pod Unschedulable.
  - With device plugins only, the same cases use the extended resource (request 1 / request more than allocatable).
  - "Positive case inside the containers (DRA) - on the same node, three pods print what they see (environment and
    /dev); each claimed container sees what its own claim injected (CDI environment and device nodes naming its
    allocated device), never the other pod's device; a second container in the same pod without the claim, and a
    pod without a claim, see no allocated device. On nodes that run no containers (simulated nodes) this part
    cannot run and the check is not verified."
  - O(device_class) picks the DeviceClass to probe (default - the class whose driver publishes most devices).
version_added: 0.1.0
author: k8s_ai.conformance developers (@k8s-ai-conformance)
options:
  device_class:
    description: DeviceClass to probe; default - the one whose driver publishes the most devices.
    type: str
  probe_image:
    description: Image with a POSIX shell, env and ls for the in-container part (the probe pods print what they see).
    type: str
    default: busybox:1.36
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
"""

EXAMPLES = r"""
- name: Verify secure accelerator access
  k8s_ai.conformance.secure_accelerator_access:
    kubeconfig: "{{ kubeconfig }}"
"""

RETURN = r"""
result:
  description: The check result (docs/architecture.md); status, verified, parts, evidence, notes.
  returned: always
  type: dict
"""

import re  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.accelerators import (  # noqa: E402
    pick_device_class,
)
from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (  # noqa: E402
    CLAIMS_REFUSED,
    SHELL_IMAGE,
    STAYS_AFTER_VERDICT,
    claim_allocation,
    claim_manifest,
    command_pod,
    on_nodes,
    pod_manifest,
    pod_scheduled,
    pod_unschedulable,
)

DRA = "resource.k8s.io/v1"
ARGUMENT_SPEC = {"device_class": {"type": "str"}, "probe_image": {"type": "str", "default": SHELL_IMAGE}}
# What a container sees, between markers joined by the shell (a pod spec echoed back never looks like it).
SHOW = "echo \"vis\"\"ible-begin\"; env | grep -v ^HOSTNAME= | sort; ls -1 /dev | sed 's/^/dev:/'; " \
       "echo \"vis\"\"ible-end\"; sleep 300"
BEGIN = "visible-begin"
END = "visible-end"


def verify(check):
    check.static("accelerators are published through DRA or a device plugin", accelerators_mediated)
    check.positive("two pods on one node get distinct devices; a pod without a claim gets none", devices_isolated)
    check.positive("inside the containers: each sees its own device only; without the claim, none", devices_visible)
    check.negative("a device held by one claim is never allocated to another", no_double_allocation)


def accelerators_mediated(check):
    acc = check.dra_devices  # nodes are listed only when DRA has nothing (device-plugin fallback)
    name, driver = pick_device_class(acc, check.params.get("device_class"))
    if name:
        nodes = {n: c for n, c in acc["drivers"][driver]["nodes"].items() if not n.startswith("<")}
        check.require(nodes, "driver %s publishes no node-local devices" % driver)
        shared = sum(c for n, c in acc["drivers"][driver]["nodes"].items() if n.startswith("<"))
        check.facts.update(mode="dra", device_class=name, driver=driver, node_devices=nodes, shared_devices=shared)
        return "DRA: DeviceClass %s, driver %s, devices on %d nodes" % (name, driver, len(nodes))
    plugins = check.accelerators["extended_resources"]
    check.require(plugins, "no DRA devices and no device-plugin accelerator resource on any node")
    resource = max(sorted(plugins), key=lambda r: plugins[r]["total"])
    node = max(sorted(plugins[resource]["nodes"]), key=plugins[resource]["nodes"].get)
    check.facts.update(mode="plugin", resource=resource, node=node, node_allocatable=plugins[resource]["nodes"][node])
    return "device plugin: %s; probing node %s (%d allocatable)" % (resource, node, check.facts["node_allocatable"])


def freest_node(check, needed):
    """(node, devices in use there) with the most free devices right now; cannot_run when none has `needed`."""
    in_use = devices_in_use(check)
    free = {n: count - len(in_use.get(n, ())) for n, count in check.facts["node_devices"].items()}
    node = max(sorted(free), key=free.get)
    if free[node] < needed:
        check.cannot_run("no node has %d free devices right now (free per node: %s); other workloads hold them"
                         % (needed, free))
    return node, in_use.get(node, set())


def claimed_pod(probe, name, node, device_class, count=1):
    rc = probe.create(claim_manifest(name, device_class, count=count))
    pod = probe.create(on_nodes(pod_manifest(name, claims={"accel": {"resourceClaimName": name}}), node))
    return rc, pod


def device_ids(rc):
    return {(r["driver"], r["pool"], r["device"]) for r in claim_allocation(rc)}


def devices_isolated(check, probe):
    check.require(check.facts.get("mode"), "no accelerator found by the static part")
    if check.facts["mode"] == "plugin":
        return plugin_isolated(check, probe, check.facts["node"])
    node, _unused = freest_node(check, 2)
    allocated = []
    for name in ("tenant-a", "tenant-b"):
        rc, pod = claimed_pod(probe, name, node, check.facts["device_class"])
        probe.wait_for(pod, pod_scheduled, "pod %s scheduled on %s" % (name, node))
        allocated.append(device_ids(probe.wait_for(rc, claim_allocation, "claim %s allocated" % name)))
    check.require(not (allocated[0] & allocated[1]), "the two claims share devices: %s" % (allocated[0] & allocated[1]))
    bare = probe.create(on_nodes(pod_manifest("no-claim"), node))
    bare = probe.wait_for(bare, pod_scheduled, "pod no-claim scheduled on %s" % node)
    uid = bare["metadata"]["uid"]
    holders = [rc["metadata"]["name"] for rc in probe.list(DRA, "ResourceClaim")
               for ref in (rc.get("status") or {}).get("reservedFor") or [] if ref.get("uid") == uid]
    check.require(not bare["spec"].get("resourceClaims") and not bare["status"].get("resourceClaimStatuses")
                  and not holders, "pod no-claim holds claims %s" % holders)
    return "tenant-a got %s, tenant-b got %s (disjoint); pod no-claim on the same node holds no claim/device" % (
        "/".join(sorted(d[2] for d in allocated[0])), "/".join(sorted(d[2] for d in allocated[1])))


def seen_by(probe, pod, container=None):
    """The lines a probe container printed between the markers (its environment and /dev)."""
    log = probe.wait_for_log(pod, END, "pod %s%s printed what it sees" % (
        pod["metadata"]["name"], " container " + container if container else ""), container=container)
    return set(log.split(BEGIN, 1)[-1].split(END, 1)[0].split())


def identifiers(check, node):
    """{device name: words that name it inside a container}: its name, its uuid attribute and, where the driver
    publishes device minors, the device node (NVIDIA's CDI specs inject /dev/nvidia<minor>, not the name)."""
    found = {}
    path = check.cluster.path(DRA, "resourceslices")
    for sl in check.cluster.iter_list(path, field_selector="spec.driver=%s,spec.nodeName=%s" % (
            check.facts["driver"], node)):
        for dev in sl["spec"].get("devices") or []:
            attrs = dev.get("attributes") or {}
            words = {dev["name"]}
            if (attrs.get("uuid") or {}).get("string"):
                words.add(attrs["uuid"]["string"])
            if "int" in (attrs.get("minor") or {}) and check.facts["driver"] == "gpu.nvidia.com":
                words.add("nvidia%d" % attrs["minor"]["int"])
            found[dev["name"]] = words
    return found


def names(lines, devices, words):
    """The allocated devices that any of the lines names by one of its words (whole words only)."""
    return {d for d in devices for w in words.get(d, {d}) for line in lines
            if re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(w), line)}


def devices_visible(check, probe):
    check.require(check.facts.get("mode"), "no accelerator found by the static part")
    if check.facts["mode"] != "dra":
        check.cannot_run("device plugins only: what a container sees is not probed through the extended resource")
    node, _unused = freest_node(check, 2)
    image = check.params["probe_image"]
    pods, allocated = {}, {}
    for name in ("see-a", "see-b"):
        probe.create(claim_manifest(name, check.facts["device_class"]))
        pod = command_pod(name, SHOW, image=image, claims={"accel": {"resourceClaimName": name}})
        if name == "see-a":  # a second container of the same pod, without the claim
            pod["spec"]["containers"].append(dict(pod["spec"]["containers"][0], name="no-claim"))
            pod["spec"]["containers"][1]["resources"] = {"requests": {"cpu": "10m", "memory": "16Mi"}}
        pods[name] = probe.create(on_nodes(pod, node))
    pods["see-none"] = probe.create(on_nodes(command_pod("see-none", SHOW, image=image), node))
    for name in ("see-a", "see-b"):
        rc = probe.wait_for({"apiVersion": DRA, "kind": "ResourceClaim", "metadata": {"name": name}},
                            claim_allocation, "claim %s allocated" % name)
        allocated[name] = {r["device"] for r in claim_allocation(rc)}
    both = allocated["see-a"] | allocated["see-b"]
    seen = {"see-a": seen_by(probe, pods["see-a"], "probe"), "no-claim": seen_by(probe, pods["see-a"], "no-claim"),
            "see-b": seen_by(probe, pods["see-b"]), "see-none": seen_by(probe, pods["see-none"])}
    words = identifiers(check, node)
    named = {who: names(lines, both, words) for who, lines in seen.items()}
    check.record("allocated devices and the devices each container names", "pod logs vs claim allocations",
                 response={"allocated": {k: sorted(v) for k, v in allocated.items()},
                           "named": {k: sorted(v) for k, v in named.items()}})
    for name in ("see-a", "see-b"):
        check.require(named[name] == allocated[name], "container of %s names devices %s, its claim was allocated %s"
                      % (name, sorted(named[name]) or "none", sorted(allocated[name])))
    check.require(not named["no-claim"], "a container without the claim sees %s" % sorted(named["no-claim"]))
    check.require(not named["see-none"], "a pod without a claim sees %s" % sorted(named["see-none"]))
    return "on %s: see-a sees %s, see-b sees %s (each its own only); its claim-less container and a pod without " \
           "a claim see none" % (node, "/".join(sorted(named["see-a"])), "/".join(sorted(named["see-b"])))


def no_double_allocation(check, probe):
    check.require(check.facts.get("mode"), "no accelerator found by the static part")
    if check.facts["mode"] == "plugin":
        return plugin_over_allocation(check, probe, check.facts["node"])
    node, in_use = freest_node(check, 1)
    # While our claim holds one device, a claim for every device the node can reach is satisfiable only by
    # handing that device out twice. Holding our own device keeps this true whatever other tenants do.
    everything = check.facts["node_devices"][node] + check.facts["shared_devices"]
    rc, pod = claimed_pod(probe, "holder", node, check.facts["device_class"])
    probe.wait_for(pod, pod_scheduled, "pod holder scheduled on %s" % node)
    held = device_ids(probe.wait_for(rc, claim_allocation, "claim holder allocated"))
    check.require(not (held & in_use), "a device already in use was allocated again: %s" % (held & in_use))
    rc, pod = claimed_pod(probe, "wants-all", node, check.facts["device_class"], count=everything)
    probe.wait_for(pod, lambda p: pod_unschedulable(p, because=CLAIMS_REFUSED),
                   "pod wants-all (claim for all %d devices of %s) Unschedulable for its claim" % (everything, node))
    probe.stays(rc, lambda c: not claim_allocation(c), "claim wants-all stays unallocated", seconds=STAYS_AFTER_VERDICT)
    return "claim holder got %s on %s; a claim for all %d devices there stays unallocated, pod Unschedulable " \
           "(a held device is never handed out twice)" % ("/".join(sorted(d[2] for d in held)), node, everything)


def devices_in_use(check):
    """{node: {(driver, pool, device)}} allocated to any claim in the cluster (other tenants included)."""
    driver = check.facts["driver"]
    node_of = {}
    slices = check.cluster.iter_list(check.cluster.path(DRA, "resourceslices"), field_selector="spec.driver=" + driver)
    for sl in slices:
        spec = sl["spec"]
        for dev in spec.get("devices") or []:
            node_of[(driver, spec["pool"]["name"], dev["name"])] = dev.get("nodeName") or spec.get("nodeName")
    used = {}
    for rc in check.cluster.iter_list(check.cluster.path(DRA, "resourceclaims")):
        for dev in device_ids(rc):
            if node_of.get(dev):
                used.setdefault(node_of[dev], set()).add(dev)
    check.record("devices in use", "list resourceslices (driver %s) and resourceclaims (all namespaces)" % driver,
                 response={n: sorted(d[2] for d in devs) for n, devs in used.items()})
    return used


def plugin_isolated(check, probe, node):
    resource = check.facts["resource"]
    with_device = probe.create(on_nodes(pod_manifest("with-device", requests={resource: 1}), node))
    probe.wait_for(with_device, pod_scheduled, "pod with-device (%s: 1) scheduled" % resource)
    # A device plugin's allocation is visible only inside the container, so that a pod without the resource
    # gets no device is not claimed here (reading back the spec we wrote would prove nothing).
    return "pod with-device scheduled on %s with %s: 1 (device-plugin accounting)" % (node, resource)


def plugin_over_allocation(check, probe, node):
    resource, count = check.facts["resource"], check.facts["node_allocatable"] + 1
    pod = probe.create(on_nodes(pod_manifest("too-many", requests={resource: count}), node))
    probe.wait_for(pod, lambda p: pod_unschedulable(p, because="insufficient " + resource),
                   "pod asking %d %s on %s Unschedulable (Insufficient %s)" % (count, resource, node, resource))
    return "pod asking %d %s (node has %d) is Unschedulable" % (count, resource, count - 1)


def main():
    run_check("secure_accelerator_access", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
