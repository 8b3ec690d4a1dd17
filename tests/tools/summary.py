"""Print one closing line for `make test`, summed over the JUnit files of every pytest run.

    tests/tools/summary.py DIR [FAILED_STAGE ...]
Exit status 1 when a test failed or a stage (lint, molecule…) failed, else 0.
"""

import glob
import os
import sys
import xml.etree.ElementTree as ET


def main(directory, failed_stages):
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for path in sorted(glob.glob(os.path.join(directory, "*.xml"))):
        root = ET.parse(path).getroot()
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        for suite in suites:
            for key in totals:
                totals[key] += int(suite.get(key, 0))
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    if failed_stages:
        print("failed stages: %s" % ", ".join(failed_stages))
    print("%d passed, %d failed, %d skipped" % (passed, failed, totals["skipped"]))
    return 1 if failed or failed_stages else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
