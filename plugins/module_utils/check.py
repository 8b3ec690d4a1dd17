# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0
"""The glue every check module uses. A check module is one screen:

    from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check

    def verify(check):
        check.static("resource.k8s.io/v1 serves the DRA kinds; a DeviceClass has devices", dra_usable)
        check.positive("a pod with a claim is allocated a device and scheduled", claim_allocated)
        check.negative("an oversized claim stays unallocated", oversized_claim_refused)

    def dra_usable(check):                          # static part: fn(check) -> detail string
        missing = check.served("resource.k8s.io/v1", ["DeviceClass", "ResourceClaim"])
        check.require(not missing, "not served: %s" % ", ".join(missing))
        check.facts["device_class"] = ...           # shared with the behavioural parts
        return "all served"

    def claim_allocated(check, probe):              # behavioural part: fn(check, probe) -> detail
        claim = probe.create(claim_manifest("one", check.facts["device_class"]))  # in the probe namespace
        probe.create(pod_manifest("with-claim", claims={"accel": {"resourceClaimName": "one"}}))
        claim = probe.wait_for(claim, claim_allocation, "claim allocated")
        return "allocated %s" % ...

    def oversized_claim_refused(check, probe):      # negative: refused BY the mechanism under test
        ...
        probe.wait_for(pod, lambda p: pod_unschedulable(p, because=CLAIMS_REFUSED), "Unschedulable for its claim")

    def main():
        run_check("dra_support", verify)            # optional: argument_spec=dict(...) for extra options

Parts
  check.static(name, fn, required=True)    fn(check) runs in check mode too.
  check.positive(name, fn, required=True)  fn(check, probe); skipped in check mode.
  check.negative(name, fn, required=True)  fn(check, probe); skipped in check mode.
  check.static_only(reason)                first line of verify() for a requirement met by configuration or
                                           presence, with no behaviour a probe could observe (today
                                           fault_detection, gpudirect_storage); the reason is reported.
  Each returns the part's outcome ("passed", "failed", "error", "skipped"). A part PASSES when fn
  returns (its return value, a string, is the detail). Inside fn:
    check.fail(msg) / check.require(cond, msg)  -> outcome failed (the capability misbehaved/absent)
    probe.wait_for(...) timing out              -> outcome failed, with the last state seen
    any ClusterError (API unreachable, 403...)  -> outcome error (could not run; verified=false)
    ... except "failed calling webhook" (500)   -> outcome failed: the cluster's own webhook is broken
    any other exception                         -> outcome error "internal error: ..."
    check.cannot_run(reason)                    -> outcome error: could not run here (e.g. no free device);
                                                   never counted as passed or failed; verified=false
    check.skip(reason)                          -> outcome skipped (deliberately not run, e.g. opt-in probe);
                                                   a required skipped part is not passed
    check.not_applicable(reason)                -> the whole check is N/A with that reason; later
                                                   parts are not run. Use it only for a context that
                                                   does not apply (e.g. no autoscaler on bare metal),
                                                   never for "the feature is missing" (that is failed).
  Parts share data through check.facts (a dict), e.g. the DeviceClass found by a static part. A
  behavioural part that needs a fact an earlier part did not find calls check.fail("...") itself.
  Optional (SHOULD-level) parts: required=False; they never change the status.

Verdict (results.py). A check is behavioural unless it declares static_only:
  Implemented            every required part passed AND a required positive part passed
  Partially Implemented  some required part passed AND a required positive/negative part passed
  Not Implemented        otherwise: static parts alone (API served, CRDs Established, component Available)
                         never make a behavioural requirement Implemented or Partially Implemented; a
                         required part that could not run (error) makes it Not Implemented, verified=false
  Check mode             behavioural parts are skipped, so a behavioural check is Not Implemented with
                         verified=false ("behaviour not probed"); static_only checks keep their verdict
  So a requirement's behaviour is a positive part (it works when it should: a probe workload, or for
  node-side requirements the hosts' own facts), and where one exists a negative part (it is refused when
  it should be). A NEGATIVE MUST BE ABLE TO FAIL: it proves refusal by the mechanism under test, never an
  outcome that also holds without it. Ways used here: wait for the mechanism's own verdict (Kueue's
  QuotaReserved=False, the scheduler's "cannot allocate all claims" via pod_unschedulable(because=...),
  an admission webhook's denial via denied_by_webhook, ResolvedRefs=False reason BackendNotFound, the
  autoscaler's NotTriggerScaleUp, the kubelet's FailedCreatePodSandBox), or run it only after the positive
  part showed the mechanism works (check.require(check.facts.get(...))). A refusal that holds on any
  cluster (admission of a missing RuntimeClass, a metric nobody exposes) is not a negative part at all; a
  check without a meaningful negative says why in its DOCUMENTATION.

Probe (behavioural parts; one namespace per check, opened on first use, deleted at the end)
  probe.namespace                          the throw-away namespace's name
  probe.create(obj) -> obj                 namespaced objects go to the probe namespace; all get
                                           the probe labels; cluster-scoped ones are deleted at the end
  probe.try_create(obj, dry_run=False)     -> (obj, None) or (None, ApiError) for expected refusals
  probe.get(obj), probe.list(api_version, kind, label_selector=None, field_selector=None), probe.delete(obj)
  probe.wait_for(obj, cond, "what", timeout=None)    watch (poll where it cannot) until cond(obj); raises
                                                     WaitTimeout (failed); cond must depend on obj only
  probe.wait_until(fetch, cond, "what", timeout=None) same for any fetch() (e.g. probe.list(...))
  probe.stays(obj, cond, "what", seconds=5)          negative cases: cond must hold the whole time
  probe.logs(pod) -> text                  a probe pod's log ("" when none yet), recorded as evidence
  probe.wait_for_log(pod, marker, "what")  poll the log until it has marker; when it never does, the pod's
                                           command did not run: CannotRun (error), or WaitTimeout (failed)
                                           with cannot_run=False
  probe.also_clean(api_version, kind)      at the end also delete objects of a kind that controllers made
                                           for the probe (e.g. Kueue Workloads); everything the probe
                                           created is deleted one by one, then the namespace
  Manifests (probe.py): pod_manifest(name, claims=None, requests=None, labels=None) (pause pod),
  command_pod(name, "shell script" or [argv], image=SHELL_IMAGE, ports=[8080], labels, annotations,
  requests, claims, restart_policy, runtime_class), claim_manifest(name, device_class, count=None,
  selectors=None), claim_template_manifest(...), TOLERATE_ALL (every probe pod tolerates every taint).
  Predicates: condition(obj, type), has_condition(obj, type, status="True", reason=None), pod_scheduled(pod),
  pod_unschedulable(pod, because=None) (because=CLAIMS_REFUSED: refused for its DRA claim),
  claim_allocation(claim), denied_by_webhook(api_error), parse_quantity("500m"),
  selector_matches(label_selector, labels), short_state(obj)

Endpoints that are not Kubernetes objects (endpoints.py): a query API, an exporter, an OTLP receiver
  endpoint(url=..., service="ns/name:port", option="...")   URL from the controller, or service proxy
  Endpoint.service(ns, name, port, path), Endpoint.pod(ns, name, port, path), parse_service(text, option)
  ep.get_text(cluster, path, accept=...), ep.get_json(cluster, path, query=...) (EndpointError unless 2xx),
  ep.post_json(cluster, path, body) -> (status, answer), ep.location(path) (for evidence)
  EndpointError is a ClusterError: uncaught it makes the part "could not run".
  Check modules never import client.py: the client's text API (cluster.get_text, pod_log, raw) is reached
  through the probe and endpoints.

Reading the cluster (records evidence)
  check.cluster                            client.Cluster: get/list/iter_list/create/patch/delete/path
  check.served(api_version, kinds)         -> list of kinds NOT served (empty = all served)
  check.crds_established(names)            -> list of CRD names that are missing or not Established
  check.read(title, path, missing_ok=False), check.list(title, path, label_selector=None)
  check.probe_namespace_labels()           labels the probe namespace carries (match namespaceSelectors)
  check.accelerators                       accelerators.discover() result, cached (DeviceClasses,
                                           ResourceSlices per driver/node, device-plugin resources)
  check.dra_devices                        the same without listing Nodes (DRA-only checks; cheaper)
  check.record(title, action, request=None, response=None)   add your own evidence entry
  check.note(text)                         add a line to the result's notes
  check.params                             module parameters (common ones + your argument_spec)

In-process runs (the verify role's run_checks action): run_in_process(name, verify, argument_spec, params,
check_mode, shared) validates the parameters like AnsibleModule and returns the same result; the checks of
one run share a RunShared - one API connection pool, discovery documents and the accelerator discovery,
each fetched once per run - while each check keeps its own request counters and evidence.

Result: run_check exits with changed=False and `result` (docs/architecture.md schema). Bad input
(kubeconfig missing/malformed, unknown context) fails the module with a message naming the input and
still returns `result` (verified=false). An unreachable or unauthorised API server gives a result
with an `error` part and verified=false.
"""

from __future__ import absolute_import, division, print_function

import threading
import time
import traceback

from ansible_collections.k8s_ai.conformance.plugins.module_utils import accelerators as accelerators_mod
from ansible_collections.k8s_ai.conformance.plugins.module_utils.client import (
    ApiError,
    Cluster,
    ClusterError,
    api_prefix,
)
from ansible_collections.k8s_ai.conformance.plugins.module_utils.evidence import Evidence
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import DEFAULT_PREFIX, Probe, probe_labels
from ansible_collections.k8s_ai.conformance.plugins.module_utils.results import (
    ERROR,
    FAILED,
    PASSED,
    SKIPPED,
    CannotRun,
    Interrupted,
    NotApplicable,
    PartFailed,
    PartSkipped,
    build_result,
    make_part,
)

MAX_NAMES_IN_EVIDENCE = 50

COMMON_ARGUMENT_SPEC = {
    "kubeconfig": {"type": "raw"},
    "context": {"type": "str"},
    "timeout": {"type": "int", "default": 60},
    "probe_namespace_prefix": {"type": "str", "default": DEFAULT_PREFIX},
    "validate_certs": {"type": "bool", "default": True, "aliases": ["verify_ssl"]},
    "command_node_selector": {"type": "dict", "default": {}},
}


def iso_now(ts=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Check:
    """State of one check run: parts, evidence, facts, the lazily opened probe."""

    def __init__(self, name, params, check_mode=False, cluster=None, run_id=None, shared=None):
        self.name = name
        self.shared = shared
        self.params = params
        self.check_mode = check_mode
        self.cluster = cluster
        self.run_id = run_id
        self.timeout = int(params.get("timeout") or 60)
        self.evidence = Evidence()
        self.parts = []
        self.facts = {}
        self.notes = []
        self.na_reason = None
        self.static_only_reason = None
        self.started = time.time()
        self._probe = None
        self._accelerators = None

    # ---- connecting -----------------------------------------------------------------------------
    def connect(self):
        """Load the kubeconfig; raises ClusterError naming the bad input."""
        if self.cluster is None and self.shared is not None:
            self.cluster = self.shared.cluster.sibling()
        if self.cluster is None:
            self.cluster = Cluster.connect(self.params.get("kubeconfig"), self.params.get("context"),
                                           validate_certs=self.params.get("validate_certs", True))
        return self.cluster

    # ---- parts ----------------------------------------------------------------------------------
    def static_only(self, reason):
        """Declare the requirement static-only (met by configuration/presence, no behaviour to observe);
        the reason is reported. Without this a check is behavioural: only passed positive/negative parts
        can make it Implemented or Partially Implemented (results.py)."""
        if any(p["kind"] != "static" for p in self.parts):
            raise ValueError("check %s declares behavioural parts and cannot be static-only" % self.name)
        self.static_only_reason = str(reason)

    def static(self, name, fn, required=True):
        return self._run_part(name, "static", fn, required, behavioural=False)

    def positive(self, name, fn, required=True):
        return self._run_part(name, "positive", fn, required, behavioural=True)

    def negative(self, name, fn, required=True):
        return self._run_part(name, "negative", fn, required, behavioural=True)

    def _run_part(self, name, kind, fn, required, behavioural):
        if behavioural and self.static_only_reason:
            raise ValueError("check %s is static-only but declares the %s part %r" % (self.name, kind, name))
        if self.na_reason:
            return SKIPPED
        if self.shared is not None and self.shared.cancel.is_set():
            raise Interrupted("the run was interrupted")
        if behavioural and self.check_mode:
            self.parts.append(make_part(name, kind, SKIPPED, "check mode: behaviour not probed", required))
            return SKIPPED
        started = time.time()
        try:
            detail = fn(self, _LazyProbe(self)) if behavioural else fn(self)
            outcome = PASSED
        except NotApplicable as exc:
            self.na_reason = str(exc)
            outcome, detail = SKIPPED, "not applicable: %s" % exc
        except PartFailed as exc:
            outcome, detail = FAILED, str(exc)
        except PartSkipped as exc:
            outcome, detail = SKIPPED, str(exc)
        except CannotRun as exc:
            outcome, detail = ERROR, str(exc)
        except ClusterError as exc:
            # A webhook the cluster cannot call is the cluster misbehaving (failed), not our access (error).
            broken_webhook = isinstance(exc, ApiError) and "failed calling webhook" in exc.server_message
            outcome, detail = (FAILED if broken_webhook else ERROR), str(exc)
        except Exception as exc:  # a bug or an unexpected object shape: report, do not crash the run
            outcome, detail = ERROR, "internal error: %s: %s" % (exc.__class__.__name__, exc)
            self.record("internal error in part %r" % name, "python", response=traceback.format_exc()[-3000:])
        part = make_part(name, kind, outcome, "" if detail is None else str(detail), required)
        part["duration_s"] = round(time.time() - started, 3)
        self.parts.append(part)
        return outcome

    # ---- verdict helpers used inside parts --------------------------------------------------------
    @staticmethod
    def fail(message):
        raise PartFailed(message)

    @staticmethod
    def require(condition, message):
        if not condition:
            raise PartFailed(message)
        return condition

    @staticmethod
    def cannot_run(reason):
        raise CannotRun(reason)

    @staticmethod
    def skip(reason):
        raise PartSkipped(reason)

    @staticmethod
    def not_applicable(reason):
        raise NotApplicable(reason)

    def note(self, text):
        self.notes.append(text)

    def record(self, title, action, request=None, response=None, duration_s=None, error=None):
        return self.evidence.add(title, action, request, response, duration_s, error)

    # ---- probe and discovery --------------------------------------------------------------------
    @property
    def probe(self):
        if self._probe is None:
            probe = Probe(self.cluster, self.name, self.evidence, timeout=self.timeout,
                          prefix=self.params.get("probe_namespace_prefix") or DEFAULT_PREFIX, run_id=self.run_id,
                          command_node_selector=self.params.get("command_node_selector"),
                          cancel=self.shared.cancel if self.shared is not None else None)
            self._probe = probe  # before open(): an interrupt while it opens still closes it
            if self.shared is not None:
                self.shared.track(self.name, probe)
            try:
                probe.open()
            except Exception:
                self._probe = None  # the next part tries again
                raise
        return self._probe

    def probe_namespace_labels(self):
        """Labels the probe namespace has (or will have), without creating it (e.g. to match selectors)."""
        if self._probe is not None:
            return dict(self._probe.labels)
        return probe_labels(self.name, self.run_id or "preview", time.time(), 0)

    def close(self):
        if self._probe is not None:
            self._probe.close()
            if self._probe.cleanup_errors:
                self.note("probe cleanup incomplete: %s" % "; ".join(self._probe.cleanup_errors))
            self._probe = None

    @property
    def accelerators(self):
        """Full discovery: DRA devices, device-plugin resources and node label hints (lists every Node)."""
        if self._accelerators is None or self._accelerators.get("nodes") is None:
            self._accelerators = self._discover(nodes=True)
        return self._accelerators

    @property
    def dra_devices(self):
        """DRA-only discovery (DeviceClasses, ResourceSlices; no Node listing): same shape, cheaper."""
        if self._accelerators is None:
            self._accelerators = self._discover(nodes=False)
        return self._accelerators

    def _discover(self, nodes):
        what = "DeviceClasses, ResourceSlices" + (", node allocatable and labels" if nodes else "")
        if self.shared is not None:
            what += "; once per run, shared by its checks"
        with self.evidence.step("discover accelerators (%s)" % what, "list " + what) as step:
            if self.shared is not None:
                def node_items():
                    return self.shared.once("nodes", lambda: self.cluster.list("/api/v1/nodes"))
                found = self.shared.accelerators(nodes, lambda: accelerators_mod.discover(
                    self.cluster, nodes=nodes, node_items=node_items if nodes else None))
            else:
                found = accelerators_mod.discover(self.cluster, nodes=nodes)
            step.response = accelerators_mod.summary(found)
        return found

    # ---- reading with evidence ------------------------------------------------------------------
    def read(self, title, path, missing_ok=False):
        with self.evidence.step(title, "GET " + path) as step:
            step.response = self.cluster.get(path, missing_ok=missing_ok)
        return step.response

    def list(self, title, path, label_selector=None):
        action = "GET %s%s" % (path, (" ?labelSelector=" + label_selector) if label_selector else "")
        with self.evidence.step(title, action) as step:
            items = self.cluster.list(path, label_selector=label_selector)
            step.response = [(i.get("metadata") or {}).get("name") for i in items]
        return items

    def nodes(self, title="nodes", label_selector=None):
        """Nodes (all, or those matching label_selector). The full list is fetched once per in-process run and
        shared by its checks; evidence holds how many and the first names."""
        action = "GET /api/v1/nodes" + ((" ?labelSelector=" + label_selector) if label_selector else "")
        shared = self.shared is not None and not label_selector
        with self.evidence.step(title, action + ("; once per run, shared by its checks" if shared else "")) as step:
            if shared:
                items = self.shared.once("nodes", lambda: self.cluster.list("/api/v1/nodes"))
            else:
                items = self.cluster.list("/api/v1/nodes", label_selector=label_selector)
            names = [(i.get("metadata") or {}).get("name") for i in items]
            step.response = {"count": len(names), "names": names[:MAX_NAMES_IN_EVIDENCE]}
        return items

    def served(self, api_version, kinds):
        """Kinds (of `kinds`) NOT served under api_version; records what discovery returned."""
        action = "GET " + api_prefix(api_version)
        with self.evidence.step("discovery: %s" % api_version, action) as step:
            resources = self.cluster.served_resources(api_version)
            served = sorted({r.get("kind") for r in resources.values() if "/" not in r.get("name", "")})
            step.response = {"served kinds": served}
        return [k for k in kinds if k not in served]

    def crds_established(self, names):
        """CRD names (of `names`) that are missing or not Established."""
        bad = []
        with self.evidence.step("CRDs Established", "GET customresourcedefinitions.apiextensions.k8s.io") as step:
            seen = {}
            for name in names:
                crd = self.cluster.get(self.cluster.path("apiextensions.k8s.io/v1", "customresourcedefinitions",
                                                         name=name), missing_ok=True)
                ok = bool(crd) and any(c.get("type") == "Established" and c.get("status") == "True"
                                       for c in (crd.get("status") or {}).get("conditions") or [])
                seen[name] = "Established" if ok else ("not Established" if crd else "missing")
                if not ok:
                    bad.append(name)
            step.response = seen
        return bad

    # ---- result -----------------------------------------------------------------------------------
    def result(self):
        return build_result(
            self.name, self.parts, self.evidence.entries, iso_now(self.started), time.time() - self.started,
            na_reason=self.na_reason, check_mode=self.check_mode, notes="\n".join(self.notes),
            api_requests=self.cluster.requests if self.cluster is not None else 0,
            static_only=self.static_only_reason,
        )

    def run(self, verify):
        """Reach the API, run verify(self), clean up, return the result dict."""
        try:
            if self._reachable():
                verify(self)
        except Exception as exc:  # verify() should do its work inside parts; never crash the run
            detail = str(exc) if isinstance(exc, ClusterError) else "internal error: %s: %s" % (
                exc.__class__.__name__, exc)
            self.parts.append(make_part("check aborted", "static", ERROR, detail))
        finally:
            self.close()
        return self.result()

    def _reachable(self):
        try:
            with self.evidence.step("API server version", "GET /version") as step:
                step.response = self.cluster.version()
            self.facts["server_version"] = step.response
            return True
        except ClusterError as exc:
            self.parts.append(make_part("API server reachable and authorised", "static", ERROR, str(exc)))
            return False


class _LazyProbe:
    """Opens the check's probe namespace on first use, so parts that fail or skip early create nothing."""

    def __init__(self, check):
        self._check = check

    def __getattr__(self, name):
        return getattr(self._check.probe, name)


class RunShared:
    """What the checks of one in-process run share: the connection (its pool), the discovery documents,
    the Node list and the accelerator discovery, each fetched once. Thread-safe."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.cancel = threading.Event()  # set on interrupt: every check stops at its next wait and cleans up
        self._lock = threading.Lock()
        self._locks = {}
        self._values = {}
        self._probes = {}  # check name -> its probe, so an interrupted run can remove what a stuck check left

    def track(self, check, probe):
        with self._lock:
            self._probes[check] = probe

    def abandon_probes(self, checks):
        """Delete the namespaces (and cluster-scoped objects) of these checks' probes; the paths deleted."""
        with self._lock:
            probes = [self._probes[c] for c in checks if c in self._probes]
        return [path for probe in probes for path in probe.abandon()]

    def once(self, key, fetch):
        """fetch() the first time `key` is asked for (other askers wait for it), its value afterwards."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = fetch()
            return self._values[key]

    def accelerators(self, nodes, discover):
        """The run's accelerator discovery (with Nodes when `nodes`); a discovery with Nodes also answers the
        DRA-only one."""
        if not nodes and ("accelerators", True) in self._values:
            return self._values[("accelerators", True)]
        return self.once(("accelerators", bool(nodes)), discover)


def check_parameters(argument_spec, params):
    """(validated parameters, error message or None) - the module's argument checks, for in-process runs."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    spec = dict(COMMON_ARGUMENT_SPEC)
    spec.update(argument_spec or {})
    checked = ArgumentSpecValidator(spec).validate(dict(params or {}))
    if checked.error_messages:
        return checked.validated_parameters, "; ".join(checked.error_messages)
    return checked.validated_parameters, None


def run_in_process(name, verify, argument_spec, params, check_mode=False, shared=None, run_id=None):
    """Run one check in this process; returns (result, error message or None). The error (bad parameters,
    kubeconfig) is what the module would fail with; the result is still returned (verified=false)."""
    validated, error = check_parameters(argument_spec, params)
    check = Check(name, validated, check_mode=check_mode, shared=shared, run_id=run_id)
    if error:
        check.parts.append(make_part("module arguments", "static", ERROR, error))
        return check.result(), error
    try:
        check.connect()
    except ClusterError as exc:
        check.parts.append(make_part("cluster access (kubeconfig/context)", "static", ERROR, str(exc)))
        return check.result(), str(exc)
    return check.run(verify), None


def run_check(name, verify, argument_spec=None, module_class=None):
    """Entry point of a check module: parse arguments, run, exit_json(changed=False, result=...)."""
    if module_class is None:
        from ansible.module_utils.basic import AnsibleModule as module_class
    spec = dict(COMMON_ARGUMENT_SPEC)
    spec.update(argument_spec or {})
    module = module_class(argument_spec=spec, supports_check_mode=True)
    check = Check(name, module.params, check_mode=module.check_mode)
    try:
        check.connect()
    except ClusterError as exc:
        check.parts.append(make_part("cluster access (kubeconfig/context)", "static", ERROR, str(exc)))
        module.fail_json(msg=str(exc), result=check.result())
    result = check.run(verify)
    module.exit_json(changed=False, result=result, msg=result["summary"])
