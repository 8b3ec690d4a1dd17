# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE)
"""Fleet summary: one page over the reports of many clusters (fleet.html, fleet.json, fleet.md).

Each cluster is given by its name (the inventory host), the folder of its report (when one was written)
and the error that stopped it (when one did).  Reports are read through drift.load_report, so the name of
the report's JSON file lives in one place.  A cluster without a readable report is listed with its error,
never dropped and never counted as conformant.
"""

from __future__ import absolute_import, division, print_function

import datetime
import html
import json
import os
import sys

try:
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import drift
except ImportError:  # pragma: no cover - direct use from a checkout
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import drift  # type: ignore[no-redef]

TOOL = "k8s_ai.conformance"
SCHEMA_VERSION = 1
FILES = ("fleet.html", "fleet.json", "fleet.md")
# Per-cluster state, worst first (the fleet's state is the worst of its clusters).
STATES = ("no report", "not verified", "not conformant", "regressed", "conformant")


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def cluster_entry(name, report_path=None, error=None):
    """What the fleet summary says about one cluster."""
    entry = {"name": str(name), "report_path": report_path or None, "error": error or None}
    if not report_path:
        entry.update(state="no report", verdict="no report was written: %s" % (error or "the run did not get that far"))
        return entry
    try:
        json_path, data = drift.load_report(report_path)
    except drift.DriftError as exc:
        entry.update(state="no report", verdict="the report cannot be read: %s" % exc)
        return entry
    folder = os.path.dirname(json_path)
    must_failures = list(data.get("must_failures") or [])
    errors = list(data.get("errors") or [])
    changes = data.get("drift") if isinstance(data.get("drift"), dict) else None
    regressions = [e.get("id") for e in (changes or {}).get("regressions") or []]
    if errors:
        state = "not verified"
    elif must_failures:
        state = "not conformant"
    elif regressions:
        state = "regressed"
    else:
        state = "conformant"
    run = data.get("run") if isinstance(data.get("run"), dict) else {}
    entry.update({
        "state": state,
        "report_path": folder,
        "json_path": json_path,
        "html_path": os.path.join(folder, "report.html"),
        "checklist_version": (data.get("checklist") or {}).get("version"),
        "server_version": data.get("server_version"),
        "platform": data.get("platform"),
        "generated": data.get("generated"),
        "run_id": run.get("run_id"),
        "context": run.get("context") or None,
        "verdict": data.get("verdict"),
        "counts": data.get("counts") or {},
        "must_failures": must_failures,
        "must_na": list(data.get("must_na") or []),
        "errors": errors,
        "warnings": len(data.get("warnings") or []),
        "not_verified": [r.get("id") for r in data.get("requirements") or [] if not r.get("verified")],
        "drift": (changes or {}).get("summary"),
        "regressions": regressions,
        "requirements": {r["id"]: {"status": r.get("status"), "verified": bool(r.get("verified")),
                                   "level": r.get("level")}
                         for r in data.get("requirements") or [] if isinstance(r, dict) and r.get("id")},
    })
    if error and state == "conformant":
        entry["state"] = "not verified"
    return entry


def summary(clusters, generated=None):
    """The fleet document (fleet.json) from cluster entries (dicts with name, report_path, error)."""
    entries = [cluster_entry(c.get("name"), c.get("report_path"), c.get("error")) for c in clusters]
    entries.sort(key=lambda e: e["name"])
    counts = dict.fromkeys(STATES, 0)
    for entry in entries:
        counts[entry["state"]] += 1
    ids = []
    for entry in entries:
        for rid in entry.get("requirements") or {}:
            if rid not in ids:
                ids.append(rid)
    worst = next((s for s in STATES if counts[s]), "conformant") if entries else "no report"
    return {"schema_version": SCHEMA_VERSION, "tool": TOOL, "generated": generated or _now(),
            "state": worst, "counts": counts, "clusters": entries, "requirement_ids": ids,
            "verdict": "%d of %d cluster(s) conformant" % (counts["conformant"] + counts["regressed"], len(entries))}


# ------------------------------------------------------------------------------------------ writers
_PILL = {"Implemented": "ok", "Partially Implemented": "part", "Not Implemented": "no", "N/A": "na",
         "conformant": "ok", "regressed": "part", "not conformant": "no", "not verified": "nv", "no report": "nv"}


def _rel(path, base):
    try:
        return os.path.relpath(path, base)
    except ValueError:  # pragma: no cover - another drive on Windows
        return path


def html_page(doc, base_dir):
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>AI conformance fleet</title><style>%s</style></head><body>" % _CSS,
           "<header><h1>Kubernetes AI Conformance - fleet</h1>",
           '<p class="sub">%d cluster(s) · generated %s by %s</p>' % (len(doc["clusters"]), esc(doc["generated"]),
                                                                      TOOL),
           '<p class="verdict %s">%s</p></header>' % ("good" if doc["state"] == "conformant" else "bad",
                                                      esc(doc["verdict"])),
           '<section><h2>Clusters</h2><p>%s</p>' % " ".join(
               '<span class="pill %s">%s: %d</span>' % (_PILL[s], esc(s), n) for s, n in doc["counts"].items() if n),
           "<table><thead><tr><th>Cluster</th><th>State</th><th>Checklist</th><th>Server</th><th>Verdict</th>"
           "<th>MUST not Implemented</th><th>Drift</th><th>Report</th></tr></thead><tbody>"]
    for entry in doc["clusters"]:
        link = '<a href="%s">report.html</a>' % esc(_rel(entry["html_path"], base_dir)) if entry.get("html_path") \
            else "-"
        problems = entry.get("errors") or ([entry["error"]] if entry.get("error") else [])
        out.append('<tr id="cluster-%s"><td><b>%s</b>%s</td><td><span class="pill %s">%s</span></td><td>%s</td>'
                   "<td>%s</td><td>%s%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % (
                       esc(entry["name"]), esc(entry["name"]),
                       ('<br><span class="muted">%s</span>' % esc(entry["context"])) if entry.get("context") else "",
                       _PILL[entry["state"]], esc(entry["state"]),
                       esc("v%s" % entry["checklist_version"]) if entry.get("checklist_version") else "-",
                       esc(entry.get("server_version") or "-"), esc(entry.get("verdict") or ""),
                       "".join('<br><span class="err">%s</span>' % esc(str(p)) for p in problems[:3]),
                       esc(", ".join(entry.get("must_failures") or [])) or "-",
                       esc(entry.get("drift") or "-"), link))
    out.append("</tbody></table></section>")
    with_reports = [e for e in doc["clusters"] if e.get("requirements")]
    if with_reports:
        out.append("<section><h2>Requirements by cluster</h2><table><thead><tr><th>Requirement</th>%s</tr></thead>"
                   "<tbody>" % "".join("<th>%s</th>" % esc(e["name"]) for e in with_reports))
        for rid in doc["requirement_ids"]:
            level = next((e["requirements"][rid]["level"] for e in with_reports if rid in e["requirements"]), "")
            cells = []
            for entry in with_reports:
                req = entry["requirements"].get(rid)
                if not req:
                    cells.append('<td class="muted">-</td>')
                    continue
                mark = "" if req["verified"] else ' <span class="pill nv">not verified</span>'
                regressed = ' <span class="pill no">regressed</span>' if rid in entry.get("regressions", []) else ""
                cells.append('<td><span class="pill %s">%s</span>%s%s</td>' % (
                    _PILL.get(req["status"], "na"), esc(str(req["status"])), mark, regressed))
            out.append("<tr><td>%s <span class=\"muted\">[%s]</span></td>%s</tr>" % (esc(rid), esc(level or "-"),
                                                                                     "".join(cells)))
        out.append("</tbody></table></section>")
    out.append("<footer>%s · fleet.json · fleet.md beside this page; one report folder per cluster</footer>"
               "</body></html>" % TOOL)
    return "\n".join(out) + "\n"


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(doc, base_dir):
    lines = ["# Kubernetes AI Conformance - fleet", "",
             "%s · generated %s by %s" % (doc["verdict"], doc["generated"], TOOL), "",
             "| Cluster | State | Checklist | Server | MUST not Implemented | Drift | Report |",
             "| :--- | :--- | :--- | :--- | :--- | :--- | :--- |"]
    for entry in doc["clusters"]:
        report = "[report.html](%s)" % _rel(entry["html_path"], base_dir) if entry.get("html_path") else \
            _cell(entry.get("verdict") or "-")
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            _cell(entry["name"]), entry["state"],
            "v%s" % entry["checklist_version"] if entry.get("checklist_version") else "-",
            _cell(entry.get("server_version") or "-"), _cell(", ".join(entry.get("must_failures") or []) or "-"),
            _cell(entry.get("drift") or "-"), report))
    problems = [(e["name"], p) for e in doc["clusters"] for p in (e.get("errors") or
                                                                  ([e["error"]] if e.get("error") else []))]
    if problems:
        lines += ["", "## Errors", ""] + ["- **%s**: %s" % (_cell(n), _cell(p)) for n, p in problems]
    return "\n".join(lines) + "\n"


def write(dest, clusters, generated=None):
    """Write fleet.html, fleet.json and fleet.md into `dest`; returns (doc, paths)."""
    dest = os.path.abspath(dest)
    os.makedirs(dest, exist_ok=True)
    doc = summary(clusters, generated)
    paths = []
    for name, text in (("fleet.json", json.dumps(doc, indent=2, default=str) + "\n"),
                       ("fleet.md", markdown(doc, dest)), ("fleet.html", html_page(doc, dest))):
        path = os.path.join(dest, name)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
        paths.append(path)
    return doc, paths


def lines(doc):
    """One line per cluster, for the play's output."""
    out = ["fleet: %s" % doc["verdict"]]
    for entry in doc["clusters"]:
        detail = entry.get("verdict") or ""
        if entry.get("drift"):
            detail += "; drift %s" % entry["drift"]
        out.append("%-24s %-15s %s" % (entry["name"], entry["state"], detail))
    return out


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1400px;padding:1.5rem;
color:#1f2328;background:#fff;line-height:1.45}header h1{margin:0 0 .2rem}.sub,.muted{color:#59636e}
.verdict{font-weight:600;padding:.6rem .9rem;border-radius:6px;display:inline-block}
.verdict.good{background:#dafbe1;color:#116329}.verdict.bad{background:#ffebe9;color:#a40e26}
table{border-collapse:collapse;width:100%;margin:.6rem 0 1rem;font-size:.93em}
th,td{border:1px solid #d1d9e0;padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#f6f8fa}
.pill{display:inline-block;border-radius:1em;padding:.05rem .6rem;font-size:.85em;font-weight:600;white-space:nowrap}
.ok{background:#dafbe1;color:#116329}.part{background:#fff8c5;color:#7d4e00}.no{background:#ffebe9;color:#a40e26}
.na{background:#eaeef2;color:#59636e}.nv{background:#fbefff;color:#8250df}.err{color:#a40e26;font-size:.9em}
footer{margin-top:2rem;color:#59636e;font-size:.85em}
"""
