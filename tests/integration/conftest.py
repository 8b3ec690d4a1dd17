"""Fixtures shared by the integration tests: they run against the lab (make lab), never against mocks."""

import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, ".lab")
LAB_DIR = os.path.join(ROOT, "tests", "lab")


def run_script(script, *args, timeout=1800):
    """tests/lab/<script> (builds, image serving); returns its last JSON line and the seconds it took."""
    started = time.time()
    proc = subprocess.run([sys.executable, os.path.join(LAB_DIR, script)] + list(args), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), time.time() - started


def serve_for_real_nodes(lab, script, why):
    """Build and serve a lab script's on-demand images (`<script> serve`); skip, saying why, without real nodes."""
    if not lab.get("real_nodes"):
        pytest.skip("the lab has no real nodes: %s" % why)
    return run_script(script, "serve")[0]


GATEWAY_CLASS = "ai-gateway"  # the lab inventory's GatewayClass (tests/lab/gateway.py)


def run_site(*args, extra=None, timeout=1500):
    """ansible-playbook site.yml on the lab's inventory, as `make demo` runs it; extra: variables (-e @file);
    (returncode, localhost's recap counts, output tail)."""
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_ROLES_PATH=os.path.join(ROOT, "roles"), PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    argv = [os.path.join(bindir, "ansible-playbook"), "-i", os.path.join(LAB, "inventory"),
            os.path.join(ROOT, "playbooks", "site.yml")] + list(args)
    if extra:
        handle, path = tempfile.mkstemp(prefix="it-site-", suffix=".json")
        with os.fdopen(handle, "w") as out:
            json.dump(extra, out)
        argv += ["-e", "@" + path]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    recap = [line for line in proc.stdout.splitlines() if line.startswith("localhost ")]
    counts = dict(p.split("=") for p in recap[-1].split(":", 1)[1].split()) if recap else {}
    return proc.returncode, counts, proc.stdout[-5000:] + proc.stderr[-2000:]


@pytest.fixture(scope="module")
def envoy_gateway(lab, kubectl):
    """Envoy Gateway installed by the gateway_api role, as `make demo` runs it (a second run changes nothing)."""
    code, _counts, out = run_site("--tags", "gateway_api", timeout=1200)
    assert code == 0, out
    gateway_class = kubectl.json("get", "gatewayclass", GATEWAY_CLASS)
    assert [c for c in gateway_class["status"]["conditions"] if c["type"] == "Accepted" and c["status"] == "True"]
    return gateway_class


def image_ids(tar):
    """The ids a container of this lab image can report as its imageID: the manifest digest when its node pulled it
    from the lab's registry, the config digest (CRI's image id) when the node imported it at start."""
    with tarfile.open(tar) as layout:
        manifest_digest = json.load(layout.extractfile("index.json"))["manifests"][0]["digest"]
        manifest = json.load(layout.extractfile("blobs/sha256/" + manifest_digest.split(":", 1)[1]))
    return manifest_digest, manifest["config"]["digest"]


ADMISSION_WAITS = []  # what the admission guard saw, for the terminal summary
ADMISSION_TIMEOUT = 300


def lab_controllers():
    """tests/lab/controllers.py (and its lab module), imported as the lab's own scripts import them."""
    if LAB_DIR not in sys.path:
        sys.path.insert(0, LAB_DIR)
    import controllers  # noqa: PLC0415
    return controllers


def _real_node_lab():
    try:
        with open(os.path.join(LAB, "lab.json")) as f:
            return bool(json.load(f).get("real_nodes"))
    except (OSError, ValueError):
        return False


@pytest.fixture(autouse=True)
def pods_admitted(request):
    """Every test starts on a lab that admits pods. Kueue's pod webhook (failurePolicy Fail) refuses every pod of
    every namespace while its controller pod is not serving; a full CI run twice saw a window of such refusals that
    failed the unrelated tests inside it (a Kueue restart under load: its cause is printed at the end, see
    pytest_terminal_summary). A test that needs it broken breaks it itself, after this."""
    if not _real_node_lab():
        yield
        return
    controllers = lab_controllers()
    refused = controllers.admission_refused()
    if refused:
        started = time.time()
        pods = controllers.controller_pods()
        try:
            controllers.wait_admitting(timeout=ADMISSION_TIMEOUT)
        except SystemExit as exc:  # the lab's wait ends scripts that way; here it is this test's failure
            pytest.fail("before %s the lab refused pods for %ds: %s; %s"
                        % (request.node.nodeid, ADMISSION_TIMEOUT, refused, exc))
        ADMISSION_WAITS.append("before %s: a pod was refused (%s); admitted again after %.0fs; controller pods "
                               "then: %s" % (request.node.nodeid, refused[:300], time.time() - started,
                                             "; ".join(pods)))
    yield


def pytest_terminal_summary(terminalreporter):
    if not _real_node_lab():
        return
    terminalreporter.section("lab pod admission")
    for line in ADMISSION_WAITS or ["every test started on a lab that admitted pods"]:
        terminalreporter.write_line(line)
    try:
        for line in lab_controllers().controller_pods():
            terminalreporter.write_line(line)
    except Exception as exc:  # noqa: BLE001 - a summary line must not fail the run
        terminalreporter.write_line("controller pods not readable: %s" % exc)


@pytest.fixture(scope="session")
def lab():
    """The running lab's state (ports, versions, mirror URL). Fails — never skips — when the lab is down."""
    path = os.path.join(LAB, "lab.json")
    if not os.path.exists(path):
        pytest.fail("the lab is not up (%s missing): run `make lab` first" % path)
    with open(path) as f:
        state = json.load(f)
    if not state.get("processes"):
        pytest.fail("the lab's state file lists no running process: run `make lab`")
    return state


@pytest.fixture(scope="session")
def lab_kubeconfig(lab):
    return lab["kubeconfig"]


class Kubectl:
    """kubectl against the lab, returning parsed JSON where asked."""

    def __init__(self, kubeconfig):
        self.kubeconfig = kubeconfig
        self.binary = os.path.join(LAB, "bin", "kubectl")

    def run(self, *args, input=None, check=True):
        proc = subprocess.run([self.binary, "--kubeconfig", self.kubeconfig] + list(args), input=input,
                              capture_output=True, text=True, timeout=120, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("kubectl %s failed: %s" % (" ".join(args), proc.stderr))
        return proc

    def json(self, *args):
        return json.loads(self.run(*args, "-o", "json").stdout)

    def apply(self, objects, namespace=None):
        docs = objects if isinstance(objects, list) else [objects]
        args = ["apply", "--server-side", "-f", "-"] + (["-n", namespace] if namespace else [])
        return self.run(*args, input=yaml.safe_dump_all(docs))

    def create(self, obj, check=True):
        return self.run("create", "-f", "-", input=yaml.safe_dump(obj), check=check)


@pytest.fixture(scope="session")
def kubectl(lab_kubeconfig):
    return Kubectl(lab_kubeconfig)


@pytest.fixture
def namespace(kubectl):
    """A throw-away namespace, deleted after the test whatever happens."""
    name = "it-%s" % uuid.uuid4().hex[:8]
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)
