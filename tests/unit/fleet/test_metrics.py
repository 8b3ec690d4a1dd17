"""metrics.py: the Prometheus text of a report (CronJob mode), parsed back strictly."""

import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest
from unit_collection import COLLECTIONS_BASE, write_report

from ansible_collections.k8s_ai.conformance.plugins.module_utils import drift, metrics

SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>[-+0-9.eE]+|NaN)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse(text):
    """Strict reader of the text format: HELP and TYPE before each family's samples, well-formed labels."""
    assert text.endswith("\n")
    families, samples, seen_type = {}, [], set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in families, "HELP twice for %s" % name
            families[name] = None
        elif line.startswith("# TYPE "):
            _h, _t, name, kind = line.split(" ")
            assert name in families and kind == "gauge"
            seen_type.add(name)
        else:
            match = SAMPLE.match(line)
            assert match, "not a sample line: %r" % line
            assert match.group("name") in seen_type, "sample before its TYPE: %r" % line
            raw = match.group("labels") or ""
            labels = dict(LABEL.findall(raw))
            assert "".join('%s="%s",' % kv for kv in LABEL.findall(raw)).rstrip(",") == raw, raw
            samples.append((match.group("name"), labels, float(match.group("value"))))
    return samples


def value(samples, name, **labels):
    found = [v for n, lab, v in samples if n == "k8s_ai_conformance_" + name
             and all(lab.get(k) == w for k, w in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


STATUSES = {"dra_support": "Implemented", "gang_scheduling": "Not Implemented", "ai_inference": "Partially Implemented",
            "cluster_autoscaling": "N/A", "pod_autoscaling": ("Not Implemented", False)}


@pytest.fixture
def report_data(tmp_path):
    path = write_report(tmp_path / "r", STATUSES, run={"run_id": "r1", "cluster": "gpu-east",
                                                       "started": "2026-11-23T14:00:00Z",
                                                       "finished": "2026-11-23T14:02:30Z"})
    return path, drift.load_report(path)[1]


def test_requirement_status_state_and_run(report_data):
    _path, data = report_data
    samples = parse(metrics.render(data))
    common = {"cluster": "gpu-east", "checklist": "1.35"}
    assert value(samples, "requirement_status", id="dra_support", level="MUST", **common) == 1
    assert value(samples, "requirement_status", id="gang_scheduling", level="MUST") == 0
    assert value(samples, "requirement_status", id="cluster_autoscaling") == 0
    assert value(samples, "requirement_state", id="cluster_autoscaling", state="N/A") == 1
    assert value(samples, "requirement_state", id="ai_inference", state="Partially Implemented") == 1
    assert value(samples, "requirement_state", id="ai_inference", state="Implemented") == 0
    assert value(samples, "requirement_verified", id="pod_autoscaling") == 0
    assert value(samples, "requirement_verified", id="dra_support") == 1
    states = [s for s in samples if s[0].endswith("requirement_state") and s[1]["id"] == "dra_support"]
    assert len(states) == 4 and sum(v for _n, _l, v in states) == 1
    assert value(samples, "last_run_timestamp_seconds") == 1795442550  # 2026-11-23T14:02:30Z
    assert value(samples, "last_run_duration_seconds") == 150
    assert value(samples, "conformant") == 0
    assert value(samples, "must_failures") == len(data["must_failures"]) > 0
    assert value(samples, "report_present") == 1
    assert not [s for s in samples if s[0].endswith("requirement_regressed")], "no drift, no regression series"
    whitepaper = [s for s in samples if s[0].endswith("whitepaper_status")]
    assert whitepaper and all("domain" in s[1] for s in whitepaper)


def test_every_requirement_has_one_status_series(report_data):
    _path, data = report_data
    samples = parse(metrics.render(data))
    ids = [lab["id"] for n, lab, _v in samples if n.endswith("requirement_status")]
    assert sorted(ids) == sorted(r["id"] for r in data["requirements"]) and len(set(ids)) == len(ids)


def test_drift_series():
    data = {"tool": "k8s_ai.conformance", "checklist": {"version": "1.35"}, "platform": "p", "requirements": [
        {"id": "a", "level": "MUST", "section": "s", "status": "Not Implemented", "verified": True},
        {"id": "b", "level": "SHOULD", "section": "s", "status": "Implemented", "verified": True}],
        "drift": {"regressions": [{"id": "a", "list": "checklist"}, {"id": "HW-1.1", "list": "whitepaper"}]}}
    samples = parse(metrics.render(data))
    assert value(samples, "requirement_regressed", id="a") == 1
    assert value(samples, "requirement_regressed", id="b") == 0
    assert value(samples, "regressions") == 2
    assert value(samples, "requirement_status", id="b", cluster="p") == 1


def test_label_values_are_escaped():
    data = {"requirements": [{"id": 'we"ird\\id\nx', "level": "MUST", "status": "Implemented", "verified": True}]}
    text = metrics.render(data, cluster="c")
    assert 'id="we\\"ird\\\\id\\nx"' in text
    samples = parse(text)
    assert value(samples, "requirement_status", cluster="c") == 1


def test_no_report_yet(tmp_path):
    samples = parse(metrics.render_path(str(tmp_path / "none"), cluster="c"))
    assert samples == [("k8s_ai_conformance_report_present", {"cluster": "c", "checklist": ""}, 0.0)]


MODULE = "ansible_collections.k8s_ai.conformance.plugins.module_utils.metrics"


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", MODULE] + list(args), capture_output=True, text=True, timeout=60,
                          check=False, env=dict(os.environ, PYTHONPATH=COLLECTIONS_BASE), **kwargs)


def test_cli_render_to_a_file(report_data, tmp_path):
    path, _data = report_data
    out = tmp_path / "textfile" / "ai_conformance.prom"
    proc = cli("render", os.path.dirname(os.path.dirname(path)), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    samples = parse(out.read_text())
    assert value(samples, "requirement_status", id="dra_support") == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    proc = cli("render", str(bad))
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_serve_reads_the_report_on_every_scrape(tmp_path):
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = tmp_path / "reports"
    server = subprocess.Popen([sys.executable, "-m", MODULE, "serve", str(root), "--address", "127.0.0.1",
                               "--port", str(port), "--cluster", "c"],
                              env=dict(os.environ, PYTHONPATH=COLLECTIONS_BASE), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        def scrape():
            for _attempt in range(100):
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as resp:
                        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                        return parse(resp.read().decode())
                except OSError:
                    time.sleep(0.1)
            raise AssertionError("the metrics server did not answer")

        assert value(scrape(), "report_present") == 0
        write_report(root, STATUSES)
        samples = scrape()
        assert value(samples, "report_present") == 1 and value(samples, "requirement_status", id="dra_support") == 1
    finally:
        server.terminate()
        server.wait(timeout=10)
