"""Make this checkout importable as ansible_collections.k8s_ai.conformance (no `make collections` needed)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from unit_collection import link_collection  # noqa: E402

link_collection()
