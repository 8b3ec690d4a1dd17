"""The real cluster-autoscaler on the lab, with its kwok cloud provider and one GPU node group.

The upstream cluster-autoscaler (k8s.io/autoscaler/cluster-autoscaler, built with `-tags kwok`: only the kwok
cloud provider, tests/lab/go/autoscaler) runs as a Deployment in kube-system on a real node, from an image
built here under the upstream image name, with its own ServiceAccount and a ClusterRole of what it reads and
writes. Its kwok provider (facts from cloudprovider/kwok at that version):
  - reads its configuration from the ConfigMap `kwok-provider-config` (key `config`) in $POD_NAMESPACE
    (`readNodesFrom: configmap`: node templates from the ConfigMap named in `configmap.name`, key `templates`;
    `nodegroups.fromNodeLabelKey`: the template label whose value names the node group);
  - on scale-up creates Node objects from the template (name `<group>-<5 random>`, annotation
    `kwok.x-k8s.io/node: fake`, providerID `kwok:<name>`, taint `kwok-provider=true:NoSchedule` unless
    `nodes.skipTaint`) and on scale-down deletes them; it runs no kwok controller of its own, so the lab's kwok
    (which manages nodes labelled lab.k8s-ai-conformance.io/simulated=true) keeps them Ready: the template
    carries that label;
  - node groups take their min/max from the template's annotations cluster-autoscaler.kwok.nodegroup/min-count
    and max-count.
The node group's template is shaped like the lab's simulated NVIDIA nodes (lab._node: the GPU feature
discovery labels) and offers `nvidia.com/gpu: 8` as a device plugin would: the kwok provider creates Node
objects only, so the new nodes publish no DRA ResourceSlices, and cluster-autoscaler 1.33 simulates DRA only
behind --enable-dynamic-resource-allocation (not set here).

Version: cluster-autoscaler 1.33.0 (the commit of tag cluster-autoscaler-1.33.0, pinned in go.mod). Releases
1.34-1.36 are not served by the module proxy this lab builds from (every pseudo-version of their tag commits is
refused), so the autoscaler is two minors behind the lab's Kubernetes 1.35: it uses only GA APIs (core, apps,
policy/v1, storage/v1, batch/v1, coordination/v1).
"""

import copy
import json
import os
import sys

import yaml

NAME = "cluster-autoscaler"
NAMESPACE = "kube-system"
RELEASE = "v1.33.0"      # tag cluster-autoscaler-1.33.0 = the pseudo-version in go/autoscaler/go.mod
IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler:%s" % RELEASE
NODE_GROUP = "lab-gpu-h100"
GROUP_LABEL = "lab.k8s-ai-conformance.io/node-group"
GPUS_PER_NODE = 8
MAX_NODES = 2
CONFIG_MAP = "kwok-provider-config"
TEMPLATES_MAP = "kwok-provider-templates"
# Fast enough for tests and the demo (defaults: scale-down after 10 minutes unneeded, 10 minutes after a scale-up).
FLAGS = [
    "--cloud-provider=kwok", "--namespace=" + NAMESPACE, "--leader-elect=false", "--scan-interval=5s",
    "--scale-down-delay-after-add=20s", "--scale-down-unneeded-time=20s", "--scale-down-delay-after-delete=5s",
    "--max-node-provision-time=2m", "--expander=least-waste", "--skip-nodes-with-local-storage=false",
    # a node is "unremovable" while the probe pod (not replicated) is on it; re-checked after this, not 5 minutes
    "--unremovable-node-recheck-timeout=15s",
    "--logtostderr=true", "--v=2",
]


def build(lab):
    module = os.path.join(lab.HERE, "go", "autoscaler")
    lab._go_build("cluster-autoscaler (kwok cloud provider only)", module, "k8s.io/autoscaler/cluster-autoscaler",
                  os.path.join(lab.BIN, NAME), extra=("-tags", "kwok"))


def image_builders(lab):
    """The image build step for realnodes.extra_images: the binary at /cluster-autoscaler, as upstream's."""
    import images  # noqa: PLC0415
    return [lambda out: images.binary_image(os.path.join(out, NAME + ".tar"), IMAGE, os.path.join(lab.BIN, NAME),
                                            NAME, user="65532:65532")]


def node_template(lab):
    node = lab._node(NODE_GROUP, GPUS_PER_NODE)
    meta = node["metadata"]
    meta["labels"].pop("kubernetes.io/hostname", None)
    meta["labels"][GROUP_LABEL] = NODE_GROUP
    meta["annotations"].update({"cluster-autoscaler.kwok.nodegroup/min-count": "0",
                                "cluster-autoscaler.kwok.nodegroup/max-count": str(MAX_NODES)})
    for key in ("capacity", "allocatable"):
        node["status"][key]["nvidia.com/gpu"] = str(GPUS_PER_NODE)
    return node


def provider_config():
    return {"apiVersion": "v1alpha1", "readNodesFrom": "configmap",
            "nodegroups": {"fromNodeLabelKey": GROUP_LABEL},
            "nodes": {"skipTaint": False},
            "configmap": {"name": TEMPLATES_MAP}}


def _rules():
    def rule(groups, resources, verbs, names=None):
        out = {"apiGroups": groups, "resources": resources, "verbs": verbs}
        if names:
            out["resourceNames"] = names
        return out
    read = ["get", "list", "watch"]
    return [
        rule([""], ["events"], ["create", "patch"]),
        rule([""], ["pods/eviction"], ["create"]),
        rule([""], ["pods/status"], ["update"]),
        # the kwok provider creates and deletes the node group's Node objects; scale-down taints them first
        rule([""], ["nodes"], read + ["update", "patch", "create", "delete"]),
        rule([""], ["namespaces", "pods", "services", "replicationcontrollers", "persistentvolumeclaims",
                    "persistentvolumes"], read),
        rule(["apps"], ["daemonsets", "replicasets", "statefulsets"], read),
        rule(["policy"], ["poddisruptionbudgets"], ["list", "watch"]),
        # every informer must sync before it starts (volumeattachments missing: stuck "Initializing")
        rule(["storage.k8s.io"], ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities",
                                  "volumeattachments"], read),
        rule(["batch"], ["jobs", "cronjobs"], read),
    ]


def objects(lab):
    """(API path, object) for everything the autoscaler needs, in apply order."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    ns = "/api/v1/namespaces/" + NAMESPACE
    labels = {"app.kubernetes.io/name": NAME}
    subject = [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]
    templates = {"apiVersion": "v1", "kind": "List", "items": [node_template(lab)]}
    container = {
        "name": NAME, "image": IMAGE, "imagePullPolicy": "IfNotPresent", "command": ["/" + NAME] + FLAGS,
        "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "KWOK_PROVIDER_CONFIGMAP", "value": CONFIG_MAP}],
        "ports": [{"name": "metrics", "containerPort": 8085}],
        "readinessProbe": {"httpGet": {"path": "/health-check", "port": 8085}, "periodSeconds": 5},
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}},
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}}}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(labels, app=NAME)},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"serviceAccountName": NAME, "priorityClassName": "system-cluster-critical",
                     "nodeSelector": {lab.realnodes.REAL_LABEL: "true"}, "containers": [container]}}}}
    return [
        (ns + "/serviceaccounts/" + NAME, {"apiVersion": "v1", "kind": "ServiceAccount",
                                           "metadata": {"name": NAME, "namespace": NAMESPACE}}),
        (rbac + "/clusterroles/" + NAME, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                          "metadata": {"name": NAME}, "rules": _rules()}),
        (rbac + "/clusterrolebindings/" + NAME, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": NAME},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
            "subjects": subject}),
        # its status ConfigMap (created by it) and the kwok provider's two ConfigMaps, in its namespace only
        (rbac + "/namespaces/" + NAMESPACE + "/roles/" + NAME, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "list", "watch"]},
                      {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "update", "delete", "watch"],
                       "resourceNames": ["cluster-autoscaler-status", CONFIG_MAP, TEMPLATES_MAP]}]}),
        (rbac + "/namespaces/" + NAMESPACE + "/rolebindings/" + NAME, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
            "subjects": subject}),
        (ns + "/configmaps/" + CONFIG_MAP, {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIG_MAP, "namespace": NAMESPACE},
            "data": {"config": yaml.safe_dump(provider_config(), sort_keys=False)}}),
        (ns + "/configmaps/" + TEMPLATES_MAP, {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": TEMPLATES_MAP, "namespace": NAMESPACE},
            "data": {"templates": yaml.safe_dump(templates, sort_keys=False)}}),
        ("/apis/apps/v1/namespaces/%s/deployments/%s" % (NAMESPACE, NAME), deployment),
    ]


def deployment_path(_name=NAME):
    return "/apis/apps/v1/namespaces/%s/deployments/%s" % (NAMESPACE, NAME)


# `lab.py stop|start cluster-autoscaler` (broken-state tests): its Deployment scaled to 0 and back, as an operator
# would; the same calls as tests/lab/controllers.py offers for Kueue and JobSet.
def scale(_name, replicas):
    import lab  # noqa: PLC0415
    lab.Api().request("PATCH", deployment_path() + "/scale", json.dumps({"spec": {"replicas": replicas}}),
                      content_type="application/merge-patch+json")


def wait_stopped(_name, timeout=60):
    import lab  # noqa: PLC0415

    def gone():
        pods = lab.Api().get("/api/v1/namespaces/%s/pods?labelSelector=app.kubernetes.io%%2Fname%%3D%s"
                             % (NAMESPACE, NAME))[1]["items"]
        return not pods
    lab._wait("cluster-autoscaler pods gone", gone, timeout, 0.5)


def wait_serving(_name, timeout=180):
    import lab  # noqa: PLC0415
    lab._wait("cluster-autoscaler Available", lambda: available(lab.Api()), timeout, 1)


def available(api):
    code, deployment = api.get(deployment_path(), ok=(200, 404))
    if code != 200:
        return False
    status = deployment.get("status") or {}
    return bool(status.get("availableReplicas")) and status.get("observedGeneration") == deployment["metadata"][
        "generation"]


def install(lab, state, wait=True):
    """Apply the autoscaler's objects (real nodes only: it runs as a pod) and wait until it is Available."""
    if not state.get("real_nodes"):
        return False
    api = lab.Api()
    for path, obj in objects(lab):
        api.apply(copy.deepcopy(obj), path)
    if wait:
        lab._wait("cluster-autoscaler Available (kubectl logs -n kube-system deploy/cluster-autoscaler)",
                  lambda: available(api), 180, 1)
        lab.log("cluster-autoscaler %s serving (kwok provider, node group %s: 0..%d nodes of %d nvidia.com/gpu)"
                % (RELEASE, NODE_GROUP, MAX_NODES, GPUS_PER_NODE))
    return True


def uninstall(lab, timeout=120):
    """Delete the autoscaler's objects (Deployment first, so it adds no node meanwhile), its status ConfigMap and
    the nodes it added; wait until its pod and those nodes are gone."""
    api = lab.Api()
    paths = [path for path, _obj in objects(lab)]
    paths = [p for p in paths if "/deployments/" in p] + [p for p in reversed(paths) if "/deployments/" not in p]
    for path in paths + ["/api/v1/namespaces/%s/configmaps/cluster-autoscaler-status" % NAMESPACE]:
        api.request("DELETE", path, ok=(200, 202, 404))
    nodes = "/api/v1/nodes?labelSelector=%s%%3D%s" % (GROUP_LABEL, NODE_GROUP)
    for node in api.get(nodes)[1].get("items") or []:
        api.request("DELETE", "/api/v1/nodes/" + node["metadata"]["name"], ok=(200, 202, 404))
    pods = "/api/v1/namespaces/%s/pods?labelSelector=app.kubernetes.io%%2Fname%%3D%s" % (NAMESPACE, NAME)
    lab._wait("cluster-autoscaler and its nodes gone", lambda: not (api.get(pods)[1].get("items") or [])
              and not (api.get(nodes)[1].get("items") or []), timeout, 1)


def check_options():
    """What verify's cluster_autoscaling gets on the lab (the lab inventory's verify_check_options)."""
    return {"probe_scale_up": True, "probe_scale_down": True, "accelerator_resource": "nvidia.com/gpu",
            "scale_up_timeout": 180, "scale_down_timeout": 240}


def main(argv):
    """`autoscaler.py install`: build the binary and image and install into the RUNNING lab;
    `autoscaler.py uninstall`: remove it and the nodes it added."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import lab  # noqa: PLC0415
    import realnodes  # noqa: PLC0415
    if argv[1:] == ["uninstall"]:
        uninstall(lab)
        return
    if argv[1:] != ["install"]:
        raise SystemExit(main.__doc__)
    print(json.dumps({"installed": build_and_install(lab, realnodes)}))


def build_and_install(lab, realnodes):
    """Build the binary and its image, hand the image to the lab's registry, install and wait."""
    build(lab)
    for builder in image_builders(lab):
        builder(realnodes.image_dir(lab))
    realnodes.registry.prepare(realnodes.image_dir(lab), realnodes.registry_dir(lab))
    return install(lab, lab._state())


if __name__ == "__main__":
    main(sys.argv)
