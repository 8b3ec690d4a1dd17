"""Benchmark: full verify.yml on the lab at the default size and at a large simulated cluster.

For each size: a fresh lab (lab down; lab up --gpu-nodes N, with its real nodes), then one timed run
of playbooks/verify.yml. Figures: wall time, the verifier's CPU seconds (user+system of the
ansible-playbook process tree), peak memory (sum of the RSS of that tree, sampled every 100 ms), the
verifier's own API requests (each check counts its client's), what the API server served meanwhile
(apiserver_request_total), and the 5 slowest checks with their longest step (usually a wait).
Targets: <= 60 s at the default size, <= 1.5x that at 2,000 GPU nodes, <= 300 MB peak.
The last line is a one-line summary. This prints figures; it asserts nothing.

    make bench                       # sizes 2 and 2000 GPU nodes
    make bench BENCH_SIZES="2"       # only the default size
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
import lab  # noqa: E402


def api_requests():
    _unused, body = lab.Api().request("GET", "/metrics")
    text = body.decode() if isinstance(body, bytes) else str(body)
    return int(sum(float(m.group(1)) for m in re.finditer(r"^apiserver_request_total\{[^}]*\} (\S+)$", text, re.M)))


def tree_rss_kb(root_pid):
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(pid))
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open("/proc/%d/status" % pid) as f:
                total += int(next(line for line in f if line.startswith("VmRSS:")).split()[1])
        except (OSError, StopIteration, ValueError):
            continue
    return total


def verifier_figures(report_dir):
    """The verifier's own API requests (each check counts its client's) and the slowest checks."""
    import glob
    paths = glob.glob(os.path.join(report_dir, "v*", "*", "report.json"))
    if not paths:
        return None, []
    with open(paths[0]) as f:
        checks = json.load(f).get("checks") or []
    requests = sum(c.get("api_requests") or 0 for c in checks)
    slowest = []
    for check in sorted(checks, key=lambda c: c.get("duration_s") or 0, reverse=True)[:5]:
        steps = sorted(check.get("evidence") or [], key=lambda e: e.get("duration_s") or 0, reverse=True)
        longest = (" (longest step %.0fs: %s)" % (steps[0]["duration_s"], steps[0].get("title", "?"))) if steps else ""
        slowest.append("%s %.0fs%s" % (check["check"], check.get("duration_s") or 0, longest))
    return requests, slowest


def run_verify(report_dir):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_ROLES_PATH=os.path.join(ROOT, "roles"), KUBECONFIG=lab.KUBECONFIG)
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), os.path.join(ROOT, "playbooks", "verify.yml"),
           "-i", os.path.join(lab.LAB, "inventory"), "-e", "verify_report_dir=%s" % report_dir,
           "-e", "verify_fail_on_must=false"]
    peak = [0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))
            time.sleep(0.1)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.communicate()[0]
    wall = time.time() - started
    sampler.join(1)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return proc.returncode, wall, cpu, peak[0] / 1024.0, output


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "2 2000"))
    args = parser.parse_args()
    figures = []
    for size in [int(s) for s in args.sizes.replace(",", " ").split()]:
        subprocess.run([sys.executable, os.path.join(lab.HERE, "lab.py"), "down"], check=True)
        t0 = time.time()
        subprocess.run([sys.executable, os.path.join(lab.HERE, "lab.py"), "up", "--gpu-nodes", str(size)], check=True)
        up = time.time() - t0
        before = api_requests()
        with tempfile.TemporaryDirectory() as report_dir:
            rc, wall, cpu, peak_mb, output = run_verify(report_dir)
            verifier_requests, slowest = verifier_figures(report_dir)
        requests = api_requests() - before
        if rc != 0:
            print(output[-3000:])
        # api_requests: the verifier's own; cluster_requests: everything the API server served meanwhile
        # (kwok's node heartbeats dominate it on a big simulated cluster).
        fig = {"gpu_nodes": size, "devices": size * 8, "lab_up_s": round(up, 1), "verify_s": round(wall, 1),
               "verifier_cpu_s": round(cpu, 1), "peak_mb": round(peak_mb), "api_requests": verifier_requests,
               "cluster_requests": requests, "slowest_checks": slowest, "rc": rc}
        figures.append(fig)
        print(json.dumps(fig), flush=True)
    subprocess.run([sys.executable, os.path.join(lab.HERE, "lab.py"), "down"], check=True)
    base = figures[0]["verify_s"] if figures else 0
    parts = ["%d GPU nodes: %.1fs (x%.2f), %.0f CPU s, peak %d MB, %s verifier API requests%s" % (
        f["gpu_nodes"], f["verify_s"], f["verify_s"] / base if base else 0, f["verifier_cpu_s"], f["peak_mb"],
        f["api_requests"], "" if f["rc"] == 0 else " rc=%d" % f["rc"]) for f in figures]
    print("bench verify: " + "; ".join(parts))


if __name__ == "__main__":
    main()
