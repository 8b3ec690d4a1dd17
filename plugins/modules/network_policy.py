#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: network_policy
short_description: Verify that NetworkPolicy egress control is enforced
description:
  - Whitepaper check (NetworkPolicy and egress control for AI workloads).
  - Static (optional, informational) - the NetworkPolicy API is served (always, it is built in - enforcement is
    what counts); the policy-capable network plugins found and the namespaces that already have a default-deny
    egress policy are reported.
  - Negative - a client pod reaches a server pod without any policy (a control - its log shows the server's
    token); after a deny-all-egress NetworkPolicy in the probe namespace, a new client pod cannot reach the same
    server (its log shows the request blocked). Each client pod makes 6 requests a second apart and the last 3
    must agree - an enforcer programs a new pod's rules a moment after it starts - else the part fails.
  - Positive - under that deny, a second policy allowing egress to the server's pods on port 8080 lets a new
    client reach it. Run only after the deny was seen enforced - without an enforcer every request is
    "allowed", so an allow rule proves nothing on its own; a cluster without enforcement is Not Implemented.
  - Enforcement needs a data plane (a CNI that implements NetworkPolicy); where pods do not really run (no logs),
    the behavioural parts report that they could not run, never passed.
version_added: "0.1.0"
author: k8s_ai.conformance developers (@k8s-ai-conformance)
extends_documentation_fragment:
  - k8s_ai.conformance.cluster
options:
  probe_image:
    description: Image of the probe pods (needs C(sh), C(wget) and busybox C(httpd)).
    type: str
    default: busybox:1.36
"""

EXAMPLES = r"""
- name: Verify egress NetworkPolicy enforcement
  k8s_ai.conformance.network_policy:
    kubeconfig: "{{ kubeconfig }}"
  delegate_to: localhost
"""

RETURN = r"""
result:
  description: Check result (docs/architecture.md schema).
  returned: always
  type: dict
  contains:
    status: {description: "Implemented, Partially Implemented, Not Implemented or N/A.", type: str, returned: always}
    verified: {description: False when a part could not run (no data plane)., type: bool, returned: always}
    parts: {description: Parts with outcome and detail., type: list, returned: always}
    evidence: {description: "Policies, pods and their logs.", type: list, returned: always}
"""

import re  # noqa: E402

from ansible_collections.k8s_ai.conformance.plugins.module_utils.check import run_check  # noqa: E402
from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import command_pod  # noqa: E402

POLICY_PLUGINS = ("calico", "cilium", "antrea", "kube-router", "weave", "kube-ovn", "canal", "ovnkube", "romana",
                  "netpol", "network-policy")
ATTEMPTS = 6  # requests per client pod
SETTLED = 3  # the last SETTLED must agree
ARGUMENT_SPEC = {
    "probe_image": {"type": "str", "default": "busybox:1.36"},
}


def verify(check):
    check.static("the NetworkPolicy API is served", policy_api_served, required=False)
    check.static("a NetworkPolicy-capable network plugin is installed", policy_plugin_found, required=False)
    # The enforcement is the capability: the refusal first (with a connectivity control), then the allow rule,
    # which only means something once a deny was seen enforced (without an enforcer everything is "allowed").
    check.negative("a deny-all-egress policy blocks a request that succeeds without it", blocked_with_policy)
    check.positive("under that deny, an egress rule to the server permits the request", allowed_by_rule)


def is_deny_all_egress(policy):
    spec = policy.get("spec") or {}
    selector = spec.get("podSelector") or {}
    return "Egress" in (spec.get("policyTypes") or []) and not spec.get("egress") and not (
        selector.get("matchLabels") or selector.get("matchExpressions"))


def policy_api_served(check):
    check.require(not check.served("networking.k8s.io/v1", ["NetworkPolicy"]), "NetworkPolicy not served")
    policies = check.list("NetworkPolicies (all namespaces)", "/apis/networking.k8s.io/v1/networkpolicies")
    deny = sorted({p["metadata"]["namespace"] for p in policies if is_deny_all_egress(p)})
    return "served; %d policies, default-deny egress in %d namespace(s)%s" % (
        len(policies), len(deny), (": " + ", ".join(deny[:5])) if deny else "")


def policy_plugin_found(check):
    daemonsets = check.list("DaemonSets (all namespaces)", "/apis/apps/v1/daemonsets")
    found = sorted({d["metadata"]["name"] for d in daemonsets
                    if any(h in d["metadata"]["name"] for h in POLICY_PLUGINS)})
    check.require(found, "no DaemonSet of a known NetworkPolicy-enforcing plugin (%s); enforcement is probed below"
                  % ", ".join(POLICY_PLUGINS[:6]))
    return "network plugin DaemonSets: %s" % ", ".join(found)


def server(check, probe):
    if "server_ip" not in check.facts:
        token = "token-" + probe.namespace[-5:]
        pod = probe.create(command_pod("server", "mkdir -p /www && echo %s > /www/index.html && "
                                       "exec httpd -f -p 8080 -h /www" % token, image=check.params["probe_image"],
                                       ports=[8080], labels={"app": "srv"}))
        pod = probe.wait_for(pod, lambda p: (p.get("status") or {}).get("podIP")
                             and (p.get("status") or {}).get("phase") == "Running", "server pod running with an IP")
        check.facts["server_ip"], check.facts["token"] = pod["status"]["podIP"], token
    return check.facts["server_ip"], check.facts["token"]


def client_result(check, probe, name):
    """'open' (the server's token came back), 'blocked' or 'unsettled', judged on the client's last SETTLED of
    ATTEMPTS requests: an enforcer programs a new pod's rules a moment after it starts (kube-router on the lab:
    the first request of a pod under a deny went through, the next ones were refused), so one request decides
    nothing. Returns (outcome, what each attempt saw)."""
    ip, token = server(check, probe)
    host = "[%s]" % ip if ":" in ip else ip
    # the markers are joined by the shell, so a pod spec echoed back never looks like a result; `timeout`, not
    # wget -T (Debian's static busybox 1.35 wget crashes with -T, and a crash must not read as "blocked")
    script = ("for i in $(seq %d); do if out=$(timeout 3 wget -q -O - http://%s:8080/); then "
              "echo RESULT\"=open:$out\"; else echo RESULT\"=blocked\"; fi; sleep 1; done; echo ATTEMPTS\"=done\""
              % (ATTEMPTS, host))
    pod = probe.create(command_pod(name, script, image=check.params["probe_image"]))
    log = probe.wait_for_log(pod, "ATTEMPTS=done", "client pod %s logged its %d attempts" % (name, ATTEMPTS))
    seen = ["open" if r.startswith("open:") and token in r else "blocked"
            for r in re.findall(r"RESULT=(open:\S*|blocked)", log)]
    last = set(seen[-SETTLED:])
    outcome = last.pop() if len(last) == 1 and len(seen) >= SETTLED else "unsettled"
    return outcome, ", ".join(seen)


def blocked_with_policy(check, probe):
    # control: the same client reaches the server without any policy, so "blocked" below is the policy's doing
    control, control_seen = client_result(check, probe, "client-open")
    check.require(control == "open", "client could not reach the server without any policy (pod network broken?); "
                  "attempts: %s" % control_seen)
    probe.create({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny-egress"},
                  "spec": {"podSelector": {}, "policyTypes": ["Egress"]}})
    outcome, seen = client_result(check, probe, "client-denied")
    check.require(outcome == "blocked", "client still reached the server despite a deny-all-egress policy "
                  "(no NetworkPolicy enforcement); attempts: %s" % seen)
    check.facts["deny_enforced"] = True
    return ("without a policy the client reached %s:8080 (attempts: %s); under a deny-all-egress policy the same "
            "requests were blocked (attempts: %s)" % (check.facts["server_ip"], control_seen, seen))


def allowed_by_rule(check, probe):
    check.require(check.facts.get("deny_enforced"), "not meaningful: a deny-all-egress policy was not enforced")
    probe.create({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "allow-srv"},
                  "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                           "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "srv"}}}],
                                       "ports": [{"protocol": "TCP", "port": 8080}]}]}})
    outcome, seen = client_result(check, probe, "client-allowed")
    check.require(outcome == "open", "an egress rule to the server did not permit the request; attempts: %s" % seen)
    return "with deny-all plus an egress rule to app=srv:8080 the client reached %s:8080 (attempts: %s)" % (
        check.facts["server_ip"], seen)


def main():
    run_check("network_policy", verify, argument_spec=ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
