# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0
"""Result model and status rules (docs/architecture.md, "Result of a check").

A check is BEHAVIOURAL unless its verify() declares it static-only (Check.static_only(reason)): a
requirement about behaviour is proven by its positive case (it works when it should) and, where one
exists, its negative case (it is refused when it should be, by the mechanism under test).

Status rules, behavioural checks (the default):
- Implemented only when every required part passed AND at least one required positive part passed:
  static parts alone (APIs served, CRDs Established, components Available) never make it Implemented.
- Partially Implemented when some required parts passed and at least one required behavioural part
  (positive or negative) passed; when every behavioural part failed or did not run, the check is Not
  Implemented however many static parts passed (e.g. Kueue CRDs Established but its controller stopped).
- Check mode skips the behavioural parts, so a behavioural check is then Not Implemented with
  verified=false and a note that only the static parts ran: behaviour that was not probed is not claimed.
Status rules, static-only checks (requirement met by configuration/presence; the reason is reported):
- Implemented when every required part passed, Partially Implemented when some did; they run fully
  in check mode, so check mode does not make them unverified.
Both:
- N/A only with a reason (na_reason), when the requirement's context does not apply.
- A part that could not run (outcome error) never counts as passed: a required error makes the check
  Not Implemented, any error makes verified false. A required skipped part is not passed either.
- Optional parts (required=False) never change the status; their errors still make verified false.
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


class Interrupted(BaseException):
    """The run was interrupted (SIGINT/SIGTERM): the check stops where it waits and removes its probe. A
    BaseException so that no part swallows it as an outcome."""


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


BEHAVIOURAL_KINDS = ("positive", "negative")


def decide(parts, na_reason=None, check_mode=False, static_only=False):
    """Return (status, verified) for a list of parts (rules in the module docstring)."""
    errors = [p for p in parts if p["outcome"] == ERROR]
    if na_reason:
        return NOT_APPLICABLE, not errors
    required = [p for p in parts if p["required"]]
    if static_only:
        verified = not errors and bool(required)
        counted = required
    else:
        verified = not errors and not check_mode and bool(required)
        counted = [p for p in required if not (p["outcome"] == SKIPPED and check_mode)]
    if not counted or any(p["outcome"] == ERROR for p in counted):
        return NOT_IMPLEMENTED, False
    passed = [p for p in required if p["outcome"] == PASSED]
    if static_only:
        if len(passed) == len(required):
            return IMPLEMENTED, verified
        return (PARTIAL if passed else NOT_IMPLEMENTED), verified
    behaviour = [p for p in passed if p["kind"] in BEHAVIOURAL_KINDS]
    if check_mode or not behaviour:  # behaviour not observed: static parts never carry the verdict
        return NOT_IMPLEMENTED, verified
    if len(passed) == len(required) and any(p["kind"] == "positive" for p in behaviour):
        return IMPLEMENTED, verified
    return PARTIAL, verified


def behaviour_observed(parts):
    """True when a required positive or negative part passed."""
    return any(p["required"] and p["kind"] in BEHAVIOURAL_KINDS and p["outcome"] == PASSED for p in parts)


def default_notes(parts, status, na_reason=None, check_mode=False, static_only=None):
    """The why, for PRODUCT.yaml notes: N/A reason, failed and not-run parts, unobserved behaviour."""
    lines = []
    if na_reason:
        lines.append("N/A: %s" % na_reason)
    for part in parts:
        if part["outcome"] == FAILED:
            lines.append("%s failed: %s" % (part["name"], part["detail"]))
        elif part["outcome"] == ERROR:
            lines.append("could not run %s: %s" % (part["name"], part["detail"]))
        elif part["outcome"] == SKIPPED and part["required"] and not check_mode and not na_reason:
            lines.append("not run %s: %s" % (part["name"], part["detail"]))
    if static_only:
        lines.append("static-only requirement: %s" % static_only)
    elif check_mode and not na_reason:
        lines.append("check mode: only the static parts ran; the behaviour was not probed, so the requirement is "
                     "not claimed (Not Implemented, not verified)")
    elif not na_reason and not behaviour_observed(parts) and any(
            p["required"] and p["kind"] == "static" and p["outcome"] == PASSED for p in parts):
        lines.append("behaviour not observed: no required positive or negative part passed, and static parts "
                     "alone never make a behavioural requirement Implemented")
    if status == IMPLEMENTED and len(lines) == (1 if static_only else 0):
        lines.append("; ".join("%s: %s" % (p["name"], p["detail"]) for p in parts if p["detail"]))
    return "\n".join(line for line in lines if line)


def build_result(check, parts, evidence, started, duration_s, na_reason=None, check_mode=False,
                 notes=None, api_requests=None, static_only=None):
    """The result dict (docs/architecture.md). static_only: the reason a check is static-only, else None."""
    status, verified = decide(parts, na_reason, check_mode, static_only=bool(static_only))
    passed = sum(1 for p in parts if p["outcome"] == PASSED)
    counted = sum(1 for p in parts if p["outcome"] != SKIPPED)
    summary = "%s: %s (%d/%d parts passed%s)" % (
        check, status, passed, counted, "" if verified else ", not fully verified")
    if na_reason:
        summary = "%s: N/A (%s)" % (check, na_reason)
    if check_mode and not static_only and not na_reason:
        summary = "%s: %s (check mode: %d/%d static parts passed, behaviour not probed)" % (
            check, status, passed, counted)
    extra = default_notes(parts, status, na_reason, check_mode, static_only)
    result = {
        "check": check,
        "status": status,
        "verified": verified,
        "summary": summary,
        "notes": "\n".join(x for x in (notes, extra) if x),
        "behavioural": not static_only,
        "parts": parts,
        "evidence": evidence,
        "duration_s": round(duration_s, 3),
        "started": started,
    }
    if na_reason:
        result["na_reason"] = na_reason
    if static_only:
        result["static_only"] = static_only
    if api_requests is not None:
        result["api_requests"] = api_requests
    return result
