"""Helpers of the offline role tests: chart archives, a file:// mirror with SHA256SUMS, one ansible-playbook run
whose cases each end in a JSON file (facts they dump, or the message of the task that failed)."""

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
# Upstream reference data (values.yaml / Chart.yaml of each chart version): read, never shipped in the project.
UPSTREAM = os.environ.get("K8S_AI_UPSTREAM_DIR", os.path.join(REPO, "..", "shared", "upstream"))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

# Where each Helm role finds its chart on a mirror (<mirror>/<upstream host>/<upstream path>), by reference chart.
CHART_ROLES = {
    "dcgm-exporter": ("accelerator_metrics", "nvidia.github.io/dcgm-exporter/helm-charts/dcgm-exporter-{v}.tgz"),
    "opentelemetry-collector": (
        "otel_collector",
        "github.com/open-telemetry/opentelemetry-helm-charts/releases/download/opentelemetry-collector-{v}/"
        "opentelemetry-collector-{v}.tgz",
    ),
    "prometheus-adapter": (
        "metrics_adapter",
        "github.com/prometheus-community/helm-charts/releases/download/prometheus-adapter-{v}/prometheus-adapter-{v}.tgz",
    ),
    "nvidia-dra-driver-gpu": ("dra_driver", "helm.ngc.nvidia.com/nvidia/charts/nvidia-dra-driver-gpu-{v}.tgz"),
    "dra-driver-nvidia-gpu": ("dra_driver", "registry.k8s.io/dra-driver-nvidia/charts/dra-driver-nvidia-gpu-{v}.tgz"),
}


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def load_env(path):
    out = {}
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                name, value = line.split("=", 1)
                out[name.strip()] = value.strip().strip('"')
    return out


def defaults(role):
    return load(os.path.join(REPO, "roles", role, "defaults", "main.yml"))


def reference_versions(chart):
    base = os.path.join(UPSTREAM, "charts", chart)
    if not os.path.isdir(base):
        return []
    return sorted(v for v in os.listdir(base) if os.path.exists(os.path.join(base, v, "values.yaml")))


def reference_file(chart, version, name):
    with open(os.path.join(UPSTREAM, "charts", chart, version, name), "rb") as handle:
        return handle.read()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def chart_archive(name, files):
    """A chart .tgz: files maps paths inside the chart (values.yaml, templates/x.tpl, crds/y.yaml) to bytes/str."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, content in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo("%s/%s" % (name, member))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def reference_chart(chart, version, templates=None, crds=None):
    """The chart archive of a reference version: its real values.yaml and Chart.yaml, plus stand-in templates."""
    files = {"values.yaml": reference_file(chart, version, "values.yaml")}
    chart_yaml = os.path.join(UPSTREAM, "charts", chart, version, "Chart.yaml")
    if os.path.exists(chart_yaml):
        files["Chart.yaml"] = reference_file(chart, version, "Chart.yaml")
    else:
        files["Chart.yaml"] = "apiVersion: v2\nname: %s\nversion: %s\n" % (chart, version)
    for path, text in (templates or {}).items():
        files["templates/" + path] = text
    for path, text in (crds or {}).items():
        files["crds/" + path] = text
    # A subchart's values must not count as the chart's own.
    files["charts/sub/values.yaml"] = "subchartOnly: true\n"
    files["charts/sub/templates/x.yaml"] = "{{ .Values.subchartTemplateOnly }}\n"
    return chart_archive(chart, files)


def publish(root, rel, data, listed=True):
    """Write root/rel; list it in the SHA256SUMS of its directory (as tests/lab/mirror/build.py does)."""
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
    sums = os.path.join(os.path.dirname(path), "SHA256SUMS")
    listing = {}
    if os.path.exists(sums):
        with open(sums) as handle:
            for line in handle:
                if line.strip():
                    digest, name = line.split(None, 1)
                    listing[name.strip()] = digest
    if listed:
        listing[os.path.basename(path)] = sha256(data.encode() if isinstance(data, str) else data)
    with open(sums, "w") as handle:
        handle.write("".join("%s  %s\n" % (digest, name) for name, digest in sorted(listing.items())))
    return path


def fake_helm(path, version="v3.14.2+g1234567", charts_dir="", list_all=True):
    """A stand-in helm: `version --short` prints version; `pull oci://.../NAME --version V --destination D` copies
    charts_dir/NAME-V.tgz into D (what helm pull writes); with list_all=False, `list --all` is refused as Helm 4
    (4.0-4.3, measured with 4.3.2) refuses it. Every call is appended to <path>.log."""
    refuse = '  list) case " $* " in *" --all "*) echo "Error: unknown flag: --all" >&2; exit 1 ;; esac ;;\n'
    with open(path, "w") as handle:
        handle.write(
            "#!/bin/sh\n"
            'echo "$@" >> "$0.log"\n'
            'case "$1" in\n'
            "  version) echo '%s' ;;\n"
            '  pull) name=$(basename "$2"); mkdir -p "$6" && cp "%s/$name-$4.tgz" "$6/" ;;\n'
            "%s"
            '  *) echo "fake helm: $*" >&2; exit 2 ;;\n'
            "esac\n" % (version, charts_dir, "" if list_all else refuse)
        )
    os.chmod(path, 0o755)
    return path


def include(role, tasks_from, **extra):
    task = {"ansible.builtin.include_role": {"name": role, "tasks_from": tasks_from}}
    if extra:
        task["vars"] = extra
    return task


def dump(out, name, expression):
    return {
        "ansible.builtin.copy": {
            "content": "{{ %s | to_json }}" % expression,
            "dest": "%s/%s.json" % (out, name),
            "mode": "0644",
        }
    }


def case(out, name, tasks, dumps=None):
    """A block: tasks, then {name}.json: {'ok': true, <key>: <value>...}, or {'ok': false, 'msg': ...}."""
    dumps = dumps or {}
    body = "{" + ", ".join(["'ok': true"] + ["%r: (%s)" % (k, v) for k, v in dumps.items()]) + "}"
    return {
        "name": "case " + name,
        "block": tasks + [dump(out, name, body)],
        "rescue": [
            dump(out, name, "{'ok': false, 'msg': ansible_failed_result.msg | default(ansible_failed_result) | string}")
        ],
    }


def render_cases(tmp, role, tasks_from, fact, cases, check_cases=0):
    """Render a role's manifests task file once per case ({name: extra vars}) in one playbook run; {name: result}
    where result is {'ok': true, 'objects': <fact>} or {'ok': false, 'msg': ...}. check_cases: also run the first
    that many cases in check mode (its completed process under '_check')."""
    out = os.path.join(str(tmp), "out")
    os.makedirs(out)
    tasks = [case(out, name, [include(role, tasks_from, **extra)], {"objects": fact}) for name, extra in cases.items()]
    result = run(tmp, tasks)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    found = results(out)
    if check_cases:
        found["_check"] = run(tmp, tasks[:check_cases], check=True)
    return found


def run(tmp_path, tasks, play_vars=None, check=False):
    playbook = os.path.join(str(tmp_path), "play.yml")
    play = [{"hosts": "localhost", "gather_facts": False, "vars": play_vars or {}, "tasks": tasks}]
    with open(playbook, "w") as handle:
        yaml.safe_dump(play, handle)
    collections = os.pathsep.join([os.path.join(REPO, ".collections"), unit_collection_base()])
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=os.path.join(REPO, "roles"),
        ANSIBLE_COLLECTIONS_PATH=collections,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_CONFIG=os.path.join(str(tmp_path), "none.cfg"),
    )
    argv = [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", playbook] + (["--check"] if check else [])
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=900, check=False)


def results(out):
    return {
        name[: -len(".json")]: json.load(open(os.path.join(out, name)))
        for name in os.listdir(out)
        if name.endswith(".json")
    }


def unit_collection_base():
    sys.path.insert(0, os.path.join(REPO, "tests", "unit"))
    from unit_collection import COLLECTIONS_BASE  # pylint: disable=import-outside-toplevel

    return COLLECTIONS_BASE
