"""CI: validate the demo's PRODUCT.yaml with our validator (validate.go's rules) and tell apart the two
kinds of problem. Errors about a MUST the report itself marks as not Implemented (its status, its failing
junit testcase) are the lab's truthful answer and are listed, not failed on; any other error (format,
types, ids, evidence links, artifacts) fails the step. Usage: validate_demo.py REPORT_DIR"""

import glob
import os
import sys

import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils import catalog, validate


def not_implemented_musts(product_path):
    with open(product_path) as handle:
        product = yaml.safe_load(handle)
    found = {}
    for items in (product.get("spec") or {}).values():
        for item in items or []:
            if item.get("level") == "MUST" and item.get("status") != "Implemented":
                found[item["id"]] = item.get("status")
    return found


def main(report_dir):
    paths = sorted(glob.glob(os.path.join(report_dir, "v*", "*", "PRODUCT.yaml")))
    if not paths:
        print("validate_demo: no PRODUCT.yaml under %s (did make demo write its report?)" % report_dir)
        return 1
    failed = False
    for path in paths:
        result = validate.validate_file(path)
        musts = not_implemented_musts(path)
        names = {rid: {rid, catalog.junit_test_name(rid)} for rid in musts}
        truthful, other = [], []
        for error in result["errors"]:
            owner = [rid for rid, keys in names.items() if any("'%s'" % k in error or k in error for k in keys)]
            (truthful if owner else other).append(error)
        print("%s: %d format/rule errors, %d errors for MUSTs the report marks not Implemented (%s)" % (
            path, len(other), len(truthful), ", ".join("%s: %s" % kv for kv in sorted(musts.items())) or "none"))
        for error in other:
            print("  error: %s" % error)
        for error in truthful:
            print("  not Implemented on the lab: %s" % error)
        for warning in result["warnings"]:
            print("  warning: %s" % warning)
        failed = failed or bool(other)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "ai-conformance-report"))
