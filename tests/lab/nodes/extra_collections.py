"""Make sure the collections in tests/tools/collections.txt are in .collections (molecule `nodes`).

Reuses tests/tools/install_collections.py (same pinned `ansible` wheel, no Galaxy), adding the names
listed in tests/tools/collections.txt to the ones it installs.
"""

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))

import install_collections  # noqa: E402


def wanted():
    with open(os.path.join(ROOT, "tests", "tools", "collections.txt")) as handle:
        names = [line.split("#")[0].strip().replace(".", "/") for line in handle]
    return tuple(n for n in names if n)


if __name__ == "__main__":
    install_collections.COLLECTIONS = tuple(dict.fromkeys(install_collections.COLLECTIONS + wanted()))
    install_collections.main(ROOT)
