# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0
"""Result model and status rules (docs/architecture.md, "Result of a check").

Status rules:
- N/A only with a reason (na_reason), when the requirement's context does not apply.
- Implemented only when every required part passed.
- Partially Implemented when some required parts passed and others failed.
- Not Implemented when no required part passed, or when a required part could not run
  (outcome error): an error never counts as passed and makes verified false.
- Parts skipped because of check mode are left out of the verdict; verified is then false.
"""

from __future__ import absolute_import, division, print_function

IMPLEMENTED = "Implemented"
PARTIAL = "Partially Implemented"
NOT_IMPLEMENTED = "Not Implemented"
NOT_APPLICABLE = "N/A"
STATUSES = (IMPLEMENTED, PARTIAL, NOT_IMPLEMENTED, NOT_APPLICABLE)

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
OUTCOMES = (PASSED, FAILED, ERROR, SKIPPED)
KINDS = ("static", "positive", "negative")


class PartFailed(Exception):
    """Raised inside a part: the capability was observed NOT to behave as required (outcome failed)."""


class CannotRun(Exception):
    """Raised inside a part: the part could not run here (e.g. no free device to probe with); outcome error."""


class PartSkipped(Exception):
    """Raised inside a part: deliberately not run (e.g. an opt-in probe); a required skipped part is not passed."""


class NotApplicable(Exception):
    """Raised inside a part: the requirement's context does not apply here (status N/A, with reason)."""


def make_part(name, kind, outcome, detail="", required=True):
    if kind not in KINDS:
        raise ValueError("part kind must be one of %s, got %r" % (KINDS, kind))
    if outcome not in OUTCOMES:
        raise ValueError("part outcome must be one of %s, got %r" % (OUTCOMES, outcome))
    return {"name": name, "kind": kind, "required": bool(required), "outcome": outcome, "detail": detail or ""}


def decide(parts, na_reason=None, check_mode=False):
    """Return (status, verified) for a list of parts."""
    if na_reason:
        errors = [p for p in parts if p["outcome"] == ERROR]
        return NOT_APPLICABLE, not errors
    required = [p for p in parts if p["required"]]
    counted = [p for p in required if not (p["outcome"] == SKIPPED and check_mode)]
    errors = [p for p in parts if p["outcome"] == ERROR]
    verified = not errors and not check_mode and bool(required)
    if not counted:
        return NOT_IMPLEMENTED, False
    if any(p["outcome"] == ERROR for p in counted):
        return NOT_IMPLEMENTED, False
    passed = [p for p in counted if p["outcome"] == PASSED]
    if len(passed) == len(counted):
        return IMPLEMENTED, verified
    if passed:
        return PARTIAL, verified
    return NOT_IMPLEMENTED, verified


def default_notes(parts, status, na_reason=None, check_mode=False):
    """The why, for PRODUCT.yaml notes: N/A reason, failed and not-run parts."""
    lines = []
    if na_reason:
        lines.append("N/A: %s" % na_reason)
    for part in parts:
        if part["outcome"] == FAILED:
            lines.append("%s failed: %s" % (part["name"], part["detail"]))
        elif part["outcome"] == ERROR:
            lines.append("could not run %s: %s" % (part["name"], part["detail"]))
    if check_mode:
        lines.append("check mode: only the static part ran; behaviour was not verified")
    if status == IMPLEMENTED and not lines:
        lines.append("; ".join("%s: %s" % (p["name"], p["detail"]) for p in parts if p["detail"]))
    return "\n".join(line for line in lines if line)


def build_result(check, parts, evidence, started, duration_s, na_reason=None, check_mode=False,
                 notes=None, api_requests=None):
    status, verified = decide(parts, na_reason, check_mode)
    passed = sum(1 for p in parts if p["outcome"] == PASSED)
    counted = sum(1 for p in parts if p["outcome"] != SKIPPED)
    summary = "%s: %s (%d/%d parts passed%s)" % (
        check, status, passed, counted, "" if verified else ", not fully verified")
    if na_reason:
        summary = "%s: N/A (%s)" % (check, na_reason)
    extra = default_notes(parts, status, na_reason, check_mode)
    result = {
        "check": check,
        "status": status,
        "verified": verified,
        "summary": summary,
        "notes": "\n".join(x for x in (notes, extra) if x),
        "parts": parts,
        "evidence": evidence,
        "duration_s": round(duration_s, 3),
        "started": started,
    }
    if na_reason:
        result["na_reason"] = na_reason
    if api_requests is not None:
        result["api_requests"] = api_requests
    return result
