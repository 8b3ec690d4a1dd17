"""Run ansible-test sanity (with the .venv-sanity interpreter) on a copy of the collection.

The copy is laid out as ansible_collections/k8s_ai/conformance.

ansible-test needs that directory layout (and a git-free tree it can list), so we copy the files git
knows about (tracked and untracked-but-not-ignored) into a cache directory and run it there.
Extra arguments are passed to ansible-test (e.g. --test validate-modules).
"""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Every sanity test ansible-test has, less those that need tools this machine lacks (PowerShell) or
# that are run elsewhere (shellcheck: no shell scripts are shipped in the collection's plugins).
SKIP = ["pslint", "shellcheck"]


def install_pip_bootstrap():
    """Put our offline pip bootstrap where ansible-test looks for its cached download."""
    import glob
    import re
    requirements = glob.glob(os.path.join(os.path.dirname(sys.executable), "..", "lib", "python*", "site-packages",
                                          "ansible_test", "_data", "requirements", "ansible-test.txt"))
    versions = {"24.2"}
    for path in requirements:
        with open(path) as f:
            versions.update(re.findall(r"^pip\s*==\s*([0-9.]+)", f.read(), re.M))
    cache = os.path.expanduser("~/.ansible/test/cache")
    os.makedirs(cache, exist_ok=True)
    for version in versions:
        shutil.copy(os.path.join(ROOT, "tests", "tools", "get_pip_offline.py"),
                    os.path.join(cache, "get_pip_%s.py" % version.replace(".", "_")))


def main(extra):
    # Outside the checkout: inside it, ansible-test would list files through git and see none.
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    dest = os.path.join(cache, "k8s-ai-conformance", "sanity", "ansible_collections", "k8s_ai", "conformance")
    shutil.rmtree(dest, ignore_errors=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for rel in files:
        if rel.startswith(("tests/lab/go/", ".cache/")) or not os.path.isfile(os.path.join(ROOT, rel)):
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), os.path.join(dest, rel))
    install_pip_bootstrap()
    args = extra or sum((["--skip-test", t] for t in SKIP), [])
    python = "%d.%d" % sys.version_info[:2]
    # --local: ansible-test's --venv bootstraps pip from a host we cannot reach; the sanity venv
    # (make sanity-venv) holds ansible-test's own pinned sanity requirements instead.
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-test"), "sanity", "--local", "--python", python,
           "--color", "no"] + args
    print("+ " + " ".join(cmd), flush=True)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"))
    sys.exit(subprocess.run(cmd, cwd=dest, env=env, check=False).returncode)


if __name__ == "__main__":
    main(sys.argv[1:])
