"""Make this checkout importable as ansible_collections.k8s_ai.conformance; shared helpers."""

import os
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SHARED_CHECKLISTS = os.path.join(os.path.dirname(ROOT), "shared", "checklists")


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
    return base


COLLECTIONS_BASE = _link_collection()


@pytest.fixture(scope="session")
def shared_checklists():
    """The official checklist files (../shared/checklists); an explicit skip when this machine lacks them."""
    files = {}
    if os.path.isdir(SHARED_CHECKLISTS):
        for name in sorted(os.listdir(SHARED_CHECKLISTS)):
            if name.startswith("AIConformance-") and name.endswith(".yaml"):
                files[name[len("AIConformance-"):-len(".yaml")]] = os.path.join(SHARED_CHECKLISTS, name)
    if not files:
        pytest.skip("official checklist files not found in %s (they live outside the repo)" % SHARED_CHECKLISTS)
    return files


GOOD_METADATA = {
    "platformName": "Lab Platform",
    "platformVersion": "1.0.0",
    "vendorName": "Example Vendor",
    "websiteUrl": "https://example.com",
    "repoUrl": "https://example.com/repo",
    "documentationUrl": "https://example.com/docs",
    "productLogoUrl": "https://example.com/logo.svg",
    "description": "An AI platform used in tests.",
    "contactEmailAddress": "ai@example.com",
    "k8sConformanceUrl": "https://github.com/cncf/k8s-conformance/tree/master/v1.35/lab",
}


def make_result(check, status="Implemented", verified=True, summary=None, notes=""):
    outcome = {"Implemented": "passed", "N/A": "skipped"}.get(status, "failed")
    return {
        "check": check, "status": status, "verified": verified, "summary": summary or "%s: %s" % (check, status),
        "notes": notes,
        "parts": [{"name": "static part", "kind": "static", "required": True, "outcome": "passed", "detail": "ok"},
                  {"name": "positive case", "kind": "positive", "required": True,
                   "outcome": outcome if verified else "error", "detail": "detail"}],
        "evidence": [{"title": "list things", "action": "GET /api/v1/nodes", "response": {"items": 2},
                      "duration_s": 0.01}],
        "duration_s": 1.5, "started": "2026-11-23T14:00:00Z",
    }
