"""Attach the real Kueue and JobSet controllers to the lab.

With real nodes (the default lab), the controllers run as what the release manifests (applied by our
roles, or here with `install=True`) make them: Deployments whose pods run on a real node from images
built here under their upstream names (tests/lab/realnodes.py), webhooks reached the normal way
(Service -> endpoints -> pod IP). `attach` then only waits until they serve.

Without real nodes (`--real-nodes 0`: the control plane and kwok only), the host-process mode below
stands in: the components' manifests are what a cluster gets (applied by our roles, or here by the lab itself
with `install=True`); their Deployments "run" on kwok nodes, where no container runs. The real
controller binaries run here instead, configured from the very ConfigMap the manifests (or a role)
put in the cluster, with only what a host process needs changed: loopback addresses for the webhook,
metrics and health servers, no leader election, a local certificate directory. Their webhook Services
become ExternalName Services pointing at the loopback address the webhook server listens on (the API
server dials <externalName>:<service port>; EndpointSlices may not point at loopback).
"""

import base64
import hashlib
import json
import os
import subprocess
import time

import lab
import realnodes
import yaml

CONTROLLERS = {
    "kueue": {
        "version_key": "KUEUE_VERSION", "module": "sigs.k8s.io/kueue", "namespace": "kueue-system",
        "configmap": "kueue-manager-config", "config_key": "controller_manager_config.yaml",
        "crd": "workloads.kueue.x-k8s.io", "cert_secret": "kueue-webhook-server-cert",
        "services": {"kueue-webhook-service": lab.WEBHOOK_HOSTS["kueue"],
                     "kueue-visibility-server": lab.WEBHOOK_HOSTS["kueue-visibility"]},
        "webhooks": ["kueue-validating-webhook-configuration", "kueue-mutating-webhook-configuration"],
        "health": "kueue-health",
    },
    "jobset": {
        "version_key": "JOBSET_VERSION", "module": "sigs.k8s.io/jobset", "namespace": "jobset-system",
        "configmap": "jobset-manager-config", "config_key": "controller_manager_config.yaml",
        "crd": "jobsets.jobset.x-k8s.io", "cert_secret": "jobset-webhook-server-cert",
        # JobSet's cert rotator waits for the files in this fixed directory, whatever its config says.
        "cert_dir": "/tmp/k8s-webhook-server/serving-certs",
        "services": {"jobset-webhook-service": lab.WEBHOOK_HOSTS["jobset"]},
        "webhooks": ["jobset-validating-webhook-configuration", "jobset-mutating-webhook-configuration"],
        "health": "jobset-health",
    },
}


def manifests(name):
    """The release-equivalent manifest: from the lab's mirror, else built from the pinned module."""
    spec = CONTROLLERS[name]
    version = lab.versions()[spec["version_key"]]
    mirrored = os.path.join(lab.LAB, "mirror", "github.com", "kubernetes-sigs", name, "releases", "download",
                            version, "manifests.yaml")
    if os.path.exists(mirrored):
        return mirrored
    cache = os.path.join(lab.LAB, "cache", "%s-%s-manifests.yaml" % (name, version))
    if not os.path.exists(cache):
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod")
        info = json.loads(subprocess.run(["go", "mod", "download", "-json", "%s@%s" % (spec["module"], version)],
                                         cwd=os.path.join(lab.HERE, "go", "controllers"), env=env, check=True,
                                         capture_output=True, text=True).stdout)
        out = subprocess.run([os.path.join(lab.BIN, "kubectl"), "kustomize", os.path.join(info["Dir"], "config",
                                                                                          "default")],
                             check=True, capture_output=True, text=True).stdout
        with open(cache, "w") as f:
            f.write(out)
    return cache


def kubectl(*args, **kwargs):
    return subprocess.run([os.path.join(lab.BIN, "kubectl"), "--kubeconfig", lab.KUBECONFIG] + list(args),
                          check=True, capture_output=True, text=True, **kwargs)


def install(name, on_real_nodes=False):
    spec = CONTROLLERS[name]
    api = lab.Api()
    status, _unused = api.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" + spec["crd"],
                                  ok=(200, 404))
    if status == 200:
        return
    lab.log("installing %s manifests" % name)
    with open(manifests(name)) as handle:
        docs = [d for d in yaml.safe_load_all(handle) if d]
    if on_real_nodes:
        for doc in docs:
            if doc.get("kind") == "Deployment":
                doc["spec"]["template"]["spec"].setdefault("nodeSelector", {})[realnodes.REAL_LABEL] = "true"
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=k8s-ai-conformance-lab", "-f", "-",
            input=yaml.safe_dump_all(docs))
    # `kubectl wait` right after the apply can miss the new CRD (seen once on a fresh clone): try again
    for attempt in range(3):
        try:
            kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/" + spec["crd"])
            return
        except subprocess.CalledProcessError as exc:
            answer = (exc.stderr or "").strip()
            lab.log("waiting for crd/%s: %s" % (spec["crd"], answer[:300]))
            if attempt == 2:
                raise SystemExit("lab: crd/%s not Established: %s" % (spec["crd"], answer)) from None
            time.sleep(2)


def cert_dir(name):
    return CONTROLLERS[name].get("cert_dir") or os.path.join(lab.STATE, name + "-certs")


def host_config(name, cluster_config):
    """The cluster's controller configuration with what a host process needs changed."""
    spec = CONTROLLERS[name]
    cfg = dict(cluster_config or {})
    certs = cert_dir(name)
    os.makedirs(certs, exist_ok=True)
    webhook_host = spec["services"][next(iter(spec["services"]))]
    cfg["webhook"] = dict(cfg.get("webhook") or {}, host=webhook_host, port=443, certDir=certs)
    cfg["metrics"] = dict(cfg.get("metrics") or {}, bindAddress="127.0.0.1:%d" % lab.PORTS[name + "-metrics"])
    cfg["health"] = dict(cfg.get("health") or {},
                         healthProbeBindAddress="127.0.0.1:%d" % lab.PORTS[spec["health"]])
    cfg["leaderElection"] = {"leaderElect": False}
    cfg["internalCertManagement"] = dict(cfg.get("internalCertManagement") or {}, enable=True)
    if name == "kueue":
        cfg["namespace"] = spec["namespace"]
        cfg["visibilityServer"] = {"bindAddress": lab.WEBHOOK_HOSTS["kueue-visibility"], "bindPort": 443}
    return cfg


def point_services_at_host(name):
    api = lab.Api()
    spec = CONTROLLERS[name]
    for service, host in spec["services"].items():
        path = "/api/v1/namespaces/%s/services/%s" % (spec["namespace"], service)
        current = api.get(path)[1]
        if current["spec"].get("type") == "ExternalName" and current["spec"].get("externalName") == host:
            continue
        patch = {"spec": {"type": "ExternalName", "externalName": host, "clusterIP": None, "clusterIPs": None,
                          "ipFamilies": None, "ipFamilyPolicy": None, "internalTrafficPolicy": None}}
        api.request("PATCH", path + "?fieldManager=k8s-ai-conformance-lab", json.dumps(patch),
                    content_type="application/merge-patch+json")


def _sync_cert_secret(name):
    """Do what the kubelet does for the controller's Pod: project its certificate Secret into files.

    The controllers' cert rotator fills the Secret and then waits until the mounted files match it."""
    spec = CONTROLLERS[name]
    secret = lab.Api().get("/api/v1/namespaces/%s/secrets/%s" % (spec["namespace"], spec["cert_secret"]))[1]
    data = secret.get("data") or {}
    if not data.get("tls.crt"):
        return False
    certs = cert_dir(name)
    os.makedirs(certs, exist_ok=True)
    for key, value in data.items():
        path = os.path.join(certs, key)
        content = base64.b64decode(value)
        current = None
        if os.path.exists(path):
            with open(path, "rb") as f:
                current = f.read()
        if current != content:
            with open(path + ".tmp", "wb") as f:
                f.write(content)
            os.replace(path + ".tmp", path)
    return True


def _webhooks_ready(name):
    api = lab.Api()
    if not _sync_cert_secret(name):
        return False
    for kind, config in (("validatingwebhookconfigurations", CONTROLLERS[name]["webhooks"][0]),
                         ("mutatingwebhookconfigurations", CONTROLLERS[name]["webhooks"][1])):
        obj = api.get("/apis/admissionregistration.k8s.io/v1/%s/%s" % (kind, config))[1]
        if not all(w["clientConfig"].get("caBundle") for w in obj["webhooks"]):
            return False
    return lab._port_open(443, CONTROLLERS[name]["services"][next(iter(CONTROLLERS[name]["services"]))])


def pods_mode(state):
    return bool(state.get("real_nodes"))


def deployment_path(name):
    spec = CONTROLLERS[name]
    return "/apis/apps/v1/namespaces/%s/deployments/%s-controller-manager" % (spec["namespace"], name)


def _serving_as_pod(name):
    """Deployment Available, webhook CA injected, and the webhook Service has a ready endpoint."""
    api = lab.Api()
    spec = CONTROLLERS[name]
    deployment = api.get(deployment_path(name))[1]
    status = deployment.get("status") or {}
    if not status.get("availableReplicas") or status.get("observedGeneration") != deployment["metadata"]["generation"]:
        return False
    if status.get("updatedReplicas") != status.get("replicas"):   # a rollout still has old pods
        return False
    for kind, config in (("validatingwebhookconfigurations", spec["webhooks"][0]),
                         ("mutatingwebhookconfigurations", spec["webhooks"][1])):
        obj = api.get("/apis/admissionregistration.k8s.io/v1/%s/%s" % (kind, config))[1]
        if not all(w["clientConfig"].get("caBundle") for w in obj["webhooks"]):
            return False
    service = next(iter(spec["services"]))
    slices = api.get("/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices?labelSelector="
                     "kubernetes.io%%2Fservice-name%%3D%s" % (spec["namespace"], service))[1]["items"]
    ready = [e for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")]
    # A ready endpoint on a kwok node is a pod that runs nowhere: the API server would dial it (seen during the
    # rollout off a kwok node, its TLS answered by whatever owns that address).
    return bool(ready) and all(e.get("nodeName") in real_node_names() for e in ready)


def real_node_names():
    nodes = lab.Api().get("/api/v1/nodes?labelSelector=" + realnodes.REAL_LABEL.replace("/", "%2F") + "%3Dtrue")[1]
    return {n["metadata"]["name"] for n in nodes["items"]}


def scale(name, replicas):
    lab.Api().request("PATCH", deployment_path(name) + "/scale", json.dumps({"spec": {"replicas": replicas}}),
                      content_type="application/merge-patch+json")


def pin_to_real_nodes(name):
    """The controller's pod must land on a real node: kwok's simulated nodes take pods too (untainted, as the
    checks' accelerator probes need) but run no container, so its webhooks would never serve (seen with 2,000
    GPU nodes: Kueue's pod on gpu-node-681). A nodeSelector patch under the lab's own field manager; a role
    that applies the release manifest again leaves it alone (server-side apply owns only its fields)."""
    patch = {"spec": {"template": {"spec": {"nodeSelector": {realnodes.REAL_LABEL: "true"}}}}}
    deployment = lab.Api().get(deployment_path(name))[1]
    if (deployment["spec"]["template"]["spec"].get("nodeSelector") or {}).get(realnodes.REAL_LABEL) == "true":
        return
    lab.Api().request("PATCH", deployment_path(name) + "?fieldManager=k8s-ai-conformance-lab", json.dumps(patch),
                      content_type="application/strategic-merge-patch+json")


def wait_serving(name, timeout=300):
    lab._wait("%s Deployment available and its webhooks served" % name, lambda: _serving_as_pod(name), timeout, 1)


def admission_refused():
    """Why a server-side dry-run Pod create in `default` is refused (None when admitted): it goes through every
    pod webhook (Kueue's mpod.kb.io has failurePolicy Fail), which an endpoint marked ready does not prove - right
    after Kueue was re-attached its webhook answered "broken pipe" to a check's pod once (a fresh clone's make
    demo)."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "lab-admission-probe-"},
           "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}
    status, body = lab.Api().request("POST", "/api/v1/namespaces/default/pods?dryRun=All", json.dumps(pod),
                                     ok=(201, 400, 403, 422, 500, 503))
    if status == 201:
        return None
    return "HTTP %d %s" % (status, body.get("message", "") if isinstance(body, dict) else body[:300])


def wait_admitting(timeout=120, in_a_row=3):
    streak = [0]

    def admitted():
        streak[0] = streak[0] + 1 if admission_refused() is None else 0
        return streak[0] >= in_a_row
    lab._wait("%d pod admissions in a row through the controllers' webhooks" % in_a_row, admitted, timeout, 0.5)


def controller_pods():
    """One line per controller pod: node, phase, each container's restarts and how it last ended."""
    lines = []
    for name in CONTROLLERS:
        pods = lab.Api().get("/api/v1/namespaces/%s/pods" % CONTROLLERS[name]["namespace"])[1]["items"]
        for p in pods:
            for c in (p.get("status") or {}).get("containerStatuses") or []:
                ended = (c.get("lastState") or {}).get("terminated") or {}
                lines.append("%s/%s on %s: %s, ready=%s, restarts=%d%s" % (
                    p["metadata"]["namespace"], p["metadata"]["name"], p["spec"].get("nodeName"),
                    p["status"].get("phase"), c.get("ready"), c.get("restartCount", 0),
                    ", last ended %s (%s, exit %s)" % (ended.get("finishedAt"), ended.get("reason"),
                                                       ended.get("exitCode")) if ended else ""))
    return lines


def wait_stopped(name, timeout=60):
    spec = CONTROLLERS[name]

    def gone():
        pods = lab.Api().get("/api/v1/namespaces/%s/pods" % spec["namespace"])[1]["items"]
        return not [p for p in pods if p["metadata"]["name"].startswith(name + "-controller-manager")]
    lab._wait("%s controller pods gone" % name, gone, timeout, 0.5)


def attach(state, install_manifests=True, install=None, names=("jobset", "kueue")):
    if install is not None:
        install_manifests = install
    if pods_mode(state):
        for name in names:
            if install_manifests:
                globals()["install"](name, on_real_nodes=True)
        # Kueue first: its Deployment and Pod webhooks (failurePolicy Fail) admit every other namespace's.
        for name in sorted(names, key=lambda n: n != "kueue"):
            pin_to_real_nodes(name)
            wait_serving(name)
            lab.log("%s serving as a pod (logs: kubectl logs -n %s deploy/%s-controller-manager)"
                    % (name, CONTROLLERS[name]["namespace"], name))
        wait_admitting()
        return
    lab_kubeconfig = lab.write_kubeconfig(os.path.join(lab.LAB, "controllers.kubeconfig"), "controllers")
    api = lab.Api()
    for name in names:
        spec = CONTROLLERS[name]
        if install_manifests:
            globals()["install"](name)
        status, cm = api.request("GET", "/api/v1/namespaces/%s/configmaps/%s" % (spec["namespace"], spec["configmap"]),
                                 ok=(200, 404))
        if status == 404:
            raise SystemExit("lab: %s is not installed (ConfigMap %s/%s missing): install it (role or "
                             "`lab.py controllers`) first" % (name, spec["namespace"], spec["configmap"]))
        cfg = host_config(name, yaml.safe_load(cm["data"][spec["config_key"]]))
        text = yaml.safe_dump(cfg, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        path = os.path.join(lab.STATE, name + "-config.yaml")
        running = state["processes"].get(name)
        if running and lab._alive(running["pid"]) and running.get("config") == digest:
            continue
        if running:
            lab.log("%s configuration changed: restarting it" % name)
            lab._stop(state, name)
        with open(path, "w") as f:
            f.write(text)
        point_services_at_host(name)
        _sync_cert_secret(name)
        lab._start(state, name, [os.path.join(lab.BIN, name), "--config=" + path, "--kubeconfig=" + lab_kubeconfig],
                   env={"KUBECONFIG": lab_kubeconfig, "POD_NAMESPACE": spec["namespace"]})
        state["processes"][name]["config"] = digest
        lab._save(state)
    for name in names:
        lab._wait("%s webhooks served with an injected CA" % name, lambda n=name: _webhooks_ready(n), 120)
        lab.log("%s attached (log: %s)" % (name, os.path.join(lab.LOGS, name + ".log")))
    time.sleep(0.5)


def detach(state, name):
    """Stop a controller process (tests use it for the broken states)."""
    lab._stop(state, name)
