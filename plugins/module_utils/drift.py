# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE)
"""Drift: compare a verification run with a previous report, requirement by requirement.

A previous report is given as its JSON file, its folder (``<report_dir>/v<minor>/<platform>/``) or the
report root above it (``<report_dir>``, or ``<report_dir>/<cluster>`` of a fleet run).  `load_report` is the
one place that knows which file of a report folder holds the report's JSON (`REPORT_JSON_NAMES`, and any
other ``*.json`` of the folder whose content is a k8s_ai.conformance report); the fleet summary and the
metrics exporter read reports through it too.

Rules (the status order is Implemented > Partially Implemented > Not Implemented):
- regression: the status went down (e.g. Implemented -> Partially Implemented -> Not Implemented);
- improvement: the status went up;
- change: the status stayed but the run could not verify it this time (or now could), or the status moved
  to or from N/A (N/A is only given with a stated reason, so it is neither better nor worse);
- added / removed: the requirement is in only one of the two checklists (a new checklist version).
Both the checklist requirements and the whitepaper items are compared.
"""

from __future__ import absolute_import, division, print_function

import glob
import html
import json
import os
import sys

try:
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import report
except ImportError:  # pragma: no cover - direct use from a checkout
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import report  # type: ignore[no-redef]

TOOL = "k8s_ai.conformance"
# File names of the report's JSON in a report folder: the name report.py writes (report.REPORT_JSON), then the
# name of reports written before it was renamed (results.json - validate.go reads that name as go test -json, so a
# file of that name is taken only when its content is a k8s_ai.conformance report).
REPORT_JSON_NAMES = (report.REPORT_JSON, "results.json")
RANK = {"Implemented": 3, "Partially Implemented": 2, "Not Implemented": 1}
KINDS = ("regressions", "improvements", "changes", "added", "removed")
LISTS = (("requirements", "checklist"), ("whitepaper", "whitepaper"))


class DriftError(Exception):
    """A previous report that cannot be used; the message names the path."""


class NoReport(DriftError):
    """There is no previous report at the path (yet): a first run, not a bad input."""


# ------------------------------------------------------------------------------------- reading reports
def is_report(doc):
    """True when `doc` is the JSON of a k8s_ai.conformance report (not, e.g., go test -json output)."""
    return isinstance(doc, dict) and doc.get("tool") == TOOL and isinstance(doc.get("requirements"), list)


def _read_json(path):
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DriftError("%s cannot be read: %s" % (path, exc)) from None
    except ValueError as exc:
        raise DriftError("%s is not valid JSON: %s" % (path, exc)) from None


def report_json_in(folder):
    """Path of the report JSON in one report folder, or None."""
    for name in REPORT_JSON_NAMES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            try:
                if is_report(_read_json(path)):
                    return path
            except DriftError:
                continue
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        if os.path.basename(path) in REPORT_JSON_NAMES:
            continue
        try:
            if is_report(_read_json(path)):
                return path
        except DriftError:
            continue
    return None


def find_report_json(path, cluster=None):
    """The report JSON file that `path` designates (file, report folder, report root); raises DriftError."""
    if not path:
        raise NoReport("no previous report given")
    path = os.path.abspath(os.path.expanduser(str(path)))
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise NoReport("%s does not exist" % path)
    if cluster and os.path.isdir(os.path.join(path, cluster)) and not report_json_in(path):
        path = os.path.join(path, cluster)
    found = report_json_in(path)
    if found:
        return found
    candidates = [p for p in (report_json_in(d) for d in sorted(glob.glob(os.path.join(path, "v*", "*")))
                              if os.path.isdir(d)) if p]
    if not candidates:
        raise NoReport("%s holds no k8s_ai.conformance report (looked for %s in it and in v<minor>/<platform>/)"
                       % (path, " or ".join(REPORT_JSON_NAMES + ("another report *.json",))))
    # Several checklist versions or platforms under one root: the newest report is the baseline.
    return max(candidates, key=lambda p: (os.path.getmtime(p), p))


def load_report(path, cluster=None):
    """(path of the JSON, report dict) of a written report; raises DriftError naming the path."""
    json_path = find_report_json(path, cluster)
    doc = _read_json(json_path)
    if not is_report(doc):
        raise DriftError("%s is not a k8s_ai.conformance report (no tool/requirements fields)" % json_path)
    return json_path, doc


# ------------------------------------------------------------------------------------------ comparing
def _rows(doc, key):
    rows = {}
    for row in doc.get(key) or []:
        if isinstance(row, dict) and row.get("id"):
            rows[str(row["id"])] = row
    return rows


def classify(old_status, old_verified, new_status, new_verified):
    """'regression', 'improvement', 'change' or None (no change)."""
    if old_status == new_status:
        return "change" if bool(old_verified) != bool(new_verified) else None
    if old_status in RANK and new_status in RANK:
        return "regression" if RANK[new_status] < RANK[old_status] else "improvement"
    return "change"


def _entry(list_name, rid, old, new):
    ref = new if new is not None else old
    entry = {"id": rid, "list": list_name, "level": ref.get("level"), "check": ref.get("check"),
             "section": ref.get("section") or ref.get("domain")}
    if old is not None:
        entry["from"] = old.get("status")
        entry["from_verified"] = bool(old.get("verified"))
    if new is not None:
        entry["to"] = new.get("status")
        entry["to_verified"] = bool(new.get("verified"))
        entry["summary"] = new.get("summary") or ""
    return entry


def compare(previous, current, baseline_path=None):
    """Drift between two report dicts (the JSON schema of results.json: requirements, whitepaper, ...)."""
    out = {"status": "compared", "baseline": baseline_of(previous, baseline_path)}
    for kind in KINDS:
        out[kind] = []
    out["unchanged"] = 0
    for key, list_name in LISTS:
        old_rows, new_rows = _rows(previous, key), _rows(current, key)
        if not new_rows and key == "whitepaper":
            continue  # the whitepaper was not part of this run: nothing to compare it with
        for rid, new in new_rows.items():
            old = old_rows.get(rid)
            if old is None:
                out["added"].append(_entry(list_name, rid, None, new))
                continue
            kind = classify(old.get("status"), old.get("verified"), new.get("status"), new.get("verified"))
            if kind is None:
                out["unchanged"] += 1
            else:
                entry = _entry(list_name, rid, old, new)
                entry["kind"] = kind
                out[kind + "s"].append(entry)
        for rid, old in old_rows.items():
            if rid not in new_rows:
                out["removed"].append(_entry(list_name, rid, old, None))
    cur_version = (current.get("checklist") or {}).get("version")
    out["checklist_changed"] = bool(out["baseline"]["checklist_version"] and cur_version
                                    and out["baseline"]["checklist_version"] != cur_version)
    out["must_regressions"] = [e["id"] for e in out["regressions"] if e["list"] == "checklist" and e["level"] == "MUST"]
    out["summary"] = summary(out)
    return out


def baseline_of(previous, path=None):
    run = previous.get("run") if isinstance(previous.get("run"), dict) else {}
    return {"path": path, "generated": previous.get("generated"),
            "checklist_version": (previous.get("checklist") or {}).get("version"),
            "run_id": run.get("run_id"), "cluster": run.get("cluster"), "platform": previous.get("platform"),
            "verdict": previous.get("verdict")}


def not_compared(status, message, path=None):
    """The drift record of a run without a usable baseline ('no baseline' or 'error')."""
    out = {"status": status, "message": message, "baseline": {"path": path}, "unchanged": 0,
           "must_regressions": [], "checklist_changed": False}
    for kind in KINDS:
        out[kind] = []
    out["summary"] = "drift not computed: %s" % message
    return out


def has_regression(drift):
    return bool(drift) and bool(drift.get("regressions"))


def summary(drift):
    if drift.get("status") != "compared":
        return drift.get("summary") or "drift not computed"
    base = drift.get("baseline") or {}
    parts = []
    n = len(drift["regressions"])
    parts.append("%d regression%s%s" % (n, "" if n == 1 else "s",
                                        (" (MUST: %s)" % ", ".join(drift["must_regressions"]))
                                        if drift["must_regressions"] else ""))
    n = len(drift["improvements"])
    parts.append("%d improvement%s" % (n, "" if n == 1 else "s"))
    if drift["changes"]:
        parts.append("%d other change%s" % (len(drift["changes"]), "" if len(drift["changes"]) == 1 else "s"))
    if drift["added"] or drift["removed"]:
        parts.append("%d added, %d removed" % (len(drift["added"]), len(drift["removed"])))
    text = "since %s: %s" % (base.get("generated") or "the previous report", ", ".join(parts))
    if drift.get("checklist_changed"):
        text += " (the previous report used checklist v%s)" % base.get("checklist_version")
    return text


def _transition(entry):
    old = "%s%s" % (entry.get("from", "-"), "" if entry.get("from_verified", True) else " (not verified)")
    new = "%s%s" % (entry.get("to", "-"), "" if entry.get("to_verified", True) else " (not verified)")
    return "%s -> %s" % (old, new)


def lines(drift):
    """Progress/summary lines: the summary, then one line per regression, improvement and change."""
    if not drift:
        return []
    out = ["drift " + drift.get("summary", "")]
    for kind, label in (("regressions", "REGRESSION"), ("improvements", "improvement"), ("changes", "change")):
        for entry in drift.get(kind) or []:
            out.append("  %s %s [%s] (%s): %s" % (label, entry["id"], entry.get("level") or "-", entry["list"],
                                                  _transition(entry)))
    return out


# ------------------------------------------------------------------------------------------ rendering
def html_section(drift):
    """A self-contained <section> for report.html (the report's CSS classes: pill ok/no/part/na)."""
    esc = html.escape
    if not drift:
        return ""
    base = drift.get("baseline") or {}
    out = ['<section id="drift"><h2>Drift since the previous report</h2>']
    if drift.get("status") != "compared":
        out.append('<p class="muted">%s</p></section>' % esc(drift.get("summary") or ""))
        return "\n".join(out)
    out.append('<p>%s</p><p class="muted">baseline: %s · generated %s · checklist v%s%s</p>' % (
        esc(drift["summary"]), esc(str(base.get("path") or "-")), esc(str(base.get("generated") or "-")),
        esc(str(base.get("checklist_version") or "-")),
        (" · verdict then: %s" % esc(str(base.get("verdict")))) if base.get("verdict") else ""))
    rows = [(kind, e) for kind in ("regressions", "improvements", "changes", "added", "removed")
            for e in drift.get(kind) or []]
    if not rows:
        out.append('<p class="pill ok">no change</p></section>')
        return "\n".join(out)
    pill = {"regressions": "no", "improvements": "ok", "changes": "part", "added": "na", "removed": "na"}
    out.append("<table><thead><tr><th>Drift</th><th>Requirement</th><th>Level</th><th>List</th><th>Before</th>"
               "<th>Now</th></tr></thead><tbody>")
    for kind, entry in rows:
        before = ("%s%s" % (entry["from"], "" if entry.get("from_verified") else " (not verified)")) \
            if "from" in entry else "-"
        now = ("%s%s" % (entry["to"], "" if entry.get("to_verified") else " (not verified)")) if "to" in entry else "-"
        anchor = ('<a href="#check-%s">%s</a>' % (esc(str(entry["check"])), esc(entry["id"]))) \
            if entry.get("check") else esc(entry["id"])
        out.append('<tr><td><span class="pill %s">%s</span></td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>'
                   "<td>%s</td></tr>" % (pill[kind], esc(kind.rstrip("s")), anchor, esc(str(entry.get("level") or "")),
                                         esc(entry["list"]), esc(before), esc(now)))
    out.append("</tbody></table></section>")
    return "\n".join(out)


def markdown(drift):
    """Markdown lines (fleet.md)."""
    if not drift:
        return []
    out = [drift.get("summary", "")]
    for kind in ("regressions", "improvements", "changes"):
        for entry in drift.get(kind) or []:
            out.append("- %s `%s` [%s]: %s" % (kind.rstrip("s"), entry["id"], entry.get("level") or "-",
                                               _transition(entry)))
    return out


def current_of(report):
    """The report dict `compare` needs, from a report.Report that is not written yet."""
    return {"generated": report.generated, "checklist": {"version": report.version}, "run": dict(report.run),
            "requirements": report.official_rows(),
            "whitepaper": report.whitepaper_rows() if report.include_whitepaper else []}


def attach(report, drift):
    """Put the drift into a report.Report before it is written: results JSON key `drift`, an HTML section."""
    extra = getattr(report, "extra_data", None)
    sections = getattr(report, "html_sections", None)
    if extra is not None:
        extra["drift"] = drift
    if sections is not None:
        sections.append(html_section(drift))
    return extra is not None and sections is not None
