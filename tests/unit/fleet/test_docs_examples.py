"""The YAML examples of docs/ci.md, docs/fleet.md and docs/in-cluster.md parse, and name what exists."""

import os
import re

import pytest
import yaml
from unit_collection import ROOT

from ansible_collections.k8s_ai.conformance.plugins.module_utils import metrics


def yaml_blocks(name):
    with open(os.path.join(ROOT, "docs", name)) as handle:
        text = handle.read()
    blocks = re.findall(r"^ *```yaml\n(.*?)^ *```", text, re.S | re.M)
    assert blocks, name
    return [yaml.safe_load(b) for b in blocks]


@pytest.mark.parametrize("name", ["ci.md", "fleet.md", "in-cluster.md"])
def test_yaml_examples_parse(name):
    assert all(doc is not None for doc in yaml_blocks(name))


def test_ci_examples_publish_the_junit_file():
    github, gitlab, module_defaults = yaml_blocks("ci.md")
    steps = github["jobs"]["verify"]["steps"]
    assert any("molecule test" in s.get("run", "") for s in steps)
    assert any("k8s_ai.conformance.verify" in s.get("run", "") for s in steps)
    junit = [s for s in steps if "junit" in s.get("uses", "")]
    assert junit and junit[0]["with"]["report_paths"].endswith("junit.xml") and junit[0]["if"] == "always()"
    assert gitlab["ai-conformance"]["artifacts"]["reports"]["junit"].endswith("junit.xml")
    assert "group/k8s_ai.conformance.checks" in module_defaults[0]["module_defaults"]


def test_fleet_example_uses_the_fleet_group():
    with open(os.path.join(ROOT, "roles", "verify", "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    [inventory] = yaml_blocks("fleet.md")
    assert defaults["verify_fleet_group"] in inventory["all"]["children"]


def test_alert_rules_use_exported_series():
    [rules] = yaml_blocks("in-cluster.md")
    exprs = " ".join(r["expr"] for r in rules["groups"][0]["rules"])
    names = set(re.findall(r"k8s_ai_conformance_[a-z_]+", exprs))
    assert "k8s_ai_conformance_requirement_regressed" in names
    assert names <= {metrics.PREFIX + n for n in metrics.HELP}, names
