"""Install the collections the project needs into .collections without Ansible Galaxy.

Galaxy is not reachable from the test machines, but PyPI is, and PyPI's `ansible` package ships
every collection it bundles. We download that one wheel (pinned, pip-cached), unpack only the
collections named below, and link this checkout in as k8s_ai.conformance.
Users install the normal way: ansible-galaxy collection install -r requirements.yml
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

ANSIBLE_PACKAGE = "ansible==12.3.0"
HERE = os.path.dirname(os.path.abspath(__file__))


def wanted():
    """kubernetes/core plus what tests/tools/collections.txt lists (namespace/name, one a line)."""
    names = ["kubernetes/core"]
    with open(os.path.join(HERE, "collections.txt")) as handle:
        names += [line.split("#")[0].strip().replace(".", "/") for line in handle]
    return tuple(dict.fromkeys(n for n in names if n))


COLLECTIONS = wanted()


def main(root):
    target = os.path.join(root, ".collections", "ansible_collections")
    os.makedirs(target, exist_ok=True)
    missing = [c for c in COLLECTIONS if not os.path.isfile(os.path.join(target, c, "MANIFEST.json"))]
    if missing:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp,
                            ANSIBLE_PACKAGE], check=True)
            wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
            with zipfile.ZipFile(wheel) as archive:
                for name in archive.namelist():
                    for collection in missing:
                        prefix = "ansible_collections/%s/" % collection
                        if name.startswith(prefix) and not name.endswith("/"):
                            archive.extract(name, os.path.dirname(target))
    ours = os.path.join(target, "k8s_ai", "conformance")
    os.makedirs(os.path.dirname(ours), exist_ok=True)
    if not os.path.islink(ours):
        if os.path.exists(ours):
            shutil.rmtree(ours)
        os.symlink(os.path.abspath(root), ours)
    print("collections ready in %s" % target)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.getcwd())
