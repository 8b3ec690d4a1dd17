# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance developers
# Apache License 2.0 (see galaxy.yml)
"""Node-side facts: accelerators, drivers, container toolkit, CDI and containerd runtimes.

Runs on the NODE's Python (3.9 or later), so it uses the standard library only. Every reader takes
a `root` so unit tests feed fixture trees instead of the real /proc, /sys and /etc; commands
(nvidia-smi, nvidia-ctk, containerd --version) go through an injectable `run` callable, and with a
root other than "/" no command is run unless a runner is given.

The shape of the result is the "Node facts" contract in docs/architecture.md.

Also a CLI for hosts without Ansible:  python3 node_facts.py [--root /] [--no-commands]
"""

import glob
import json
import os
import re
import shutil
import socket
import subprocess

try:  # Python 3.11+
    import tomllib as _tomllib
except ImportError:  # pragma: no cover - depends on the node's Python
    _tomllib = None

VENDOR_IDS = {"0x10de": "nvidia", "0x1002": "amd", "0x8086": "intel"}

# Kernel modules that belong to an accelerator stack (reported when loaded).
ACCELERATOR_MODULES = (
    "nvidia", "nvidia_uvm", "nvidia_drm", "nvidia_modeset", "nvidia_peermem", "nvidia_fs", "nv_peer_mem",
    "gdrdrv", "amdgpu", "amdkfd", "amdxdna", "i915", "xe", "habanalabs", "intel_vpu", "ivpu",
)

CRI_V2 = ("plugins", "io.containerd.grpc.v1.cri")        # config version 2 (containerd 1.x)
CRI_V3 = ("plugins", "io.containerd.cri.v1.runtime")     # config version 3 (containerd 2.x)
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CDI_DIRS = ("/etc/cdi", "/var/run/cdi", "/run/cdi")


# --------------------------------------------------------------------------------------------
# Files under a root


def _path(root, path):
    return os.path.join(root, path.lstrip("/")) if root not in ("", "/") else path


def _read(root, path, limit=1 << 20):
    try:
        with open(_path(root, path), errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return None


def _glob(root, pattern):
    """Node paths (without the root prefix) matching pattern, sorted."""
    prefix = _path(root, "/")
    found = glob.glob(_path(root, pattern))
    if root in ("", "/"):
        return sorted(found)
    return sorted("/" + os.path.relpath(p, prefix) for p in found)


# --------------------------------------------------------------------------------------------
# Commands


def default_runner(root="/"):
    """A runner that executes commands on this host; None for a fixture root."""
    if root not in ("", "/"):
        return None

    def run(argv):
        exe = shutil.which(argv[0]) or next(
            (p for p in ("/usr/bin/" + argv[0], "/usr/local/bin/" + argv[0], "/usr/sbin/" + argv[0])
             if os.access(p, os.X_OK)), None)
        if exe is None:
            return None
        try:
            proc = subprocess.run([exe] + list(argv[1:]), capture_output=True, timeout=30,
                                  check=False, text=True)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.returncode, proc.stdout, proc.stderr

    return run


def _command(run, argv):
    """stdout of argv when it ran and succeeded, else None. run returns (rc, out, err) or None."""
    if run is None:
        return None
    result = run(argv)
    if not result or result[0] != 0:
        return None
    return result[1]


# --------------------------------------------------------------------------------------------
# Parsers (pure functions of text)


def parse_nvidia_version(text):
    """Driver version from /proc/driver/nvidia/version (proprietary or open kernel module)."""
    if not text:
        return None
    match = re.search(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)*)", text)
    return match.group(1) if match else None


def parse_key_values(text):
    """`Key:  value` lines (e.g. /proc/driver/nvidia/gpus/*/information) into a dict."""
    values = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    return values


NVIDIA_SMI_FIELDS = ("index", "name", "uuid", "pci.bus_id", "driver_version", "memory.total")


def parse_nvidia_smi(text):
    """Rows of `nvidia-smi --query-gpu=<NVIDIA_SMI_FIELDS> --format=csv,noheader,nounits`."""
    gpus = []
    for line in (text or "").splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(NVIDIA_SMI_FIELDS):
            continue
        row = dict(zip(NVIDIA_SMI_FIELDS, cells))
        memory = row["memory.total"]
        gpus.append({
            "vendor": "nvidia",
            "index": int(row["index"]) if row["index"].isdigit() else None,
            "model": row["name"],
            "uuid": row["uuid"],
            "pci_bus_id": _normalise_bus_id(row["pci.bus_id"]),
            "driver_version": row["driver_version"],
            "memory_mib": int(memory) if memory.isdigit() else None,
        })
    return gpus


def _normalise_bus_id(bus_id):
    """nvidia-smi prints 00000000:18:00.0, sysfs 0000:18:00.0: keep the 4-digit PCI domain."""
    if not bus_id:
        return bus_id
    bus_id = bus_id.strip().lower()
    domain, sep, rest = bus_id.partition(":")
    if sep and len(domain) > 4:
        domain = domain[-4:]
    return domain + sep + rest


def parse_ctk_version(text):
    """`nvidia-ctk --version` / `nvidia-container-cli --version` / `nvidia-container-toolkit --version`."""
    if not text:
        return None
    for pattern in (r"[Tt]oolkit\s+CLI\s+version\s+v?(\d+\.\d+\.\d+\S*)", r"cli-version:\s*v?(\d+\.\d+\.\d+\S*)",
                    r"version\s+v?(\d+\.\d+\.\d+\S*)"):
        match = re.search(pattern, text)
        if match:
            return match.group(1)
    return None


def parse_containerd_version(text):
    """`containerd --version`: 'containerd <package> <version> <revision>' -> '1.6.20'."""
    if not text:
        return None
    fields = text.split()
    candidates = fields[2:3] + fields
    for field in candidates:
        match = re.match(r"v?(\d+\.\d+\.\d+)", field)
        if match:
            return match.group(1)
    return None


def parse_modules(text, wanted=ACCELERATOR_MODULES):
    loaded = [line.split()[0] for line in (text or "").splitlines() if line.strip()]
    return [name for name in loaded if wanted is None or name in wanted]


# --------------------------------------------------------------------------------------------
# TOML: tomllib where the node has it (3.11+), else a small tolerant reader that covers what
# containerd configs use (tables, dotted/quoted keys, strings, numbers, booleans, arrays,
# inline tables). It never raises on odd lines; it records them in `errors`.


class TomlError(ValueError):
    pass


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _parse_key(text, pos):
    """Dotted key starting at pos -> (list of parts, new pos)."""
    parts = []
    while True:
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] in "\"'":
            value, pos = _parse_string(text, pos)
            parts.append(value)
        else:
            match = _BARE_KEY.match(text, pos)
            if not match:
                raise TomlError("bad key at %r" % text[pos:pos + 20])
            parts.append(match.group(0))
            pos = match.end()
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] == ".":
            pos += 1
            continue
        return parts, pos


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "\\": "\\", "/": "/"}


def _parse_string(text, pos):
    quote = text[pos]
    if text.startswith(quote * 3, pos):
        end = text.find(quote * 3, pos + 3)
        if end < 0:
            raise TomlError("unterminated multi-line string")
        body = text[pos + 3:end]
        if body.startswith("\n"):
            body = body[1:]
        if quote == '"':
            body = _unescape(body)
        return body, end + 3
    if quote == "'":
        end = text.find("'", pos + 1)
        if end < 0 or "\n" in text[pos:end]:
            raise TomlError("unterminated string")
        return text[pos + 1:end], end + 1
    out = []
    i = pos + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u" or nxt == "U":
                width = 4 if nxt == "u" else 8
                out.append(chr(int(text[i + 2:i + 2 + width], 16)))
                i += 2 + width
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        if char == "\n":
            break
        out.append(char)
        i += 1
    raise TomlError("unterminated string")


def _unescape(body):
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _skip_ws(text, pos, newlines=False):
    while pos < len(text):
        char = text[pos]
        if char in " \t" or (newlines and char in "\r\n"):
            pos += 1
        elif newlines and char == "#":
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end
        else:
            break
    return pos


_SCALAR = re.compile(r"[^\s,\]\}#]+")


def _parse_value(text, pos):
    pos = _skip_ws(text, pos)
    if pos >= len(text):
        raise TomlError("missing value")
    char = text[pos]
    if char in "\"'":
        return _parse_string(text, pos)
    if char == "[":
        items = []
        pos += 1
        while True:
            pos = _skip_ws(text, pos, newlines=True)
            if pos < len(text) and text[pos] == "]":
                return items, pos + 1
            value, pos = _parse_value(text, pos)
            items.append(value)
            pos = _skip_ws(text, pos, newlines=True)
            if pos < len(text) and text[pos] == ",":
                pos += 1
            elif pos < len(text) and text[pos] == "]":
                return items, pos + 1
            else:
                raise TomlError("bad array")
    if char == "{":
        table = {}
        pos += 1
        while True:
            pos = _skip_ws(text, pos)
            if pos < len(text) and text[pos] == "}":
                return table, pos + 1
            keys, pos = _parse_key(text, pos)
            pos = _skip_ws(text, pos)
            if pos >= len(text) or text[pos] != "=":
                raise TomlError("bad inline table")
            value, pos = _parse_value(text, pos + 1)
            _assign(table, keys, value)
            pos = _skip_ws(text, pos)
            if pos < len(text) and text[pos] == ",":
                pos += 1
    match = _SCALAR.match(text, pos)
    if not match:
        raise TomlError("bad value")
    token = match.group(0)
    if token == "true":
        return True, match.end()
    if token == "false":
        return False, match.end()
    number = token.replace("_", "")
    try:
        return int(number, 0) if not re.match(r"^[+-]?0\d", number) else int(number, 10), match.end()
    except ValueError:
        pass
    try:
        return float(number), match.end()
    except ValueError:
        return token, match.end()  # dates and the like: kept as text


def _assign(table, keys, value):
    for key in keys[:-1]:
        table = table.setdefault(key, {})
        if isinstance(table, list):
            table = table[-1]
        if not isinstance(table, dict):
            raise TomlError("key %s is not a table" % key)
    table[keys[-1]] = value


def parse_toml_fallback(text, errors=None):
    """Tolerant TOML reader for Pythons without tomllib. Bad lines are skipped and reported."""
    errors = [] if errors is None else errors
    data = {}
    current = data
    pos = 0
    while pos < len(text):
        pos = _skip_ws(text, pos)
        if pos >= len(text):
            break
        char = text[pos]
        start = pos
        try:
            if char in "\r\n":
                pos += 1
                continue
            if char == "#":
                end = text.find("\n", pos)
                pos = len(text) if end < 0 else end
                continue
            if char == "[":
                array = text.startswith("[[", pos)
                keys, pos = _parse_key(text, pos + (2 if array else 1))
                close = "]]" if array else "]"
                if not text.startswith(close, pos):
                    raise TomlError("bad table header")
                pos += len(close)
                parent = data
                for key in keys[:-1]:
                    parent = parent.setdefault(key, {})
                    if isinstance(parent, list):
                        parent = parent[-1]
                if array:
                    current = {}
                    parent.setdefault(keys[-1], []).append(current)
                else:
                    current = parent.setdefault(keys[-1], {})
                    if isinstance(current, list):
                        current = current[-1]
            else:
                keys, pos = _parse_key(text, pos)
                pos = _skip_ws(text, pos)
                if pos >= len(text) or text[pos] != "=":
                    raise TomlError("expected '='")
                value, pos = _parse_value(text, pos + 1)
                _assign(current, keys, value)
            pos = _skip_ws(text, pos)
            if pos < len(text) and text[pos] == "#":
                end = text.find("\n", pos)
                pos = len(text) if end < 0 else end
            if pos < len(text) and text[pos] not in "\r\n":
                raise TomlError("trailing characters")
        except (TomlError, ValueError, IndexError) as exc:
            errors.append("line %d: %s" % (1 + text.count("\n", 0, start), exc))
            end = text.find("\n", max(pos, start))
            pos = len(text) if end < 0 else end + 1
    return data


def parse_toml(text, errors=None):
    """tomllib when available; the tolerant reader otherwise or when tomllib rejects the file."""
    errors = [] if errors is None else errors
    if _tomllib is not None:
        try:
            return _tomllib.loads(text)
        except ValueError as exc:
            errors.append("tomllib: %s (read tolerantly instead)" % exc)
    return parse_toml_fallback(text, errors)


_HEADER = re.compile(r"^\s*\[(\[)?")


def parse_table_header(line):
    """Key path of a TOML table header line (`[a."b".c]` or `[[a.b]]`), else None."""
    match = _HEADER.match(line)
    if not match:
        return None
    try:
        keys, pos = _parse_key(line, match.end())
    except TomlError:
        return None
    close = "]]" if match.group(1) else "]"
    if not line.startswith(close, pos):
        return None
    rest = line[pos + len(close):].strip()
    return keys if not rest or rest.startswith("#") else None


def plugin_tables(text, plugin, exclude=()):
    """The lines of every table under plugins.<plugin> in a TOML text, header lines included, except
    the tables under any key path in `exclude` (tuples relative to the plugin, e.g.
    ("containerd", "runtimes", "runsc")). None when the text has no such table.

    Used because containerd 1.x replaces a whole plugin section when an imported file names it
    (containerd/containerd#5837), so a drop-in must carry the section it overrides."""
    prefix = ["plugins", plugin]
    out, keep, found = [], False, False
    for line in (text or "").splitlines():
        keys = parse_table_header(line)
        if keys is not None:
            keep = keys[:2] == prefix and not any(tuple(keys[2:2 + len(e)]) == tuple(e) for e in exclude)
            found = found or keys[:2] == prefix
        if keep:
            out.append(line.rstrip())
    if not found:
        return None
    text = "\n".join(out).strip("\n")
    return text + "\n" if text else ""


def _dig(data, keys):
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


# --------------------------------------------------------------------------------------------
# Gatherers


def nvidia_gpus(root, run):
    gpus = []
    version_text = _read(root, "/proc/driver/nvidia/version")
    driver = parse_nvidia_version(version_text)
    for info_path in _glob(root, "/proc/driver/nvidia/gpus/*/information"):
        info = parse_key_values(_read(root, info_path))
        bus_id = info.get("Bus Location") or os.path.basename(os.path.dirname(info_path))
        gpus.append({
            "vendor": "nvidia",
            "model": info.get("Model"),
            "uuid": info.get("GPU UUID"),
            "pci_bus_id": _normalise_bus_id(bus_id),
            "driver_version": driver,
            "minor": int(info["Device Minor"]) if info.get("Device Minor", "").isdigit() else None,
            "source": "procfs",
        })
    smi = parse_nvidia_smi(_command(run, ["nvidia-smi", "--query-gpu=" + ",".join(NVIDIA_SMI_FIELDS),
                                          "--format=csv,noheader,nounits"]))
    for row in smi:
        same = next((g for g in gpus if (row["uuid"] and g["uuid"] == row["uuid"])
                     or (row["pci_bus_id"] and g["pci_bus_id"] == row["pci_bus_id"])), None)
        if same is None:
            row["source"] = "nvidia-smi"
            gpus.append(row)
        else:
            for key, value in row.items():
                if value is not None and (same.get(key) is None or key in ("model", "driver_version")):
                    same[key] = value
            same["source"] = "procfs+nvidia-smi"
        driver = driver or row["driver_version"]
    return gpus, driver


def pci_display_devices(root):
    """AMD and Intel devices from DRM (cards and render nodes), one entry per PCI address."""
    devices = {}
    for node in _glob(root, "/sys/class/drm/card*") + _glob(root, "/sys/class/drm/renderD*"):
        name = os.path.basename(node)
        if "-" in name:  # connectors like card0-HDMI-A-1
            continue
        vendor = VENDOR_IDS.get((_read(root, node + "/device/vendor") or "").strip().lower())
        if vendor not in ("amd", "intel"):
            continue
        uevent = parse_key_values((_read(root, node + "/device/uevent") or "").replace("=", ":"))
        slot = uevent.get("PCI_SLOT_NAME") or name
        entry = devices.setdefault(slot, {
            "vendor": vendor,
            "model": None,
            "device_id": (_read(root, node + "/device/device") or "").strip() or None,
            "pci_bus_id": slot if uevent.get("PCI_SLOT_NAME") else None,
            "kernel_driver": uevent.get("DRIVER"),
            "pci_class": uevent.get("PCI_CLASS"),
            "driver_version": None,
            "device_nodes": [],
            "source": "sysfs",
        })
        entry["device_nodes"].append("/dev/dri/" + name)
    # AMD KFD topology names the GPU (e.g. gfx942); gpu_id 0 is a CPU node.
    kfd = []
    for node in _glob(root, "/sys/class/kfd/kfd/topology/nodes/*"):
        if (_read(root, node + "/gpu_id") or "0").strip() in ("", "0"):
            continue
        kfd.append((_read(root, node + "/name") or "").strip() or None)
    amd = [d for d in devices.values() if d["vendor"] == "amd"]
    for device, name in zip(amd, kfd):
        device["model"] = name
    for vendor, module in (("amd", "amdgpu"), ("intel", "i915"), ("intel", "xe")):
        version = (_read(root, "/sys/module/%s/version" % module) or "").strip() or None
        for device in devices.values():
            if device["vendor"] == vendor and device["kernel_driver"] == module:
                device["driver_version"] = version
    if not amd and kfd:  # KFD without DRM in sysfs (odd, but cheap to report)
        for name in kfd:
            devices["kfd:%s" % len(devices)] = {"vendor": "amd", "model": name, "source": "kfd"}
    for device in devices.values():
        if device.get("model") is None and device.get("device_id"):
            device["model"] = "%s device %s" % (device["vendor"].upper() if device["vendor"] == "amd"
                                                else device["vendor"].capitalize(), device["device_id"])
    return [devices[key] for key in sorted(devices)]


def container_toolkit_version(run):
    for argv in (["nvidia-ctk", "--version"], ["nvidia-container-cli", "--version"],
                 ["nvidia-container-toolkit", "--version"]):
        version = parse_ctk_version(_command(run, argv))
        if version:
            return version
    return None


def _cdi_kind(text, is_json):
    """The `kind` of a CDI spec (vendor/class), without a YAML library on the node."""
    if is_json:
        try:
            kind = json.loads(text).get("kind")
            return kind if isinstance(kind, str) else None
        except (ValueError, AttributeError):
            return None
    match = re.search(r"""^kind\s*:\s*["']?([^"'\s#]+)""", text, re.MULTILINE)
    return match.group(1) if match else None


def cdi_specs(root):
    files, kinds, seen = [], [], set()
    for directory in CDI_DIRS:
        real_dir = os.path.realpath(_path(root, directory))
        for path in _glob(root, directory + "/*"):
            if not path.endswith((".yaml", ".yml", ".json")):
                continue
            real = os.path.join(real_dir, os.path.basename(path))
            if real in seen:
                continue
            seen.add(real)
            files.append(path)
            kind = _cdi_kind(_read(root, path) or "", path.endswith(".json"))
            if kind and kind not in kinds:
                kinds.append(kind)
    return files, kinds


def _imports(root, main_path, data):
    base = os.path.dirname(main_path)
    paths = []
    for pattern in data.get("imports") or []:
        if not isinstance(pattern, str):
            continue
        pattern = pattern if pattern.startswith("/") else os.path.join(base, pattern)
        paths.extend(p for p in _glob(root, pattern) if p != main_path and p not in paths)
    return paths


def containerd_facts(root, run, config_path=CONTAINERD_CONFIG, cri_exclude_file=None, cri_exclude_runtime=None):
    version = parse_containerd_version(_command(run, ["containerd", "--version"]))
    major = int(version.split(".")[0]) if version else None
    main_text = _read(root, config_path)
    binary = any(os.access(_path(root, d + "/containerd"), os.X_OK)
                 for d in ("/usr/bin", "/usr/local/bin", "/usr/sbin"))
    facts = {
        "present": bool(version or main_text is not None or binary),
        "version": version,
        "config_path": config_path if main_text is not None else None,
        "config_version": None,
        "config_files": [],
        "imports": [],
        "import_patterns": [],
        "cdi_enabled": None,
        "runtimes": [],
        "default_runtime": None,
        "runtime_details": {},
        "cri_tables": None,
        "warnings": [],
    }
    if not facts["present"]:
        return facts
    errors = []
    main = parse_toml(main_text, errors) if main_text is not None else {}
    if main_text is None:
        # No config file: containerd runs on built-in defaults (v2 schema on 1.x, v3 on 2.x).
        main_version = {1: 2, 2: 3}.get(major)
    else:
        main_version = main.get("version", 1)
        main_version = main_version if isinstance(main_version, int) else None
        facts["config_files"].append(config_path)
    facts["config_version"] = main_version
    facts["import_patterns"] = [p for p in main.get("imports") or [] if isinstance(p, str)]
    files = [(config_path, main, main_version)]
    for path in _imports(root, config_path, main):
        data = parse_toml(_read(root, path) or "", errors)
        file_version = data.get("version", main_version)
        files.append((path, data, file_version if isinstance(file_version, int) else main_version))
        facts["imports"].append(path)
        facts["config_files"].append(path)

    # containerd 1.x replaces a whole plugin section on import (containerd/containerd#5837): the
    # effective version-2 CRI section is the one of the LAST file that has it. A drop-in that adds a
    # runtime must carry a copy of it (minus that runtime), which is what cri_tables gives.
    # `runtimes` are the runtime names the other files define, as containerd will merge them: a
    # version-2 file on containerd 1.x replaces the section, anything else merges into it.
    exclude = [("containerd", "runtimes", cri_exclude_runtime)] if cri_exclude_runtime else []
    cri = {"source": None, "text": None, "runtimes": []}
    for path, data, file_version in files:
        if path == cri_exclude_file:
            continue
        key = CRI_V3 if file_version == 3 else CRI_V2
        names = [n for n in (_dig(data, key + ("containerd", "runtimes")) or {}) if n != cri_exclude_runtime]
        tables = plugin_tables(_read(root, path), CRI_V2[1], exclude) if file_version == 2 else None
        if tables is not None:
            cri.update(source=path, text=tables)
        if tables is not None and (major is None or major < 2):
            cri["runtimes"] = sorted(names)
        else:
            cri["runtimes"] = sorted(set(cri["runtimes"]) | set(names))
    facts["cri_tables"] = cri

    cdi = None
    default_runtime = None
    runtimes = {}
    for path, data, file_version in files:
        effective = CRI_V3 if file_version == 3 else CRI_V2
        other = CRI_V2 if effective == CRI_V3 else CRI_V3
        section = _dig(data, effective) or {}
        if section and file_version == 2 and major is not None and major < 2 and path != config_path:
            # containerd 1.x: an imported file that names the CRI plugin replaces its whole section.
            names = set((section.get("containerd") or {}).get("runtimes") or {})
            lost = sorted(set(runtimes) - names) + (["enable_cdi"] if cdi is not None and "enable_cdi" not in section
                                                    else [])
            if lost:
                facts["warnings"].append(
                    "%s replaces the whole [plugins.\"%s\"] section of the files before it, dropping %s (containerd "
                    "%s merges imports per plugin)" % (path, CRI_V2[1], ", ".join(lost), version))
            cdi, default_runtime, runtimes = None, None, {}
        if _dig(data, other + ("containerd", "runtimes")) or _dig(data, other + ("enable_cdi",)) is not None:
            facts["warnings"].append(
                "%s: [%s] tables are ignored under config version %s" % (path, ".".join(other), file_version))
        if "enable_cdi" in section:
            cdi = bool(section["enable_cdi"])
        ctr = section.get("containerd") or {}
        if ctr.get("default_runtime_name"):
            default_runtime = ctr["default_runtime_name"]
        for name, spec in (ctr.get("runtimes") or {}).items():
            spec = spec if isinstance(spec, dict) else {}
            detail = runtimes.setdefault(name, {"source": path})
            detail["source"] = path
            for key in ("runtime_type", "runtime_path", "pod_annotations"):
                if key in spec:
                    detail[key] = spec[key]
            options = spec.get("options") or {}
            for key in ("BinaryName", "ConfigPath", "TypeUrl", "SystemdCgroup"):
                if key in options:
                    detail[key] = options[key]
    if cdi is None and major is not None:
        cdi = major >= 2  # built-in default: off on 1.x, on since 2.0
    facts["cdi_enabled"] = cdi
    facts["default_runtime"] = default_runtime or "runc"
    if facts["default_runtime"] not in runtimes:
        if runtimes and facts["default_runtime"] == "runc" and major is not None and major < 2:
            # seen on 1.6: naming any runtime drops the built-in runc, and the CRI plugin needs its default runtime
            facts["warnings"].append("default runtime runc is not defined next to %s: containerd %s then has no "
                                     "runc runtime" % (", ".join(sorted(runtimes)), version))
        else:
            runtimes[facts["default_runtime"]] = {"source": "built-in default"}
    facts["runtimes"] = sorted(runtimes)
    facts["runtime_details"] = runtimes
    facts["warnings"].extend(errors)
    return facts


def gather(root="/", run=None, node_name=None, containerd_config=CONTAINERD_CONFIG, commands=True,
           cri_exclude_file=None, cri_exclude_runtime=None):
    """All node facts (docs/architecture.md, 'Node facts')."""
    if run is None and commands:
        run = default_runner(root)
    if not commands:
        run = None
    nvidia, nvidia_driver = nvidia_gpus(root, run)
    others = pci_display_devices(root)
    accelerators = nvidia + others
    driver = nvidia_driver or next((a.get("driver_version") for a in others if a.get("driver_version")), None)
    cdi_files, cdi_kinds = cdi_specs(root)
    return {
        "node_name": node_name or socket.gethostname().lower(),
        "accelerators": accelerators,
        "accelerator_count": len(accelerators),
        "vendors": sorted({a["vendor"] for a in accelerators}),
        "driver_version": driver,
        "kernel_modules": parse_modules(_read(root, "/proc/modules")),
        "container_toolkit_version": container_toolkit_version(run),
        "cdi_spec_files": cdi_files,
        "cdi_kinds": cdi_kinds,
        "containerd": containerd_facts(root, run, containerd_config, cri_exclude_file, cri_exclude_runtime),
    }


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Print accelerator/containerd node facts as JSON.")
    parser.add_argument("--root", default="/")
    parser.add_argument("--node-name")
    parser.add_argument("--containerd-config", default=CONTAINERD_CONFIG)
    parser.add_argument("--no-commands", action="store_true", help="read files only, run no binaries")
    args = parser.parse_args(argv)
    facts = gather(args.root, node_name=args.node_name, containerd_config=args.containerd_config,
                   commands=not args.no_commands)
    print(json.dumps(facts, indent=2, sort_keys=True))  # pylint: disable=ansible-bad-function  # command line
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
