"""Bad inputs to playbooks/verify.yml: a clear message naming the input, the report still written, no traceback."""

import json
import os
import subprocess

import pytest
import yaml
from verify_helpers import FakeApiServer, lab_cluster, load_results, run_verify, write_kubeconfig

FAST = {"verify_checks": ["dra_support"], "verify_check_timeout": 120, "verify_timeout": 20,
        "verify_request_timeout": 5}


def assert_clear_failure(rc, out, report_dir, *needles, report=True):
    assert rc != 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    for needle in needles:
        assert needle in out, "%r not in output:\n%s" % (needle, out[-3000:])
    if report:
        path, data = load_results(report_dir)
        assert data["errors"], data["errors"]
        assert all(not r["verified"] for r in data["requirements"]), "a check passed although the run stopped"
        assert os.path.isfile(os.path.join(path, "PRODUCT.yaml"))
        assert os.path.isfile(os.path.join(path, "report.html"))
        assert os.path.isfile(os.path.join(path, "junit.xml"))
        for needle in needles:
            assert any(needle in e for e in data["errors"]), (needle, data["errors"])


# --- inputs that need no cluster ------------------------------------------------------------------------
def test_kubeconfig_missing(tmp_path):
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=str(tmp_path / "nope.yaml")))
    assert_clear_failure(rc, out, rep, "verify_kubeconfig", "does not exist")


def test_kubeconfig_not_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nclusters: [\n")
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=str(bad)))
    assert_clear_failure(rc, out, rep, "verify_kubeconfig", "not valid YAML")


def test_kubeconfig_not_a_kubeconfig(tmp_path):
    bad = tmp_path / "list.yaml"
    bad.write_text("- just\n- a list\n")
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=str(bad)))
    assert_clear_failure(rc, out, rep, "verify_kubeconfig", "not a kubeconfig")


def test_kubeconfig_is_a_directory(tmp_path):
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=str(tmp_path)))
    assert_clear_failure(rc, out, rep, "verify_kubeconfig")


def test_unreachable_api_server(tmp_path):
    kubeconfig = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", token="x" * 20, insecure=True)
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=kubeconfig))
    assert_clear_failure(rc, out, rep, "verify_kubeconfig", "127.0.0.1:1")


def test_unknown_context_offline(tmp_path):
    kubeconfig = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", token="x" * 20)
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=kubeconfig, verify_context="nope"))
    assert_clear_failure(rc, out, rep, "verify_context", "'nope' not found")


def test_pinned_checklist_does_not_exist(tmp_path):
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=str(tmp_path / "none"),
                                             verify_checklist_version="1.20"))
    assert_clear_failure(rc, out, rep, "verify_checklist_version", "1.33, 1.34, 1.35, 1.36, 1.37")


def test_checklist_version_garbage(tmp_path):
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=str(tmp_path / "none"),
                                             verify_checklist_version="banana"))
    assert_clear_failure(rc, out, rep, "verify_checklist_version", "banana")


def test_metadata_not_a_mapping(tmp_path):
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_metadata="vendor=me"), metadata=False)
    assert_clear_failure(rc, out, rep, "verify_metadata")


def test_metadata_field_not_a_string(tmp_path):
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=str(tmp_path / "none"),
                                             verify_metadata={"platformName": ["a", "list"]}), metadata=False)
    assert_clear_failure(rc, out, rep, "verify_metadata", "platformName must be a string")


def test_unknown_check_name(tmp_path):
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=str(tmp_path / "none"),
                                             verify_checks=["dra_support", "warp_drive"]))
    assert_clear_failure(rc, out, rep, "verify_checks", "warp_drive")


def test_template_missing(tmp_path):
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=str(tmp_path / "none"),
                                             verify_checklist_version="1.35",
                                             verify_checklist_template=str(tmp_path / "AIConformance-1.35.yaml")))
    assert_clear_failure(rc, out, rep, "verify_checklist_template", "does not exist")


def test_template_of_another_version(tmp_path):
    template = tmp_path / "AIConformance-1.34.yaml"
    template.write_text(yaml.safe_dump({"metadata": {"kubernetesVersion": "v1.34"},
                                        "spec": {"accelerators": [{"id": "dra_support", "level": "MUST"}]}}))
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=str(tmp_path / "none"),
                                             verify_checklist_version="1.35", verify_checklist_template=str(template)))
    assert_clear_failure(rc, out, rep, "verify_checklist_template", "is for v1.34")


def test_platform_name_with_a_path(tmp_path):
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=str(tmp_path / "none"),
                                             verify_platform="../../etc"))
    assert_clear_failure(rc, out, rep, "verify_platform")
    assert not (tmp_path / "etc").exists()


def test_concurrency_zero(tmp_path):
    with FakeApiServer("v1.35.4") as api:
        kubeconfig = write_kubeconfig(tmp_path / "kc", api.url, token="x" * 20)
        rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=kubeconfig, verify_concurrency=0))
    assert_clear_failure(rc, out, rep, "verify_concurrency")


def test_timeout_not_a_number(tmp_path):
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_timeout="soon"))
    assert_clear_failure(rc, out, rep, "verify_timeout")


def test_report_dir_is_a_file(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    rc, out, _rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=str(tmp_path / "none"),
                                              verify_report_dir=str(blocker / "report")))
    assert_clear_failure(rc, out, None, "verify_report_dir", report=False)


def test_unsupported_server_version(tmp_path):
    with FakeApiServer("v1.31.0") as api:
        kubeconfig = write_kubeconfig(tmp_path / "kc", api.url, token="x" * 20)
        rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=kubeconfig))
    assert_clear_failure(rc, out, rep, "verify_checklist_version", "v1.31.0", "supported checklist versions")


def test_server_without_the_ai_apis(tmp_path):
    """A 1.35 server that serves none of the APIs: the check runs, finds nothing, the report says so."""
    with FakeApiServer("v1.35.4") as api:
        kubeconfig = write_kubeconfig(tmp_path / "kc", api.url, token="x" * 20)
        rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=kubeconfig))
    assert rc != 0 and "Traceback" not in out
    assert "MUST requirement(s) not Implemented" in out
    _path, data = load_results(rep)
    dra = [c for c in data["checks"] if c["check"] == "dra_support"][0]
    assert dra["status"] == "Not Implemented"
    assert data["checklist"]["version"] == "1.35"


def test_a_bad_check_option_is_named_and_the_other_checks_still_run(tmp_path):
    with FakeApiServer("v1.35.4") as api:
        kubeconfig = write_kubeconfig(tmp_path / "kc", api.url, token="x" * 20)
        rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=kubeconfig,
                                                 verify_checks=["dra_support", "gpu_sharing"],
                                                 verify_check_options={"dra_support": {"no_such_option": 1}}))
    assert rc != 0 and "Traceback" not in out
    _path, data = load_results(rep)
    by_check = {c["check"]: c for c in data["checks"]}
    dra = by_check["dra_support"]
    assert not dra["verified"] and dra["status"] == "Not Implemented"
    assert any("no_such_option" in p["detail"] for p in dra["parts"]), dra["parts"]
    assert "gpu_sharing" in by_check and by_check["gpu_sharing"]["parts"], "the other check did not run"
    assert "dra_support [MUST]: Not Implemented (not verified)" in out


# --- inputs against the lab ------------------------------------------------------------------------------
def test_unknown_context(tmp_path, lab_kubeconfig):
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=lab_kubeconfig, verify_context="no-such-ctx"))
    assert_clear_failure(rc, out, rep, "verify_context", "no-such-ctx")


def test_credentials_rejected(tmp_path, lab_kubeconfig):
    _doc, cluster, _user = lab_cluster(lab_kubeconfig)
    kubeconfig = write_kubeconfig(tmp_path / "kc", cluster["server"], token="not-a-valid-token-0123456789",
                                  ca_data=cluster.get("certificate-authority-data"),
                                  insecure=cluster.get("insecure-skip-tls-verify", False))
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=kubeconfig))
    assert_clear_failure(rc, out, rep, "verify_kubeconfig")
    assert "not-a-valid-token-0123456789" not in out
    path, _data = load_results(rep)
    for name in os.listdir(path):
        if os.path.isfile(os.path.join(path, name)):
            with open(os.path.join(path, name)) as handle:
                assert "not-a-valid-token" not in handle.read()


def test_tls_verification_fails_without_the_ca(tmp_path, lab_kubeconfig):
    _doc, cluster, user = lab_cluster(lab_kubeconfig)
    if not cluster["server"].startswith("https"):
        pytest.fail("the lab's API server is not served over https: %s" % cluster["server"])
    kubeconfig = write_kubeconfig(tmp_path / "kc", cluster["server"], client=user)
    rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=kubeconfig))
    assert_clear_failure(rc, out, rep, "verify_kubeconfig")
    assert "certificate" in out.lower() or "ssl" in out.lower()


def test_no_rbac(tmp_path, kubectl, lab_kubeconfig):
    name = "it-norbac-%s" % os.path.basename(str(tmp_path))[-6:].lower().replace("_", "-")
    kubectl.run("-n", "default", "create", "serviceaccount", name)
    try:
        token = kubectl.run("-n", "default", "create", "token", name, "--duration=1h").stdout.strip()
        _doc, cluster, _user = lab_cluster(lab_kubeconfig)
        kubeconfig = write_kubeconfig(tmp_path / "kc", cluster["server"], token=token,
                                      ca_data=cluster.get("certificate-authority-data"),
                                      insecure=cluster.get("insecure-skip-tls-verify", False))
        rc, out, rep = run_verify(tmp_path, dict(FAST, verify_kubeconfig=kubeconfig))
        assert_clear_failure(rc, out, rep, "verify_kubeconfig", "no RBAC permission")
        assert token not in out
        path, data = load_results(rep)
        assert token not in json.dumps(data)
    finally:
        kubectl.run("-n", "default", "delete", "serviceaccount", name, check=False)


def test_no_python_traceback_from_the_validator_cli(tmp_path):
    """The CLI entry point answers a missing file with a message, not a traceback."""
    from verify_helpers import ROOT, collections_path
    proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "python"), "-m",
                           "ansible_collections.k8s_ai.conformance.plugins.module_utils.validate",
                           str(tmp_path / "v1.35" / "x" / "PRODUCT.yaml")],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=collections_path()),
                          check=False)
    # validate.go's own words for a missing file (os.ReadFile): "no such file or directory"
    assert proc.returncode == 1 and "no such file or directory" in proc.stdout and "Traceback" not in proc.stderr
