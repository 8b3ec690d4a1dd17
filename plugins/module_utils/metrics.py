# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE)
"""Prometheus metrics of a written report (text exposition format 0.0.4).

    python -m ansible_collections.k8s_ai.conformance.plugins.module_utils.metrics render REPORT [-o FILE]
    python -m ansible_collections.k8s_ai.conformance.plugins.module_utils.metrics serve REPORT [--port 9108]

REPORT is a report's JSON, its folder or the report root (drift.load_report finds it). `render` writes the
metrics once (a node-exporter textfile, or a file to serve); `serve` answers GET /metrics with the metrics of
the newest report under REPORT, read on every scrape, so a CronJob that rewrites the report needs no restart.

Series (labels cluster, checklist on every series; id, level, section on the per-requirement ones):
    k8s_ai_conformance_requirement_status          1 = Implemented, 0 = anything else (N/A included)
    k8s_ai_conformance_requirement_state           state="Implemented|Partially Implemented|Not Implemented|N/A": 1/0
    k8s_ai_conformance_requirement_verified        1 = every part could run
    k8s_ai_conformance_requirement_regressed       1 = worse than the previous report (drift)
    k8s_ai_conformance_whitepaper_status           whitepaper items: 1 = Full support
    k8s_ai_conformance_must_failures               MUST requirements not Implemented (N/A excluded)
    k8s_ai_conformance_conformant                  1 = no input error and every MUST Implemented or N/A
    k8s_ai_conformance_run_errors                  input errors that stopped the run
    k8s_ai_conformance_regressions                 requirements and whitepaper items worse than the previous report
    k8s_ai_conformance_last_run_timestamp_seconds  when the run finished (Unix time)
    k8s_ai_conformance_last_run_duration_seconds   how long it took
    k8s_ai_conformance_report_present              0 while no report exists yet (serve)
"""

from __future__ import absolute_import, division, print_function

import calendar
import os
import sys
import time

try:
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import drift
except ImportError:  # pragma: no cover - direct use from a checkout
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import drift  # type: ignore[no-redef]

PREFIX = "k8s_ai_conformance_"
STATES = ("Implemented", "Partially Implemented", "Not Implemented", "N/A")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HELP = {
    "requirement_status": "1 when the requirement is Implemented, 0 otherwise (N/A included; see requirement_state).",
    "requirement_state": "1 for the requirement's current status (stateset).",
    "requirement_verified": "1 when every part of the requirement's check could run, 0 when a part could not.",
    "requirement_regressed": "1 when the requirement is worse than in the previous report (drift).",
    "whitepaper_status": "1 when the whitepaper item has Full support (its check Implemented), 0 otherwise.",
    "must_failures": "MUST requirements not Implemented (N/A excluded).",
    "conformant": "1 when the run had no input error and every MUST requirement is Implemented or N/A.",
    "run_errors": "Input errors that stopped the run (the checks were then not verified).",
    "regressions": "Requirements and whitepaper items worse than in the previous report.",
    "last_run_timestamp_seconds": "Unix time when the verification run finished.",
    "last_run_duration_seconds": "Seconds the verification run took.",
    "report_present": "1 when a report was found, 0 while there is none yet.",
}


def escape(value):
    """A label value in the text format: backslash, double quote and line feed escaped."""
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _labels(labels):
    if not labels:
        return ""
    return "{%s}" % ",".join('%s="%s"' % (k, escape(v)) for k, v in labels.items())


def _number(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def timestamp(text):
    """Unix time of an RFC 3339 UTC timestamp (2026-11-23T14:00:00Z), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return calendar.timegm(time.strptime(text.replace("+00:00", "Z"), "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return None


class Writer:
    """Collects samples per metric family and renders HELP/TYPE once per family, in first-seen order."""

    def __init__(self):
        self.families = {}

    def add(self, name, labels, value):
        self.families.setdefault(name, []).append((labels, value))

    def text(self):
        out = []
        for name, samples in self.families.items():
            out.append("# HELP %s%s %s" % (PREFIX, name, HELP[name]))
            out.append("# TYPE %s%s gauge" % (PREFIX, name))
            for labels, value in samples:
                out.append("%s%s%s %s" % (PREFIX, name, _labels(labels), _number(value)))
        return "\n".join(out) + "\n"


def render(data, cluster=None):
    """The metrics text of one report dict (the results JSON schema)."""
    run = data.get("run") if isinstance(data.get("run"), dict) else {}
    base = {"cluster": cluster or run.get("cluster") or data.get("platform") or "",
            "checklist": str((data.get("checklist") or {}).get("version") or "")}
    regressed = {(e.get("list"), e.get("id")) for e in ((data.get("drift") or {}).get("regressions") or [])}
    out = Writer()
    out.add("report_present", dict(base), 1)
    rows = [r for r in data.get("requirements") or [] if isinstance(r, dict) and r.get("id")]
    for row in rows:
        labels = dict(base, id=row["id"], level=row.get("level") or "", section=row.get("section") or "")
        out.add("requirement_status", labels, row.get("status") == "Implemented")
    for row in rows:
        labels = dict(base, id=row["id"], level=row.get("level") or "", section=row.get("section") or "")
        for state in STATES:
            out.add("requirement_state", dict(labels, state=state), row.get("status") == state)
    for row in rows:
        labels = dict(base, id=row["id"], level=row.get("level") or "", section=row.get("section") or "")
        out.add("requirement_verified", labels, bool(row.get("verified")))
    if data.get("drift"):
        for row in rows:
            labels = dict(base, id=row["id"], level=row.get("level") or "", section=row.get("section") or "")
            out.add("requirement_regressed", labels, ("checklist", row["id"]) in regressed)
    for row in data.get("whitepaper") or []:
        if isinstance(row, dict) and row.get("id"):
            labels = dict(base, id=row["id"], level=row.get("level") or "", domain=row.get("domain") or "")
            out.add("whitepaper_status", labels, row.get("status") == "Implemented")
    must_failures = len(data.get("must_failures") or [])
    errors = len(data.get("errors") or [])
    out.add("must_failures", dict(base), must_failures)
    out.add("conformant", dict(base), not errors and not must_failures)
    out.add("run_errors", dict(base), errors)
    if data.get("drift"):
        out.add("regressions", dict(base), len(regressed))
    finished = timestamp(run.get("finished")) or timestamp(data.get("generated"))
    started = timestamp(run.get("started"))
    if finished is not None:
        out.add("last_run_timestamp_seconds", dict(base), finished)
        if started is not None and finished >= started:
            out.add("last_run_duration_seconds", dict(base), finished - started)
    return out.text()


def absent(cluster=None):
    """The metrics while no report exists yet."""
    out = Writer()
    out.add("report_present", {"cluster": cluster or "", "checklist": ""}, 0)
    return out.text()


def render_path(path, cluster=None):
    """Metrics text of the report at `path` (file, folder or root); `absent` when there is none yet."""
    try:
        _found, data = drift.load_report(path, cluster)
    except drift.NoReport:
        return absent(cluster)
    return render(data, cluster)


def write(path, text):
    """Write atomically (a scraper or textfile collector never reads half a file)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, ".%s.tmp" % os.path.basename(path))
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def serve(report, address="0.0.0.0", port=9108, cluster=None):  # pragma: no cover - exercised by the CLI test
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404, "only /metrics is served")
                return
            try:
                body = render_path(report, cluster).encode("utf-8")
                code = 200
            except drift.DriftError as exc:
                body = ("report %s cannot be read: %s\n" % (report, exc)).encode("utf-8")
                code = 500
            self.send_response(code)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer((address, port), Handler)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Prometheus metrics of a k8s_ai.conformance report")
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("render", help="write the metrics of a report once")
    one.add_argument("report", help="report JSON, report folder or report root")
    one.add_argument("-o", "--output", help="file to write (default: stdout)")
    one.add_argument("--cluster", help="cluster label (default: the report's run.cluster or platform)")
    srv = sub.add_parser("serve", help="serve /metrics, reading the report on every scrape")
    srv.add_argument("report")
    srv.add_argument("--address", default="0.0.0.0")
    srv.add_argument("--port", type=int, default=9108)
    srv.add_argument("--cluster")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.report, args.address, args.port, args.cluster)
        return 0
    try:
        text = render_path(args.report, args.cluster)
    except drift.DriftError as exc:
        sys.stderr.write("metrics: %s\n" % exc)
        return 2
    if args.output:
        write(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())  # pylint: disable=ansible-bad-function  # command line, not a module
