# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0
"""Vendor-neutral accelerator discovery.

    acc = discover(cluster)
    acc["device_classes"]   [{"name", "drivers": [driver names its CEL selectors pin], "expressions"}]
    acc["drivers"]          {driver: {"devices", "slices", "pools", "nodes": {node: count}, "max_per_node",
                                      "attributes": {name: [values]}, "capacity": [names],
                                      "with_counters": n, "multi_allocatable": n, "shared_counter_sets": n}}
    acc["extended_resources"] {"nvidia.com/gpu": {"total", "nodes": {node: count}}}  (device plugins)
    acc["node_label_hints"] {"nvidia.com/mig.strategy": ["single"], ...}  vendor node labels about sharing/vGPU
    acc["dra_api"]          the resource.k8s.io version used, or None when DRA is not served
    pick_device_class(acc) -> (class name, driver) with the most devices, or (None, None)

ResourceSlices and nodes are read page by page and folded into counts at once, so memory stays
bounded on 2,000 nodes / 16,000 devices. Driver names are whatever the cluster publishes; the
prefixes below only help to recognise device-plugin resources as accelerators.
"""

from __future__ import absolute_import, division, print_function

import re

from ansible_collections.k8s_ai.conformance.plugins.module_utils.client import ClusterError

DRA_VERSIONS = ("resource.k8s.io/v1", "resource.k8s.io/v1beta2", "resource.k8s.io/v1beta1")
ACCELERATOR_RESOURCE_HINTS = ("nvidia.com/", "amd.com/", "gpu.intel.com/", "habana.ai/", "aws.amazon.com/neuron",
                              "google.com/tpu", "xilinx.com/", "qualcomm.com/", "furiosa.ai/", "tenstorrent.com/")
INTERESTING_ATTRIBUTES = ("type", "productName", "model", "driverVersion", "uuid", "architecture", "brand",
                          "cudaComputeCapability", "index", "mig", "profile", "parentUUID", "vgpu", "family")
MAX_VALUES = 10
LABEL_HINT_PREFIXES = ("nvidia.com/", "amd.com/", "gpu.intel.com/", "intel.feature.node.kubernetes.io/",
                       "feature.node.kubernetes.io/pci-")
SHARING_LABEL_WORDS = re.compile(r"mig|replicas|sharing|slic|vgpu|sriov|partition|virtual", re.IGNORECASE)
DRIVER_IN_CEL = re.compile(r"""device\.driver\s*==\s*["']([^"']+)["']""")


def is_accelerator_resource(name):
    if name in ("cpu", "memory", "pods", "ephemeral-storage") or name.startswith(("hugepages-", "attachable-volumes")):
        return False
    return name.startswith(ACCELERATOR_RESOURCE_HINTS) or "gpu" in name.lower() or "accelerator" in name.lower()


def served_dra_version(cluster):
    for version in DRA_VERSIONS:
        kinds = {r.get("kind") for r in cluster.served_resources(version).values()}
        if "ResourceSlice" in kinds and "DeviceClass" in kinds:
            return version
    return None


def attribute_value(value):
    """{'string': 'gpu'} -> 'gpu' (DRA typed attribute values)."""
    if isinstance(value, dict):
        for key in ("string", "int", "bool", "version"):
            if key in value:
                return value[key]
    return value


def _short_attribute(name, driver):
    return name[len(driver) + 1:] if name.startswith(driver + "/") else name


def new_driver():
    return {"devices": 0, "slices": 0, "pools": set(), "nodes": {}, "attributes": {}, "capacity": set(),
            "with_counters": 0, "multi_allocatable": 0, "shared_counter_sets": 0}


def add_slice(drivers, sl):
    """Fold one ResourceSlice into the per-driver counts."""
    spec = sl.get("spec") or {}
    driver = spec.get("driver") or "?"
    info = drivers.setdefault(driver, new_driver())
    info["slices"] += 1
    info["pools"].add((spec.get("pool") or {}).get("name"))
    info["shared_counter_sets"] += len(spec.get("sharedCounters") or [])
    slice_node = spec.get("nodeName") or ("<all nodes>" if spec.get("allNodes") else None) \
        or ("<node selector>" if spec.get("nodeSelector") else None)
    for dev in spec.get("devices") or []:
        basic = dev.get("basic") or dev  # v1beta1 nests fields under "basic"
        node = dev.get("nodeName") or slice_node or ("<all nodes>" if dev.get("allNodes") else "<node selector>")
        info["devices"] += 1
        info["nodes"][node] = info["nodes"].get(node, 0) + 1
        if basic.get("consumesCounters"):
            info["with_counters"] += 1
        if basic.get("allowMultipleAllocations"):
            info["multi_allocatable"] += 1
        for name in basic.get("capacity") or {}:
            info["capacity"].add(_short_attribute(name, driver))
        for name, value in (basic.get("attributes") or {}).items():
            values = info["attributes"].setdefault(_short_attribute(name, driver), [])
            value = attribute_value(value)
            if len(values) < MAX_VALUES and value not in values:
                values.append(value)


def finish(drivers):
    for info in drivers.values():
        info["pools"] = len(info["pools"])
        info["capacity"] = sorted(info["capacity"])
        # Most devices one node can reach: its own plus every device not bound to a single node.
        real_nodes = [c for n, c in info["nodes"].items() if not n.startswith("<")]
        shared = sum(c for n, c in info["nodes"].items() if n.startswith("<"))
        info["max_per_node"] = max(real_nodes or [0]) + shared
    return drivers


def device_class_summary(dc):
    spec = dc.get("spec") or {}
    expressions = [(s.get("cel") or {}).get("expression", "") for s in spec.get("selectors") or []]
    drivers = sorted({m for e in expressions for m in DRIVER_IN_CEL.findall(e)})
    out = {"name": dc["metadata"]["name"], "drivers": drivers, "expressions": expressions}
    if spec.get("extendedResourceName"):
        out["extended_resource_name"] = spec["extendedResourceName"]
    return out


def discover(cluster, nodes=True, node_items=None):
    """Discover DRA devices and device-plugin resources (see module docstring for the shape).
    nodes=False skips listing Nodes (device-plugin resources, node label hints): DRA facts only, cheaper.
    node_items: a function giving the Node list when the caller already has it (a run shares one)."""
    acc = {"dra_api": served_dra_version(cluster), "device_classes": [], "drivers": {}, "extended_resources": {},
           "node_label_hints": {}, "nodes": 0}
    if acc["dra_api"]:
        acc["device_classes"] = [device_class_summary(dc)
                                 for dc in cluster.iter_list(cluster.path(acc["dra_api"], "deviceclasses"))]
        drivers = {}
        for sl in cluster.iter_list(cluster.path(acc["dra_api"], "resourceslices")):
            add_slice(drivers, sl)
        acc["drivers"] = finish(drivers)
    if not nodes:
        acc["nodes"] = None
        return acc
    try:
        for node in (node_items() if node_items else cluster.iter_list("/api/v1/nodes")):
            acc["nodes"] += 1
            for key, value in ((node.get("metadata") or {}).get("labels") or {}).items():
                if key.startswith(LABEL_HINT_PREFIXES) and SHARING_LABEL_WORDS.search(key):
                    values = acc["node_label_hints"].setdefault(key, [])
                    if len(values) < MAX_VALUES and value not in values:
                        values.append(value)
            allocatable = (node.get("status") or {}).get("allocatable") or {}
            for name, quantity in allocatable.items():
                if not is_accelerator_resource(name):
                    continue
                count = _int_quantity(quantity)
                if count <= 0:
                    continue
                res = acc["extended_resources"].setdefault(name, {"total": 0, "nodes": {}})
                res["total"] += count
                res["nodes"][node["metadata"]["name"]] = count
    except ClusterError as exc:  # listing nodes may be forbidden to a namespaced user; DRA still counts
        acc["nodes_error"] = str(exc)
    return acc


def _int_quantity(quantity):
    try:
        return int(str(quantity))
    except ValueError:
        return 0


def pick_device_class(acc, wanted=None):
    """(DeviceClass name, driver) whose driver publishes the most devices (or the class named `wanted`, when its
    driver publishes any); (None, None) if none."""
    best = (None, None, -1)
    for dc in acc.get("device_classes") or []:
        if wanted and dc["name"] != wanted:
            continue
        for driver in dc["drivers"] or list(acc["drivers"]):
            devices = (acc["drivers"].get(driver) or {}).get("devices", 0)
            if devices > best[2] and devices > 0:
                best = (dc["name"], driver, devices)
    return best[0], best[1]


def summary(acc):
    """Compact, evidence-friendly view (node maps reduced to counts)."""
    drivers = {}
    for name, info in (acc.get("drivers") or {}).items():
        drivers[name] = {k: v for k, v in info.items() if k != "nodes"}
        drivers[name]["node_count"] = len(info["nodes"])
        drivers[name]["attributes"] = {k: v for k, v in info["attributes"].items()
                                       if k in INTERESTING_ATTRIBUTES or len(info["attributes"]) <= 20}
    return {
        "dra_api": acc.get("dra_api"),
        "device_classes": acc.get("device_classes"),
        "drivers": drivers,
        "extended_resources": {k: {"total": v["total"], "node_count": len(v["nodes"])}
                               for k, v in (acc.get("extended_resources") or {}).items()},
        "node_label_hints": acc.get("node_label_hints"),
        "nodes": acc.get("nodes"),
    }
