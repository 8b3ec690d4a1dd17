"""Unit tests of plugins/module_utils/node_facts.py on fixture trees (no real /proc, /sys, /etc)."""

import importlib.util
import os
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FIXTURES = os.path.join(HERE, "fixtures")


def _load(name, relpath):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


nf = _load("node_facts_under_test", "plugins/module_utils/node_facts.py")

SMI = (
    "0, NVIDIA H100 80GB HBM3, GPU-3b2c1a5e-8f0d-4c1e-9a7b-2d6f5e4c3b2a, 00000000:18:00.0, 570.133.20, 81559\n"
    "1, NVIDIA H100 80GB HBM3, GPU-9d4e2f10-6a7b-4c8d-b1e2-f3a4b5c6d7e8, 00000000:2A:00.0, 570.133.20, 81559\n"
)


def fake_runner(outputs):
    calls = []

    def run(argv):
        calls.append(argv)
        out = outputs.get(argv[0])
        return None if out is None else (0, out, "")

    run.calls = calls
    return run


def fixture(name):
    return os.path.join(FIXTURES, name)


@pytest.fixture(params=["tomllib", "fallback"])
def toml_impl(request, monkeypatch):
    """Run containerd tests with tomllib (3.11+) and with the tolerant reader (nodes on 3.9)."""
    if request.param == "tomllib":
        if nf._tomllib is None:
            pytest.skip("no tomllib on this Python")
    else:
        monkeypatch.setattr(nf, "_tomllib", None)
    return request.param


# ---------------------------------------------------------------------------------------------- parsers


@pytest.mark.parametrize("text,version", [
    ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.133.20  Fri Mar 14 03:05:40 UTC 2025\n"
     "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n", "570.133.20"),
    ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  575.57.08  Release Build  "
     "(dvs-builder@U16-I3-B03-4-3)  Wed May 21 02:42:39 UTC 2025\n", "575.57.08"),
    ("NVRM version: NVIDIA UNIX aarch64 Kernel Module  535.247.01  Tue Apr  8 18:31:10 UTC 2025\n", "535.247.01"),
    ("", None),
    (None, None),
])
def test_parse_nvidia_version(text, version):
    assert nf.parse_nvidia_version(text) == version


@pytest.mark.parametrize("text,version", [
    ("NVIDIA Container Toolkit CLI version 1.17.5\ncommit: f785e908a7f72149f8912617058644fd84e38cde\n", "1.17.5"),
    ("cli-version: 1.16.2\nlib-version: 1.16.2\nbuild date: 2024-09-24T20:17+00:00\n", "1.16.2"),
    ("garbage", None),
])
def test_parse_ctk_version(text, version):
    assert nf.parse_ctk_version(text) == version


@pytest.mark.parametrize("text,version", [
    ("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1\n", "1.6.20"),
    ("containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da\n", "1.7.27"),
    ("containerd github.com/containerd/containerd/v2 v2.1.5 fcd43222d6b07379a4be9786bda52438f0dd16a1\n", "2.1.5"),
    (None, None),
])
def test_parse_containerd_version(text, version):
    assert nf.parse_containerd_version(text) == version


def test_parse_nvidia_smi_normalises_bus_id():
    rows = nf.parse_nvidia_smi(SMI + "bad line\n")
    assert [r["pci_bus_id"] for r in rows] == ["0000:18:00.0", "0000:2a:00.0"]
    assert rows[0]["memory_mib"] == 81559 and rows[1]["index"] == 1


def test_toml_fallback_reads_containerd_shapes():
    text = '''
version = 2  # comment
imports = [
  "/etc/containerd/conf.d/*.toml",  # trailing comma and comment
]
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]
  runtime_type = 'io.containerd.runsc.v1'
  pod_annotations = ["dev.gvisor.*"]
  options = { TypeUrl = "io.containerd.runsc.v1.options", Debug = false }
[[proxy_plugins]]
  name = "a"
[[proxy_plugins]]
  name = "b"
oom_score = -999
escaped = "a\\"b\\u00e9"
this line is broken
after = 1
'''
    errors = []
    data = nf.parse_toml_fallback(text, errors)
    assert data["version"] == 2
    assert data["imports"] == ["/etc/containerd/conf.d/*.toml"]
    runsc = data["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["runsc"]
    assert runsc["runtime_type"] == "io.containerd.runsc.v1"
    assert runsc["options"] == {"TypeUrl": "io.containerd.runsc.v1.options", "Debug": False}
    assert [p["name"] for p in data["proxy_plugins"]] == ["a", "b"]
    assert data["proxy_plugins"][1]["oom_score"] == -999
    assert data["proxy_plugins"][1]["escaped"] == 'a"b\u00e9'
    assert data["proxy_plugins"][1]["after"] == 1
    assert len(errors) == 1 and errors[0].startswith("line 16")


@pytest.mark.skipif(nf._tomllib is None, reason="no tomllib to compare with")
def test_toml_fallback_agrees_with_tomllib_on_fixtures():
    for dirpath, _dirs, files in os.walk(FIXTURES):
        for name in files:
            if name.endswith(".toml"):
                with open(os.path.join(dirpath, name)) as handle:
                    text = handle.read()
                assert nf.parse_toml_fallback(text) == nf._tomllib.loads(text), name


# ---------------------------------------------------------------------------------------------- trees


def test_no_accelerator_node_is_clean():
    facts = nf.gather(fixture("none"), node_name="cpu-node-0")
    assert facts == {
        "node_name": "cpu-node-0",
        "accelerators": [],
        "accelerator_count": 0,
        "vendors": [],
        "driver_version": None,
        "kernel_modules": [],
        "container_toolkit_version": None,
        "cdi_spec_files": [],
        "cdi_kinds": [],
        "containerd": {
            "present": False, "version": None, "config_path": None, "config_version": None,
            "config_files": [], "imports": [], "import_patterns": [], "cdi_enabled": None, "runtimes": [],
            "default_runtime": None, "runtime_details": {}, "cri_tables": None, "warnings": [],
        },
    }


def test_fixture_root_runs_no_commands():
    assert nf.default_runner(fixture("nvidia")) is None
    facts = nf.gather(fixture("nvidia"))
    assert facts["container_toolkit_version"] is None
    assert facts["containerd"]["version"] is None
    assert [g["source"] for g in facts["accelerators"]] == ["procfs", "procfs"]


def test_nvidia_node(toml_impl):
    run = fake_runner({
        "nvidia-smi": SMI,
        "nvidia-ctk": "NVIDIA Container Toolkit CLI version 1.17.5\ncommit: f785e90\n",
        "containerd": "containerd github.com/containerd/containerd/v2 v2.0.4 1a43cb6a1035441f9aca8f5666a9b3ef\n",
    })
    facts = nf.gather(fixture("nvidia"), run=run, node_name="gpu-node-0")
    assert facts["driver_version"] == "570.133.20"
    assert facts["vendors"] == ["nvidia"] and facts["accelerator_count"] == 2
    first = facts["accelerators"][0]
    assert first["model"] == "NVIDIA H100 80GB HBM3"
    assert first["uuid"] == "GPU-3b2c1a5e-8f0d-4c1e-9a7b-2d6f5e4c3b2a"
    assert first["pci_bus_id"] == "0000:18:00.0"
    assert first["minor"] == 0 and first["memory_mib"] == 81559 and first["index"] == 0
    assert first["source"] == "procfs+nvidia-smi"
    assert facts["kernel_modules"] == ["nvidia_uvm", "nvidia_drm", "nvidia_modeset", "nvidia"]
    assert facts["container_toolkit_version"] == "1.17.5"
    assert facts["cdi_spec_files"] == ["/etc/cdi/nvidia.yaml", "/var/run/cdi/nvidia-mig.json"]
    assert facts["cdi_kinds"] == ["nvidia.com/gpu", "nvidia.com/mig"]
    ctr = facts["containerd"]
    assert ctr["present"] and ctr["version"] == "2.0.4" and ctr["config_version"] == 2  # 2.x migrates version 2
    assert ctr["imports"] == ["/etc/containerd/conf.d/10-cdi.toml", "/etc/containerd/conf.d/50-nvidia.toml",
                              "/etc/containerd/conf.d/60-gvisor.toml"]
    assert ctr["cdi_enabled"] is True  # main says false, the drop-in imported later says true
    assert ctr["runtimes"] == ["nvidia", "runc", "runsc"]
    assert ctr["default_runtime"] == "runc"
    assert ctr["runtime_details"]["runsc"] == {
        "source": "/etc/containerd/conf.d/60-gvisor.toml", "runtime_type": "io.containerd.runsc.v1",
        "pod_annotations": ["dev.gvisor.*"], "TypeUrl": "io.containerd.runsc.v1.options",
        "ConfigPath": "/etc/containerd/runsc.toml"}
    assert ctr["runtime_details"]["nvidia"]["BinaryName"] == "/usr/bin/nvidia-container-runtime"
    assert ctr["warnings"] == []


def test_containerd_1x_replaces_the_cri_section_per_import():
    """The same tree on containerd 1.7: each drop-in naming the CRI plugin replaces the section before it."""
    run = fake_runner({"containerd": "containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da\n"})
    ctr = nf.gather(fixture("nvidia"), run=run, node_name="n")["containerd"]
    assert ctr["runtimes"] == ["runsc"]  # 60-gvisor.toml wins; runc and nvidia are gone, CDI back to off
    assert ctr["cdi_enabled"] is False
    assert any("50-nvidia.toml replaces the whole" in w and "dropping enable_cdi" in w for w in ctr["warnings"])
    assert any("10-cdi.toml replaces the whole" in w and "dropping runc" in w for w in ctr["warnings"])
    assert any("default runtime runc is not defined next to runsc" in w for w in ctr["warnings"])


def test_cri_tables_for_a_1x_dropin():
    """containerd 1.x replaces the whole CRI section on import: the drop-in must carry the effective one."""
    root = fixture("nvidia")
    ctr = nf.containerd_facts(root, None)
    # 60-gvisor.toml is the last file with CRI tables, so it provides the section today
    assert ctr["cri_tables"]["source"] == "/etc/containerd/conf.d/60-gvisor.toml"
    ctr = nf.containerd_facts(root, None, cri_exclude_file="/etc/containerd/conf.d/60-gvisor.toml",
                              cri_exclude_runtime="nvidia")
    assert ctr["cri_tables"]["source"] == "/etc/containerd/conf.d/50-nvidia.toml"
    assert ctr["cri_tables"]["text"] == ""  # only the excluded runtime's tables: nothing to carry
    assert ctr["cri_tables"]["runtimes"] == []  # unknown version: 1.x rules, 50-nvidia.toml replaced the section
    ctr = nf.containerd_facts(root, None, cri_exclude_file="/etc/containerd/conf.d/60-gvisor.toml",
                              cri_exclude_runtime="runsc")
    assert ctr["cri_tables"]["text"].startswith('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]')
    run = fake_runner({"containerd": "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1\n"})
    ctr = nf.containerd_facts(root, run, cri_exclude_file="/etc/containerd/conf.d/60-gvisor.toml",
                              cri_exclude_runtime="runsc")
    assert ctr["cri_tables"]["runtimes"] == ["nvidia"]  # 1.x: 50-nvidia.toml replaced the main config's section
    v3 = nf.containerd_facts(fixture("containerd-v3"), None, cri_exclude_file="/etc/containerd/conf.d/60-gvisor.toml",
                             cri_exclude_runtime="runsc")
    assert v3["cri_tables"] == {"source": None, "text": None, "runtimes": ["runc"]}  # version 3: deep merge


def test_plugin_tables_keeps_headers_and_skips_other_plugins():
    text = (
        'version = 2\n[plugins]\n  [plugins."io.containerd.grpc.v1.cri"]\n    sandbox_image = "p:3.10"\n'
        '    [plugins."io.containerd.grpc.v1.cri".cni]\n      bin_dir = "/usr/lib/cni"\n'
        "  [plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.runsc]\n    runtime_type = 'x'\n"
        '  [plugins."io.containerd.internal.v1.opt"]\n    path = "/opt"\n'
    )
    tables = nf.plugin_tables(text, "io.containerd.grpc.v1.cri", [("containerd", "runtimes", "runsc")])
    assert tables == ('  [plugins."io.containerd.grpc.v1.cri"]\n    sandbox_image = "p:3.10"\n'
                      '    [plugins."io.containerd.grpc.v1.cri".cni]\n      bin_dir = "/usr/lib/cni"\n')
    assert nf.plugin_tables("version = 2\n", "io.containerd.grpc.v1.cri") is None
    assert nf.parse_table_header('[a."b.c".d] # x') == ["a", "b.c", "d"]
    assert nf.parse_table_header('  ["x", "y"],') is None


def test_bus_id_falls_back_to_the_proc_directory_name(tmp_path):
    # (fixture directories avoid ':' in file names, which ansible-test sanity forbids; the real ones have it)
    gpu = tmp_path / "proc/driver/nvidia/gpus/0000:3b:00.0"
    gpu.mkdir(parents=True)
    (gpu / "information").write_text("Model: \t\t NVIDIA L40S\nGPU UUID: \t GPU-1\n")
    facts = nf.gather(str(tmp_path), node_name="n")
    assert facts["accelerators"][0]["pci_bus_id"] == "0000:3b:00.0"
    assert facts["accelerators"][0]["model"] == "NVIDIA L40S" and facts["driver_version"] is None


def test_nvidia_smi_only(tmp_path):
    """A driver container (no /proc/driver/nvidia in this mount namespace) but nvidia-smi works."""
    facts = nf.gather(str(tmp_path), run=fake_runner({"nvidia-smi": SMI}), node_name="n")
    assert [g["source"] for g in facts["accelerators"]] == ["nvidia-smi", "nvidia-smi"]
    assert facts["driver_version"] == "570.133.20"


def test_containerd_v3_with_cdi_and_runsc(toml_impl):
    run = fake_runner({"containerd": "containerd github.com/containerd/containerd/v2 v2.1.5 fcd4322\n"})
    ctr = nf.gather(fixture("containerd-v3"), run=run, node_name="n")["containerd"]
    assert ctr["version"] == "2.1.5" and ctr["config_version"] == 3
    assert ctr["config_files"][0] == "/etc/containerd/config.toml"
    assert ctr["imports"] == ["/etc/containerd/conf.d/10-cdi.toml", "/etc/containerd/conf.d/60-gvisor.toml",
                              "/etc/containerd/conf.d/70-stale.toml"]  # relative import resolved
    assert ctr["import_patterns"] == ["conf.d/*.toml"]
    assert ctr["cdi_enabled"] is True
    assert ctr["runtimes"] == ["runc", "runsc"]  # kata is under the version-2 key: ignored
    assert ctr["runtime_details"]["runsc"]["runtime_type"] == "io.containerd.runsc.v1"
    assert len(ctr["warnings"]) == 1 and "70-stale.toml" in ctr["warnings"][0]
    assert "ignored under config version 3" in ctr["warnings"][0]


def test_v2_block_in_v3_config_is_not_a_runtime(tmp_path):
    (tmp_path / "etc/containerd").mkdir(parents=True)
    (tmp_path / "etc/containerd/config.toml").write_text(
        'version = 3\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]\n'
        'runtime_type = "io.containerd.runsc.v1"\n')
    ctr = nf.containerd_facts(str(tmp_path), None)
    assert ctr["runtimes"] == ["runc"] and ctr["warnings"]


def test_containerd_defaults_without_config(tmp_path):
    run = fake_runner({"containerd": "containerd github.com/containerd/containerd/v2 v2.0.4 1a43cb6\n"})
    ctr = nf.containerd_facts(str(tmp_path), run)
    assert ctr["present"] and ctr["config_path"] is None
    assert ctr["config_version"] == 3 and ctr["cdi_enabled"] is True and ctr["runtimes"] == ["runc"]
    run = fake_runner({"containerd": "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1\n"})
    ctr = nf.containerd_facts(str(tmp_path), run)
    assert ctr["config_version"] == 2 and ctr["cdi_enabled"] is False


def test_config_without_version_is_version_1(tmp_path):
    (tmp_path / "etc/containerd").mkdir(parents=True)
    (tmp_path / "etc/containerd/config.toml").write_text("# empty\n")
    ctr = nf.containerd_facts(str(tmp_path), None)
    assert ctr["config_version"] == 1 and ctr["cdi_enabled"] is None


def test_broken_config_is_reported_not_raised(tmp_path, toml_impl):
    (tmp_path / "etc/containerd").mkdir(parents=True)
    (tmp_path / "etc/containerd/config.toml").write_text(
        'version = 2\n[plugins."io.containerd.grpc.v1.cri"\nenable_cdi = true\n')
    ctr = nf.containerd_facts(str(tmp_path), None)
    assert ctr["config_version"] == 2 and ctr["warnings"]


def test_amd_and_intel_from_sysfs():
    facts = nf.gather(fixture("amd-intel"), node_name="n")
    assert facts["vendors"] == ["amd", "intel"]
    amd, intel = facts["accelerators"]
    assert amd["pci_bus_id"] == "0000:05:00.0" and amd["model"] == "gfx942"
    assert amd["device_nodes"] == ["/dev/dri/card1", "/dev/dri/renderD128"]  # one device, two nodes
    assert amd["kernel_driver"] == "amdgpu" and amd["driver_version"] == "6.10.5"
    assert intel["model"] == "Intel device 0x56c0" and intel["kernel_driver"] == "i915"
    assert facts["driver_version"] == "6.10.5"
    assert facts["kernel_modules"] == ["amdgpu", "i915"]


def test_cli_prints_json(capsys):
    assert nf.main(["--root", fixture("nvidia"), "--node-name", "x"]) == 0
    assert '"driver_version": "570.133.20"' in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- module


def test_module_documentation_matches_argument_spec():
    path = os.path.join(REPO, "plugins/modules/accelerator_node_facts.py")
    with open(path) as handle:
        source = handle.read()
    namespace = {}
    exec(compile(source.split("from ansible.module_utils.basic")[0], path, "exec"), namespace)  # docs only
    doc = yaml.safe_load(namespace["DOCUMENTATION"])
    yaml.safe_load(namespace["EXAMPLES"])
    ret = yaml.safe_load(namespace["RETURN"])
    assert set(doc["options"]) == {"root", "node_name", "containerd_config", "run_commands", "cri_exclude_file",
                                   "cri_exclude_runtime"}
    for option in doc["options"]:
        assert '"%s": {"type"' % option in source
    assert set(ret["node_facts"]["contains"]) >= {
        "node_name", "accelerators", "driver_version", "kernel_modules", "container_toolkit_version",
        "cdi_spec_files", "containerd"}


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
