# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE)
"""Report writers: PRODUCT.yaml, evidence files, junit.xml, report.json, report.html, whitepaper.md.

Layout (that of a cncf/k8s-ai-conformance submission)::

    <report_dir>/v<minor>/<platform>/PRODUCT.yaml
                                    /evidence/<check>.md     one per check, linked from PRODUCT.yaml
                                    /junit.xml               a testcase per requirement, named as validate.go
                                                             looks tests up (TestGangScheduling, ...)
                                    /report.json             everything, for machines
                                    /report.html             for people, self-contained
                                    /whitepaper.md           whitepaper checklist V0.9 table

The artifacts follow the rules of cncf/k8s-ai-conformance scripts/validate.go (see validate.py): an
Implemented requirement links ``file://junit.xml#<Test>`` (the test validate.go maps the id to, else
``Test`` + the id in CamelCase) beside its evidence file, and its testcase passes; a requirement that is not
Implemented links its evidence file only, and its testcase never passes (skipped, or failed for a MUST).
No file is named ``results.json`` or ``e2e.log``: validate.go parses files of those names as ``go test``
output, which our rich JSON is not (hence report.json).

Nothing secret is ever written: results pass through `redact` (tokens, keys, certificates,
passwords, Authorization headers, JWTs) and the kubeconfig is never an input of the writers.
"""

from __future__ import absolute_import, division, print_function

import copy
import datetime
import html
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

try:
    import yaml
    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - modules check HAS_YAML
    HAS_YAML = False
    YAML_IMPORT_ERROR = str(exc)

try:
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import catalog, results, validate
except ImportError:  # pragma: no cover - direct use from a checkout
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import catalog  # type: ignore[no-redef]
    import results  # type: ignore[no-redef]
    import validate  # type: ignore[no-redef]

TOOL = "k8s_ai.conformance"
SCHEMA_VERSION = 1
PLATFORM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_BLOCK = 20000
OUTCOMES = ("passed", "failed", "error", "skipped")
REPORT_JSON = "report.json"  # not results.json: validate.go parses that name as `go test -json` output
JUNIT = "junit.xml"

# ---------------------------------------------------------------------------------------- redaction
_SECRET_KEY_RE = re.compile(
    r"(token|password|passwd|secret|authorization|bearer|client[-_]?key|client[-_]?certificate|"
    r"certificate[-_]?authority[-_]?data|private[-_]?key|api[-_]?key|credential|kubeconfig[-_]?content)",
    re.IGNORECASE)
_SAFE_KEYS = {"secretName", "secretRef", "tokenExpirationSeconds", "serviceAccountToken",
              "automountServiceAccountToken", "token_file"}
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_BEARER_RE = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_PEM_RE = re.compile(
    r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----.*?-----END [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----", re.DOTALL)
REDACTED = "<redacted>"


def redact(value, _key=None):
    """Deep copy of `value` with secrets replaced by <redacted>."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            skey = str(key)
            if skey not in _SAFE_KEYS and _SECRET_KEY_RE.search(skey) and isinstance(item, (str, bytes, int)) \
                    and item not in ("", None):
                out[key] = REDACTED
            elif skey == "data" and isinstance(item, dict) and str(value.get("kind", "")) == "Secret":
                out[key] = dict.fromkeys(item, REDACTED)
            else:
                out[key] = redact(item, skey)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        value = _PEM_RE.sub(REDACTED, value)
        value = _JWT_RE.sub(REDACTED, value)
        value = _BEARER_RE.sub(lambda m: m.group(1) + REDACTED, value)
        return value
    return value


# ---------------------------------------------------------------------------------- result model
def now_utc():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def not_verified(check, reason, summary=None):
    """The result recorded for a check that could not run (never reported as passed)."""
    return {
        "check": check,
        "status": "Not Implemented",
        "verified": False,
        "summary": "not verified: %s" % (summary or reason.splitlines()[0][:160] if reason else "unknown reason"),
        "notes": "Not verified: %s" % reason,
        "parts": [{"name": "check ran", "kind": "static", "required": True, "outcome": "error", "detail": reason}],
        "evidence": [],
        "duration_s": 0.0,
        "started": None,
    }


def normalize_result(check, result):
    """Defensive copy of a check module's result, holding to the contract of docs/architecture.md."""
    if not isinstance(result, dict):
        return not_verified(check, "the check module returned no result")
    out = copy.deepcopy(result)
    out["check"] = check
    problems = []
    if out.get("status") not in catalog.STATUSES:
        problems.append("invalid status %r" % (out.get("status"),))
        out["status"] = "Not Implemented"
        out["verified"] = False
    out["verified"] = bool(out.get("verified", False))
    parts = out.get("parts") if isinstance(out.get("parts"), list) else []
    clean_parts = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        part = dict(part)
        if part.get("outcome") not in OUTCOMES:
            part["outcome"] = "error"
        part.setdefault("kind", "static")
        part.setdefault("required", True)
        part.setdefault("name", "part")
        part.setdefault("detail", "")
        clean_parts.append(part)
    out["parts"] = clean_parts
    out["evidence"] = [e for e in out.get("evidence") or [] if isinstance(e, dict)]
    out["summary"] = str(out.get("summary") or "")
    out["notes"] = str(out.get("notes") or "")
    if out["status"] == "N/A" and not out["notes"].strip():
        out["notes"] = out.get("na_reason") or out["summary"] or "Not applicable (no reason given by the check)"
    try:
        out["duration_s"] = round(float(out.get("duration_s") or 0.0), 3)
    except (TypeError, ValueError):
        out["duration_s"] = 0.0
    if problems:
        out["verified"] = False
        out["notes"] = ("Result did not follow the contract (%s). " % "; ".join(problems)) + out["notes"]
    return out


def sanitize_platform(name):
    """Directory name for the platform; returns (name, warning or None)."""
    if name and PLATFORM_RE.match(str(name)):
        return str(name), None
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name or "")).strip("-._")[:100] or "my-platform"
    return slug, ("platform directory name %r is not a plain directory name; using %r" % (name, slug))


# ------------------------------------------------------------------------------------ the report
class Report:
    """Everything the writers need, computed once."""

    def __init__(self, version, platform, results, metadata=None, expected_checks=None, missing=None,
                 errors=None, warnings=None, server_version=None, template=None, include_whitepaper=True,
                 check_mode=False, run=None, na_rule="upstream"):
        if version not in catalog.OFFICIAL:
            raise catalog.CatalogError("checklist version %s does not exist; supported checklist versions: %s"
                                       % (version, ", ".join(catalog.supported_versions())))
        self.version = version
        self.platform = platform
        self.metadata = dict(metadata or {})
        self.errors = [str(e) for e in errors or []]
        self.warnings = [str(w) for w in warnings or []]
        self.server_version = server_version
        self.template = template
        self.include_whitepaper = include_whitepaper
        self.check_mode = check_mode
        self.run = dict(run or {})
        self.na_rule = na_rule if na_rule in validate.NA_RULES else "upstream"  # N/A on a MUST (validate.py)
        self.generated = now_utc()
        # Extensions (drift.attach): extra top-level keys of the results JSON, extra report.html sections.
        self.extra_data = {}
        self.html_sections = []
        by_check = {}
        for item in results or []:
            if isinstance(item, dict) and item.get("check"):
                by_check[item["check"]] = normalize_result(item["check"], item)
        expected = list(expected_checks or catalog.checks_for(version, include_whitepaper))
        missing = dict(missing or {})
        default_reason = ("the run stopped before this check: %s" % "; ".join(self.errors)) if self.errors \
            else "no result was recorded for this check"
        default_summary = "the run stopped on an input error (see the top of the report)" if self.errors else None
        for check in expected + [r["check"] for r in self.official_rows_raw()] + \
                ([w["check"] for w in catalog.whitepaper()] if include_whitepaper else []):
            if check not in by_check:
                if check in missing:
                    reason = missing[check]
                elif check not in expected:
                    reason = "check not selected for this run"
                else:
                    by_check[check] = not_verified(check, default_reason, default_summary)
                    continue
                by_check[check] = not_verified(check, reason)
        self.results = {k: redact(v) for k, v in by_check.items()}
        self.order = []
        for check in expected + list(by_check):
            if check not in self.order:
                self.order.append(check)

    # rows -------------------------------------------------------------------------------------
    def official_rows_raw(self):
        return catalog.checklist(self.version)

    def evidence_path(self, check):
        return "evidence/%s.md" % check

    def official_rows(self):
        rows = []
        for item in catalog.checklist(self.version):
            res = self.results[item["check"]]
            evidence = [self.evidence_path(item["check"])]
            if res["status"] == "Implemented":  # its testcase passes; nothing else ever links a passing test
                evidence.append("file://%s#%s" % (JUNIT, catalog.junit_test_name(item["id"])))
            rows.append(dict(item, status=res["status"], verified=res["verified"], summary=res["summary"],
                             notes=self.product_notes(res), evidence=evidence,
                             test=catalog.junit_test_name(item["id"])))
        return rows

    def whitepaper_rows(self):
        rows = []
        for item in catalog.whitepaper():
            res = self.results[item["check"]]
            status, verified, summary = res["status"], res["verified"], res["summary"]
            prefix = catalog.WHITEPAPER_PARTS.get(item["id"])
            if prefix and status != results.NOT_APPLICABLE:
                status, verified, summary = self.judged_on(res, prefix)
            rows.append(dict(item, status=status, verified=verified, summary=summary,
                             support=catalog.support_level(status), evidence=self.evidence_path(item["check"])))
        return rows

    @staticmethod
    def judged_on(res, prefix):
        """(status, verified, summary) of a check's parts named `prefix...` alone, each counted as required."""
        parts = [dict(p, required=True) for p in res["parts"] if p["name"].startswith(prefix)]
        if not parts:
            return results.NOT_IMPLEMENTED, res["verified"], "%s: no %s part ran (%s)" % (
                res["check"], prefix.rstrip(": "), res["summary"])
        status, verified = results.decide(parts)
        return status, verified, "%s, %s parts: %s (%d/%d passed)" % (
            res["check"], prefix.rstrip(": "), status, sum(p["outcome"] == results.PASSED for p in parts), len(parts))

    @staticmethod
    def product_notes(res):
        text = res["notes"].strip()
        summary = res["summary"].strip()
        if summary and summary.lower().rstrip(".") not in text.lower():
            text = ("%s. %s" % (summary.rstrip("."), text)).strip()
        if not res["verified"] and "not verified" not in text.lower():
            text = "Not verified (a part could not run). " + text
        return text

    def must_failures(self):
        return [r for r in self.official_rows() if r["level"] == catalog.MUST
                and r["status"] not in ("Implemented", "N/A")]

    def must_na(self):
        return [r for r in self.official_rows() if r["level"] == catalog.MUST and r["status"] == "N/A"]

    def counts(self):
        counts = dict.fromkeys(catalog.STATUSES, 0)
        not_verified_count = 0
        for row in self.official_rows():
            counts[row["status"]] += 1
            not_verified_count += 0 if row["verified"] else 1
        counts["not verified"] = not_verified_count
        return counts

    def verdict(self):
        if self.errors:
            return "not verified (the run stopped on an input error)"
        fails = self.must_failures()
        if fails:
            return "not conformant: %d MUST requirement(s) not Implemented" % len(fails)
        if self.must_na():
            if self.na_rule == "pending" and all(r["id"] in validate.CONDITIONAL_MUST for r in self.must_na()):
                return ("conformant with N/A MUST requirement(s) (accepted with notes by the pending upstream rule, "
                        "cncf/k8s-ai-conformance PR #146; validate.go on main today rejects them)")
            return "conformant with N/A MUST requirement(s) (validate.go on main today rejects N/A on a MUST)"
        return "conformant: every MUST requirement Implemented"

    def metadata_value(self, field):
        value = self.metadata.get(field)
        if value in (None, ""):
            optional = field in [f for f, required in catalog.METADATA_FIELDS if not required]
            return "" if optional else "[set verify_metadata.%s]" % field
        return str(value)

    def product_metadata(self):
        meta = {}
        for field, _required in catalog.METADATA_FIELDS:
            meta[field] = "v%s" % self.version if field == "kubernetesVersion" else self.metadata_value(field)
        return meta

    # PRODUCT.yaml --------------------------------------------------------------------------------
    def product(self):
        """The PRODUCT document, merged into the official template when one was given."""
        rows = {r["id"]: r for r in self.official_rows()}
        if self.template is not None:
            doc = copy.deepcopy(self.template)
            meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
            ours = self.product_metadata()
            for field, _required in catalog.METADATA_FIELDS:
                if field == "kubernetesVersion" or self.metadata.get(field) not in (None, "") or field not in meta:
                    meta[field] = ours[field]
            doc["metadata"] = meta
            spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
            seen = set()
            for section, reqs in spec.items():
                for req in reqs or []:
                    if isinstance(req, dict) and req.get("id") in rows:
                        row = rows[req["id"]]
                        req["status"] = row["status"]
                        req["evidence"] = list(row["evidence"])
                        req["notes"] = row["notes"]
                        seen.add(req["id"])
                    elif isinstance(req, dict):
                        self.warnings.append("template requirement %s/%s is not in the catalog of checklist %s; "
                                             "left as in the template" % (section, req.get("id"), self.version))
            for rid, row in rows.items():
                if rid not in seen:
                    spec.setdefault(row["section"], []).append(self.product_requirement(row))
                    self.warnings.append("template lacks requirement %s; added" % rid)
            doc["spec"] = spec
            return doc
        spec = {}
        for row in self.official_rows():
            spec.setdefault(row["section"], []).append(self.product_requirement(row))
        return {"metadata": self.product_metadata(), "spec": spec}

    @staticmethod
    def product_requirement(row):
        return {"id": row["id"], "description": row["description"], "level": row["level"],
                "status": row["status"], "evidence": list(row["evidence"]), "notes": row["notes"]}

    def product_yaml(self):
        source = "the official template %s" % self.template_path if self.template is not None \
            else "short descriptions in k8s_ai.conformance's own words (pass verify_checklist_template to " \
                 "merge into the official template)"
        header = ("# Kubernetes AI Conformance checklist v%s for %s, filled in by %s on %s.\n"
                  "# Status from behavioural and static checks on the live cluster; evidence files beside "
                  "this file.\n# Descriptions: %s.\n" % (self.version, self.platform, TOOL, self.generated, source))
        return header + yaml.dump(self.product(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)

    template_path = None

    # evidence ------------------------------------------------------------------------------------
    def evidence_md(self, check):
        res = self.results[check]
        reqs = []
        for item in catalog.checklist(self.version):
            if item["check"] == check:
                reqs.append("`%s` (%s, %s, checklist v%s)" % (item["id"], item["level"], item["section"], self.version))
        for item in catalog.whitepaper():
            if item["check"] == check:
                reqs.append("`%s` (%s, whitepaper %s)" % (item["id"], item["level"], catalog.WHITEPAPER_VERSION))
        lines = [
            "# Evidence: %s" % check, "",
            "%s." % catalog.CHECKS.get(check, check), "",
            "| | |", "|---|---|",
            "| Requirements | %s |" % (_md_cell(", ".join(reqs)) or "none in the selected checklists"),
            "| Status | **%s** |" % res["status"],
            "| Verified | %s |" % ("yes" if res["verified"] else "no (a part could not run)"),
            "| Summary | %s |" % _md_cell(res["summary"]),
            "| Started | %s |" % (res.get("started") or "-"),
            "| Duration | %.2f s |" % res["duration_s"],
            "| Platform | %s |" % _md_cell(self.platform),
            "| Server version | %s |" % _md_cell(self.server_version or "unknown"),
            "| Generated | %s by %s%s |" % (self.generated, TOOL, " (check mode: static parts only)"
                                            if self.check_mode else ""),
            "",
        ]
        if res["notes"]:
            lines += ["## Notes", "", res["notes"], ""]
        lines += ["## Parts", ""]
        if res["parts"]:
            lines += ["| # | Kind | Required | Outcome | Part | Detail |", "|---|---|---|---|---|---|"]
            for i, part in enumerate(res["parts"], 1):
                lines.append("| %d | %s | %s | %s | %s | %s |" % (
                    i, part["kind"], "yes" if part["required"] else "no", part["outcome"],
                    _md_cell(part["name"]), _md_cell(part.get("detail", ""))))
        else:
            lines.append("No parts were recorded.")
        lines += ["", "## What was run and what came back", ""]
        if not res["evidence"]:
            lines.append("Nothing was run.")
        for i, ev in enumerate(res["evidence"], 1):
            duration = ev.get("duration_s")
            lines += ["### %d. %s%s" % (i, ev.get("title") or "step",
                                        (" (%.2f s)" % float(duration)) if isinstance(duration, (int, float)) else ""),
                      ""]
            if ev.get("action"):
                lines += ["Action: `%s`" % str(ev["action"]).replace("`", "'"), ""]
            for key in ("request", "response"):
                if ev.get(key) not in (None, "", {}, []):
                    lines += ["%s:" % key.capitalize(), "", "```yaml", _block(ev[key]), "```", ""]
            for key in sorted(set(ev) - {"title", "action", "request", "response", "duration_s"}):
                lines += ["%s: %s" % (key, _md_cell(_inline(ev[key]))), ""]
        return "\n".join(lines).rstrip() + "\n"

    # junit ----------------------------------------------------------------------------------------
    def junit_xml(self):
        """A testcase per requirement, named as validate.go looks tests up (catalog.junit_test_name).

        Implemented passes (validate.go: linked tests must pass); N/A and a SHOULD that is not Implemented are
        skipped (validate.go: any failing testcase in a linked artifact is an error, and a SHOULD need not be
        Implemented); a MUST that is not Implemented fails (error when it could not be verified).
        """
        rows = self.official_rows()
        suites = ET.Element("testsuites", name="k8s-ai-conformance")
        suite = ET.SubElement(suites, "testsuite", timestamp=self.generated,
                              name="Kubernetes AI Conformance v%s (%s)" % (self.version, self.platform))
        totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
        for row in rows:
            res = self.results[row["check"]]
            totals["tests"] += 1
            totals["time"] += res["duration_s"]
            case = ET.SubElement(suite, "testcase", name=row["test"], time="%.3f" % res["duration_s"],
                                 classname="%s.v%s.%s" % (TOOL, self.version, row["section"]))
            verified = "" if res["verified"] else " (not verified: a part could not run)"
            message = "%s%s: %s" % (row["status"], verified, res["summary"])
            body = "requirement %s [%s] of checklist v%s, check %s (%s)\n%s\n\nevidence: %s" % (
                row["id"], row["level"], self.version, row["check"], TOOL, row["notes"], row["evidence"][0])
            if row["status"] == "Implemented":
                pass
            elif row["status"] == "N/A":
                totals["skipped"] += 1
                ET.SubElement(case, "skipped", message="N/A: %s" % row["notes"])
            elif row["level"] == catalog.MUST and not res["verified"]:
                totals["errors"] += 1
                ET.SubElement(case, "error", message="not verified: %s" % res["summary"],
                              type="NotVerified").text = body
            elif row["level"] == catalog.MUST:
                totals["failures"] += 1
                ET.SubElement(case, "failure", message=message, type=row["status"].replace(" ", "")).text = body
            else:
                totals["skipped"] += 1
                ET.SubElement(case, "skipped", message="SHOULD requirement %s" % message)
            ET.SubElement(case, "system-out").text = "%s\n%s" % (message, body)
        for el in (suites, suite):
            for key, value in totals.items():
                el.set(key, ("%.3f" % value) if key == "time" else str(value))
        if hasattr(ET, "indent"):
            ET.indent(suites)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"

    # whitepaper ------------------------------------------------------------------------------------
    def whitepaper_md(self):
        vendor = self.metadata.get("vendorName") or "-"
        product = " ".join(str(self.metadata.get(k) or "") for k in ("platformName", "platformVersion")).strip() \
            or self.platform
        lines = [
            "# Kubernetes AI Conformance self-assessment checklist %s" % catalog.WHITEPAPER_VERSION, "",
            "**Vendor:** %s  " % _md_cell(vendor),
            "**Product/Version:** %s  " % _md_cell(product),
            "**Assessment Date:** %s  " % self.generated[:10],
            "**Source of the ids:** %s  " % catalog.WHITEPAPER_SOURCE,
            "**Assessed by:** %s on the live cluster (server %s)%s" % (
                TOOL, self.server_version or "unknown", "; check mode, static parts only" if self.check_mode else ""),
            "",
            "| Domain | ID | Requirement | Support Level (No/Partial/Full) | Notes/Implementation Details |",
            "| :--- | :--- | :--- | :--- | :--- |",
        ]
        last_domain = None
        for row in self.whitepaper_rows():
            domain = "**%s**" % row["domain"] if row["domain"] != last_domain else ""
            last_domain = row["domain"]
            note = "check `%s`: %s%s — %s. Evidence: [%s](%s)" % (
                row["check"], row["status"], "" if row["verified"] else " (not verified)",
                row["summary"].rstrip(".") or "-", row["evidence"], row["evidence"])
            if row["status"] == "N/A":
                note = "N/A: %s. %s" % (self.results[row["check"]]["notes"].rstrip("."), note)
            lines.append("| %s | %s | **[%s]** %s | %s | %s |" % (
                domain, row["id"], row["level"], _md_cell(row["requirement"]), row["support"], _md_cell(note)))
        lines += ["", "Support level: Full = Implemented, Partial = Partially Implemented, No = Not Implemented, "
                      "not verified, or not applicable (the notes say which).", "",
                  "## How whitepaper items map onto checks", ""]
        for row in self.whitepaper_rows():
            if row["mapping_note"]:
                lines.append("- %s: %s" % (row["id"], row["mapping_note"]))
        return "\n".join(lines) + "\n"

    # report.json -------------------------------------------------------------------------------------
    def data(self, files=None, validation=None):
        return redact({
            "schema_version": SCHEMA_VERSION,
            "tool": TOOL,
            "generated": self.generated,
            "checklist": {"version": self.version,
                          "descriptions": "template" if self.template is not None else "catalog",
                          "template": self.template_path},
            "server_version": self.server_version,
            "platform": self.platform,
            "metadata": self.product_metadata(),
            "check_mode": self.check_mode,
            "run": self.run,
            "verdict": self.verdict(),
            "counts": self.counts(),
            "errors": self.errors,
            "warnings": self.warnings,
            "must_failures": [r["id"] for r in self.must_failures()],
            "must_na": [r["id"] for r in self.must_na()],
            "requirements": self.official_rows(),
            "whitepaper": self.whitepaper_rows() if self.include_whitepaper else [],
            "checks": [self.results[c] for c in self.order],
            "files": files or [],
            "validation": validation,
            **self.extra_data,
        })

    # report.html ------------------------------------------------------------------------------------
    def html(self, validation=None):
        esc = html.escape
        rows = self.official_rows()
        counts = self.counts()
        out = [
            "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            "<title>AI conformance v%s — %s</title>" % (esc(self.version), esc(self.platform)),
            "<style>%s</style></head><body>" % _CSS,
            "<header><h1>Kubernetes AI Conformance v%s</h1>" % esc(self.version),
            '<p class="sub">%s · server %s · generated %s by %s%s</p>' % (
                esc(self.platform), esc(self.server_version or "unknown"), esc(self.generated), TOOL,
                " · check mode (static parts only)" if self.check_mode else ""),
            '<p class="verdict %s">%s</p></header>' % (
                "bad" if (self.errors or self.must_failures()) else "good", esc(self.verdict())),
        ]
        if self.errors:
            out.append('<section class="banner error"><h2>The run stopped on an input error</h2><ul>%s</ul>'
                       "<p>Checks that did not run are marked not verified.</p></section>"
                       % "".join("<li>%s</li>" % esc(e) for e in self.errors))
        if self.warnings:
            out.append('<section class="banner warn"><h2>Warnings</h2><ul>%s</ul></section>'
                       % "".join("<li>%s</li>" % esc(w) for w in self.warnings))
        out.append('<section><h2>Summary</h2><p class="counts">%s</p>' % " ".join(
            # counts are ints; pylint infers dict.fromkeys(..., 0) values as None
            # pylint: disable-next=bad-string-format-type
            '<span class="pill %s">%s: %d</span>' % (_status_class(k), esc(k), v) for k, v in counts.items()))
        out.append("<table><thead><tr><th>Section</th><th>Requirement</th><th>Level</th><th>Status</th>"
                   "<th>Summary</th><th>Time</th></tr></thead><tbody>")
        for row in rows:
            res = self.results[row["check"]]
            out.append('<tr><td>%s</td><td><a href="#check-%s">%s</a></td><td>%s</td>'
                       '<td><span class="pill %s">%s</span>%s</td><td>%s</td><td class="t">%.2f s</td></tr>' % (
                           esc(row["section"]), esc(row["check"]), esc(row["id"]), esc(row["level"]),
                           _status_class(row["status"]), esc(row["status"]),
                           "" if row["verified"] else ' <span class="pill nv">not verified</span>',
                           esc(row["summary"]), res["duration_s"]))
        out.append("</tbody></table></section>")
        out.extend(self.html_sections)
        if self.include_whitepaper:
            out.append("<section><h2>Whitepaper checklist %s</h2><table><thead><tr><th>Domain</th><th>ID</th>"
                       "<th>Requirement</th><th>Support</th><th>Check</th></tr></thead><tbody>"
                       % esc(catalog.WHITEPAPER_VERSION))
            for row in self.whitepaper_rows():
                out.append('<tr><td>%s</td><td>%s</td><td>[%s] %s</td><td><span class="pill %s">%s</span></td>'
                           '<td><a href="#check-%s">%s</a></td></tr>' % (
                               esc(row["domain"]), esc(row["id"]), esc(row["level"]), esc(row["requirement"]),
                               {"Full": "ok", "Partial": "part"}.get(row["support"], "no"), esc(row["support"]),
                               esc(row["check"]), esc(row["check"])))
            out.append("</tbody></table></section>")
        out.append("<section><h2>Details per check</h2>")
        for check in self.order:
            res = self.results[check]
            ids = catalog.requirement_ids(check, self.version, self.include_whitepaper)
            out.append('<details id="check-%s"%s><summary><span class="pill %s">%s</span>%s <b>%s</b> %s '
                       '<span class="muted">%s · %.1f s</span></summary>' % (
                           esc(check), " open" if res["status"] != "Implemented" and ids else "",
                           _status_class(res["status"]), esc(res["status"]),
                           "" if res["verified"] else ' <span class="pill nv">not verified</span>',
                           esc(check), esc(res["summary"]), esc(", ".join(ids) or "not in the checklists"),
                           res["duration_s"]))
            if res["notes"]:
                out.append('<p class="notes">%s</p>' % esc(res["notes"]))
            if res["parts"]:
                out.append("<table class=\"parts\"><thead><tr><th>Part</th><th>Kind</th><th>Required</th>"
                           "<th>Outcome</th><th>Detail</th></tr></thead><tbody>")
                for part in res["parts"]:
                    out.append('<tr><td>%s</td><td>%s</td><td>%s</td><td><span class="pill %s">%s</span></td>'
                               "<td>%s</td></tr>" % (
                                   esc(str(part["name"])), esc(str(part["kind"])), "yes" if part["required"] else "no",
                                   {"passed": "ok", "failed": "no", "error": "nv"}.get(part["outcome"], "na"),
                                   esc(part["outcome"]), esc(str(part.get("detail", "")))))
                out.append("</tbody></table>")
            for i, ev in enumerate(res["evidence"], 1):
                duration = ev.get("duration_s")
                out.append('<div class="ev"><h4>%d. %s <span class="muted">%s</span></h4>' % (
                    i, esc(str(ev.get("title") or "step")),
                    ("%.2f s" % float(duration)) if isinstance(duration, (int, float)) else ""))
                if ev.get("action"):
                    out.append("<p><code>%s</code></p>" % esc(str(ev["action"])))
                for key in ("request", "response"):
                    if ev.get(key) not in (None, "", {}, []):
                        out.append("<p class=\"muted\">%s</p><pre>%s</pre>" % (key, esc(_block(ev[key]))))
                out.append("</div>")
            out.append('<p class="muted">Evidence file: <a href="%s">%s</a></p></details>' % (
                esc(self.evidence_path(check)), esc(self.evidence_path(check))))
        out.append("</section>")
        if validation is not None:
            out.append('<section><h2>PRODUCT.yaml validation (rules of validate.go)</h2><p class="pill %s">%s</p>'
                       '<p class="muted">Rules applied: %s</p><ul>%s</ul></section>'
                       % ("ok" if validation["valid"] else "no", "valid" if validation["valid"] else "invalid",
                          esc(validation.get("rule", "")),
                          "".join("<li>%s: %s</li>" % (kind, esc(msg)) for kind in ("errors", "warnings", "info")
                                  for msg in validation[kind])))
        out.append("<footer>%s · PRODUCT.yaml · junit.xml · report.json · whitepaper.md beside this page</footer>"
                   "</body></html>" % TOOL)
        return "\n".join(out) + "\n"

    # write -------------------------------------------------------------------------------------------
    def write(self, report_dir):
        """Write every file; returns a dict: path, files, validation, verdict, must_failures, counts."""
        target = os.path.join(report_dir, "v%s" % self.version, self.platform)
        os.makedirs(os.path.join(target, "evidence"), exist_ok=True)
        files = []

        def put(rel, text):
            path = os.path.join(target, rel)
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, path)
            if rel not in files:
                files.append(rel)

        for check in self.order:
            put(self.evidence_path(check), self.evidence_md(check))
        put(JUNIT, self.junit_xml())
        put("PRODUCT.yaml", self.product_yaml())
        _remove_stale_report_json(target)
        validation = validate.validate_file(os.path.join(target, "PRODUCT.yaml"), na_rule=self.na_rule)
        if self.include_whitepaper:
            put("whitepaper.md", self.whitepaper_md())
        put("report.html", self.html(validation))
        files.append(REPORT_JSON)
        put(REPORT_JSON, json.dumps(self.data(files, validation), indent=2, sort_keys=False, default=str) + "\n")
        return {"path": target, "files": files, "validation": validation, "verdict": self.verdict(),
                "must_failures": [r["id"] for r in self.must_failures()], "must_na": [r["id"] for r in self.must_na()],
                "counts": self.counts()}


def _remove_stale_report_json(target):
    """An older run wrote its rich JSON as results.json; validate.go would parse that name as go test -json."""
    stale = os.path.join(target, "results.json")
    try:
        with open(stale, "rb") as handle:
            doc = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(doc, dict) and doc.get("tool") == TOOL:
        os.remove(stale)


def load_template(path, version):
    """Load an official checklist template for merging; raises ValueError naming the file."""
    if not os.path.isfile(path):
        raise ValueError("checklist template %s does not exist or is not a file" % path)
    try:
        with open(path, "rb") as handle:
            doc = yaml.safe_load(handle)
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        raise ValueError("checklist template %s is not valid YAML: %s"
                         % (path, str(exc).replace("\n", " "))) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict) or not isinstance(doc.get("metadata"), dict):
        raise ValueError("checklist template %s is not a checklist (needs metadata and spec mappings)" % path)
    kver = doc["metadata"].get("kubernetesVersion")
    try:
        tver = catalog.parse_minor(kver, "metadata.kubernetesVersion of %s" % path)
    except catalog.CatalogError as exc:
        raise ValueError(str(exc)) from None
    if tver != version:
        raise ValueError("checklist template %s is for v%s but the checklist in use is v%s" % (path, tver, version))
    return doc


def build_report(version, platform, results, template_path=None, **kwargs):
    template = load_template(template_path, version) if template_path else None
    report = Report(version, platform, results, template=template, **kwargs)
    report.template_path = template_path
    return report


# ----------------------------------------------------------------------------------------- helpers
def _str_presenter(dumper, data):
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


if HAS_YAML:
    class _Dumper(yaml.SafeDumper):
        pass

    _Dumper.add_representer(str, _str_presenter)


def _md_cell(text):
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _inline(value):
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _block(value):
    if isinstance(value, str):
        text = value
    else:
        try:
            text = yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120).rstrip()
        except yaml.YAMLError:
            text = json.dumps(value, default=str, indent=2)
    text = text.replace("```", "'''")
    if len(text) > MAX_BLOCK:
        text = text[:MAX_BLOCK] + "\n... (%d more characters trimmed)" % (len(text) - MAX_BLOCK)
    return text


def _status_class(status):
    return {"Implemented": "ok", "Partially Implemented": "part", "Not Implemented": "no", "N/A": "na",
            "not verified": "nv"}.get(status, "na")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1.5rem;
color:#1f2328;background:#fff;line-height:1.45}
header h1{margin:0 0 .2rem}.sub,.muted{color:#59636e}.muted{font-size:.9em}
.verdict{font-weight:600;padding:.6rem .9rem;border-radius:6px;display:inline-block}
.verdict.good{background:#dafbe1;color:#116329}.verdict.bad{background:#ffebe9;color:#a40e26}
.banner{border-radius:6px;padding:.2rem 1rem;margin:1rem 0}.banner.error{background:#ffebe9;border:1px solid #ff8182}
.banner.warn{background:#fff8c5;border:1px solid #d4a72c}
table{border-collapse:collapse;width:100%;margin:.6rem 0 1rem;font-size:.93em}
th,td{border:1px solid #d1d9e0;padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#f6f8fa}
.pill{display:inline-block;border-radius:1em;padding:.05rem .6rem;font-size:.85em;font-weight:600;white-space:nowrap}
.ok{background:#dafbe1;color:#116329}.part{background:#fff8c5;color:#7d4e00}.no{background:#ffebe9;color:#a40e26}
.na{background:#eaeef2;color:#59636e}.nv{background:#fbefff;color:#8250df}
details{border:1px solid #d1d9e0;border-radius:6px;margin:.5rem 0;padding:.4rem .8rem}
summary{cursor:pointer}pre{background:#f6f8fa;padding:.6rem;overflow:auto;max-height:24rem;font-size:.85em}
.ev{border-left:3px solid #d1d9e0;padding-left:.8rem;margin:.6rem 0}.ev h4{margin:.3rem 0}
.notes{white-space:pre-line}td.t{white-space:nowrap}
footer{margin-top:2rem;color:#59636e;font-size:.85em}
"""
