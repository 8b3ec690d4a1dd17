# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0
"""Probe runner: one labelled throw-away namespace per check, waits with timeouts, cleanup always.

    with Probe(cluster, "dra_support", evidence, timeout=60) as probe:
        claim = probe.create({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", ...})
        claim = probe.wait_for(claim, lambda c: c.get("status", {}).get("allocation"), "claim allocated")
        probe.stays(job, lambda j: j["spec"]["suspend"], "job stays suspended", seconds=5)
    # namespace (and any cluster-scoped object the probe created) deleted here, also on exceptions

Namespaces are named <prefix>-<check>-<random> and labelled:
    app.kubernetes.io/managed-by=k8s-ai-conformance, k8s-ai-conformance/probe=true,
    k8s-ai-conformance/check=<check>, k8s-ai-conformance/run-id=<run>,
    k8s-ai-conformance/created=<epoch>, k8s-ai-conformance/expires=<epoch>
A probe never works past its `expires` time (waits are clamped to it), so garbage collection can
delete every probe object whose `expires` has passed without touching a concurrent live run.

Fixtures, so a check module reads as its requirement:
    probe.logs(pod), probe.wait_for_log(pod, "MARK=", "what")   pod logs through the client's text API
    command_pod(name, "sh script", image=SHELL_IMAGE, ports=[8080], env={...}, labels=..., restart_policy=...)
    pod_manifest(name, claims=..., requests=...)                 pause pod; both tolerate TOLERATE_ALL
    claim_manifest(name, device_class, count=None, selectors=None), claim_template_manifest(...)
    pod_unschedulable(pod, because=CLAIMS_REFUSED), denied_by_webhook(api_error)   mechanism-specific refusals
"""

from __future__ import absolute_import, division, print_function

import copy
import random
import re
import string
import time

from ansible_collections.k8s_ai.conformance.plugins.module_utils.client import ApiError, ClusterError, WatchUnavailable
from ansible_collections.k8s_ai.conformance.plugins.module_utils.results import CannotRun, Interrupted, PartFailed

MANAGED_BY = ("app.kubernetes.io/managed-by", "k8s-ai-conformance")
LABEL_PROBE = "k8s-ai-conformance/probe"
LABEL_CHECK = "k8s-ai-conformance/check"
LABEL_RUN = "k8s-ai-conformance/run-id"
LABEL_CREATED = "k8s-ai-conformance/created"
LABEL_EXPIRES = "k8s-ai-conformance/expires"
PROBE_SELECTOR = "%s=%s,%s=true" % (MANAGED_BY[0], MANAGED_BY[1], LABEL_PROBE)
DEFAULT_PREFIX = "ai-conformance-probe"
POLL_INTERVAL = 0.5
# Longest single watch request of an interruptible run (the next one resumes from the last version).
WATCH_SLICE = 10
# Label of the pods made by command_pod (their command must really run; see Probe.command_node_selector).
LABEL_RUNS_COMMAND = "k8s-ai-conformance/runs-command"
# How long a negative case watches a refusal hold (probe.stays). The proof is the mechanism's own verdict
# (Unschedulable for its claim, QuotaReserved=False, FailedCreatePodSandBox), observed first; the window
# only confirms that no later sync reverses it: a few controller/scheduler retries fit in it.
STAYS_AFTER_VERDICT = 3
# Kueue requeues an inadmissible Workload with a backoff (1 s, 2 s, 4 s ...): two re-evaluations fit.
STAYS_AFTER_KUEUE_VERDICT = 8
MIN_LIFETIME = 900  # seconds a probe may live at most (raised for long timeouts)
NAMESPACE_SETTLE = 10  # seconds a create may wait for the API server to see the probe's own new namespace


class WaitTimeout(PartFailed):
    """The awaited condition did not hold within the timeout (a failed outcome, with the last state)."""

    def __init__(self, message, last=None):
        super().__init__(message)
        self.last = last


def random_suffix(length=5):
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _unused in range(length))


def new_run_id():
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "-" + random_suffix(6)


def probe_namespace_name(prefix, check, suffix=None):
    """<prefix>-<check>-<random>, a valid DNS label (<= 63 characters)."""
    suffix = suffix or random_suffix()
    base = re.sub(r"[^a-z0-9-]+", "-", ("%s-%s" % (prefix, check)).lower()).strip("-")
    return "%s-%s" % (base[: 62 - len(suffix)].rstrip("-"), suffix)


def probe_labels(check, run_id, created, lifetime):
    return {
        MANAGED_BY[0]: MANAGED_BY[1],
        LABEL_PROBE: "true",
        LABEL_CHECK: re.sub(r"[^A-Za-z0-9_.-]", "-", check)[:63],
        LABEL_RUN: run_id[:63],
        LABEL_CREATED: str(int(created)),
        LABEL_EXPIRES: str(int(created + lifetime)),
    }


def is_expired(obj, now, grace=MIN_LIFETIME):
    """True when a probe object is past its expires label (or, without one, older than grace)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for key, extra in ((LABEL_EXPIRES, 0), (LABEL_CREATED, grace)):
        try:
            return now > int(labels[key]) + extra
        except (KeyError, ValueError):
            continue
    return False  # not ours to judge: never delete what we cannot date


def collect_garbage(cluster, api_version="v1", plural="namespaces", now=None, evidence=None):
    """Delete expired probe objects of one cluster-scoped kind; return their names."""
    now = time.time() if now is None else now
    path = cluster.path(api_version, plural)
    deleted = []
    for obj in cluster.iter_list(path, label_selector=PROBE_SELECTOR):
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp") or not is_expired(obj, now):
            continue
        cluster.delete(cluster.path(api_version, plural, name=meta["name"]))
        deleted.append(meta["name"])
    if deleted and evidence is not None:
        action = "DELETE %s (label %s, expired)" % (path, PROBE_SELECTOR)
        evidence.add("garbage-collect expired probe %s" % plural, action, response=deleted)
    return deleted


def condition(obj, cond_type):
    """The status condition of a type (dict) or None."""
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == cond_type:
            return cond
    return None


def has_condition(obj, cond_type, status="True", reason=None):
    cond = condition(obj, cond_type)
    return bool(cond and cond.get("status") == status and (reason is None or cond.get("reason") == reason))


def short_state(obj):
    """A compact view of an object for failure messages: kind/name + status conditions."""
    if not isinstance(obj, dict):
        return str(obj)
    meta = obj.get("metadata") or {}
    conds = ["%s=%s%s%s" % (c.get("type"), c.get("status"), (" (%s)" % c["reason"]) if c.get("reason") else "",
                            (": " + c["message"][:160]) if c.get("status") != "True" and c.get("message") else "")
             for c in (obj.get("status") or {}).get("conditions") or []]
    return "%s/%s%s" % (obj.get("kind", "?"), meta.get("name", "?"), (" [" + ", ".join(conds) + "]") if conds else "")


class Probe:
    """A throw-away namespace plus helpers; use as a context manager so cleanup always runs."""

    def __init__(self, cluster, check, evidence, timeout=60, prefix=DEFAULT_PREFIX, run_id=None,
                 poll_interval=POLL_INTERVAL, command_node_selector=None, cancel=None):
        self.cluster = cluster
        self.check = check
        self.evidence = evidence
        self.timeout = timeout
        self.prefix = prefix or DEFAULT_PREFIX
        self.run_id = run_id or new_run_id()
        self.poll_interval = poll_interval
        self.watch = True  # wait_for watches; False after a watch could not be read (then it polls)
        self.command_node_selector = dict(command_node_selector or {})
        self.cancel = cancel  # a threading.Event set when the run is interrupted: waits stop (Interrupted)
        self.created_at = time.time()
        self.lifetime = max(MIN_LIFETIME, 10 * timeout)
        self.deadline = self.created_at + self.lifetime - 30  # stop working well before GC may strike
        self.labels = probe_labels(check, self.run_id, self.created_at, self.lifetime)
        self.namespace = probe_namespace_name(self.prefix, check)
        self.created = []  # paths of every object we created, deleted (newest first) at close
        self.swept_kinds = []  # (api_version, kind) of objects others create for us (Job pods, Workloads)
        self.cleanup_errors = []
        self._gc_done = set()
        self._open = False

    # ---- lifecycle ----------------------------------------------------------------------------
    def __enter__(self):
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    def open(self):
        self._collect_garbage("v1", "namespaces")
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": self.namespace, "labels": dict(self.labels)}}
        with self.evidence.step("create probe namespace", "POST /api/v1/namespaces", request=body) as step:
            step.response = {"name": self.cluster.create("/api/v1/namespaces", body)["metadata"]["name"]}
        self._open = True
        # Pods are refused until the namespace's default ServiceAccount exists (ServiceAccount admission).
        account = self.cluster.path("v1", "serviceaccounts", self.namespace, "default")
        self._poll(lambda: self.cluster.get(account, missing_ok=True), bool, True, min(30, self.timeout))
        return self

    def close(self):
        """Delete what the probe created; never raises (errors are kept in cleanup_errors)."""
        if not self._open:
            return
        self._open = False
        # Delete objects one by one rather than trusting namespace deletion alone: devices and quota are
        # freed at once, and a slow or broken namespace controller cannot leak them into the next run.
        started = time.time()
        targets = list(reversed(self.created))
        for api_version, kind in self.swept_kinds:
            try:
                plural = self.cluster.resource(api_version, kind)["name"]  # list items carry no kind
                paths = [self.cluster.path(api_version, plural, self.namespace, obj["metadata"]["name"])
                         for obj in self.list(api_version, kind)]
                targets += [p for p in paths if p not in targets]
            except ClusterError as exc:
                self.cleanup_errors.append(str(exc))
        targets.append(self.cluster.path("v1", "namespaces", name=self.namespace))
        self._delete(targets)
        self.evidence.add("clean up probe objects", "DELETE (propagationPolicy=Background)",
                          response={"deleted": targets, "errors": self.cleanup_errors},
                          duration_s=time.time() - started)

    def abandon(self):
        """From another thread, when this probe's check did not stop in time: delete its cluster-scoped objects
        and its namespace (what is in it goes with it); never raises."""
        paths = list(reversed(self.cluster_scoped)) + [self.cluster.path("v1", "namespaces", name=self.namespace)]
        self._delete(paths)
        return paths

    def _delete(self, paths):
        for path in paths:
            try:
                self.cluster.delete(path)
            except ClusterError as exc:
                self.cleanup_errors.append(str(exc))

    @property
    def cluster_scoped(self):
        return [p for p in self.created if "/namespaces/" not in p]

    def also_clean(self, api_version, kind):
        """Delete every object of this kind in the probe namespace at close (objects controllers made for us)."""
        if (api_version, kind) not in self.swept_kinds:
            self.swept_kinds.append((api_version, kind))

    def _collect_garbage(self, api_version, plural):
        if (api_version, plural) in self._gc_done:
            return
        self._gc_done.add((api_version, plural))
        try:
            collect_garbage(self.cluster, api_version, plural, evidence=self.evidence)
        except ClusterError as exc:  # GC is best effort: a missing list/delete right must not fail the check
            self.evidence.add("garbage-collect expired probe %s" % plural, "list/delete", error=exc)

    # ---- objects ------------------------------------------------------------------------------
    def _prepare(self, obj):
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("labels", {}).update(self.labels)
        if self.command_node_selector:
            self._pin_command_pods(obj)
        if not meta.get("name") and not meta.get("generateName"):
            meta["generateName"] = "probe-"
        res = self.cluster.resource(obj["apiVersion"], obj["kind"])
        if res.get("namespaced"):
            meta["namespace"] = self.namespace
            return obj, self.cluster.path(obj["apiVersion"], res["name"], self.namespace), True
        self._collect_garbage(obj["apiVersion"], res["name"])
        return obj, self.cluster.path(obj["apiVersion"], res["name"]), False

    def _pin_command_pods(self, obj):
        """Pods that must really run their command (command_pod) go to the nodes of command_node_selector,
        unless already placed: on a cluster that mixes simulated nodes (kwok) with real ones, only the real
        ones run containers."""
        for pod in (obj, (obj.get("spec") or {}).get("template") or {}):
            spec = pod.get("spec") or {}
            labels = (pod.get("metadata") or {}).get("labels") or {}
            if labels.get(LABEL_RUNS_COMMAND) == "true" and not spec.get("nodeName"):
                selector = spec.setdefault("nodeSelector", {})
                for key, value in self.command_node_selector.items():
                    selector.setdefault(key, str(value))

    def create(self, obj, title=None):
        """Create an object (namespaced ones in the probe namespace); labelled; return the server's copy."""
        obj, path, _unused = self._prepare(obj)
        title = title or "create %s %s" % (obj["kind"], obj["metadata"].get("name") or obj["metadata"]["generateName"])
        with self.evidence.step(title, "POST " + path, request=obj) as step:
            created = self._create(path, obj)
            step.response = created
        self.created.append(path + "/" + created["metadata"]["name"])
        return created

    def try_create(self, obj, title=None, dry_run=False):
        """Create an object that may be refused: return (created or None, ApiError or None)."""
        obj, path, _unused = self._prepare(obj)
        title = title or "try to create %s" % obj["kind"]
        action = "POST " + path + (" ?dryRun=All" if dry_run else "")
        with self.evidence.step(title, action, request=obj) as step:
            try:
                created = self._create(path, obj, dry_run=dry_run)
            except ApiError as exc:
                step.response = {"status": exc.status, "reason": exc.reason, "message": exc.server_message}
                return None, exc
            step.response = created
        if not dry_run:
            self.created.append(path + "/" + created["metadata"]["name"])
        return created, None

    def _create(self, path, obj, dry_run=False):
        """POST, retried while the API server still answers that OUR just-created namespace does not exist (seen
        on the lab: a pod POST 0.14 s after the namespace's got 404 "namespaces ... not found", the next one
        passed); any other answer, or the namespace still missing after NAMESPACE_SETTLE seconds, is raised."""
        deadline = time.time() + NAMESPACE_SETTLE
        while True:
            try:
                return self.cluster.create(path, obj, dry_run=dry_run)
            except ApiError as exc:
                if not (self._namespace_missing(exc) and time.time() < deadline):
                    raise
            self._sleep(self.poll_interval)

    def _namespace_missing(self, error):
        details = error.body.get("details") or {}
        return (error.status == 404 and details.get("kind") == "namespaces"
                and details.get("name") == self.namespace and self._open)

    def get(self, obj):
        """Fresh copy of an object (None when gone)."""
        return self.cluster.get(self.cluster.object_path(obj, self.namespace), missing_ok=True)

    def list(self, api_version, kind, label_selector=None, field_selector=None):
        """Objects of a kind in the probe namespace."""
        res = self.cluster.resource(api_version, kind)
        path = self.cluster.path(api_version, res["name"], self.namespace if res.get("namespaced") else None)
        return self.cluster.list(path, label_selector=label_selector, field_selector=field_selector)

    def delete(self, obj):
        self.cluster.delete(self.cluster.object_path(obj, self.namespace))

    # ---- waiting ------------------------------------------------------------------------------
    def _budget(self, timeout):
        timeout = self.timeout if timeout is None else timeout
        return max(0.0, min(timeout, self.deadline - time.time()))

    def _poll(self, fetch, condition_fn, until, budget):
        """Poll fetch() until condition_fn(value) equals `until` or the budget runs out."""
        end = time.time() + budget
        while True:
            value = fetch()
            if bool(condition_fn(value)) == until:
                return value, True
            if time.time() >= end:
                return value, False
            self._sleep(min(self.poll_interval, max(0.0, end - time.time())))

    def _sleep(self, seconds):
        if self.cancel is None:
            time.sleep(seconds)
        elif self.cancel.wait(seconds):
            raise Interrupted("the run was interrupted")

    def wait_for(self, obj, condition_fn, what, timeout=None):
        """Wait until condition_fn(obj) is truthy; return the object, or raise WaitTimeout (failed). Watches
        the object (one request, ends the moment the condition holds); polls where watching is not possible."""
        if not self.watch:
            return self.wait_until(lambda: self.get(obj), condition_fn, what, timeout, _name=_ref(obj))
        budget = self._budget(timeout)
        started = time.time()
        value, ok, how = self._watch(obj, condition_fn, budget)
        took = time.time() - started
        action = "%s %s until: %s (timeout %ds)" % (how, _ref(obj), what, budget)
        return self._waited(value, ok, what, action, budget, took)

    def _waited(self, value, ok, what, action, budget, took):
        """Record a wait as evidence; the value when the condition held, else WaitTimeout (failed)."""
        if ok:
            self.evidence.add("wait: " + what, action, response=value, duration_s=took)
            return value
        message = "not observed within %ds: %s; last state: %s" % (budget, what, _describe(value))
        self.evidence.add("wait: " + what, action, response=value, duration_s=took, error=message)
        raise WaitTimeout(message, value)

    def _watch(self, obj, condition_fn, budget):
        """(last value, condition met, how) - watch from the object's current version; on a stream the client
        cannot read, or an expired version, poll for the rest of the budget."""
        end = time.time() + budget
        value = self.get(obj)
        if condition_fn(value):
            return value, True, "GET"
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        res = self.cluster.resource(obj["apiVersion"], obj["kind"])
        namespace = (meta.get("namespace") or self.namespace) if res.get("namespaced") else None
        collection = self.cluster.path(obj["apiVersion"], res["name"], namespace)
        version = ((value or {}).get("metadata") or {}).get("resourceVersion")
        try:
            while time.time() < end:
                query = {"fieldSelector": "metadata.name=%s" % name, "allowWatchBookmarks": "true"}
                if version:
                    query["resourceVersion"] = version
                opened = time.time()
                if self.cancel is not None and self.cancel.is_set():
                    raise Interrupted("the run was interrupted")
                # in an interruptible run a watch lasts at most WATCH_SLICE seconds, so a stop is noticed
                length = max(1.0, end - time.time())
                if self.cancel is not None:
                    length = min(WATCH_SLICE, length)
                for event in self.cluster.watch(collection, query, length):
                    kind = event.get("type")
                    if kind == "ERROR":  # e.g. 410 Gone: the version expired
                        raise WatchUnavailable("watch: %s" % (event.get("object") or {}).get("message", "error"))
                    current = event.get("object") or {}
                    version = (current.get("metadata") or {}).get("resourceVersion") or version
                    if kind == "BOOKMARK":
                        continue
                    value = None if kind == "DELETED" else current
                    if condition_fn(value):
                        return value, True, "watch"
                if time.time() - opened < 1:  # the server ended the watch at once: do not spin
                    self._sleep(min(self.poll_interval, max(0.0, end - time.time())))
        except WatchUnavailable:
            self.watch = False
            value, ok = self._poll(lambda: self.get(obj), condition_fn, True, max(0.0, end - time.time()))
            return value, ok, "watch, then poll every %.1fs" % self.poll_interval
        return value, False, "watch"

    def wait_until(self, fetch, condition_fn, what, timeout=None, _name=None):
        """Like wait_for, for any fetch() (e.g. a list of pods)."""
        budget = self._budget(timeout)
        started = time.time()
        value, ok = self._poll(fetch, condition_fn, True, budget)
        took = time.time() - started
        action = "poll %severy %.1fs until: %s (timeout %ds)" % (("GET %s " % _name) if _name else "",
                                                                 self.poll_interval, what, budget)
        return self._waited(value, ok, what, action, budget, took)

    def stays(self, obj, condition_fn, what, seconds=5, fetch=None):
        """Observe for `seconds` that condition_fn stays truthy (negative cases); raise PartFailed if not."""
        fetch = fetch or (lambda: self.get(obj))
        started = time.time()
        value, broke = self._poll(fetch, condition_fn, False, min(seconds, self._budget(seconds)))
        took = time.time() - started
        action = "poll every %.1fs for %ds, expecting throughout: %s" % (self.poll_interval, seconds, what)
        if broke:
            message = "no longer true after %.1fs: %s; state: %s" % (took, what, _describe(value))
            self.evidence.add("observe: " + what, action, response=value, duration_s=took, error=message)
            raise PartFailed(message)
        self.evidence.add("observe: " + what, action, response=value, duration_s=took)
        return value

    # ---- pod logs -----------------------------------------------------------------------------
    def logs(self, pod, container=None, title=None):
        """The log of a probe pod (text; "" when it has none yet); recorded as evidence."""
        name = pod if isinstance(pod, str) else pod["metadata"]["name"]
        path = self.cluster.path("v1", "pods", self.namespace, name, "log")
        with self.evidence.step(title or "log of pod %s" % name, "GET " + path) as step:
            step.response = text = self.cluster.pod_log(self.namespace, name, container, missing_ok=True) or ""
        return text

    def wait_for_log(self, pod, marker, what, timeout=None, container=None, cannot_run=True):
        """Poll a probe pod's log until it contains `marker`; return the log. When it never does, the probe's
        command did not run (no real container, image missing): CannotRun (outcome error) by default, or
        WaitTimeout (failed) with cannot_run=False when a missing line is the capability failing."""
        name = pod if isinstance(pod, str) else pod["metadata"]["name"]

        def fetch():
            try:
                return self.cluster.pod_log(self.namespace, name, container, missing_ok=True) or ""
            except ClusterError as exc:  # e.g. "container is waiting to start": keep polling
                return "(log not readable: %s)" % exc
        try:
            return self.wait_until(fetch, lambda text: marker in text, what, timeout,
                                   _name="Pod/%s log" % name)
        except WaitTimeout as exc:
            if not cannot_run:
                raise
            raise CannotRun("%s: pod %s left no %r line in its log (no real container ran?); log: %s"
                            % (what, name, marker, (str(exc.last or "").strip() or "empty")[:300])) from None


def _ref(obj):
    meta = obj.get("metadata") or {}
    return "%s/%s" % (obj.get("kind", "?"), meta.get("name", "?"))


def _describe(value):
    if isinstance(value, list):
        return "%d objects: %s" % (len(value), ", ".join(short_state(v) for v in value[:5]))
    if value is None:
        return "object not found"
    return short_state(value)


PROBE_IMAGE = "registry.k8s.io/pause:3.10"
SHELL_IMAGE = "busybox:1.36"
TOLERATE_ALL = [{"operator": "Exists"}]  # probe pods may land on tainted accelerator nodes
DRA = "resource.k8s.io/v1"


def pod_manifest(name, claims=None, requests=None, labels=None, tolerate_all=True, image=PROBE_IMAGE):
    """A minimal probe pod (pause image). claims: {pod claim name: {"resourceClaimName": x} or
    {"resourceClaimTemplateName": y}}; requests: container requests (default cpu 1m, memory 4Mi; pass a
    dict to request exactly that, e.g. {"nvidia.com/gpu": 1} - extended resources also become limits).
    Tolerates every taint so it can land on tainted accelerator nodes."""
    requests = {"cpu": "1m", "memory": "4Mi"} if requests is None else dict(requests)
    container = {"name": "probe", "image": image, "resources": {"requests": requests}}
    extended = {k: v for k, v in requests.items() if "/" in k}
    if extended:
        container["resources"]["limits"] = extended
    spec = {"containers": [container], "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False}
    if claims:
        spec["resourceClaims"] = [dict({"name": key}, **ref) for key, ref in claims.items()]
        container["resources"]["claims"] = [{"name": key} for key in claims]
    if tolerate_all:
        spec["tolerations"] = copy.deepcopy(TOLERATE_ALL)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": dict(labels or {})}, "spec": spec}


def on_nodes(pod, nodes):
    """Restrict a pod to these nodes through the scheduler (node affinity on metadata.name), not spec.nodeName,
    so DRA allocation still happens; the scheduler then also filters only these nodes (an unsatisfiable claim is
    judged on them, not on every node of a large cluster)."""
    nodes = [nodes] if isinstance(nodes, str) else list(nodes)
    # One term per node (terms are ORed): a matchFields requirement on metadata.name takes exactly one value.
    pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                              for node in nodes]}}}
    return pod


def command_pod(name, command, image=SHELL_IMAGE, ports=None, labels=None, annotations=None, requests=None,
                claims=None, restart_policy="Never", runtime_class=None, tolerate_all=True, env=None):
    """A probe pod running a command: a string is a shell script (sh -c), a list the exact argv. ports:
    [8080] or [{"name": "metrics", "containerPort": 8080}]; requests default cpu 10m, memory 16Mi; claims as
    in pod_manifest; env: {name: value} (data for the script, so it needs no shell quoting). Tolerates every
    taint (tolerate_all) so it can land on accelerator nodes."""
    labels = dict(labels or {}, **{LABEL_RUNS_COMMAND: "true"})
    pod = pod_manifest(name, claims=claims, labels=labels, tolerate_all=tolerate_all, image=image,
                       requests={"cpu": "10m", "memory": "16Mi"} if requests is None else requests)
    container = pod["spec"]["containers"][0]
    container["command"] = ["sh", "-c", command] if isinstance(command, str) else list(command)
    if ports:
        container["ports"] = [p if isinstance(p, dict) else {"containerPort": int(p)} for p in ports]
    if env:
        container["env"] = [{"name": key, "value": str(value)} for key, value in sorted(env.items())]
    pod["spec"]["restartPolicy"] = restart_policy
    pod["spec"]["terminationGracePeriodSeconds"] = 1
    if annotations:
        pod["metadata"]["annotations"] = dict(annotations)
    if runtime_class:
        pod["spec"]["runtimeClassName"] = runtime_class
    return pod


def claim_spec(device_class, count=None, selectors=None, request="accel"):
    """The spec of a ResourceClaim asking `count` devices (None: one, DRA's default) of a DeviceClass;
    selectors: CEL expressions the devices must match."""
    exactly = {"deviceClassName": device_class}
    if count is not None:
        exactly.update(allocationMode="ExactCount", count=int(count))
    if selectors:
        exactly["selectors"] = [{"cel": {"expression": e}} for e in selectors]
    return {"devices": {"requests": [{"name": request, "exactly": exactly}]}}


def claim_manifest(name, device_class, count=None, selectors=None, request="accel"):
    """A ResourceClaim (resource.k8s.io/v1) for a DeviceClass; see claim_spec."""
    return {"apiVersion": DRA, "kind": "ResourceClaim", "metadata": {"name": name},
            "spec": claim_spec(device_class, count, selectors, request)}


def claim_template_manifest(name, device_class, count=None, selectors=None, request="accel"):
    """A ResourceClaimTemplate: every pod that names it gets its own generated claim."""
    return {"apiVersion": DRA, "kind": "ResourceClaimTemplate", "metadata": {"name": name},
            "spec": {"spec": claim_spec(device_class, count, selectors, request)}}


def denied_by_webhook(error):
    """True when an API refusal came from an admission webhook that ran and said no (not from schema or CEL
    validation, which refuse without the operator, and not 'failed calling webhook', which is a broken one)."""
    message = getattr(error, "server_message", "") or ""
    return 'admission webhook "' in message and "denied the request" in message


def pod_scheduled(pod):
    return bool(pod and pod.get("spec", {}).get("nodeName")) and has_condition(pod, "PodScheduled")


def pod_unschedulable(pod, because=None):
    """PodScheduled=False (Unschedulable) and no node. because: text the scheduler's message must contain (a
    tuple: any of them), so that a negative case proves refusal by the mechanism under test, e.g.
    CLAIMS_REFUSED for DRA, not a pod that nothing could schedule anyway."""
    if not (bool(pod) and not pod.get("spec", {}).get("nodeName")
            and has_condition(pod, "PodScheduled", "False", "Unschedulable")):
        return False
    if not because:
        return True
    message = (condition(pod, "PodScheduled").get("message") or "").lower()
    return any(word.lower() in message for word in ((because,) if isinstance(because, str) else because))


CLAIMS_REFUSED = ("claim",)  # kube-scheduler's DRA plugin: "0/3 nodes are available: 3 cannot allocate all claims"


def claim_allocation(claim):
    """The allocated device results of a ResourceClaim ([{request, driver, pool, device}]), [] if none."""
    return ((((claim or {}).get("status") or {}).get("allocation") or {}).get("devices") or {}).get("results") or []


_SUFFIXES = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
             "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value):
    """Kubernetes quantity ('500m', '36Gi', 4) -> float; ValueError when malformed."""
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise ValueError("not a Kubernetes quantity: %r" % (value,))
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


def selector_matches(selector, labels):
    """Does a LabelSelector ({} / None = everything) match a label dict?"""
    if selector is None:
        return True
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
