#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: conformance_report
short_description: Plan a Kubernetes AI conformance run and write its report
description:
  - "With O(mode=plan): check the inputs of a verification run and choose the checklist. Reads the kubeconfig
    (path or content) and context, asks the API server for its version and for the caller's permissions
    (SelfSubjectAccessReview), selects the checklist version (the pinned one, else the server's minor), checks the
    metadata, the platform name, the optional official template and the list of checks. Writes nothing. Problems
    are returned in RV(errors), each naming the input, and do not fail the module, so that the caller can still
    write a report; RV(plan) always holds a usable checklist version (a fallback when none could be chosen)."
  - "With O(mode=write): write the report of a run to O(report_dir)/v<minor>/<platform>/ (the layout of a
    cncf/k8s-ai-conformance submission): C(PRODUCT.yaml) in the official format, C(evidence/<check>.md) per check,
    C(junit.xml), C(report.json), C(report.html) and C(whitepaper.md). Checks without a result are recorded as not
    verified (never as passed). Secrets (tokens, keys, certificates, passwords) are redacted from everything
    written; the kubeconfig is never written."
  - PRODUCT.yaml descriptions are short texts of our own unless O(template) points at an official checklist
    template, in which case the results are merged into it, keeping its descriptions.
  - "The artifacts follow the rules of cncf/k8s-ai-conformance C(scripts/validate.go): C(junit.xml) has one
    testcase per requirement, named as validate.go looks tests up (C(TestSecureAcceleratorAccess),
    C(TestGangScheduling), C(TestAcceleratorClusterAutoscaling), else C(Test) + the id in CamelCase); an Implemented
    requirement links C(file://junit.xml#<Test>) beside its evidence file and its testcase passes; a requirement
    that is not Implemented never links a passing test. The rich JSON is C(report.json), not C(results.json) (a
    name validate.go parses as C(go test -json))."
  - The written PRODUCT.yaml is validated with validate.go's rules, offline (see
    M(k8s_ai.conformance.conformance_validate)); the findings are returned in RV(validation).
version_added: 0.1.0
author: k8s_ai.conformance developers (@k8s-ai-conformance)
options:
  mode:
    description: V(plan) checks the inputs and chooses the checklist; V(write) writes the report.
    type: str
    choices: [plan, write]
    default: write
  kubeconfig:
    description:
      - Path of a kubeconfig file, or its content (YAML string or dict). Only used with O(mode=plan); never written.
      - Default - C($KUBECONFIG), then C(~/.kube/config).
    type: raw
  context:
    description: Kubeconfig context. Default - the current context.
    type: str
  validate_certs:
    description: Verify the API server's TLS certificate.
    type: bool
    default: true
  request_timeout:
    description: Seconds to wait for each API request of the plan.
    type: int
    default: 15
  connect:
    description:
      - With O(mode=plan), contact the API server. V(false) plans offline; then O(server_version) or
        O(checklist_version) must say which checklist to use.
    type: bool
    default: true
  checklist_version:
    description:
      - Checklist version to use (V(1.35), V(v1.35)), pinned. Empty - the API server's minor version.
      - With O(mode=write), the version whose checklist is written (normally RV(plan.version)).
    type: str
    default: ""
  server_version:
    description: Kubernetes version of the API server (V(v1.35.4)); found by O(mode=plan) when it connects.
    type: str
  checks:
    description:
      - Checks to run (check module names). Empty - every check the checklist and the whitepaper profile need.
    type: list
    elements: str
    default: []
  include_whitepaper:
    description: Include the whitepaper checklist V0.9 (its checks, and C(whitepaper.md)).
    type: bool
    default: true
  template:
    description:
      - Official checklist template (C(AIConformance-1.35.yaml)) to merge the results into, keeping its
        descriptions. It must be for the checklist version in use.
    type: path
  metadata:
    description:
      - PRODUCT.yaml metadata - C(platformName), C(platformVersion), C(vendorName), C(websiteUrl), C(repoUrl),
        C(documentationUrl), C(productLogoUrl), C(description), C(contactEmailAddress), C(k8sConformanceUrl).
        C(kubernetesVersion) is set from the checklist. Missing fields are written as C([set verify_metadata.<field>])
        placeholders, which the validator reports.
    type: raw
    default: {}
  platform:
    description:
      - Directory name of the platform in the report (C(v1.35/<platform>/)). Default - derived from
        C(metadata.platformName), else C(my-platform).
    type: str
  report_dir:
    description: Root directory of the report.
    type: path
    default: ai-conformance-report
  results:
    description: With O(mode=write), the C(result) of every check that ran (docs/architecture.md schema).
    type: list
    elements: raw
    default: []
  missing:
    description: With O(mode=write), check name -> reason, for checks that did not run (e.g. module not available).
    type: dict
    default: {}
  errors:
    description: With O(mode=write), input errors that stopped the run; shown at the top of the report.
    type: list
    elements: str
    default: []
  warnings:
    description: With O(mode=write), warnings to show in the report.
    type: list
    elements: str
    default: []
  check_mode_run:
    description: With O(mode=write), the checks ran in check mode (static parts only); said in the report.
    type: bool
    default: false
  run:
    description: With O(mode=write), free-form facts about the run (run id, durations) kept in C(report.json).
    type: dict
    default: {}
  na_rule:
    description:
      - "With O(mode=write), the rule for N/A on a MUST used to validate the written PRODUCT.yaml - V(upstream)
        (validate.go on main today - rejected) or V(pending) (cncf/k8s-ai-conformance PR #146 - C(cluster_autoscaling)
        may be N/A with notes). The report says which rule applied."
    type: str
    choices: [upstream, pending]
    default: upstream
  previous_report:
    description:
      - A previous report to compare with (drift) - its JSON file, its folder (C(<dir>/v<minor>/<platform>)), or the
        report root above it (with O(cluster), also C(<root>/<cluster>)). It is read before anything is written, so
        it may be the folder that this run overwrites.
      - With O(mode=plan), a previous report that exists but cannot be read is an input error; a path that does not
        exist or a folder that holds no report yet is a warning (a first run has no baseline).
      - With O(mode=write), regressions and improvements per requirement go into the results JSON (C(drift)),
        C(report.html) and RV(drift_lines).
    type: path
  metrics_file:
    description:
      - With O(mode=write), also write the report's Prometheus metrics (text format) to this file, e.g. for the
        node-exporter textfile collector (see C(plugins/module_utils/metrics.py) for the series).
    type: path
  cluster:
    description: Name of the cluster in a fleet run (the inventory host); kept in the report and used to find
      O(previous_report) under a fleet's report root.
    type: str
notes:
  - The module always runs, also in check mode (it writes only report files, never to the cluster).
"""

EXAMPLES = r"""
- name: Plan the run (choose the checklist from the server version)
  k8s_ai.conformance.conformance_report:
    mode: plan
    kubeconfig: ~/.kube/config
    metadata: "{{ verify_metadata }}"
  register: plan

- name: Write the report
  k8s_ai.conformance.conformance_report:
    mode: write
    checklist_version: "{{ plan.plan.version }}"
    server_version: "{{ plan.plan.server_version }}"
    platform: "{{ plan.plan.platform }}"
    report_dir: ./ai-conformance-report
    metadata: "{{ verify_metadata }}"
    results: "{{ check_results }}"
  register: report

- name: Merge into the official template
  k8s_ai.conformance.conformance_report:
    mode: write
    checklist_version: "1.35"
    template: ./AIConformance-1.35.yaml
    results: "{{ check_results }}"
"""

RETURN = r"""
plan:
  description: With O(mode=plan), the chosen checklist and what the run needs.
  returned: mode is plan
  type: dict
  contains:
    version:
      description: "Checklist version (a fallback when RV(errors) says none could be chosen)."
      type: str
    version_reason:
      description: "V(pinned), V(server) or V(fallback)."
      type: str
    server_version:
      description: "Kubernetes version of the API server, if it answered."
      type: str
    user:
      description: "Who the API server says the caller is (SelfSubjectReview), if it answered."
      type: str
    platform:
      description: "Platform directory name."
      type: str
    report_path:
      description: "Directory the report will be written to."
      type: str
    checks:
      description: "Check names to run, in order."
      type: list
      elements: str
    labels:
      description: "Check name -> requirement labels (C(gang_scheduling [MUST]), C(WL-2.3 [SHOULD]))."
      type: dict
    levels:
      description: "Check name -> strongest level among its official requirements, or C(none)."
      type: dict
    denied:
      description: "Permissions the caller lacks (verb resource)."
      type: list
      elements: str
  sample:
    version: "1.35"
    version_reason: server
    server_version: v1.35.4
    platform: lab
    checks: [dra_support, gang_scheduling]
errors:
  description: Input problems, each with the input it concerns (C(kubeconfig), C(context), C(checklist_version), ...).
  returned: mode is plan
  type: list
  elements: dict
  sample: [{input: context, msg: "kubeconfig /tmp/k: context 'x' not found (available: lab)"}]
warnings_found:
  description: Non-fatal findings of the plan (missing permissions, metadata placeholders).
  returned: mode is plan
  type: list
  elements: str
report_path:
  description: Directory the report was written to.
  returned: mode is write
  type: str
  sample: /work/ai-conformance-report/v1.35/lab
files:
  description: Files written, relative to RV(report_path).
  returned: mode is write
  type: list
  elements: str
verdict:
  description: One line - conformant or not, and why.
  returned: mode is write
  type: str
must_failures:
  description: MUST requirement ids whose status is not Implemented (N/A excluded).
  returned: mode is write
  type: list
  elements: str
must_na:
  description: MUST requirement ids answered N/A (validate.go on main today rejects them; see O(na_rule)).
  returned: mode is write
  type: list
  elements: str
counts:
  description: Number of official requirements per status, and how many were not verified.
  returned: mode is write
  type: dict
validation:
  description: Validation of the written PRODUCT.yaml with validate.go's rules (valid, errors, warnings, info,
    not_checked, na_rule, rule) - see M(k8s_ai.conformance.conformance_validate).
  returned: mode is write
  type: dict
lines:
  description: One line per official requirement - id, level, status, summary.
  returned: mode is write
  type: list
  elements: str
drift:
  description:
    - Comparison with O(previous_report) - C(status) (V(compared), V(no baseline), V(error)), C(baseline),
      C(regressions), C(improvements), C(changes), C(added), C(removed) (each a list of C(id), C(list), C(level),
      C(from), C(to)), C(must_regressions), C(summary).
  returned: mode is write and O(previous_report) is set
  type: dict
drift_lines:
  description: The drift summary and one line per regression, improvement and change.
  returned: mode is write
  type: list
  elements: str
metrics_file:
  description: The metrics file written.
  returned: mode is write and O(metrics_file) is set
  type: str
regressions:
  description: Ids of the requirements (and whitepaper items) that regressed since O(previous_report).
  returned: mode is write
  type: list
  elements: str
"""

import os  # noqa: E402
import re  # noqa: E402
import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils import catalog, drift, metrics, report  # noqa: E402

try:
    from ansible_collections.k8s_ai.conformance.plugins.module_utils.client import Cluster, ClusterError
    HAS_CLIENT = True
    CLIENT_ERROR = None
except ImportError as exc:  # pragma: no cover
    HAS_CLIENT = False
    CLIENT_ERROR = str(exc)

FALLBACK_VERSION = "1.36"
# What the checks read and do; a caller without any of these cannot verify anything.
ACCESS = (
    ("list", "", "nodes"),
    ("list", "", "namespaces"),
    ("create", "", "namespaces"),
    ("delete", "", "namespaces"),
    ("create", "", "pods"),
    ("list", "resource.k8s.io", "resourceslices"),
    ("list", "apiextensions.k8s.io", "customresourcedefinitions"),
)


def platform_from(params, metadata):
    name = params.get("platform")
    if not name:
        name = metadata.get("platformName") if isinstance(metadata.get("platformName"), str) else ""
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip().lower()).strip("-._") or "my-platform"
    return report.sanitize_platform(name)


def check_metadata(metadata, errors, warnings):
    if not isinstance(metadata, dict):
        errors.append({"input": "metadata", "msg": "must be a mapping of PRODUCT.yaml metadata fields, got %s"
                       % type(metadata).__name__})
        return {}
    known = [f for f, _r in catalog.METADATA_FIELDS]
    clean = {}
    for key, value in metadata.items():
        if key not in known:
            warnings.append("metadata.%s is not a PRODUCT.yaml metadata field (known: %s); ignored"
                            % (key, ", ".join(known)))
            continue
        if key == "kubernetesVersion":
            warnings.append("metadata.kubernetesVersion is set from the checklist version; the given value is ignored")
            continue
        if value is None:
            continue
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            errors.append({"input": "metadata", "msg": "field %s must be a string, got %s"
                           % (key, type(value).__name__)})
            continue
        clean[key] = str(value)
    missing = [f for f, required in catalog.METADATA_FIELDS if required and f != "kubernetesVersion"
               and not clean.get(f)]
    if missing:
        warnings.append("metadata fields not set (written as placeholders, which the validator rejects): %s"
                        % ", ".join(missing))
    return clean


def who_am_i(cluster):
    try:
        review = cluster.create("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        return ((review.get("status") or {}).get("userInfo") or {}).get("username")
    except ClusterError:
        return None


def denied_access(cluster):
    denied = []
    for verb, group, resource in ACCESS:
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": verb, "group": group, "resource": resource}}}
        review = cluster.create("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body)
        if not (review.get("status") or {}).get("allowed"):
            denied.append("%s %s%s" % (verb, resource, ("." + group) if group else ""))
    return denied


def plan(module):
    params = module.params
    errors, warnings = [], []
    metadata = check_metadata(params["metadata"], errors, warnings)
    platform, warning = platform_from(params, metadata)
    if warning:
        errors.append({"input": "platform", "msg": warning})
    result = {"version": None, "version_reason": None, "server_version": params.get("server_version"),
              "user": None, "platform": platform, "denied": []}
    checks = list(params["checks"] or [])
    try:
        catalog.validate_checks(checks)
    except catalog.CatalogError as exc:
        errors.append({"input": "checks", "msg": str(exc)})
        checks = [c for c in checks if c in catalog.CHECKS]

    pinned = params.get("checklist_version") or ""
    if pinned:
        try:
            result["version"], result["version_reason"] = catalog.select_version(pinned=pinned)
        except catalog.CatalogError as exc:
            errors.append({"input": "checklist_version", "msg": str(exc)})

    if params["connect"]:
        cluster = None
        if not HAS_CLIENT:
            errors.append({"input": "kubeconfig", "msg": "cluster client unavailable: %s" % CLIENT_ERROR})
        else:
            try:
                cluster = Cluster.connect(params.get("kubeconfig"), params.get("context") or None,
                                          validate_certs=params["validate_certs"],
                                          request_timeout=params["request_timeout"])
            except ClusterError as exc:
                name = "context" if "context" in str(exc) and params.get("context") else "kubeconfig"
                errors.append({"input": name, "msg": str(exc)})
        if cluster is not None:
            try:
                version = cluster.version() or {}
                result["server_version"] = version.get("gitVersion")
            except ClusterError as exc:
                errors.append({"input": "kubeconfig", "msg": "API server %s: %s" % (cluster.host, exc)})
                cluster = None
        if cluster is not None:
            result["user"] = who_am_i(cluster)
            try:
                denied = denied_access(cluster)
            except ClusterError as exc:
                denied = ["create selfsubjectaccessreviews (%s)" % exc]
            result["denied"] = denied
            who = result["user"] or "the kubeconfig's identity"
            if len(denied) >= len(ACCESS):
                errors.append({"input": "kubeconfig", "msg": "%s has no RBAC permission for anything the checks need "
                               "(denied: %s); bind it to the verifier ClusterRole "
                               "(roles/verify/files/verifier-clusterrole.yaml)" % (who, ", ".join(denied))})
            elif denied:
                warnings.append("%s lacks RBAC permissions: %s; checks that need them will be not verified"
                                % (who, ", ".join(denied)))

    if result["version"] is None and not any(e["input"] == "checklist_version" for e in errors):
        if result["server_version"]:
            try:
                result["version"], result["version_reason"] = catalog.select_version(result["server_version"])
            except catalog.CatalogError as exc:
                errors.append({"input": "checklist_version", "msg": str(exc)})
        elif not params["connect"]:
            errors.append({"input": "checklist_version", "msg": "planning offline needs checklist_version or "
                           "server_version"})
    if result["version"] is None:
        result["version"], result["version_reason"] = FALLBACK_VERSION, "fallback"
    elif result["version_reason"] == "pinned" and result["server_version"]:
        try:
            server_minor = catalog.parse_minor(result["server_version"], "server version")
        except catalog.CatalogError:
            server_minor = None
        if server_minor and server_minor != result["version"]:
            warnings.append("checklist v%s is pinned but the API server runs %s; a submission for v%s needs a "
                            "v%s cluster" % (result["version"], result["server_version"], result["version"],
                                             result["version"]))

    if params.get("template"):
        try:
            report.load_template(params["template"], result["version"])
        except ValueError as exc:
            errors.append({"input": "checklist_template", "msg": str(exc)})

    report_dir = os.path.abspath(params["report_dir"])  # type path: ~ already expanded
    result["report_path"] = os.path.join(report_dir, "v%s" % result["version"], platform)
    probe = report_dir
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK):
        errors.append({"input": "report_dir", "msg": "%s cannot be created or written (%s is not a writable "
                       "directory)" % (report_dir, probe)})

    if params.get("previous_report"):
        try:
            result["previous_report"] = drift.load_report(params["previous_report"], params.get("cluster"))[0]
        except drift.NoReport as exc:
            warnings.append("previous_report: %s; no drift is computed (first run?)" % exc)
        except drift.DriftError as exc:
            errors.append({"input": "previous_report", "msg": str(exc)})

    if not checks:
        checks = catalog.checks_for(result["version"], params["include_whitepaper"])
    result["checks"] = checks
    result["labels"], result["levels"] = {}, {}
    official = {i["id"]: i for i in catalog.checklist(result["version"])}
    for check in checks:
        labels, level = [], "none"
        for item in official.values():
            if item["check"] == check:
                labels.append("%s [%s]" % (item["id"], item["level"]))
                level = catalog.MUST if catalog.MUST in (level, item["level"]) else item["level"]
        if params["include_whitepaper"]:
            labels += ["%s [%s]" % (w["id"], w["level"]) for w in catalog.whitepaper() if w["check"] == check]
        result["labels"][check] = labels or ["%s (not in the selected checklists)" % check]
        result["levels"][check] = level
    result["requirements"] = catalog.checklist(result["version"])
    return {"changed": False, "plan": result, "errors": errors, "warnings_found": warnings}


def write(module):
    params = module.params
    errors = list(params["errors"])
    warnings = list(params["warnings"])
    metadata = check_metadata(params["metadata"], [], []) if isinstance(params["metadata"], dict) else {}
    platform, warning = platform_from(params, metadata)
    if warning:
        warnings.append(warning)
    try:
        version = catalog.parse_minor(params["checklist_version"] or FALLBACK_VERSION, "checklist_version")
    except catalog.CatalogError as exc:
        module.fail_json(msg=str(exc))
    if version not in catalog.OFFICIAL:
        errors.append("checklist version %s does not exist; the report uses checklist %s"
                      % (version, FALLBACK_VERSION))
        version = FALLBACK_VERSION
    template = params.get("template")
    if template:
        try:
            report.load_template(template, version)
        except ValueError as exc:
            warnings.append("%s; writing the catalog's own descriptions instead" % exc)
            template = None
    results = [r for r in params["results"] if isinstance(r, dict)]
    expected = params["checks"] or catalog.checks_for(version, params["include_whitepaper"])
    try:
        rep = report.build_report(
            version, platform, results, template_path=template, metadata=metadata, expected_checks=expected,
            missing=params["missing"], errors=errors, warnings=warnings, server_version=params.get("server_version"),
            include_whitepaper=params["include_whitepaper"], check_mode=params["check_mode_run"], run=params["run"],
            na_rule=params["na_rule"])
        changes = compare_previous(params, rep)
        out = rep.write(os.path.abspath(params["report_dir"]))
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot write the report under %s: %s" % (params["report_dir"], exc))
    extra = {"drift": changes} if changes else {}
    if params.get("metrics_file"):
        try:
            metrics.write(params["metrics_file"], metrics.render_path(out["path"], params.get("cluster")))
        except (OSError, drift.DriftError) as exc:
            module.fail_json(msg="report written to %s, but not the metrics file %s: %s"
                             % (out["path"], params["metrics_file"], exc))
        extra["metrics_file"] = params["metrics_file"]
    lines = ["%-28s %-6s %-22s %s" % (r["id"], r["level"], r["status"] + ("" if r["verified"] else " (not verified)"),
                                      r["summary"]) for r in rep.official_rows()]
    return {"changed": True, "report_path": out["path"], "files": out["files"], "verdict": out["verdict"],
            "must_failures": out["must_failures"], "must_na": out["must_na"], "counts": out["counts"],
            "validation": out["validation"], "lines": lines, "drift_lines": drift.lines(changes),
            "regressions": [e["id"] for e in (changes or {}).get("regressions", [])], **extra}


def compare_previous(params, rep):
    """Drift against params.previous_report (read before the new report is written), attached to `rep`."""
    if params.get("cluster"):
        rep.run.setdefault("cluster", params["cluster"])
    previous = params.get("previous_report")
    if not previous:
        return None
    try:
        path, doc = drift.load_report(previous, params.get("cluster"))
    except drift.DriftError as exc:
        status = "no baseline" if isinstance(exc, drift.NoReport) else "error"
        changes = drift.not_compared(status, str(exc), previous)
        rep.warnings.append("previous_report: %s; no drift is computed" % exc)
    else:
        changes = drift.compare(doc, drift.current_of(rep), path)
    if not drift.attach(rep, changes):
        rep.warnings.append("this report writer has no place for the drift; it is returned only")
    return changes


def main():
    module = AnsibleModule(
        argument_spec={
            "mode": {"type": "str", "choices": ["plan", "write"], "default": "write"},
            "kubeconfig": {"type": "raw", "no_log": False},
            "context": {"type": "str"},
            "validate_certs": {"type": "bool", "default": True},
            "request_timeout": {"type": "int", "default": 15},
            "connect": {"type": "bool", "default": True},
            "checklist_version": {"type": "str", "default": ""},
            "server_version": {"type": "str"},
            "checks": {"type": "list", "elements": "str", "default": []},
            "include_whitepaper": {"type": "bool", "default": True},
            "template": {"type": "path"},
            "metadata": {"type": "raw", "default": {}},
            "platform": {"type": "str"},
            "report_dir": {"type": "path", "default": "ai-conformance-report"},
            "results": {"type": "list", "elements": "raw", "default": []},
            "missing": {"type": "dict", "default": {}},
            "errors": {"type": "list", "elements": "str", "default": []},
            "warnings": {"type": "list", "elements": "str", "default": []},
            "check_mode_run": {"type": "bool", "default": False},
            "run": {"type": "dict", "default": {}},
            "na_rule": {"type": "str", "choices": ["upstream", "pending"], "default": "upstream"},
            "previous_report": {"type": "path"},
            "cluster": {"type": "str"},
            "metrics_file": {"type": "path"},
        },
        supports_check_mode=True,
    )
    if not report.HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"), exception=report.YAML_IMPORT_ERROR)
    try:
        if module.params["mode"] == "plan":
            module.exit_json(**plan(module))
        module.exit_json(**write(module))
    except Exception as exc:  # never a bare traceback for the user
        module.fail_json(msg="conformance_report (%s) failed: %s: %s" % (module.params["mode"],
                                                                         exc.__class__.__name__, exc),
                         exception=traceback.format_exc())


if __name__ == "__main__":
    main()
