#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance developers
# Apache License 2.0 (see galaxy.yml)

DOCUMENTATION = r"""
---
module: accelerator_node_facts
short_description: Gather accelerator, driver, CDI and containerd runtime facts on a node
version_added: 0.1.0
description:
  - Runs on a Kubernetes node (not on the controller) and reports what the node offers to the
    accelerator and sandbox checks (C(driver_runtime_management), C(workload_sandboxing)).
  - B(NVIDIA) GPUs from C(/proc/driver/nvidia/version) and C(/proc/driver/nvidia/gpus/*/information),
    merged with C(nvidia-smi --query-gpu) when that binary is present.
  - B(AMD) GPUs from DRM devices with PCI vendor C(0x1002) (C(/sys/class/drm)) and the KFD topology
    (C(/sys/class/kfd)); B(Intel) GPUs from DRM cards and render nodes with vendor C(0x8086).
  - Loaded accelerator kernel modules from C(/proc/modules); NVIDIA Container Toolkit version from
    C(nvidia-ctk --version) or C(nvidia-container-cli --version).
  - CDI specification files in C(/etc/cdi), C(/var/run/cdi) and C(/run/cdi).
  - containerd version (C(containerd --version)), config version (the main config's C(version =)),
    its C(imports) drop-ins, whether CDI is enabled, and which runtime handlers the CRI plugin
    knows. For each file the table that its config version reads is used
    (C(plugins."io.containerd.grpc.v1.cri") for version 2, C(plugins."io.containerd.cri.v1.runtime")
    for version 3); tables under the other key are reported in C(containerd.warnings) because
    containerd silently ignores them.
  - Reads only; never changes the node. TOML is read with C(tomllib) when the node's Python has it
    (3.11 and later) and with a small tolerant reader otherwise.
  - Without accelerators the result is clean (empty lists, C(null) versions), not an error.
author:
  - k8s_ai.conformance developers (@k8s-ai-conformance)
options:
  root:
    description:
      - Root of the file system to read (C(/proc), C(/sys), C(/etc) and C(/run) below it).
      - Anything other than C(/) also disables running commands, since binaries under another root
        are not this node's; use it for chroots, mounted images and tests.
    type: path
    default: /
  node_name:
    description:
      - Kubernetes node name to report. Defaults to the host name, lower-cased.
    type: str
  containerd_config:
    description:
      - Main containerd configuration file (its C(imports) are followed).
    type: path
    default: /etc/containerd/config.toml
  cri_exclude_file:
    description:
      - For RV(node_facts.containerd.cri_tables), ignore this file (a drop-in about to be rewritten).
    type: path
  cri_exclude_runtime:
    description:
      - For RV(node_facts.containerd.cri_tables), leave out the tables of this runtime handler.
    type: str
  run_commands:
    description:
      - Run C(nvidia-smi), C(nvidia-ctk)/C(nvidia-container-cli) and C(containerd --version) when
        present. With V(false) only files are read.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Nothing is changed in any mode; facts are gathered in check mode too.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
notes:
  - The verify role runs this on the hosts of the inventory group C(accelerator_nodes) and passes
    the results, keyed by C(node_name), to the checks as C(node_facts).
seealso:
  - name: Container Device Interface
    description: CDI specification.
    link: https://github.com/cncf-tags/container-device-interface
"""

EXAMPLES = r"""
- name: Gather accelerator facts on GPU nodes
  k8s_ai.conformance.accelerator_node_facts:
  register: node

- name: Show the driver and the runtimes containerd knows
  ansible.builtin.debug:
    msg: "{{ node.node_facts.driver_version }} / {{ node.node_facts.containerd.runtimes }}"

- name: Read a mounted node image without running anything
  k8s_ai.conformance.accelerator_node_facts:
    root: /mnt/node-image
    node_name: gpu-node-0
"""

RETURN = r"""
node_facts:
  description: Facts of this node (schema "Node facts" in docs/architecture.md). Also set as the
    host fact C(accelerator_node_facts).
  returned: always
  type: dict
  contains:
    node_name:
      description: Kubernetes node name (the host name unless O(node_name) is given).
      type: str
      sample: gpu-node-0
    accelerators:
      description: One entry per device. C(vendor) is C(nvidia), C(amd) or C(intel); NVIDIA entries carry
        C(model), C(uuid), C(pci_bus_id), C(driver_version), C(minor), and C(index) and C(memory_mib)
        when nvidia-smi ran; AMD/Intel entries carry C(device_id), C(kernel_driver), C(pci_class),
        C(device_nodes). C(source) tells where the entry came from.
      type: list
      elements: dict
      sample:
        - vendor: nvidia
          model: NVIDIA H100 80GB HBM3
          uuid: GPU-3b2c1a5e-8f0d-4c1e-9a7b-2d6f5e4c3b2a
          pci_bus_id: "0000:18:00.0"
          driver_version: 570.133.20
          source: procfs+nvidia-smi
    accelerator_count:
      description: Number of entries in C(accelerators).
      type: int
      sample: 8
    vendors:
      description: Vendors seen, sorted.
      type: list
      elements: str
      sample: [nvidia]
    driver_version:
      description: Accelerator driver version (NVIDIA kernel module version, else the AMD/Intel module
        version when the kernel exposes one); null without accelerators.
      type: str
      sample: 570.133.20
    kernel_modules:
      description: Loaded accelerator-related kernel modules (nvidia*, amdgpu, i915, xe, habanalabs, ...).
      type: list
      elements: str
      sample: [nvidia_uvm, nvidia_drm, nvidia_modeset, nvidia]
    container_toolkit_version:
      description: NVIDIA Container Toolkit version, or null when not installed.
      type: str
      sample: 1.17.5
    cdi_spec_files:
      description: CDI specification files found.
      type: list
      elements: str
      sample: [/etc/cdi/nvidia.yaml]
    cdi_kinds:
      description: Device kinds declared by those specs.
      type: list
      elements: str
      sample: [nvidia.com/gpu]
    containerd:
      description: containerd facts.
      type: dict
      contains:
        present:
          description: containerd binary or configuration found.
          type: bool
        version:
          description: containerd version (from C(containerd --version)); null when not run.
          type: str
          sample: 1.6.20
        config_version:
          description: Config schema version of the main config (2 for containerd 1.x, 3 for 2.x); without a
            config file, the version the binary's built-in defaults use.
          type: int
          sample: 2
        config_path:
          description: Main config file, null when absent.
          type: str
        config_files:
          description: Main config and the drop-ins it imports, in merge order.
          type: list
          elements: str
        imports:
          description: Drop-in files imported by the main config.
          type: list
          elements: str
        import_patterns:
          description: The main config's C(imports) entries as written (globs, maybe relative).
          type: list
          elements: str
        cdi_enabled:
          description: C(enable_cdi) of the CRI plugin (or containerd's built-in default for its version);
            null when neither is known.
          type: bool
        runtimes:
          description: Runtime handler names the CRI plugin knows, including the default runtime. On containerd 1.x an
            imported file that names the CRI plugin replaces the section of the files before it (as containerd does),
            and the built-in C(runc) is not assumed once other runtimes are named.
          type: list
          elements: str
          sample: [runc, runsc]
        default_runtime:
          description: Default runtime handler name.
          type: str
          sample: runc
        runtime_details:
          description: Per handler, C(runtime_type), C(BinaryName), C(ConfigPath) etc. and the file that set it.
          type: dict
        cri_tables:
          description:
            - For config version 2, the text of the CRI plugin tables (C(plugins."io.containerd.grpc.v1.cri"...)) of the
              file whose section containerd 1.x uses (the last file, main config first then imports, that has one;
              containerd 1.x replaces a whole plugin section on import), with C(source); both null when no file has one.
            - C(runtimes) lists the runtime handlers the files other than O(cri_exclude_file) define, merged the way the
              installed containerd merges them (so a drop-in knows whether it must also define the default C(runc),
              which containerd drops from its defaults once a config names any runtime).
            - A drop-in that adds a runtime on containerd 1.x must carry this copy, or it wipes the CRI settings of the
              main config (the gvisor role does that).
          type: dict
        warnings:
          description: Tables containerd ignores (version mismatch), settings an import drops (containerd 1.x), a
            missing default runtime, and unreadable config lines.
          type: list
          elements: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.node_facts import gather  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "default": "/"},
            "node_name": {"type": "str"},
            "containerd_config": {"type": "path", "default": "/etc/containerd/config.toml"},
            "run_commands": {"type": "bool", "default": True},
            "cri_exclude_file": {"type": "path"},
            "cri_exclude_runtime": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params

    def run(argv):
        exe = module.get_bin_path(argv[0], opt_dirs=["/usr/local/bin", "/usr/sbin", "/sbin"])
        if exe is None:
            return None
        return module.run_command([exe] + argv[1:])

    local_root = params["root"] in ("/", "")
    facts = gather(
        root=params["root"],
        run=run if (params["run_commands"] and local_root) else None,
        node_name=params["node_name"],
        containerd_config=params["containerd_config"],
        commands=params["run_commands"] and local_root,
        cri_exclude_file=params["cri_exclude_file"],
        cri_exclude_runtime=params["cri_exclude_runtime"],
    )
    module.exit_json(changed=False, node_facts=facts, ansible_facts={"accelerator_node_facts": facts})


if __name__ == "__main__":
    main()
