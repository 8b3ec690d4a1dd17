"""meta/runtime.yml action group: module_defaults can set cluster access once for every check module."""

import glob
import os
import subprocess

import yaml
from unit_collection import ROOT, VENV_BIN, collections_path

FRAGMENT = "k8s_ai.conformance.cluster"


def modules_with_the_cluster_fragment():
    names = []
    for path in sorted(glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))):
        with open(path) as handle:
            text = handle.read()
        docs = text.split('"""', 2)[1] if '"""' in text else ""
        if FRAGMENT in docs:
            names.append(os.path.basename(path)[:-3])
    return names


def test_the_checks_group_lists_exactly_the_modules_with_the_cluster_fragment():
    with open(os.path.join(ROOT, "meta", "runtime.yml")) as handle:
        runtime = yaml.safe_load(handle)
    group = runtime["action_groups"]["checks"]
    assert group == sorted(group), "keep the group sorted"
    assert group == modules_with_the_cluster_fragment()
    assert "conformance_report" not in group and "accelerator_node_facts" not in group


def test_module_defaults_reach_a_check_module(tmp_path):
    """kubeconfig set once through group/k8s_ai.conformance.checks is what dra_support uses (and names)."""
    missing = tmp_path / "from-module-defaults.kubeconfig"
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "module_defaults for the check modules", "hosts": "localhost", "connection": "local",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "module_defaults": {"group/k8s_ai.conformance.checks": {"kubeconfig": str(missing), "timeout": 5}},
        "tasks": [{"name": "a check without its own cluster arguments", "k8s_ai.conformance.dra_support": {},
                   "register": "out", "ignore_errors": True},
                  {"name": "it used the group's kubeconfig", "ansible.builtin.assert": {"that": [
                      "'from-module-defaults.kubeconfig' in (out.msg | default('') ~ out.result.notes | default(''))"
                  ]}}],
    }]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), str(playbook)], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out
