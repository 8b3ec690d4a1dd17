"""The lab's accelerator metrics STAND-IN (not NVIDIA's DCGM exporter): a DaemonSet on the real nodes.

The lab has no GPU, and no DCGM exists for this machine, so the accelerator_metrics check would have nothing to
read. tests/lab/go/accelerator-metrics-standin is an exporter of our own (Go standard library only) that
publishes, per device the node's DRA driver advertises (the node's ResourceSlices: the DRA example driver's
gpu.example.com devices), the DCGM exporter's real metric and label names (DCGM_FI_DEV_GPU_UTIL,
DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE, DCGM_FI_DEV_GPU_TEMP, DCGM_FI_DEV_POWER_USAGE, DCGM_FI_DEV_SM_CLOCK;
labels gpu, UUID, device, modelName, Hostname, pci_bus_id, DCGM_FI_DRIVER_VERSION, and pod/namespace/container
of the pod holding the device). Its values are not measurements: a device allocated to a claim that a running
pod holds reports utilisation 100 and half its memory used, an idle one 0. It says so in every scrape
(lab_accelerator_metrics_standin_info, HELP texts). A check that passes against it shows the check's discovery
and parsing work, and that per-device series follow DRA allocations - not that any GPU was measured.
"""

import copy
import json
import os
import sys

NAME = "accelerator-metrics-standin"
NAMESPACE = "lab-accelerator-metrics"
IMAGE = "localhost/k8s-ai-conformance/accelerator-metrics-standin:0.1.0"   # our own: no upstream name to take
PORT = 9400  # the DCGM exporter's port


def build(lab):
    lab._go_build("accelerator-metrics-standin (ours: DCGM metric names, no GPU)",
                  os.path.join(lab.HERE, "go", NAME), ".", os.path.join(lab.BIN, NAME))


def image_builders(lab):
    import images  # noqa: PLC0415
    return [lambda out: images.binary_image(os.path.join(out, NAME + ".tar"), IMAGE, os.path.join(lab.BIN, NAME),
                                            NAME, user="65532:65532")]


def objects(lab):
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "k8s-ai-conformance-lab"}
    container = {
        "name": "exporter", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "ports": [{"name": "metrics", "containerPort": PORT}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": PORT}, "periodSeconds": 5},
        "resources": {"requests": {"cpu": "5m", "memory": "16Mi"}},
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}}}
    ns = "/api/v1/namespaces/" + NAMESPACE
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    return [
        ("/api/v1/namespaces/" + NAMESPACE, {"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": NAMESPACE, "labels": labels}}),
        (ns + "/serviceaccounts/" + NAME, {"apiVersion": "v1", "kind": "ServiceAccount",
                                           "metadata": {"name": NAME, "namespace": NAMESPACE}}),
        (rbac + "/clusterroles/lab:" + NAME, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "lab:" + NAME},
            "rules": [{"apiGroups": ["resource.k8s.io"], "resources": ["resourceslices", "resourceclaims"],
                       "verbs": ["get", "list"]},
                      {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        (rbac + "/clusterrolebindings/lab:" + NAME, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "lab:" + NAME},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "lab:" + NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]}),
        ("/apis/apps/v1/namespaces/%s/daemonsets/%s" % (NAMESPACE, NAME), {
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
            "spec": {"selector": {"matchLabels": labels}, "template": {
                # annotated as the accelerator_metrics role annotates DCGM's pods (podAnnotations), for scrapers
                # that discover pods (otel_collector's accelerator-exporters job)
                "metadata": {"labels": labels, "annotations": {"prometheus.io/scrape": "true",
                                                               "prometheus.io/port": str(PORT),
                                                               "prometheus.io/path": "/metrics"}},
                "spec": {"serviceAccountName": NAME, "nodeSelector": {lab.realnodes.REAL_LABEL: "true"},
                         "containers": [container]}}}}),
        (ns + "/services/" + NAME, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels,
                         "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT)}},
            "spec": {"selector": labels, "ports": [{"name": "metrics", "port": PORT, "targetPort": "metrics"}]}}),
    ]


def ready(api):
    code, ds = api.get("/apis/apps/v1/namespaces/%s/daemonsets/%s" % (NAMESPACE, NAME), ok=(200, 404))
    if code != 200:
        return False
    status = ds.get("status") or {}
    return bool(status.get("desiredNumberScheduled")) and status.get("numberReady") == status.get(
        "desiredNumberScheduled") and status.get("observedGeneration") == ds["metadata"]["generation"]


def install(lab, state, wait=True):
    if not state.get("real_nodes"):
        return False
    api = lab.Api()
    for path, obj in objects(lab):
        api.apply(copy.deepcopy(obj), path)
    if wait:
        lab._wait("the accelerator metrics stand-in ready on every real node", lambda: ready(api), 120, 1)
        lab.log("accelerator metrics stand-in (ours, DCGM metric names) on the real nodes: %s/%s:%d"
                % (NAMESPACE, NAME, PORT))
    return True


def main(argv):
    """`metrics_standin.py install`: build the binary and image, import the image into the RUNNING real nodes
    (a fresh lab's nodes import every image at start) and install the DaemonSet."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import lab  # noqa: PLC0415
    import realnodes  # noqa: PLC0415
    if argv[1:] != ["install"]:
        raise SystemExit(main.__doc__)
    state = lab._state()
    build(lab)
    for builder in image_builders(lab):
        builder(realnodes.image_dir(lab))
    for node in state.get("real_nodes") or []:
        realnodes._run(realnodes.PODMAN + ["exec", node, "/lab/bin/ctr", "-n", "k8s.io", "images", "import",
                                           "/lab/images/%s.tar" % NAME])
    print(json.dumps({"installed": install(lab, state)}))


if __name__ == "__main__":
    main(sys.argv)
