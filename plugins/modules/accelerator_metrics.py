#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: accelerator_metrics
short_description: Verify that an accelerator metrics endpoint exposes per-accelerator utilization and memory
description:
  - Checks the C(accelerator_metrics) requirement (observability, MUST).
  - Static - an accelerator metrics exporter is found (DCGM exporter, AMD device metrics exporter, Intel XPU
    manager exporter, or any Service given by I(metrics_service) / URL given by I(metrics_url)).
  - Positive - its endpoint answers in the Prometheus/OpenMetrics text format (machine-readable, read through
    the API server's proxy, one read per exporter pod so every node is covered).
  - Positive - the core metrics exist for every accelerator seen - utilization and memory usage - with a label
    that tells accelerators apart (vendor-neutral name sets, including the OpenTelemetry C(hw.gpu.*) names) -
    and on every node an exporter pod was read from, for every accelerator that node advertises (DRA
    ResourceSlices or device-plugin resources). Nodes that advertise accelerators but run no exporter pod are
    named in the notes.
  - Positive (optional) - the metrics follow a workload - a pod holding one device through a DRA claim on an
    exporter's node makes that device's series change - its utilization or memory moves, or it gains the pod's
    C(pod) label (the DCGM exporter's Kubernetes mapping). On real hardware an idle holder need not move the
    utilization, so this part never changes the verdict.
  - Optional - temperature, power and interconnect metrics are exposed.
  - Negative (optional) - no node reports more accelerators in its metrics than the cluster advertises for it
    (DRA ResourceSlices or device-plugin resources), so the metrics describe the cluster's real devices.
  - On a cluster without an exporter the check is Not Implemented (the capability is absent); an exporter that
    exists but cannot be read makes the part an error (not verified), never passed.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  metrics_service:
    description: C(namespace/name:port) of the exporter Service (port name or number). Default - discovered.
    type: str
  metrics_url:
    description: URL of a metrics endpoint reachable from the controller; used instead of discovery.
    type: str
  metrics_path:
    description: Path of the metrics endpoint on the exporter.
    type: str
    default: /metrics
  utilization_metrics:
    description: Extra metric names accepted as per-accelerator utilization.
    type: list
    elements: str
    default: []
  memory_metrics:
    description: Extra metric names accepted as per-accelerator memory usage.
    type: list
    elements: str
    default: []
  max_pods:
    description: Read at most this many exporter pods (one per node).
    type: int
    default: 50
"""

EXAMPLES = r"""
- name: Verify accelerator metrics (exporter discovered)
  k8s_ai.conformance.accelerator_metrics:
    kubeconfig: "{{ kubeconfig }}"
  delegate_to: localhost

- name: Verify a given exporter Service
  k8s_ai.conformance.accelerator_metrics:
    metrics_service: gpu-operator/nvidia-dcgm-exporter:9400
"""

RETURN = r"""
result:
  description: Check result (docs/architecture.md schema).
  returned: always
  type: dict
  contains:
    status: {description: "Implemented, Partially Implemented, Not Implemented or N/A.", type: str, returned: always}
    verified: {description: False when a part could not run., type: bool, returned: always}
    parts: {description: Parts with outcome and detail (accelerators and metrics found)., type: list, returned: always}
    evidence: {description: "Endpoints read, metric names found per family.", type: list, returned: always}
"""

import re  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.endpoints import (  # noqa: E402
    Endpoint,
    EndpointError,
    parse_service,
)
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (  # noqa: E402
    claim_allocation,
    claim_manifest,
    on_nodes,
    pod_manifest,
)

ARGUMENT_SPEC = {
    "metrics_service": {"type": "str"},
    "metrics_url": {"type": "str"},
    "metrics_path": {"type": "str", "default": "/metrics"},
    "utilization_metrics": {"type": "list", "elements": "str", "default": []},
    "memory_metrics": {"type": "list", "elements": "str", "default": []},
    "max_pods": {"type": "int", "default": 50},
}
# Known exporters: name fragments of their Services/labels; metric families per vendor (lower-cased).
EXPORTER_HINTS = ("dcgm-exporter", "dcgm", "device-metrics-exporter", "amd-gpu-metrics", "xpumanager", "xpum",
                  "intel-gpu-exporter", "gpu-exporter", "accelerator-metrics", "neuron-monitor", "gaudi-metric")
FAMILIES = {
    "utilization": ("dcgm_fi_dev_gpu_util", "dcgm_fi_prof_gr_engine_active", "gpu_gfx_activity", "gpu_activity",
                    "xpum_engine_group_utilization", "xpum_engine_utilization", "hw_gpu_utilization",
                    "hw_gpu_utilization_ratio", "neuroncore_utilization_ratio", "habanalabs_utilization"),
    "memory": ("dcgm_fi_dev_fb_used", "gpu_used_vram", "gpu_vram_used", "xpum_memory_used_bytes",
               "hw_gpu_memory_usage", "hw_gpu_memory_usage_bytes", "neuron_runtime_memory_used_bytes",
               "habanalabs_memory_used_bytes"),
    "temperature": ("dcgm_fi_dev_gpu_temp", "gpu_edge_temperature", "gpu_junction_temperature",
                    "xpum_temperature_celsius", "hw_gpu_temperature", "habanalabs_temperature_onchip"),
    "power": ("dcgm_fi_dev_power_usage", "gpu_power_usage", "gpu_package_power", "xpum_power_watts",
              "hw_gpu_power", "habanalabs_power_mw"),
    "interconnect": ("dcgm_fi_prof_nvlink_tx_bytes", "dcgm_fi_prof_nvlink_rx_bytes",
                     "dcgm_fi_dev_nvlink_bandwidth_total", "gpu_xgmi_link_tx", "gpu_xgmi_link_rx",
                     "xpum_fabric_tx_bytes_total", "dcgm_fi_prof_pcie_tx_bytes", "pcie_bandwidth"),
}
EXPOSITION = "text/plain;version=0.0.4, */*"
KNOWN_PORTS = (9400, 5000, 29999, 9500)  # DCGM exporter, AMD device metrics exporter, Intel XPUM, ...
ACCELERATOR_ID_LABELS = ("uuid", "gpu_uuid", "gpu", "gpu_id", "device", "deviceid", "device_id", "dev_file",
                         "hw_id", "card", "minor_number", "serial_number", "module_id")
NODE_LABELS = ("hostname", "host", "node", "kubernetes_node", "instance")

_METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:.]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+(?:\.\d+)?)?\s*$')
_LABEL_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def verify(check):
    check.static("an accelerator metrics exporter is found", exporter_found)
    check.positive("the endpoint serves metrics in the Prometheus text format", endpoint_readable)
    check.positive("utilization and memory metrics exist for every accelerator", core_metrics_per_accelerator)
    check.positive("temperature, power and interconnect metrics are exposed", extra_metrics, required=False)
    check.positive("a device's metrics follow a pod that holds it", follows_workload, required=False)
    check.negative("no node reports more accelerators than the cluster advertises for it", no_phantom_accelerators,
                   required=False)


# ---- pure logic ---------------------------------------------------------------------------------
def parse_exposition(text):
    """Prometheus text exposition -> (samples [(name, labels, value)], numbers of malformed lines)."""
    samples, malformed = [], []
    for number, raw in enumerate((text or "").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _METRIC_LINE.match(line)
        if not match:
            malformed.append(number)
            continue
        labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                  for k, v in _LABEL_PAIR.findall(match.group(2) or "")}
        try:
            value = float(match.group(3))
        except ValueError:
            malformed.append(number)
            continue
        samples.append((match.group(1), labels, value))
    return samples, malformed


def family_of(name, extra=None):
    """Which core/optional family a metric name belongs to (None if none)."""
    lowered = name.lower().replace(".", "_")
    for family, names in (extra or {}).items():
        if lowered in {n.lower().replace(".", "_") for n in names}:
            return family
    for family, names in FAMILIES.items():
        if lowered in names:
            return family
    return None


def accelerator_key(labels, source):
    """(node or source, accelerator id) from a sample's labels; None when no label tells accelerators apart."""
    lowered = {k.lower(): v for k, v in labels.items()}
    ident = next((lowered[k] for k in ACCELERATOR_ID_LABELS if lowered.get(k) not in (None, "")), None)
    if ident is None:
        return None
    node = next((lowered[k] for k in NODE_LABELS if lowered.get(k)), source)
    return (node, ident)


def coverage(samples_by_source, extra=None):
    """{accelerator key: set(families)} and {family: set(metric names)} over all sources."""
    per_accelerator, names = {}, {}
    for source, samples in samples_by_source.items():
        for name, labels, _value in samples:
            family = family_of(name, extra)
            if not family:
                continue
            names.setdefault(family, set()).add(name)
            key = accelerator_key(labels, source)
            if key is not None:
                per_accelerator.setdefault(key, set()).add(family)
    return per_accelerator, names


# ---- parts --------------------------------------------------------------------------------------
def _port_ref(port):
    return str(port.get("name") or port.get("port"))


def exporter_found(check):
    if check.params.get("metrics_url"):
        check.facts["sources"] = [("url", Endpoint(check.params["metrics_url"]), check.params["metrics_url"])]
        return "metrics URL given: %s" % check.params["metrics_url"]
    given = check.params.get("metrics_service")
    services = []
    if given:
        namespace, name, port = parse_service(given, "metrics_service", require_port=False)
        svc = check.read("exporter Service", check.cluster.path("v1", "services", namespace, name))
        services.append((svc, port))
    else:
        hinted = []
        for svc in check.list("Services (all namespaces)", "/api/v1/services"):
            meta = svc["metadata"]
            text = " ".join([meta["name"]] + list((meta.get("labels") or {}).values())).lower()
            if any(hint in text for hint in EXPORTER_HINTS):
                hinted.append((svc, ""))
        # prefer Services with a metrics port (a DCGM host engine Service, say, serves no metrics)
        services = [s for s in hinted if metrics_port(s[0])] or hinted
    check.require(services, "no accelerator metrics exporter Service found (looked for %s; set metrics_service)"
                  % ", ".join(EXPORTER_HINTS[:6]))
    sources = []
    for svc, port in services:
        ports = (svc.get("spec") or {}).get("ports") or []
        if not port:
            chosen = metrics_port(svc) or (ports[0] if ports else None)
            port = _port_ref(chosen) if chosen else ""
        sources.extend(exporter_pods(check, svc, port))
    check.facts["sources"] = sources[: check.params["max_pods"]]
    check.require(sources, "exporter Service(s) %s have no endpoints/port" % ", ".join(
        "%s/%s" % (s["metadata"]["namespace"], s["metadata"]["name"]) for s, _port in services))
    names = sorted({"%s/%s" % (s["metadata"]["namespace"], s["metadata"]["name"]) for s, _port in services})
    return "%d endpoint(s) of %s" % (len(sources), ", ".join(names))


def metrics_port(svc):
    """The Service port that serves metrics (by name or well-known exporter port), or None."""
    for port in (svc.get("spec") or {}).get("ports") or []:
        if "metric" in str(port.get("name", "")) or port.get("port") in KNOWN_PORTS:
            return port
    return None


def exporter_pods(check, svc, port):
    """[(label, Endpoint, description)]: one per ready exporter pod, else the Service proxy."""
    namespace, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
    path = check.params["metrics_path"]
    slices = check.cluster.list(check.cluster.path("discovery.k8s.io/v1", "endpointslices", namespace),
                                label_selector="kubernetes.io/service-name=%s" % name)
    target_port = None
    for sp in (svc.get("spec") or {}).get("ports") or []:
        if _port_ref(sp) == port or str(sp.get("port")) == port:
            target_port = sp.get("targetPort") or sp.get("port")
    sources = []
    for es in slices:
        es_ports = {p.get("name") or "": p.get("port") for p in es.get("ports") or []}
        number = es_ports.get(port) or (target_port if isinstance(target_port, int) else None) \
            or next(iter(es_ports.values()), None)
        for ep in es.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            if ref.get("kind") == "Pod" and number:
                sources.append((ep.get("nodeName") or ref["name"], Endpoint.pod(namespace, ref["name"], number, path),
                                "pod %s/%s on %s" % (namespace, ref["name"], ep.get("nodeName"))))
    if not sources and port:
        sources.append((name, Endpoint.service(namespace, name, port, path), "service %s/%s" % (namespace, name)))
    return sources


def endpoint_readable(check, probe):
    sources = check.facts.get("sources") or check.fail("no exporter endpoint")
    samples_by_source, errors = {}, []
    for label, where, what in sources:
        try:
            text = where.get_text(check.cluster, accept=EXPOSITION)
        except EndpointError as exc:
            errors.append("%s: %s" % (what, exc))
            check.record("read metrics from %s" % what, "GET " + where.location(), error=exc)
            continue
        samples, malformed = parse_exposition(text)
        check.record("read metrics from %s" % what, "GET " + where.location(),
                     response={"samples": len(samples), "malformed_lines": malformed[:10],
                               "metric_names": sorted({s[0] for s in samples})[:60]})
        if samples and len(malformed) <= len(samples) // 10:
            samples_by_source[label] = samples
        else:
            errors.append("%s: %d samples, %d malformed lines" % (what, len(samples), len(malformed)))
    check.facts["samples"] = samples_by_source
    if not samples_by_source:
        check.cannot_run("no exporter endpoint could be read: %s" % "; ".join(errors[:5]))
    if errors:
        check.note("some exporter endpoints could not be read: %s" % "; ".join(errors[:5]))
    return "%d of %d endpoint(s) serve Prometheus text (%d samples)" % (
        len(samples_by_source), len(sources), sum(len(s) for s in samples_by_source.values()))


def core_metrics_per_accelerator(check, probe):
    samples = check.facts.get("samples") or check.fail("no metrics read")
    extra = {"utilization": check.params["utilization_metrics"], "memory": check.params["memory_metrics"]}
    per_accelerator, names = coverage(samples, extra)
    check.facts["names"] = names
    check.record("metric families found", "classify metric names",
                 response={"families": {k: sorted(v) for k, v in names.items()},
                           "accelerators": {"%s/%s" % k: sorted(v) for k, v in sorted(per_accelerator.items())[:20]}})
    check.require(names.get("utilization"),
                  "no utilization metric (looked for %s)" % ", ".join(FAMILIES["utilization"][:5]))
    check.require(names.get("memory"), "no memory usage metric (looked for %s)" % ", ".join(FAMILIES["memory"][:5]))
    check.require(per_accelerator, "metrics carry no label that tells accelerators apart (%s)"
                  % ", ".join(ACCELERATOR_ID_LABELS[:6]))
    incomplete = ["%s/%s lacks %s" % (k[0], k[1], " and ".join(sorted({"utilization", "memory"} - fams)))
                  for k, fams in sorted(per_accelerator.items()) if not {"utilization", "memory"} <= fams]
    check.require(not incomplete, "; ".join(incomplete[:8]))
    nodes = sorted({k[0] for k in per_accelerator})
    advertised = advertised_per_node(check.accelerators)
    covered = {label for label in samples if label in advertised}
    seen = {n: sum(1 for k, fams in per_accelerator.items() if k[0] == n and {"utilization", "memory"} <= fams)
            for n in covered}
    short = ["%s advertises %d, metrics for %d" % (n, advertised[n], seen[n]) for n in sorted(covered)
             if seen[n] < advertised[n]]
    check.require(not short, "not every advertised accelerator has metrics: " + "; ".join(short[:8]))
    uncovered = sorted(set(advertised) - covered)
    if uncovered:
        check.note("%d node(s) advertise accelerators but no exporter pod was read there: %s" % (
            len(uncovered), ", ".join(uncovered[:8]) + (" ..." if len(uncovered) > 8 else "")))
    return "%d accelerators on %d node(s) report utilization (%s) and memory (%s)%s" % (
        len(per_accelerator), len(nodes), ", ".join(sorted(names["utilization"])), ", ".join(sorted(names["memory"])),
        "; every accelerator advertised on %s has both" % ", ".join(sorted(covered)) if covered else "")


def extra_metrics(check, probe):
    names = check.facts.get("names") or check.fail("no metrics classified")
    missing = [f for f in ("temperature", "power", "interconnect") if not names.get(f)]
    check.require(not missing, "not exposed: %s" % ", ".join(missing))
    return ", ".join("%s: %s" % (f, ", ".join(sorted(names[f])[:3])) for f in ("temperature", "power", "interconnect"))


HOLDER_LABELS = ("pod", "namespace", "container")  # the DCGM exporter's Kubernetes mapping


def device_series(samples, values):
    """{(name, labels without the holder's): (value, holder pod)} of the utilization/memory samples that name the
    device (one of its label values is in values)."""
    out = {}
    for name, labels, value in samples:
        if family_of(name) in ("utilization", "memory") and set(labels.values()) & values:
            identity = tuple(sorted((k, v) for k, v in labels.items() if k not in HOLDER_LABELS))
            out[(name, identity)] = (value, labels.get("pod"))
    return out


def follows_workload(check, probe):
    sources = {label: where for label, where, _what in check.facts.get("sources") or []}
    drivers = check.accelerators.get("drivers") or {}
    driver = next((d for d in sorted(drivers) if any(drivers[d]["nodes"].get(n) for n in sources)), None)
    check.require(driver, "no exporter pod runs on a node with DRA devices (needed to hold one device)")
    nodes = [n for n in sorted(sources) if drivers[driver]["nodes"].get(n)]
    device_class = next((dc["name"] for dc in check.accelerators["device_classes"] if driver in dc["drivers"]), None)
    check.require(device_class, "no DeviceClass selects driver %s" % driver)
    # Every exporter node's series before the pod exists; the scheduler then picks one of them with a free device
    # (other tenants may hold some: a pinned node could keep the pod pending).
    before = {n: parse_exposition(sources[n].get_text(check.cluster, accept=EXPOSITION))[0] for n in nodes}
    claim = probe.create(claim_manifest("metrics-workload", device_class))
    pod = pod_manifest("metrics-workload", claims={"accel": {"resourceClaimName": "metrics-workload"}})
    pod = probe.wait_for(probe.create(on_nodes(pod, nodes)),
                         lambda p: (p.get("status") or {}).get("phase") == "Running",
                         "the pod holding a device Running on one of %s" % ", ".join(nodes))
    node = pod["spec"]["nodeName"]
    result = probe.wait_for(claim, claim_allocation, "claim allocated")["status"]["allocation"]["devices"][
        "results"][0]
    values = {result["device"]}
    for sl in check.cluster.list(check.cluster.path("resource.k8s.io/v1", "resourceslices"),
                                 field_selector="spec.nodeName=%s" % node):
        for dev in (sl.get("spec") or {}).get("devices") or []:
            if sl["spec"].get("driver") == result["driver"] and dev.get("name") == result["device"]:
                values.update(str(v) for a in (dev.get("attributes") or {}).values() for v in a.values())
    baseline = device_series(before[node], values)
    check.require(baseline, "no utilization/memory series names device %s (labels looked for: %s)"
                  % (result["device"], ", ".join(sorted(values))[:200]))

    def changed(text):
        now = device_series(parse_exposition(text)[0], values)
        moved = sorted("%s %g->%g" % (k[0], baseline[k][0], v[0]) for k, v in now.items()
                       if k in baseline and v[0] != baseline[k][0])
        labelled = sorted({k[0] for k, v in now.items() if v[1] == pod["metadata"]["name"]})
        return (moved or labelled) and (moved, labelled)
    seen = probe.wait_until(lambda: changed(sources[node].get_text(check.cluster, accept=EXPOSITION)), bool,
                            "the metrics of device %s follow pod metrics-workload" % result["device"])
    moved, labelled = seen
    return "device %s on %s, held by pod metrics-workload: %s%s" % (
        result["device"], node, ("moved " + ", ".join(moved[:3])) if moved else "",
        ("; series with pod=metrics-workload: " + ", ".join(labelled)) if labelled else "")


def advertised_per_node(acc):
    """{node: accelerators advertised} from DRA ResourceSlices and device-plugin resources (the larger)."""
    dra, plugin = {}, {}
    for info in (acc.get("drivers") or {}).values():
        for node, count in (info.get("nodes") or {}).items():
            dra[node] = dra.get(node, 0) + count
    for info in (acc.get("extended_resources") or {}).values():
        for node, count in (info.get("nodes") or {}).items():
            plugin[node] = plugin.get(node, 0) + count
    return {n: max(dra.get(n, 0), plugin.get(n, 0)) for n in set(dra) | set(plugin)}


def no_phantom_accelerators(check, probe):
    samples = check.facts.get("samples") or check.fail("no metrics read")
    per_accelerator, _names = coverage(samples)
    advertised = advertised_per_node(check.accelerators)
    seen = {}
    for node, _ident in per_accelerator:
        seen[node] = seen.get(node, 0) + 1
    compared = {n: (c, advertised[n]) for n, c in seen.items() if n in advertised}
    check.require(compared, "metric node labels (%s) match no node with advertised accelerators"
                  % ", ".join(sorted(seen)[:5]))
    over = ["%s: %d in metrics, %d advertised" % (n, c, a) for n, (c, a) in sorted(compared.items()) if c > a]
    check.require(not over, "; ".join(over[:8]))
    return "per node, metrics never exceed advertised accelerators: %s" % ", ".join(
        "%s %d/%d" % (n, c, a) for n, (c, a) in sorted(compared.items())[:8])


def main():
    run_check("accelerator_metrics", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
