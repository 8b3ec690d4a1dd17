# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE)
"""Offline validator for a PRODUCT.yaml of a CNCF Kubernetes AI Conformance submission.

It checks every rule of the upstream validator (cncf/k8s-ai-conformance, scripts/validate.go) that
can be checked without network access, with our own code:

* the path contains the checklist version as a directory (``.../v1.35/<platform>/PRODUCT.yaml``);
* ``metadata`` exists; every required field (camelCase or snake_case) is present, a string and not
  empty (``repoUrl`` is optional); no value is a ``[placeholder]``; ``k8sConformanceUrl`` has the
  form ``https://github.com/cncf/k8s-conformance/tree/(master|main)/vX.Y/<product>``;
  an http(s) ``productLogoUrl`` links to an SVG, EPS or AI file;
* ``spec`` exists with every category and every requirement id of the checklist version;
* a SHOULD left with an empty status and no evidence is accepted as unanswered;
* statuses are one of Implemented / Not Implemented / Partially Implemented / N/A;
* a MUST is Implemented (a MUST answered N/A is reported as a warning: our status rules allow N/A
  with a reason, but today's upstream validator rejects it);
* N/A carries notes;
* evidence entries that are not URLs name files that exist beside PRODUCT.yaml.

What needs the network upstream (URLs reachable, vendorName listed among CNCF members) is listed in
``info`` as not checked offline.

CLI::

    python -m ansible_collections.k8s_ai.conformance.plugins.module_utils.validate PATH [PATH...]
        [--version 1.35] [--strict]
"""

from __future__ import absolute_import, division, print_function

import os
import re
import sys

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

try:
    from ansible_collections.k8s_ai.conformance.plugins.module_utils import catalog
except ImportError:  # pragma: no cover - direct use from a checkout
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import catalog  # type: ignore[no-redef]

K8S_CONFORMANCE_URL_RE = re.compile(r"^https://github\.com/cncf/k8s-conformance/tree/(master|main)/v\d+\.\d+/[^/]+/?$")
PATH_VERSION_RE = re.compile(r"(?:^|/)(v\d+\.\d+)/")
LOGO_SUFFIXES = (".svg", ".eps", ".ai")


def snake_case(name):
    """camelCase -> snake_case, the same way the upstream validator derives its alternative keys."""
    out = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    out = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", out)
    return out.lower()


def is_placeholder(value):
    return isinstance(value, str) and value.startswith("[") and value.endswith("]")


class Findings:
    def __init__(self):
        self.errors = []
        self.warnings = []
        self.info = []

    def as_dict(self, path, version):
        return {
            "path": path,
            "version": version,
            "valid": not self.errors,
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "info": list(self.info),
        }


def _version_from_path(path):
    match = PATH_VERSION_RE.search(path.replace(os.sep, "/"))
    return match.group(1)[1:] if match else None


def _validate_metadata(metadata, findings, version):
    if not isinstance(metadata, dict):
        findings.errors.append("Missing 'metadata' section" if metadata is None
                               else "'metadata' is not a mapping")
        return
    online = []
    for field, required in catalog.METADATA_FIELDS:
        snake = snake_case(field)
        if field in metadata:
            value = metadata[field]
        elif snake in metadata:
            value = metadata[snake]
        else:
            value = None
        if value is None:
            if required:
                findings.errors.append("Missing metadata field: %s (or %s)" % (field, snake))
            continue
        if not isinstance(value, str):
            findings.errors.append("Metadata field %s is not a string" % field)
            continue
        if value == "":
            if required:
                findings.errors.append("Metadata field %s is empty" % field)
        elif is_placeholder(value):
            findings.errors.append("Metadata field %s has placeholder value: %s" % (field, value))
        elif field == "k8sConformanceUrl":
            if not K8S_CONFORMANCE_URL_RE.match(value):
                findings.errors.append(
                    "Invalid k8sConformanceUrl format: %s. Expected "
                    "https://github.com/cncf/k8s-conformance/tree/master/v<major.minor>/<product>" % value)
            else:
                online.append(field)
        elif value.startswith("http"):
            if field == "productLogoUrl" and not value.lower().endswith(LOGO_SUFFIXES):
                findings.errors.append("productLogoUrl must link to an SVG, EPS or AI file: %s" % value)
            online.append(field)
    kver = metadata.get("kubernetesVersion", metadata.get("kubernetes_version"))
    if isinstance(kver, str) and version and not is_placeholder(kver):
        try:
            if catalog.parse_minor(kver, "metadata.kubernetesVersion") != version:
                findings.warnings.append("metadata.kubernetesVersion %s differs from the checklist version "
                                         "v%s of the path" % (kver, version))
        except catalog.CatalogError as exc:
            findings.warnings.append(str(exc))
    if online:
        findings.info.append("not checked offline: metadata URLs are reachable (%s)" % ", ".join(online))
    vendor = metadata.get("vendorName", metadata.get("vendor_name"))
    if isinstance(vendor, str) and vendor.strip() and not is_placeholder(vendor):
        findings.info.append("not checked offline: vendorName %r matches a CNCF member in the CNCF Landscape"
                             % vendor.strip())


def _validate_spec(spec, findings, version, product_dir):
    if not isinstance(spec, dict):
        findings.errors.append("Missing 'spec' section" if spec is None else "'spec' is not a mapping")
        return
    urls = 0
    for section, ids in catalog.sections(version):
        reqs = spec.get(section)
        if reqs is None:
            findings.errors.append("Missing spec category: %s" % section)
            continue
        if not isinstance(reqs, list):
            findings.errors.append("spec category %s is not a list of requirements" % section)
            continue
        by_id = {}
        for req in reqs:
            if isinstance(req, dict) and "id" in req:
                by_id[req["id"]] = req
            else:
                findings.errors.append("spec category %s holds an entry without an id: %r" % (section, req))
        levels = {item["id"]: item["level"] for item in catalog.checklist(version)}
        for rid in ids:
            req = by_id.get(rid)
            if req is None:
                findings.errors.append("Missing requirement '%s' in category '%s'" % (rid, section))
                continue
            level = levels[rid]
            status = req.get("status", "")
            status = "" if status is None else status
            evidence = req.get("evidence", [])
            evidence = [] if evidence is None else evidence
            notes = req.get("notes", "")
            notes = "" if notes is None else notes
            if not isinstance(evidence, list) or not all(isinstance(e, str) for e in evidence):
                findings.errors.append("evidence of '%s' must be a list of strings" % rid)
                evidence = [e for e in evidence if isinstance(e, str)] if isinstance(evidence, list) else []
            if not isinstance(notes, str):
                findings.errors.append("notes of '%s' must be a string" % rid)
                notes = str(notes)
            if level == catalog.SHOULD and status == "" and not evidence:
                findings.info.append("SHOULD requirement '%s' left unanswered (accepted)" % rid)
                continue
            if status not in catalog.STATUSES:
                findings.errors.append("Invalid status '%s' for '%s'. Must be one of %s"
                                       % (status, rid, ", ".join(catalog.STATUSES)))
            if level == catalog.MUST and status != "Implemented":
                if status == "N/A":
                    findings.warnings.append(
                        "Requirement '%s' is MUST level and answered N/A: allowed by our status rules when the "
                        "context does not apply, but today's upstream validator rejects it (MUST must be "
                        "'Implemented')" % rid)
                else:
                    findings.errors.append("Requirement '%s' is MUST level but status is '%s'. It must be "
                                           "'Implemented'." % (rid, status))
            if status == "N/A" and not notes.strip():
                findings.errors.append("Notes required for '%s' when status is N/A" % rid)
            for link in evidence:
                if link == "":
                    continue
                if link.startswith(("http://", "https://")):
                    urls += 1
                    continue
                full = os.path.join(product_dir, link)
                if not os.path.exists(full):
                    findings.errors.append("Invalid evidence file for '%s': %s (not found at %s)" % (rid, link, full))
    if urls:
        findings.info.append("not checked offline: %d evidence URL(s) are reachable" % urls)


def validate_document(doc, path, version=None):
    """Validate an already loaded PRODUCT document; `path` locates evidence files and the version."""
    findings = Findings()
    path_version = _version_from_path(os.path.abspath(path))
    if version:
        try:
            version = catalog.parse_minor(version, "version")
        except catalog.CatalogError as exc:
            findings.errors.append(str(exc))
            return findings.as_dict(path, None)
        if path_version is None:
            findings.warnings.append("the path %s has no v<major.minor>/ directory; the upstream validator "
                                     "needs one to find the checklist (version %s given explicitly)" % (path, version))
        elif path_version != version:
            findings.warnings.append("the path says v%s but version %s was given" % (path_version, version))
    elif path_version is None:
        findings.errors.append("Could not determine version from path %s (expected .../v<major.minor>/<platform>/"
                               "PRODUCT.yaml)" % path)
        return findings.as_dict(path, None)
    else:
        version = path_version
    if version not in catalog.OFFICIAL:
        findings.errors.append("no checklist for version %s; supported checklist versions: %s"
                               % (version, ", ".join(catalog.supported_versions())))
        return findings.as_dict(path, version)
    if not isinstance(doc, dict):
        findings.errors.append("%s is not a YAML mapping with metadata and spec" % path)
        return findings.as_dict(path, version)
    _validate_metadata(doc.get("metadata"), findings, version)
    _validate_spec(doc.get("spec"), findings, version, os.path.dirname(os.path.abspath(path)))
    return findings.as_dict(path, version)


def validate_file(path, version=None):
    """Load and validate a PRODUCT.yaml.  Returns a dict: valid, errors, warnings, info, version, path."""
    if not HAS_YAML:  # pragma: no cover
        return {"path": path, "version": version, "valid": False, "warnings": [], "info": [],
                "errors": ["PyYAML is required to validate %s" % path]}
    if not os.path.isfile(path):
        return {"path": path, "version": version, "valid": False, "warnings": [], "info": [],
                "errors": ["%s does not exist or is not a file" % path]}
    try:
        with open(path, "rb") as handle:
            doc = yaml.safe_load(handle)
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        return {"path": path, "version": version, "valid": False, "warnings": [], "info": [],
                "errors": ["Error loading %s: %s" % (path, str(exc).replace("\n", " "))]}
    return validate_document(doc, path, version)


def format_result(result):
    lines = ["%s: %s" % (result["path"], "valid" if result["valid"] else "INVALID")]
    lines += ["  error: %s" % e for e in result["errors"]]
    lines += ["  warning: %s" % w for w in result["warnings"]]
    lines += ["  info: %s" % i for i in result["info"]]
    return "\n".join(lines)


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Validate PRODUCT.yaml files offline against the rules of "
                                                 "the CNCF k8s-ai-conformance validator.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="PRODUCT.yaml file(s)")
    parser.add_argument("--version", help="checklist version (default: from the path, .../v1.35/...)")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    args = parser.parse_args(argv)
    failed = False
    for path in args.paths:
        result = validate_file(path, args.version)
        print(format_result(result))  # pylint: disable=ansible-bad-function  # command line, not a module
        if result["errors"] or (args.strict and result["warnings"]):
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
