"""Shared helpers of the check-module unit tests: the collection import link, the engine's in-memory API with
routes for the non-object endpoints (service proxies, pod logs, token reviews), and an in-process runner."""

import os
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


def _link_collection():
    base = os.path.join(tempfile.gettempdir(), "k8s-ai-conformance-unit-%d" % os.getuid())
    parent = os.path.join(base, "ansible_collections", "k8s_ai")
    os.makedirs(parent, exist_ok=True)
    link = os.path.join(parent, "conformance")
    if not (os.path.islink(link) and os.readlink(link) == ROOT):
        tmp = link + ".%d" % os.getpid()
        os.symlink(ROOT, tmp)
        os.replace(tmp, link)
    if base not in sys.path:
        sys.path.insert(0, base)


_link_collection()
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "engine"))  # fakeapi.py (the engine's fake API server)


@pytest.fixture(autouse=True)
def fast_probes(monkeypatch):
    """Waits and observations of the probe runner last at most a fraction of a second in unit tests."""
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import probe as probe_mod

    original = probe_mod.Probe._budget
    monkeypatch.setattr(probe_mod.Probe, "_budget", lambda self, timeout: min(original(self, timeout), 0.4))
    monkeypatch.setattr(probe_mod, "POLL_INTERVAL", 0.02)
    monkeypatch.setattr(probe_mod.Probe.__init__, "__defaults__", probe_mod.Probe.__init__.__defaults__[:-1] + (0.02,))
