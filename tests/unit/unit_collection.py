"""Shared by tests/unit/drift and tests/unit/fleet: this checkout as ansible_collections.k8s_ai.conformance,
report results to feed the writers, and a way to run a module as Ansible runs it."""

import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def link_collection():
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


COLLECTIONS_BASE = link_collection()

METADATA = {
    "platformName": "Lab Platform", "platformVersion": "1.0.0", "vendorName": "Example Vendor",
    "websiteUrl": "https://example.com", "repoUrl": "https://example.com/repo",
    "documentationUrl": "https://example.com/docs", "productLogoUrl": "https://example.com/logo.svg",
    "description": "An AI platform used in tests.", "contactEmailAddress": "ai@example.com",
    "k8sConformanceUrl": "https://github.com/cncf/k8s-conformance/tree/master/v1.35/lab",
}


def result(check, status="Implemented", verified=True, summary=None):
    outcome = {"Implemented": "passed", "N/A": "skipped"}.get(status, "failed")
    return {
        "check": check, "status": status, "verified": verified, "summary": summary or "%s: %s" % (check, status),
        "notes": "reason given" if status == "N/A" else "",
        "parts": [{"name": "positive case", "kind": "positive", "required": True,
                   "outcome": outcome if verified else "error", "detail": "detail"}],
        "evidence": [], "duration_s": 0.5, "started": "2026-11-23T14:00:00Z",
    }


def run_module(name, args, tmp_path):
    """Run plugins/modules/<name>.py with args, as Ansible would; returns its JSON answer."""
    args_file = tmp_path / ("%s-args-%d.json" % (name, len(list(tmp_path.glob("%s-args-*.json" % name)))))
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "plugins", "modules", "%s.py" % name), str(args_file)],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=COLLECTIONS_BASE),
                          cwd=str(tmp_path), timeout=120, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def write_report(report_dir, statuses, version="1.35", platform="lab", include_whitepaper=True, run=None):
    """Write a real report (report.py) with the given check -> status (or (status, verified)); returns its path."""
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import report

    results = []
    for check, status in statuses.items():
        status, verified = status if isinstance(status, tuple) else (status, True)
        results.append(result(check, status, verified))
    rep = report.build_report(version, platform, results, metadata=METADATA, include_whitepaper=include_whitepaper,
                              run=run or {"run_id": "r1"})
    return rep.write(str(report_dir))["path"]


def collections_path():
    """.collections with this checkout linked in as k8s_ai.conformance (as `make collections` does)."""
    base = os.path.join(ROOT, ".collections")
    link = os.path.join(base, "ansible_collections", "k8s_ai", "conformance")
    if not os.path.lexists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)
    return base
