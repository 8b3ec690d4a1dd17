"""The lab's build of the verifier image (tests/lab/verifier.py) stays the Containerfile's image: the same ENV,
user, working directory, entry point, command, paths, runtime requirements and build context. Offline: nothing is
built here (the lab builds and runs it: tests/integration/in_cluster)."""

import os
import re
import shlex
import sys

from unit_collection import ROOT

sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
import verifier  # noqa: E402  (tests/lab/verifier.py)

with open(os.path.join(ROOT, "Containerfile")) as _handle:
    CONTAINERFILE = _handle.read().replace("\\\n", " ")


def instruction(name):
    return [line.split(None, 1)[1] for line in CONTAINERFILE.splitlines() if line.startswith(name + " ")]


def args():
    return dict(a.split("=", 1) for a in instruction("ARG") if "=" in a)


def test_env_is_the_containerfiles():
    [env] = instruction("ENV")
    words = [w.replace("${COLLECTIONS}", args()["COLLECTIONS"]) for w in shlex.split(env)]
    # the base image's PATH and LANG come first (python:3.11-slim-bookworm sets them)
    assert verifier.ENV[:2] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]
    assert verifier.ENV[2:] == words


def test_user_workdir_entrypoint_and_cmd():
    assert instruction("USER") == ["%d:%d" % (verifier.UID, verifier.UID)]
    assert instruction("WORKDIR") == ["/tmp"]
    assert instruction("ENTRYPOINT") == ['["%s"]' % verifier.ENTRYPOINT]
    assert instruction("CMD") == ['["job"]']
    assert "useradd --uid %d --user-group --home-dir /tmp" % verifier.UID in CONTAINERFILE
    assert "install -m 0755 ${COLLECTIONS}/ansible_collections/k8s_ai/conformance/roles/verify_in_cluster/files/" \
           "ai-conformance-verify /usr/local/bin/ai-conformance-verify" in re.sub(r"\s+", " ", CONTAINERFILE)


def test_collection_path_and_requirements():
    assert args()["COLLECTIONS"] == verifier.COLLECTIONS
    assert "COPY . ${COLLECTIONS}/ansible_collections/k8s_ai/conformance" in CONTAINERFILE
    assert verifier.COLLECTION_DIR == verifier.COLLECTIONS + "/ansible_collections/k8s_ai/conformance"
    assert "grep -E '^(ansible-core|kubernetes|PyYAML|jmespath)=='" in CONTAINERFILE
    lines = verifier.runtime_requirements()
    assert [line.split("==")[0] for line in lines] == ["ansible-core", "kubernetes", "PyYAML", "jmespath"]


def test_build_context_follows_containerignore():
    files = verifier.context_files()
    assert "galaxy.yml" in files and "roles/verify_in_cluster/files/ai-conformance-verify" in files
    assert "plugins/module_utils/client.py" in files
    for rel in files:
        top = rel.split("/")[0]
        assert top not in (".git", ".venv", ".lab", "tests", "molecule", "bench", "mk", "Makefile"), rel
        assert "__pycache__" not in rel.split("/") and not rel.endswith(".pyc"), rel
        assert not (top == rel and rel.endswith(".tar.gz")), rel


def test_default_image_is_tagged_with_the_collection_version():
    import yaml  # noqa: PLC0415
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        version = yaml.safe_load(handle)["version"]
    assert verifier.image_ref() == "localhost/k8s-ai-conformance-verifier:%s" % version
