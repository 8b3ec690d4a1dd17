"""The verify run's scheduler: no batch barrier, exclusive users alone, no starvation; and the in-process
pieces the run_checks action uses (parameter checks, discovery shared once)."""

import random
import threading
import time

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import RunShared, check_parameters
from ansible_collections.k8s_ai.conformance.plugins.module_utils.schedule import Scheduler


def start_all(s):
    chosen = s.startable()
    for name in chosen:
        s.start(name)
    return chosen


def test_a_check_starts_the_moment_a_slot_is_free_not_when_a_batch_ends():
    s = Scheduler(["slow", "fast", "next", "last"], concurrency=2)
    assert start_all(s) == ["slow", "fast"]
    s.finish("fast")
    assert start_all(s) == ["next"]  # "slow" still runs: no barrier
    s.finish("next")
    assert start_all(s) == ["last"]
    assert s.running == {"slow", "last"}


def test_exclusive_user_waits_for_the_shared_users_and_others_run_beside_it():
    uses = {"autoscale": {"accelerators": "exclusive"}, "dra": {"accelerators": "shared"},
            "sharing": {"accelerators": "shared"}}
    s = Scheduler(["dra", "autoscale", "sharing", "crds"], uses=uses, concurrency=8)
    # sharing must not start before the exclusive user that comes before it in the plan
    assert start_all(s) == ["dra", "crds"]
    s.finish("dra")
    assert start_all(s) == ["autoscale"]
    assert start_all(s) == []  # sharing waits while autoscale holds the accelerators
    s.finish("autoscale")
    assert start_all(s) == ["sharing"]


def test_two_exclusive_users_of_one_resource_never_overlap():
    uses = {"a": {"r": "exclusive"}, "b": {"r": "exclusive"}}
    s = Scheduler(["a", "b", "c"], uses=uses, concurrency=8)
    assert start_all(s) == ["a", "c"]
    s.finish("c")
    assert start_all(s) == []
    s.finish("a")
    assert start_all(s) == ["b"]


def test_shared_users_start_together():
    uses = {"a": {"r": "shared"}, "b": {"r": "shared"}}
    s = Scheduler(["a", "b"], uses=uses, concurrency=8)
    assert start_all(s) == ["a", "b"]


@pytest.mark.parametrize("uses,concurrency,message", [
    ({"a": {"r": "alone"}}, 2, "shared or exclusive"),
    ({"a": ["r"]}, 2, "mapping"),
    ({}, 0, "at least 1"),
])
def test_bad_input_names_what_is_wrong(uses, concurrency, message):
    with pytest.raises(ValueError, match=message):
        Scheduler(["a"], uses=uses, concurrency=concurrency)


def test_random_runs_keep_the_rules_and_finish_everything():
    rng = random.Random(7)
    for _round in range(200):
        names = ["c%d" % i for i in range(rng.randint(1, 12))]
        uses = {n: {rng.choice("rst"): rng.choice(["shared", "exclusive"])} for n in names if rng.random() < 0.6}
        concurrency = rng.randint(1, 5)
        s = Scheduler(names, uses=uses, concurrency=concurrency)
        finished = []
        while not s.done:
            start_all(s)
            assert 0 < len(s.running) <= concurrency
            for resource in "rst":
                modes = [uses[n][resource] for n in s.running if resource in uses.get(n, {})]
                assert "exclusive" not in modes or len(modes) == 1, (uses, s.running)
            name = rng.choice(sorted(s.running))
            s.finish(name)
            finished.append(name)
        assert sorted(finished) == sorted(names)


def test_check_parameters_validates_like_the_module():
    params, error = check_parameters({"pods": {"type": "int", "default": 3}}, {"pods": "4", "timeout": "5"})
    assert error is None and params["pods"] == 4 and params["timeout"] == 5
    assert params["probe_namespace_prefix"]  # common defaults applied
    _params, error = check_parameters({}, {"podz": 1})
    assert error and "podz" in error


def test_the_accelerator_discovery_runs_once_per_run_and_a_full_one_answers_the_dra_only_one():
    calls = []

    def discover():
        calls.append(1)
        time.sleep(0.05)
        return {"nodes": {}}

    shared = RunShared(cluster=None)
    threads = [threading.Thread(target=shared.accelerators, args=(True, discover)) for _n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert shared.accelerators(False, discover) == {"nodes": {}}
    assert len(calls) == 1


def test_an_interrupted_run_stops_a_check_at_its_wait_and_removes_its_probe():
    from fakeapi import FakeCluster

    from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import Check
    from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import pod_manifest
    from ansible_collections.k8s_ai.conformance.plugins.module_utils.results import Interrupted

    fake = FakeCluster()
    shared = RunShared(fake)
    params, _error = check_parameters({}, {"timeout": 60})

    def verify(check):
        check.positive("waits for what never comes",
                       lambda c, probe: probe.wait_for(probe.create(pod_manifest("p")), lambda p: False, "never"))

    check = Check("x", params, cluster=fake, shared=shared)
    outcome = []

    def run():
        try:
            check.run(verify)
        except Interrupted:
            outcome.append("interrupted")

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)
    started = time.time()
    shared.cancel.set()
    thread.join(10)
    assert not thread.is_alive() and time.time() - started < 5
    assert outcome == ["interrupted"]
    deleted = [p for m, p in fake.log if m == "DELETE"]
    assert any(p.startswith("/api/v1/namespaces/") and "/pods/" not in p for p in deleted), deleted
    assert any("/pods/p" in p for p in deleted), deleted


def test_a_check_stuck_outside_a_wait_has_its_namespace_deleted_by_the_interrupted_run():
    from fakeapi import FakeCluster

    from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import Check

    fake = FakeCluster()
    shared = RunShared(fake)
    params, _error = check_parameters({}, {"timeout": 60})
    release = threading.Event()

    def verify(check):
        def stuck(c, probe):
            probe.create({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "spec": {}})
            release.wait(10)  # e.g. a request the API server never answers: no wait sees the cancel
        check.positive("stuck", stuck)

    other = Check("other", params, cluster=fake, shared=shared)
    assert other.probe.namespace  # opened: a check that is not stuck keeps its probe
    thread = threading.Thread(target=Check("stuck", params, cluster=fake, shared=shared).run, args=(verify,))
    thread.start()
    for _attempt in range(50):
        if fake.objects("deviceclasses"):
            break
        time.sleep(0.05)
    shared.cancel.set()
    deleted = shared.abandon_probes(["stuck", "never-started"])
    assert [o["metadata"]["name"] for o in fake.objects("namespaces")] == [other.probe.namespace]
    assert fake.objects("deviceclasses") == []
    assert any(p.startswith("/apis/resource.k8s.io/v1/deviceclasses/") for p in deleted), deleted
    release.set()
    thread.join(10)


def test_sigterm_right_after_sigint_stops_the_run_once():
    """Ansible's parent forwards SIGINT to the worker, then SIGTERMs it: the second signal must not raise
    during the cleanup the first one started."""
    import os
    import signal

    from ansible_collections.k8s_ai.conformance.plugins.action.run_checks import ActionModule, _Stop

    handlers = ActionModule._catch_signals()
    stops = []
    try:
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
            time.sleep(1)
        except _Stop as stop:
            stops.append(str(stop))
            time.sleep(0.5)  # the cleanup: a second _Stop would be raised here
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert stops == ["SIGINT"]
