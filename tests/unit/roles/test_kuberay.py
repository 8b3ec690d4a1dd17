"""The kuberay role offline: the webhook certificate its openssl commands make (verified by openssl itself against
the CA it made, for the webhook Service's DNS names) and what its variables say about the webhook. On the lab the
role runs for real: tests/integration/checks/test_kuberay.py."""

import base64
import shutil
import subprocess

import pytest
import roleplay as rp

NAMESPACE = "ray-x"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    tmp = tmp_path_factory.mktemp("kuberay")
    found = rp.render_cases(tmp, "kuberay", "certificate_make", "kuberay_webhook_cert",
                            {"default": {"kuberay_namespace": NAMESPACE, "kuberay_webhook_cert_days": 30}})
    assert found["default"]["ok"], found
    files = {}
    for name, data in found["default"]["objects"].items():
        path = tmp / name
        path.write_bytes(base64.b64decode(data))
        files[name] = str(path)
    return files


def openssl(*args):
    return subprocess.run(["openssl"] + list(args), capture_output=True, text=True, check=False)


def test_the_serving_certificate_is_signed_by_the_ca_it_ships(certificate):
    assert sorted(certificate) == ["ca.crt", "tls.crt", "tls.key"]
    verified = openssl("verify", "-CAfile", certificate["ca.crt"], "-purpose", "sslserver", certificate["tls.crt"])
    assert verified.returncode == 0 and verified.stdout.strip().endswith("OK"), verified.stdout + verified.stderr


def test_the_certificate_names_the_webhook_service(certificate):
    text = openssl("x509", "-in", certificate["tls.crt"], "-noout", "-text").stdout
    assert "DNS:kuberay-webhook.%s.svc," % NAMESPACE in text
    assert "DNS:kuberay-webhook.%s.svc.cluster.local" % NAMESPACE in text
    assert "TLS Web Server Authentication" in text


def test_the_key_belongs_to_the_certificate(certificate):
    cert_key = openssl("x509", "-in", certificate["tls.crt"], "-noout", "-pubkey").stdout
    key = openssl("pkey", "-in", certificate["tls.key"], "-pubout").stdout
    assert cert_key and cert_key == key


def test_webhook_registered_for_rayclusters_only():
    variables = rp.load(rp.REPO + "/roles/kuberay/vars/main.yml")
    hooks = variables["kuberay_webhook_objects"][1]["webhooks"]
    assert [h["name"] for h in hooks] == ["vraycluster.kb.io"]  # the one webhook v1.5.0's operator serves
    assert hooks[0]["clientConfig"]["service"]["path"] == "/validate-ray-io-v1-raycluster"
    assert hooks[0]["rules"][0]["resources"] == ["rayclusters"] and hooks[0]["failurePolicy"] == "Fail"


def test_the_pins_cover_every_crd_file_of_the_default_version():
    defaults = rp.defaults("kuberay")
    files = rp.load(rp.REPO + "/roles/kuberay/vars/main.yml")["kuberay_crd_files"]
    pins = defaults["kuberay_crd_checksums"][defaults["kuberay_version"]]
    assert sorted(pins) == sorted(files) and all(len(v) == 64 for v in pins.values())
