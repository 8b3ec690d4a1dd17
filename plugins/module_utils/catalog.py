# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE)
"""Catalog of the checklists this collection proves, and the checks behind them.

The unit of work is a CHECK (one module per check, named after the official id where there is one).
A checklist is a view: for each Kubernetes minor it lists requirement ids with their section and
level (MUST / SHOULD), and every id maps onto a check.  The ids, sections and levels are facts taken
from the CNCF k8s-ai-conformance checklists; the descriptions here are short texts of our own (the
official wording lives in the official template, which the report can merge into, see report.py).

A second profile, the "whitepaper" checklist V0.9 (self-assessment table of the Kubernetes AI
Conformance white-paper draft, Appendix A), is rendered as a Markdown table with a support level
No / Partial / Full.
"""

from __future__ import absolute_import, division, print_function

import re

SECTIONS = (
    "accelerators",
    "networking",
    "schedulingOrchestration",
    "observability",
    "security",
    "operator",
)

MUST = "MUST"
SHOULD = "SHOULD"

STATUSES = ("Implemented", "Partially Implemented", "Not Implemented", "N/A")

# Metadata fields of PRODUCT.yaml, in the order of the official templates; True = required by the
# upstream validator (scripts/validate.go of cncf/k8s-ai-conformance).
METADATA_FIELDS = (
    ("kubernetesVersion", True),
    ("platformName", True),
    ("platformVersion", True),
    ("vendorName", True),
    ("websiteUrl", True),
    ("repoUrl", False),
    ("documentationUrl", True),
    ("productLogoUrl", True),
    ("description", True),
    ("contactEmailAddress", True),
    ("k8sConformanceUrl", True),
)

# Every check the collection knows: name -> short title (our words).
CHECKS = {
    "dra_support": "Dynamic Resource Allocation APIs serve and allocate accelerators",
    "driver_runtime_management": "Accelerator driver and container runtime configuration are verifiable",
    "gpu_sharing": "At least one accelerator sharing strategy is offered",
    "virtualized_accelerator": "Virtualized accelerators are exposed and managed",
    "ai_inference": "Gateway API routes inference traffic by weight and header",
    "advanced_inference_ingress": "Gateway API Inference Extension routes requests to model servers",
    "high_performance_networking": "Specialised network devices are discoverable and attachable",
    "disaggregated_inference": "Disaggregated (prefill/decode) inference runs",
    "gang_scheduling": "All-or-nothing (gang) scheduling of distributed workloads",
    "cluster_autoscaling": "Accelerator node groups scale on pending pods",
    "pod_autoscaling": "HorizontalPodAutoscaler scales accelerator pods on custom metrics",
    "accelerator_metrics": "Per-accelerator utilisation and memory metrics are exposed",
    "ai_service_metrics": "Workload metrics in Prometheus format are discovered and collected",
    "secure_accelerator_access": "Accelerator access is isolated and mediated by DRA or device plugins",
    "robust_controller": "A complex AI operator with CRDs and webhooks works reliably",
    "workload_sandboxing": "Workloads can run in a sandboxed runtime isolated from the host kernel",
    # whitepaper-only checks
    "fault_detection": "Accelerator faults are detected and affected nodes cordoned",
    "ai_workload_crds": "AI workload custom resources (e.g. JobSet) are served and reconciled",
    "topology_aware_scheduling": "Scheduling takes accelerator / NUMA topology into account",
    "multi_nic": "Pods can attach several network interfaces, incl. RDMA-capable NICs",
    "csi_storage": "Storage is provided through CSI with dynamic provisioning",
    "gpudirect_storage": "Storage with direct accelerator access (e.g. GPUDirect Storage)",
    "network_policy": "NetworkPolicy is enforced, including egress control",
    "workload_identity": "Workload identity (SPIFFE/SPIRE or equivalent)",
    "confidential_computing": "Workloads can run in confidential computing environments",
    "image_signature_verification": "Image signatures are verified before workloads run",
    "otel_tracing": "OpenTelemetry tracing is collected end to end",
}

# Short descriptions of the official requirements, in our own words (see module docstring).
DESCRIPTIONS = {
    "dra_support": "The DRA APIs (resource.k8s.io) are served so workloads can request accelerators "
                   "with more detail than a plain count.",
    "driver_runtime_management": "Nodes with accelerators run compatible drivers and container runtime "
                                 "configuration, and this can be verified (through DRA where supported).",
    "gpu_sharing": "At least one way of sharing an accelerator between workloads (partitioning or "
                   "time-slicing) is available and exposed for scheduling.",
    "virtualized_accelerator": "Virtualised accelerators (e.g. vGPU) are exposed and managed "
                               "consistently with physical fractions.",
    "ai_inference": "The Gateway API is implemented for inference traffic, with weighted splitting "
                    "and header-based routing.",
    "advanced_inference_ingress": "An implementation of the Gateway API Inference Extension routes "
                                  "requests to model servers using their advertised metrics.",
    "high_performance_networking": "High-performance network devices are managed, discoverable for "
                                   "scheduling and attachable as additional pod interfaces (ideally DRA).",
    "disaggregated_inference": "A disaggregated inference solution with separate prefill and decode "
                               "components can be installed and run.",
    "gang_scheduling": "A gang-scheduling solution admits a distributed workload all-or-nothing.",
    "cluster_autoscaling": "Where a cluster autoscaler exists, node groups of a given accelerator type "
                           "scale up and down with pending pods that request them.",
    "pod_autoscaling": "The HorizontalPodAutoscaler works for accelerator pods, including on custom "
                       "AI/ML metrics.",
    "accelerator_metrics": "An accelerator metrics solution exposes per-accelerator utilisation and "
                           "memory usage on a machine-readable endpoint.",
    "ai_service_metrics": "A monitoring system discovers and collects workload metrics exposed in a "
                          "standard format such as the Prometheus exposition format.",
    "secure_accelerator_access": "Access to accelerators from containers is isolated and mediated by "
                                 "DRA or a device plugin and the container runtime.",
    "robust_controller": "At least one complex AI operator with CRDs runs: its pods are ready, its "
                         "webhooks answer and its custom resources reconcile.",
    "workload_sandboxing": "Workloads can run in a sandbox that isolates them strongly from the node's "
                           "kernel and from other pods.",
}

# id, section, level — per official checklist version.  Facts from the CNCF checklists.
_V133 = (
    ("dra_support", "accelerators", SHOULD),
    ("ai_inference", "networking", MUST),
    ("gang_scheduling", "schedulingOrchestration", MUST),
    ("cluster_autoscaling", "schedulingOrchestration", MUST),
    ("pod_autoscaling", "schedulingOrchestration", MUST),
    ("accelerator_metrics", "observability", MUST),
    ("ai_service_metrics", "observability", MUST),
    ("secure_accelerator_access", "security", MUST),
    ("robust_controller", "operator", MUST),
)
_V134 = (("dra_support", "accelerators", MUST),) + _V133[1:]
_V135 = (
    ("dra_support", "accelerators", MUST),
    ("driver_runtime_management", "accelerators", SHOULD),
    ("gpu_sharing", "accelerators", SHOULD),
    ("virtualized_accelerator", "accelerators", SHOULD),
) + _V133[1:]
_V136 = (
    ("driver_runtime_management", "accelerators", SHOULD),
    ("gpu_sharing", "accelerators", SHOULD),
    ("virtualized_accelerator", "accelerators", SHOULD),
    ("ai_inference", "networking", MUST),
    ("advanced_inference_ingress", "networking", SHOULD),
    ("high_performance_networking", "networking", SHOULD),
    ("disaggregated_inference", "networking", SHOULD),
) + _V133[2:]
# v1.37: the official template docs/AIConformance-1.37.yaml of cncf/k8s-ai-conformance (ids, sections, levels,
# order); the same as v1.36 plus security/workload_sandboxing (SHOULD).
_V137 = (
    ("driver_runtime_management", "accelerators", SHOULD),
    ("gpu_sharing", "accelerators", SHOULD),
    ("virtualized_accelerator", "accelerators", SHOULD),
    ("ai_inference", "networking", MUST),
    ("advanced_inference_ingress", "networking", SHOULD),
    ("high_performance_networking", "networking", SHOULD),
    ("disaggregated_inference", "networking", SHOULD),
    ("gang_scheduling", "schedulingOrchestration", MUST),
    ("cluster_autoscaling", "schedulingOrchestration", MUST),
    ("pod_autoscaling", "schedulingOrchestration", MUST),
    ("accelerator_metrics", "observability", MUST),
    ("ai_service_metrics", "observability", MUST),
    ("secure_accelerator_access", "security", MUST),
    ("workload_sandboxing", "security", SHOULD),
    ("robust_controller", "operator", MUST),
)

OFFICIAL = {
    "1.33": _V133,
    "1.34": _V134,
    "1.35": _V135,
    "1.36": _V136,
    "1.37": _V137,
}

# Requirement ids covered by the upstream AI conformance test suite (kubernetes-sigs/ai-conformance), and the Go
# test that verifies each: a fact of cncf/k8s-ai-conformance scripts/validate.go (autoTestedRequirements), which
# looks for these tests in a junit.xml / results.json / e2e.log linked as evidence.
UPSTREAM_TESTS = {
    "secure_accelerator_access": "TestSecureAcceleratorAccess",
    "gang_scheduling": "TestGangScheduling",
    "cluster_autoscaling": "TestAcceleratorClusterAutoscaling",
}

# Official id -> check name.  Today every official id is a check of the same name.
OFFICIAL_ID_TO_CHECK = {rid: rid for entries in OFFICIAL.values() for rid, _s, _l in entries}

WHITEPAPER_VERSION = "V0.9"
WHITEPAPER_SOURCE = ("Kubernetes AI Conformance white-paper draft, version 0.9, Appendix A "
                     "(self-assessment checklist)")
WHITEPAPER_LEVELS = ("No", "Partial", "Full")

# id, domain, level, requirement (short, our words), check.
WHITEPAPER = (
    ("HW-1.1", "Hardware & Resource Mgmt", MUST, "DRA for AI accelerators", "dra_support"),
    ("HW-1.2", "Hardware & Resource Mgmt", MUST, "Accelerator utilisation and memory metrics",
     "accelerator_metrics"),
    ("HW-1.3", "Hardware & Resource Mgmt", SHOULD, "Automated hardware fault detection", "fault_detection"),
    ("WL-2.1", "Workload & Scheduling", MUST, "AI-native workload CRDs", "ai_workload_crds"),
    ("WL-2.2", "Workload & Scheduling", SHOULD, "JobSet for distributed jobs", "robust_controller"),
    ("WL-2.3", "Workload & Scheduling", SHOULD, "Kueue queuing and quota", "gang_scheduling"),
    ("WL-2.4", "Workload & Scheduling", SHOULD, "Topology-aware scheduling", "topology_aware_scheduling"),
    ("NET-3.1", "Networking", MUST, "Gateway API for inference traffic", "ai_inference"),
    ("NET-3.2", "Networking", SHOULD, "Multi-NIC and RDMA", "multi_nic"),
    ("STO-4.1", "Storage", MUST, "CSI storage", "csi_storage"),
    ("STO-4.2", "Storage", SHOULD, "GPUDirect Storage", "gpudirect_storage"),
    ("SEC-5.1", "Security & Isolation", MUST, "NetworkPolicy and egress control", "network_policy"),
    ("SEC-5.2", "Security & Isolation", SHOULD, "Workload identity (SPIFFE)", "workload_identity"),
    ("SEC-5.3", "Security & Isolation", SHOULD, "Sandboxed runtimes", "workload_sandboxing"),
    ("SEC-5.4", "Security & Isolation", SHOULD, "Confidential computing", "confidential_computing"),
    ("SEC-5.5", "Security & Isolation", SHOULD, "Image signature verification",
     "image_signature_verification"),
    ("OBS-6.1", "Observability", MUST, "AI service metrics auto-collected", "ai_service_metrics"),
    ("OBS-6.2", "Observability", SHOULD, "OpenTelemetry end-to-end tracing", "otel_tracing"),
)

# Why the whitepaper items that share a check do so (written into whitepaper.md).
WHITEPAPER_MAPPING_NOTES = {
    "WL-2.2": "JobSet is proven by robust_controller's JobSet parts only (operator pods, webhook rejects an "
              "invalid JobSet, a valid one reconciles), whichever operator carries that check's verdict; "
              "ai_workload_crds also lists it among the AI workload CRDs.",
    "WL-2.3": "Kueue is proven by gang_scheduling (a workload that fits is admitted whole, one that "
              "cannot fit never partly runs).",
}

# Whitepaper items that name one component a check proves among others: judged on that component's parts only
# (robust_controller passes on KubeRay or Kueue alone; WL-2.2 is JobSet).
WHITEPAPER_PARTS = {"WL-2.2": "jobset: "}

STATUS_TO_SUPPORT = {
    "Implemented": "Full",
    "Partially Implemented": "Partial",
    "Not Implemented": "No",
    "N/A": "No",
}


class CatalogError(ValueError):
    """A bad input to the catalog (unknown version, unknown check); the message names the input."""


def supported_versions():
    """Checklist versions this catalog knows, oldest first."""
    return sorted(OFFICIAL, key=_version_key)


def _version_key(version):
    major, minor = version.split(".")
    return int(major), int(minor)


_VERSION_RE = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?\s*$")


def parse_minor(value, name="version"):
    """'v1.35.4', '1.35', 'v1.35', '1.35.4+k3s1' -> '1.35'.  Raises CatalogError naming `name`."""
    if value is None:
        raise CatalogError("%s is empty; expected a Kubernetes version such as 1.35 or v1.35.4" % name)
    match = _VERSION_RE.match(str(value))
    if not match:
        raise CatalogError("%s=%r is not a Kubernetes version; expected something like 1.35 or v1.35.4"
                           % (name, value))
    return "%d.%d" % (int(match.group(1)), int(match.group(2)))


def select_version(server_version=None, pinned=None):
    """Choose the checklist version: the pinned one when given, else the server's minor.

    Returns (version, reason).  Raises CatalogError with a message naming the input and listing the
    supported versions when there is no such checklist.
    """
    supported = ", ".join(supported_versions())
    if pinned not in (None, ""):
        version = parse_minor(pinned, "checklist version (pinned)")
        if version not in OFFICIAL:
            raise CatalogError("pinned checklist version %s does not exist; supported checklist versions: %s"
                               % (pinned, supported))
        return version, "pinned"
    if server_version in (None, ""):
        raise CatalogError("the server version is unknown and no checklist version is pinned; "
                           "supported checklist versions: %s" % supported)
    version = parse_minor(server_version, "server version")
    if version not in OFFICIAL:
        raise CatalogError("the API server runs Kubernetes %s, for which there is no AI conformance "
                           "checklist; supported checklist versions: %s (pin one to verify against it)"
                           % (server_version, supported))
    return version, "server"


def checklist(version):
    """Requirements of an official checklist version, in template order.

    Each item: {id, section, level, check, description}.
    """
    if version not in OFFICIAL:
        raise CatalogError("checklist version %s does not exist; supported checklist versions: %s"
                           % (version, ", ".join(supported_versions())))
    return [
        {"id": rid, "section": section, "level": level, "check": OFFICIAL_ID_TO_CHECK[rid],
         "description": DESCRIPTIONS[rid]}
        for rid, section, level in OFFICIAL[version]
    ]


def sections(version):
    """Sections of a checklist version, in order, each with its requirement ids."""
    out = []
    for item in checklist(version):
        if not out or out[-1][0] != item["section"]:
            out.append((item["section"], []))
        out[-1][1].append(item["id"])
    return out


def whitepaper():
    """The whitepaper checklist V0.9: list of {id, domain, level, requirement, check}."""
    return [
        {"id": wid, "domain": domain, "level": level, "requirement": title, "check": check,
         "mapping_note": WHITEPAPER_MAPPING_NOTES.get(wid, "")}
        for wid, domain, level, title, check in WHITEPAPER
    ]


def checks_for(version, include_whitepaper=True):
    """Check names needed for a checklist version (and the whitepaper profile), in a stable order."""
    names = [item["check"] for item in checklist(version)]
    if include_whitepaper:
        names.extend(item["check"] for item in whitepaper())
    seen = set()
    return [n for n in names if not (n in seen or seen.add(n))]


def all_checks():
    return list(CHECKS)


def validate_checks(names):
    """Raise CatalogError naming unknown check names."""
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise CatalogError("unknown check name(s) %s; known checks: %s"
                           % (", ".join(unknown), ", ".join(sorted(CHECKS))))
    return list(names)


def requirement_ids(check, version=None, include_whitepaper=True):
    """Requirement ids (official for `version`, then whitepaper) that a check answers."""
    ids = []
    if version in OFFICIAL:
        ids.extend(item["id"] for item in checklist(version) if item["check"] == check)
    if include_whitepaper:
        ids.extend(item["id"] for item in whitepaper() if item["check"] == check)
    return ids


def support_level(status):
    """Whitepaper support level (No / Partial / Full) for a check status."""
    return STATUS_TO_SUPPORT.get(status, "No")


def junit_test_name(rid):
    """Name of the testcase that stands for requirement `rid` in our junit.xml.

    The upstream test name for the ids validate.go maps (UPSTREAM_TESTS), else ``Test`` + the id in CamelCase
    (``ai_inference`` -> ``TestAiInference``), linked from PRODUCT.yaml with a ``#Test...`` fragment.
    """
    if rid in UPSTREAM_TESTS:
        return UPSTREAM_TESTS[rid]
    return "Test" + "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", str(rid)) if part)
