"""gateway_api's placement of the implementation (tasks/placement.yml): nodeSelector on every pod template, the
manifest's Helm hook Jobs applied on install and upgrade only (a second run of the role changes nothing)."""

import copy

import roleplay as rp

SELECTOR = {"lab.k8s-ai-conformance.io/real-node": "true"}
IMAGE = "docker.io/envoyproxy/gateway:v1.9.1"


def objects():
    pod = {"spec": {"containers": [{"name": "envoy-gateway", "image": IMAGE}]}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "envoy-gateway-system"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "envoy-gateway",
                                                                     "namespace": "envoy-gateway-system"},
         "spec": {"template": copy.deepcopy(pod)}},
        {"apiVersion": "batch/v1", "kind": "Job",
         "metadata": {"name": "eg-gateway-helm-certgen", "namespace": "envoy-gateway-system",
                      "annotations": {"helm.sh/hook": "pre-install, pre-upgrade"}},
         "spec": {"template": {"spec": {"containers": [{"name": "certgen", "image": IMAGE}],
                                        "nodeSelector": {"kubernetes.io/os": "linux"}}}}},
    ]


def installed(image):
    return {"resources": [{"spec": {"template": {"spec": {"containers": [{"image": image}]}}}}] if image else []}


def test_placement_and_hooks(tmp_path):
    out = str(tmp_path / "out")
    cases = {"fresh": (None, SELECTOR), "same-version": (IMAGE, SELECTOR),
             "upgrade": ("docker.io/envoyproxy/gateway:v1.8.0", SELECTOR), "no-selector": (None, {})}
    tasks = [{"ansible.builtin.file": {"path": out, "state": "directory", "mode": "0755"}}]
    for name, (image, selector) in cases.items():
        tasks.append(rp.case(out, name, [rp.include(
            "gateway_api", "placement", gateway_api_impl_objects=objects(), gateway_api_impl_installed=installed(image),
            gateway_api_implementation_node_selector=selector)], {"apply": "gateway_api_impl_apply"}))
    result = rp.run(tmp_path, tasks)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    found = rp.results(out)
    for name in cases:
        assert found[name]["ok"], found[name]

    fresh = {o["kind"]: o for o in found["fresh"]["apply"]}
    assert sorted(fresh) == ["Deployment", "Job", "Namespace"]
    assert fresh["Deployment"]["spec"]["template"]["spec"]["nodeSelector"] == SELECTOR
    # merged into the manifest's own selector, which stays
    assert fresh["Job"]["spec"]["template"]["spec"]["nodeSelector"] == dict(SELECTOR, **{"kubernetes.io/os": "linux"})
    assert fresh["Namespace"] == objects()[0]

    # this version already runs: the hook Job (certgen) is not applied again
    assert [o["kind"] for o in found["same-version"]["apply"]] == ["Namespace", "Deployment"]
    assert [o["kind"] for o in found["upgrade"]["apply"]] == ["Namespace", "Deployment", "Job"]
    assert found["no-selector"]["apply"] == objects()  # nothing asked, nothing changed
