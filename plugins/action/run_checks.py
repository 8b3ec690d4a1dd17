# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0
"""Action k8s_ai.conformance.run_checks: the checks of a verify run, in threads on the controller.

Why in-process: one Python process instead of one per check (memory, and no module start per check on a
2-core controller), one connection pool, discovery fetched once, and a result printed the moment it is
known. When each check starts is module_utils/schedule.py's decision; how a check runs is check.py's.
"""

from __future__ import absolute_import, division, print_function

import importlib
import queue
import signal
import threading
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import RunShared, run_in_process
from ansible_collections.k8s_ai.conformance.plugins.module_utils.client import Cluster, ClusterError
from ansible_collections.k8s_ai.conformance.plugins.module_utils.results import Interrupted
from ansible_collections.k8s_ai.conformance.plugins.module_utils.schedule import Scheduler
from ansible_collections.k8s_ai.conformance.plugins.modules.run_checks import ARGUMENT_SPEC

display = Display()
MODULES = "ansible_collections.k8s_ai.conformance.plugins.modules."
# After SIGINT/SIGTERM: how long the running checks get to stop at their next wait and delete their probes.
CLEANUP_TIMEOUT = 90


class _Stop(Exception):
    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)


def _ignore(_signum, _frame):
    pass


def load_check(name):
    """(verify function, argument spec) of a check module, or raise ImportError naming it."""
    try:
        module = importlib.import_module(MODULES + name)
    except ImportError as exc:
        raise ImportError("check module not available: %s" % exc) from None
    if not callable(getattr(module, "verify", None)):
        raise ImportError("check module not available: %s has no verify(check)" % name)
    return module.verify, getattr(module, "ARGUMENT_SPEC", {})


def progress_lines(check, labels, result=None, missing=None):
    lines = []
    for label in labels.get(check) or [check]:
        if result is not None:
            unverified = "" if result.get("verified") else " (not verified)"
            lines.append("%s: %s%s - %s" % (label, result.get("status"), unverified, result.get("summary", "")))
        else:
            lines.append("%s: Not Implemented (not verified) - %s" % (label, missing))
    return lines


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        common = args["common"]
        missing, loaded = {}, {}
        for name in args["checks"]:
            try:
                loaded[name] = load_check(name)
            except ImportError as exc:
                missing[name] = str(exc)
        try:
            scheduler = Scheduler([n for n in args["checks"] if n in loaded], args["uses"], args["concurrency"])
        except ValueError as exc:
            raise AnsibleActionFail("run_checks: %s" % exc) from None
        try:
            base = Cluster.connect(common.get("kubeconfig"), common.get("context"),
                                   validate_certs=common.get("validate_certs", True),
                                   pool_size=2 * args["concurrency"] + 2)
        except ClusterError as exc:
            raise AnsibleActionFail("run_checks: cluster access (kubeconfig/context): %s" % exc) from None
        shared = RunShared(base)

        finished = queue.Queue()

        def run_one(name):
            verify, spec = loaded[name]
            params = dict(common, **(args["options"].get(name) or {}))
            if name in args["node_facts_checks"]:
                params["node_facts"] = args["node_facts"]
            try:
                outcome = run_in_process(name, verify, spec, params, check_mode=self._task.check_mode, shared=shared)
            except Interrupted:
                outcome = (None, "interrupted; its probe was removed")
            except Exception as exc:  # a bug in a check must not stop the run
                outcome = (None, "internal error: %s: %s" % (exc.__class__.__name__, exc))
            finished.put((name,) + outcome)

        started, timing, results = time.time(), {}, {}
        began = {}
        handlers = self._catch_signals()
        try:
            self._schedule(scheduler, run_one, finished, began, timing, results, missing, started, args)
        except _Stop as stop:
            # The checks stop at their next wait and delete their probes (Check.run's finally); the playbook
            # may already be gone, so nothing is displayed meanwhile. This worker exits when the action
            # returns, ending the check threads, so the probes of checks still running are deleted from here.
            shared.cancel.set()
            deadline = time.time() + CLEANUP_TIMEOUT
            while scheduler.running and time.time() < deadline:
                try:
                    scheduler.finish(finished.get(timeout=max(0.05, deadline - time.time()))[0])
                except queue.Empty:
                    break
            stuck = sorted(scheduler.running)
            shared.abandon_probes(stuck)
            raise AnsibleActionFail("run_checks: interrupted (%s); the running checks stopped and removed their "
                                    "probes%s" % (stop, "" if not stuck else " (the probe namespaces of %s, which "
                                                  "did not stop in time, were deleted)" % ", ".join(stuck))) from None
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

        result.update(changed=False, results=[results[n] for n in args["checks"] if n in results],
                      missing=missing, timing=dict(timing, wall_s=round(time.time() - started, 1)))
        return result

    @staticmethod
    def _catch_signals():
        """SIGINT/SIGTERM raise _Stop in this (main) thread while the checks run; returns the old handlers."""
        def stop(signum, _frame):
            # Ignore what follows before raising: Ansible's parent sends SIGTERM right after forwarding SIGINT,
            # and a second _Stop raised during the cleanup would end this worker before the probes are gone.
            # (A no-op handler, not SIG_IGN: a signal already pending would print a "race condition" error.)
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, _ignore)
            raise _Stop(signum)
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _schedule(self, scheduler, run_one, finished, began, timing, results, missing, started, args):
        while not scheduler.done:
            for name in scheduler.startable():
                scheduler.start(name)
                began[name] = time.time()
                timing[name] = {"queued_s": round(began[name] - started, 1)}
                threading.Thread(target=run_one, args=(name,), name="check-" + name, daemon=True).start()
            deadline = min(began[n] + args["check_timeout"] for n in scheduler.running)
            try:
                name, outcome, error = finished.get(timeout=max(0.05, deadline - time.time()))
            except queue.Empty:
                for name in [n for n in scheduler.running if began[n] + args["check_timeout"] <= time.time()]:
                    scheduler.finish(name)
                    missing[name] = ("the check did not finish within %d s (its probe namespace expires and is "
                                     "removed by the next run)" % args["check_timeout"])
                    self._progress(progress_lines(name, args["labels"], missing=missing[name]))
                continue
            if name not in scheduler.running:
                continue  # arrived after its timeout was recorded
            scheduler.finish(name)
            timing[name]["duration_s"] = round(time.time() - began[name], 1)
            if outcome is not None:
                results[name] = outcome  # with bad options or access, an error part says why (verified=false)
            else:
                missing[name] = "the check module failed: %s" % error
            self._progress(progress_lines(name, args["labels"], result=outcome, missing=missing.get(name)))

    @staticmethod
    def _progress(lines):
        for line in lines:
            display.display("  " + line)
