"""driver_runtime_management, workload_sandboxing, gpudirect_storage, confidential_computing,
image_signature_verification, workload_identity, csi_storage, ai_workload_crds, topology_aware_scheduling."""

from checkfake import Fake, add_crds, detail, gpu_slice, node, outcome, run

from ansible_collections.k8s_ai.conformance.plugins.modules import (
    ai_workload_crds,
    confidential_computing,
    csi_storage,
    driver_runtime_management,
    gpudirect_storage,
    image_signature_verification,
    topology_aware_scheduling,
    workload_identity,
    workload_sandboxing,
)

FACTS_OK = {"accelerators": [{"vendor": "nvidia"}], "driver_version": "580.95.5", "kernel_modules": ["nvidia"],
            "cdi_spec_files": ["/etc/cdi/nvidia.yaml"],
            "containerd": {"present": True, "version": "2.0.5", "cdi_enabled": True, "runtimes": ["runc", "runsc"]}}


def gpu_cluster(versions=("580.95.5", "580.95.5")):
    fake = Fake()
    for i, version in enumerate(versions):
        fake.add("v1", "nodes", node("gpu-%d" % i))
        fake.add("resource.k8s.io/v1", "resourceslices", gpu_slice("gpu-%d" % i, 2, version))
    return fake


# ---- driver_runtime_management ------------------------------------------------------------------
def test_versions_by_node_and_comparison():
    slices = [gpu_slice("gpu-0", 2, "v580.95.5"), gpu_slice("gpu-1", 1, "570.1")]
    del slices[1]["spec"]["devices"][0]["attributes"]["driverVersion"]
    by = driver_runtime_management.versions_by_node(slices, "driverVersion")
    assert by["gpu.example.com"]["gpu-0"]["versions"] == {"580.95.5"}  # a leading v is normalised away
    assert by["gpu.example.com"]["gpu-1"]["missing"] == 1
    matches, problems = driver_runtime_management.compare_node_facts(
        by, {"gpu-0": FACTS_OK, "gpu-1": dict(FACTS_OK, driver_version="570.1"), "cpu-0": {"accelerators": []}})
    assert matches == ["gpu-0=580.95.5"]
    assert problems == ["gpu-1: node reports driver 570.1 but no ResourceSlice advertises a driver version for it"]


def test_driver_runtime_management_api_only_is_never_implemented():
    # Seen on the lab: Implemented with "node-side verification was not done" and a failed DaemonSet part,
    # one static part (driverVersion in ResourceSlices) carrying the verdict. The API's claim alone is not proof.
    result = run(driver_runtime_management, gpu_cluster())
    assert outcome(result, "advertise a driver version") == "passed"
    assert outcome(result, "match the ResourceSlices") == "error"  # could not run: no node facts
    assert outcome(result, "container runtime") == "error"
    assert outcome(result, "DaemonSet ready") == "failed"  # no driver DaemonSet in the fake: optional
    assert result["status"] == "Not Implemented" and result["verified"] is False
    assert "accelerator_nodes inventory group" in result["notes"]
    assert result["behavioural"] is True
    assert not [e for e in result["evidence"] if e["title"] == "create probe namespace"]  # nothing to probe with


def test_driver_runtime_management_reports_mismatch_per_node():
    facts = {"gpu-0": FACTS_OK, "gpu-1": dict(FACTS_OK, driver_version="570.86.10",
                                              containerd=dict(FACTS_OK["containerd"], cdi_enabled=False))}
    result = run(driver_runtime_management, gpu_cluster(), node_facts=facts)
    assert outcome(result, "match the ResourceSlices") == "failed"
    assert "gpu-1: node reports driver 570.86.10, ResourceSlices advertise 580.95.5" in detail(result, "match the")
    assert "gpu-1: CDI not enabled" in detail(result, "container runtime")
    assert result["status"] == "Not Implemented"  # both node-side cases failed: the static part does not count
    facts["gpu-1"] = dict(FACTS_OK, driver_version="570.86.10")
    result = run(driver_runtime_management, gpu_cluster(), node_facts=facts)
    assert outcome(result, "container runtime") == "passed" and result["status"] == "Partially Implemented"
    result = run(driver_runtime_management, gpu_cluster(), node_facts={"gpu-0": FACTS_OK, "gpu-1": FACTS_OK})
    assert result["status"] == "Implemented" and result["verified"], result["parts"]


def test_driver_runtime_management_mixed_versions_and_no_dra():
    facts = {"gpu-0": FACTS_OK, "gpu-1": dict(FACTS_OK, driver_version="575.0")}
    result = run(driver_runtime_management, gpu_cluster(versions=("580.95.5", "575.0")), node_facts=facts)
    assert result["status"] == "Implemented"  # one version per node is consistent
    mixed = gpu_cluster()
    mixed.add("resource.k8s.io/v1", "resourceslices", dict(gpu_slice("gpu-0", 1, "575.0"),
                                                           metadata={"name": "gpu-0-extra"}))
    result = run(driver_runtime_management, mixed)
    assert outcome(result, "advertise a driver version") == "failed" and "mixed versions" in result["notes"]
    result = run(driver_runtime_management, Fake(discovery={"resource.k8s.io/v1": []}))
    assert result["status"] == "Not Implemented"


def test_driver_runtime_management_check_mode_claims_nothing():
    result = run(driver_runtime_management, gpu_cluster(), check_mode=True,
                 node_facts={"gpu-0": FACTS_OK, "gpu-1": FACTS_OK})
    assert outcome(result, "advertise a driver version") == "passed"
    assert outcome(result, "match the ResourceSlices") == "skipped"
    assert result["status"] == "Not Implemented" and result["verified"] is False
    assert "behaviour not probed" in result["summary"]


# ---- workload_sandboxing ------------------------------------------------------------------------
def sandbox_cluster(log="SANDBOX_KERNEL=4.4.0\n", refuse_missing_handler=True, runtime_classes=True):
    fake = Fake()
    fake.add("v1", "nodes", node("n1", labels={"sandbox": "gvisor"}, kernel="6.1.0-host"))
    if runtime_classes:
        fake.add("node.k8s.io/v1", "runtimeclasses", {"metadata": {"name": "runc"}, "handler": "runc"})
        fake.add("node.k8s.io/v1", "runtimeclasses", {"metadata": {"name": "gvisor"}, "handler": "runsc",
                                                      "scheduling": {"nodeSelector": {"sandbox": "gvisor"}}})

    def kubelet(obj):
        if obj.get("kind") != "Pod":
            return
        obj["spec"]["nodeName"] = "n1"
        rc = [o for o in fake.objects("runtimeclasses") if o["metadata"]["name"] == obj["spec"].get("runtimeClassName")]
        if refuse_missing_handler and rc and rc[0]["handler"] == workload_sandboxing.MISSING_HANDLER:
            obj["status"] = {"phase": "Pending"}  # containerd: no runtime for the handler is configured
            fake.add("v1", "events", {"metadata": {"name": "ev-" + obj["metadata"]["name"]},
                                      "involvedObject": {"name": obj["metadata"]["name"]},
                                      "reason": "FailedCreatePodSandBox", "message": 'rpc error: no runtime for "%s" '
                                      'is configured' % rc[0]["handler"]}, namespace=obj["metadata"]["namespace"])
        else:
            obj["status"] = {"phase": "Running"}
    fake.on_get = lambda obj: kubelet(obj) or obj

    def created(method, path, query, body):  # the kubelet acts on a pod as soon as it exists
        if not path.endswith("/pods"):
            return None
        status, obj = Fake._serve(fake, method, path, {}, body)
        kubelet(fake.store[("v1", "pods", obj["metadata"]["namespace"], obj["metadata"]["name"])])
        return status, obj
    fake.route("POST", "/api/v1/namespaces/", created)
    fake.route("GET", "/api/v1/namespaces/", lambda m, p, q, b: None if not p.endswith("/log")
               else (200, log) if log is not None else (404, {"message": "no log"}))
    return fake


def test_workload_sandboxing_verdicts():
    facts = {"n1": FACTS_OK}
    result = run(workload_sandboxing, sandbox_cluster(), node_facts=facts)
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "sandbox kernel 4.4.0, host kernel 6.1.0-host" in detail(result, "kernel other")
    assert "no runtime for" in detail(result, "handler no node has")

    result = run(workload_sandboxing, sandbox_cluster(log="SANDBOX_KERNEL=6.1.0-host\n"))
    assert outcome(result, "kernel other") == "failed"  # same kernel as the host: not isolated

    for log in (None, ""):  # no log endpoint, or an empty log: the probe command never ran
        result = run(workload_sandboxing, sandbox_cluster(log=log))
        assert outcome(result, "kernel other") == "error" and result["verified"] is False

    # a runtime that runs any handler (a simulated node) does not refuse: the negative can fail
    result = run(workload_sandboxing, sandbox_cluster(refuse_missing_handler=False))
    assert outcome(result, "handler no node has") == "failed"

    result = run(workload_sandboxing, sandbox_cluster(), node_facts={"n1": dict(FACTS_OK, containerd={
        "present": True, "runtimes": ["runc"]})})
    assert outcome(result, "configured in containerd") == "failed"

    result = run(workload_sandboxing, sandbox_cluster(runtime_classes=False))
    assert result["status"] == "Not Implemented" and outcome(result, "sandbox handler exists") == "failed"
    assert outcome(result, "handler no node has") == "failed"  # never passes without a sandboxed pod


def test_sandbox_handler_names():
    assert all(workload_sandboxing.is_sandbox_handler(h) for h in ("runsc", "kata-qemu", "kata-fc", "gvisor"))
    assert not any(workload_sandboxing.is_sandbox_handler(h) for h in ("runc", "crun", "nvidia", ""))


# ---- gpudirect_storage / confidential_computing -----------------------------------------------
def test_gpudirect_storage_verdicts():
    assert run(gpudirect_storage, Fake())["status"] == "N/A"
    result = run(gpudirect_storage, gpu_cluster())
    assert outcome(result, "kernel module") == "error" and result["verified"] is False
    facts = {"gpu-0": dict(FACTS_OK, kernel_modules=["nvidia", "nvidia_fs"]), "gpu-1": FACTS_OK}
    result = run(gpudirect_storage, gpu_cluster(), node_facts=facts)
    assert outcome(result, "kernel module") == "failed" and "gpu-1" in detail(result, "kernel module")
    facts["gpu-1"] = facts["gpu-0"]
    result = run(gpudirect_storage, gpu_cluster(), node_facts=facts)
    assert result["status"] == "Implemented" and result["verified"]
    # static-only by declaration (no transfer can be probed), with the reason in the result, also in check mode
    assert result["behavioural"] is False and "direct-access file system" in result["static_only"]
    assert run(gpudirect_storage, gpu_cluster(), check_mode=True, node_facts=facts)["status"] == "Implemented"


def test_confidential_labels_and_handlers():
    labels = {"feature.node.kubernetes.io/cpu-security.tdx.enabled": "true", "nvidia.com/cc.capable": "false",
              "kubernetes.io/hostname": "n1"}
    assert confidential_computing.tee_labels(labels) == ["feature.node.kubernetes.io/cpu-security.tdx.enabled"]
    assert confidential_computing.CC_HANDLER.search("kata-qemu-snp")
    assert not confidential_computing.CC_HANDLER.search("runsc")
    result = run(confidential_computing, sandbox_cluster())
    assert result["status"] == "Not Implemented"


# ---- image_signature_verification ---------------------------------------------------------------
def signing_cluster(message="admission webhook \"policy.sigstore.dev\" denied the request: signature not found"):
    fake = Fake({"policy.sigstore.dev/v1beta1": [("clusterimagepolicies", "ClusterImagePolicy", False)]})
    fake.add("policy.sigstore.dev/v1beta1", "clusterimagepolicies", {"metadata": {"name": "signed-only"}})
    fake.add("v1", "namespaces", {"metadata": {"name": "placeholder"}})
    fake.route("PATCH", "/api/v1/namespaces/", lambda m, p, q, b: (200, {"metadata": {"name": p.rsplit("/", 1)[1]}}))

    def admission(method, path, query, body):
        image = body["spec"]["containers"][0]["image"]
        if image.startswith("signed.example/"):
            return 201, body
        return 400, {"kind": "Status", "message": message}
    fake.route("POST", "/api/v1/namespaces/t-image-signature-verification", admission)
    return fake


def test_image_signature_verdicts():
    result = run(image_signature_verification, signing_cluster(), signed_image="signed.example/app@sha256:00")
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    result = run(image_signature_verification, signing_cluster())
    assert outcome(result, "signed, trusted") == "skipped" and result["status"] == "Partially Implemented"
    result = run(image_signature_verification, signing_cluster(message="exceeded quota: pods"))
    assert outcome(result, "unsigned image is rejected") == "failed"  # refused, but not for its signature
    other_policy = 'admission webhook "validate.kyverno.svc-fail" denied the request: policy require-labels: ' \
                   'label app is required'
    result = run(image_signature_verification, signing_cluster(message=other_policy))
    assert outcome(result, "unsigned image is rejected") == "failed"  # another policy's refusal proves nothing
    assert run(image_signature_verification, Fake())["status"] == "Not Implemented"


# ---- workload_identity --------------------------------------------------------------------------
def identity_cluster(audience_bound=True, spire=True):
    fake = Fake()
    if spire:
        add_crds(fake, ["clusterspiffeids.spire.spiffe.io"])
    tokens = {}

    def token_request(method, path, query, body):
        ns, sa = path.split("/")[4], path.split("/")[6]
        tokens["tok-%s-%s" % (ns, sa)] = (ns, sa, body["spec"]["audiences"][0])
        return 201, {"status": {"token": "tok-%s-%s" % (ns, sa), "expirationTimestamp": "x"}}

    def review(method, path, query, body):
        ns, sa, audience = tokens.get(body["spec"]["token"], (None, None, None))
        alive = ("v1", "serviceaccounts", ns, sa) in fake.store
        ok = alive and (audience in body["spec"]["audiences"] or not audience_bound)
        status = {"authenticated": True, "user": {"username": "system:serviceaccount:%s:%s" % (ns, sa)}} if ok \
            else {"authenticated": False, "error": "invalid bearer token"}
        return 201, {"status": status}
    fake.route("POST", "/apis/authentication.k8s.io/v1/tokenreviews", review)
    fake.route("POST", "/api/v1/namespaces/t-workload-identity", lambda m, p, q, b: token_request(m, p, q, b)
               if p.endswith("/token") else Fake._serve(fake, m, p, {}, b))
    return fake


def test_workload_identity_verdicts():
    result = run(workload_identity, identity_cluster())
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "<redacted>" in str(result["evidence"]) and "tok-" not in str(result["evidence"])
    result = run(workload_identity, identity_cluster(audience_bound=False))
    assert outcome(result, "another audience") == "failed"
    # the API server's own tokens are no SPIFFE identity: without a provider nothing was shown (was: Partially)
    result = run(workload_identity, identity_cluster(spire=False))
    assert outcome(result, "SPIFFE") == "failed" and outcome(result, "accepted for its audience") == "failed"
    assert result["status"] == "Not Implemented"


# ---- csi_storage / ai_workload_crds / topology_aware_scheduling ---------------------------------
def test_csi_class_choice():
    classes = [{"metadata": {"name": "local"}, "provisioner": "kubernetes.io/no-provisioner"},
               {"metadata": {"name": "fast"}, "provisioner": "csi.example.com"},
               {"metadata": {"name": "std", "annotations": {csi_storage.DEFAULT_ANNOTATION: "true"}},
                "provisioner": "csi.example.com"}]
    assert csi_storage.pick_class(classes, ["csi.example.com"])["metadata"]["name"] == "std"
    assert csi_storage.pick_class(classes, ["csi.example.com"], "fast")["metadata"]["name"] == "fast"
    assert csi_storage.pick_class(classes, ["csi.example.com"], "local") is None
    assert run(csi_storage, Fake())["status"] == "Not Implemented"


def csi_cluster(provisions=True):
    fake = Fake()
    fake.add("storage.k8s.io/v1", "csidrivers", {"metadata": {"name": "csi.example.com"}})
    fake.add("storage.k8s.io/v1", "csinodes", {"metadata": {"name": "n1"}, "spec": {"drivers": [
        {"name": "csi.example.com"}]}})
    fake.add("storage.k8s.io/v1", "storageclasses", {"metadata": {"name": "fast"}, "provisioner": "csi.example.com"})

    def provisioner(obj):
        if obj.get("kind") == "PersistentVolumeClaim" and provisions and obj["spec"]["storageClassName"] == "fast":
            obj["spec"]["volumeName"] = "pv-1"
            obj["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    fake.on_get = lambda obj: provisioner(obj) or obj
    return fake


def test_csi_storage_verdict_rests_on_provisioning():
    result = run(csi_storage, csi_cluster())
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert outcome(result, "missing StorageClass") == "passed"
    # nothing provisions: a claim of a missing class also stays Pending then, which proves nothing
    result = run(csi_storage, csi_cluster(provisions=False))
    assert outcome(result, "becomes Bound") == "failed" and outcome(result, "missing StorageClass") == "failed"
    assert result["status"] == "Not Implemented"
    assert [p["required"] for p in result["parts"] if p["kind"] == "negative"] == [False]


def jobset_cluster(answer):
    fake = Fake()
    add_crds(fake, [ai_workload_crds.JOBSET_CRD] + ai_workload_crds.KUEUE_CRDS)

    def admission(method, path, query, body):
        if "dryRun" in query:
            return answer
        status, obj = Fake._serve(fake, method, path, {}, body)
        for i in range(obj["spec"]["replicatedJobs"][0]["replicas"]):  # the JobSet controller's work
            fake.add("batch/v1", "jobs", {"metadata": {
                "name": "%s-workers-%d" % (obj["metadata"]["name"], i),
                "labels": {"jobset.sigs.k8s.io/jobset-name": obj["metadata"]["name"]},
                "ownerReferences": [{"kind": "JobSet", "name": obj["metadata"]["name"]}]}},
                namespace=obj["metadata"]["namespace"])
        return status, obj
    fake.route("POST", "/apis/jobset.x-k8s.io/v1alpha2/namespaces/", admission)
    return fake


def test_ai_workload_crds_verdicts():
    rejected = (422, {"kind": "Status",
                      "message": "admission webhook \"vjobset.kb.io\" denied the request: invalid "
                                 "replicatedJob name 'no-such-replicated-job'"})
    result = run(ai_workload_crds, jobset_cluster(rejected))
    assert outcome(result, "reconciled") == "passed" and outcome(result, "rejected") == "passed"
    assert result["status"] == "Implemented"
    down = (500, {"kind": "Status", "message": "Internal error occurred: failed calling webhook \"vjobset\""})
    result = run(ai_workload_crds, jobset_cluster(down))
    assert outcome(result, "rejected") == "failed"  # the cluster's own webhook is broken: not a pass, not access
    assert "could not be called" in detail(result, "rejected")
    result = run(ai_workload_crds, jobset_cluster((201, {"metadata": {"name": "invalid"}})))
    assert outcome(result, "rejected") == "failed"
    schema = (422, {"kind": "Status", "message": "JobSet.jobset.x-k8s.io \"invalid\" is invalid: spec.successPolicy: "
                                                 "Invalid value"})
    result = run(ai_workload_crds, jobset_cluster(schema))  # the CRD's own validation refuses without the operator
    assert outcome(result, "rejected") == "failed" and "not by the JobSet admission webhook" in detail(
        result, "rejected")


def test_topology_helpers_and_static_parts():
    assert topology_aware_scheduling.cpu_millis("96") == 96000 and topology_aware_scheduling.cpu_millis("500m") == 500
    assert topology_aware_scheduling.topology_labels({"topology.kubernetes.io/zone": "a",
                                                      "kubernetes.io/hostname": "n"}) == ["topology.kubernetes.io/zone"]
    fake = Fake()
    fake.add("v1", "nodes", node("n1", labels={"topology.kubernetes.io/zone": "a"}))
    result = run(topology_aware_scheduling, fake, check_mode=True)
    assert outcome(result, "Topology API") == "passed" and outcome(result, "topology labels") == "passed"
    fake = Fake(discovery={"kueue.x-k8s.io/v1beta2": []})
    fake.add("v1", "nodes", node("n1"))
    result = run(topology_aware_scheduling, fake)
    assert outcome(result, "Topology API") == "failed" and outcome(result, "topology labels") == "failed"
    assert result["status"] == "Not Implemented"
    fake = Fake(discovery={"kueue.x-k8s.io/v1beta2": []})
    fake.add("v1", "nodes", node("n1", labels={"topology.kubernetes.io/zone": "a"}))
    assert run(topology_aware_scheduling, fake)["status"] == "Not Implemented"  # labels without Kueue TAS


def kueue_cluster(spread=False, admit_too_wide=False, evaluates=True):
    """A fake Kueue: ClusterQueues become Active; a Job gets a Workload, admitted (with its pods placed) when TAS
    finds one domain - 'packed' does, 'too-wide' does not (unless admit_too_wide)."""
    fake = Fake()
    for name in ("n1", "n2"):
        fake.add("v1", "nodes", node(name, cpu="96"))

    def jobs(method, path, query, body):
        status, job = Fake._serve(fake, method, path, {}, body)
        job["metadata"]["uid"] = "uid-" + job["metadata"]["name"]
        fake.store[("batch/v1", "jobs", job["metadata"]["namespace"], job["metadata"]["name"])] = job
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        admit = name == "packed" or admit_too_wide
        refused = "couldn't assign flavors to pod set main: topology \"x\" doesn't allow to fit any of 2 pod(s)"
        condition = {"type": "Admitted", "status": "True"} if admit else {
            "type": "QuotaReserved", "status": "False", "message": refused}
        fake.add("kueue.x-k8s.io/v1beta2", "workloads", {"metadata": {
            "name": "job-" + name, "ownerReferences": [{"kind": "Job", "uid": job["metadata"]["uid"]}]},
            "status": {"conditions": [condition] if (admit or evaluates) else []}}, namespace=ns)
        if admit:
            for i in range(2):
                fake.add("v1", "pods", {"metadata": {"name": "%s-%d" % (name, i), "labels": {
                    "batch.kubernetes.io/job-name": name}}, "spec": {"nodeName": "n%d" % (1 + i if spread else 1)}},
                    namespace=ns)
        return status, job
    fake.route("POST", "/apis/batch/v1/namespaces/", jobs)

    def controller(obj):
        if obj.get("kind") == "ClusterQueue":
            obj["status"] = {"conditions": [{"type": "Active", "status": "True"}]}
    fake.on_get = lambda obj: controller(obj) or obj
    return fake


def test_topology_aware_scheduling_behaviour():
    fake = kueue_cluster()
    result = run(topology_aware_scheduling, fake)
    assert result["status"] == "Implemented" and result["verified"], result["parts"]
    assert "57600m" in detail(result, "fits no single domain")  # 60% of the largest node's 96 CPUs
    for plural in ("topologies", "resourceflavors", "clusterqueues"):  # cluster-scoped probe objects deleted
        assert fake.objects(plural) == [], plural
    result = run(topology_aware_scheduling, kueue_cluster(spread=True))
    assert outcome(result, "all pods in one domain") == "failed" and "spread over 2" in detail(result, "one domain")
    result = run(topology_aware_scheduling, kueue_cluster(admit_too_wide=True))
    assert outcome(result, "fits no single domain") == "failed"
    # a Workload that nobody evaluates also stays unadmitted: only Kueue's refusal counts
    result = run(topology_aware_scheduling, kueue_cluster(evaluates=False))
    assert outcome(result, "fits no single domain") == "failed" and result["status"] == "Partially Implemented"


def test_runtime_configuration_cdi_or_vendor_handler():
    legacy = dict(FACTS_OK, cdi_spec_files=[], containerd={"present": True, "version": "1.7.2", "cdi_enabled": False,
                                                           "runtimes": ["runc", "nvidia"]})
    unknown = dict(FACTS_OK, containerd={"present": True, "version": None, "cdi_enabled": None, "runtimes": ["runc"]})
    absent = dict(FACTS_OK, containerd={"present": False})
    ok, problems = driver_runtime_management.runtime_problems(
        {"a": FACTS_OK, "b": legacy, "c": unknown, "d": absent, "cpu": {"accelerators": []}})
    assert [o.split()[0] for o in ok] == ["a", "b"] and "runtime handler nvidia" in ok[1]
    assert problems[0].startswith("c: CDI setting of containerd unknown")
    assert problems[1] == "d: containerd not found"
