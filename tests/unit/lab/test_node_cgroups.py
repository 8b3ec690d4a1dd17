"""tests/lab/realnodes.py: which libpod cgroups lab-down removes (no podman, no lab: a fake cgroup tree)."""

import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
import realnodes  # noqa: E402

LIVE = "a" * 64
GONE = "b" * 64


def fake_tree(tmp_path, monkeypatch, podman_ps):
    for controller in ("memory", "cpu"):
        for name in ("libpod-" + LIVE, "libpod-conmon-" + LIVE, "libpod-" + GONE, "libpod-conmon-" + GONE):
            os.makedirs(tmp_path / controller / "libpod_parent" / name / "kubelet" / "pod1")
    monkeypatch.setattr(realnodes, "CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr(realnodes.shutil, "which", lambda _name: "/usr/bin/podman")
    monkeypatch.setattr(realnodes, "_run", lambda argv, check=True: podman_ps)


def test_only_cgroups_of_containers_podman_no_longer_has_are_orphans(tmp_path, monkeypatch):
    fake_tree(tmp_path, monkeypatch, subprocess.CompletedProcess([], 0, LIVE + "\n", ""))
    assert realnodes.orphan_cgroup_ids() == {GONE}


def test_nothing_is_an_orphan_when_podman_cannot_list_its_containers(tmp_path, monkeypatch):
    fake_tree(tmp_path, monkeypatch, None)
    assert realnodes.orphan_cgroup_ids() == set()


def test_orphans_are_removed_bottom_up_and_live_containers_kept(tmp_path, monkeypatch):
    fake_tree(tmp_path, monkeypatch, subprocess.CompletedProcess([], 0, LIVE + "\n", ""))
    assert realnodes.remove_container_cgroups(realnodes.orphan_cgroup_ids(), timeout=2) == []
    for controller in ("memory", "cpu"):
        kept = sorted(os.listdir(tmp_path / controller / "libpod_parent"))
        assert kept == ["libpod-" + LIVE, "libpod-conmon-" + LIVE]
