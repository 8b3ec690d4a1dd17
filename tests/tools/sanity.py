"""Run ansible-test sanity on a copy of the collection laid out as ansible_collections/k8s_ai/conformance.

ansible-test needs that directory layout (and a git-free tree it can list), so we copy the files git
knows about (tracked and untracked-but-not-ignored) into a cache directory and run it there.
Extra arguments are passed to ansible-test (e.g. --test validate-modules).
"""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Sanity tests that need no container and whose requirements ansible-test installs into its own venvs.
TESTS = ["action-plugin-docs", "ansible-doc", "compile", "empty-init", "import", "line-endings",
         "no-assert", "no-basestring", "no-dict-iteritems", "no-dict-iterkeys", "no-dict-itervalues",
         "no-get-exception", "no-illegal-filenames", "no-main-display", "no-smart-quotes",
         "no-unicode-literals", "pep8", "pylint", "replace-urlopen", "shebang", "symlinks",
         "use-argspec-type-path", "use-compat-six", "validate-modules", "yamllint"]


def main(extra):
    dest = os.path.join(ROOT, ".cache", "sanity", "ansible_collections", "k8s_ai", "conformance")
    shutil.rmtree(dest, ignore_errors=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for rel in files:
        if rel.startswith(("tests/lab/go/", ".cache/")) or not os.path.isfile(os.path.join(ROOT, rel)):
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), os.path.join(dest, rel))
    args = extra or sum((["--test", t] for t in TESTS), [])
    python = "%d.%d" % sys.version_info[:2]
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-test"), "sanity", "--venv", "--python", python,
           "--color", "no"] + args
    print("+ " + " ".join(cmd), flush=True)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"))
    sys.exit(subprocess.run(cmd, cwd=dest, env=env).returncode)


if __name__ == "__main__":
    main(sys.argv[1:])
