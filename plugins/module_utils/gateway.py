# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0
"""Gateway API probing shared by the networking checks: classes, Gateways, routes, and traffic through them.

    detail = accepted_gateway_class(check)                  # facts["gateway_class"]; fails without a controller
    gw = create_gateway(check, probe)                        # in the probe namespace, waited on until Accepted
    route = probe.wait_for(route, lambda r: route_condition(r, "inference", "ResolvedRefs"), "...")
    echo_backend(probe, "a", image)                          # pod + Service answering "backend=a"
    base = programmed_address(check, probe, gw)              # "http://<address>:<port>", or could not run
    counts, where = send_traffic(check, probe, base, [Batch("split", host, {}, 200)], ("a", "b"), image)

Traffic is counted by the backend that answered. It is sent from the controller; when no backend answers
there within CONTROLLER_TRY_S (in-cluster addresses, no load balancer: the address is unreachable, or something
else on the host's network answers it), from a client pod inside the cluster, unless the user gave the URL.
Before a batch is counted, requests are repeated until one is answered by a backend (WARM_UP_S at most): a route
the data plane has accepted may take a moment to be programmed; those warm-up answers are not counted.
"""

from __future__ import absolute_import, division, print_function

import time

try:
    from urllib.error import HTTPError, URLError
except ImportError:  # pragma: no cover - Python 2 is not supported
    HTTPError = URLError = OSError

from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import (
    WaitTimeout,
    command_pod,
    condition,
    has_condition,
)
from ansible_collections.k8s_ai.conformance.plugins.module_utils.results import CannotRun

try:
    from ansible.module_utils.urls import open_url
except ImportError:  # pragma: no cover - ansible-core is always there when a module runs
    open_url = None

GW = "gateway.networking.k8s.io/v1"
WARM_UP_S = 30
CONTROLLER_TRY_S = 10  # before traffic goes from a pod instead: the controller may not route the address at all
REQUEST_TIMEOUT_S = 3


class Batch:
    """`count` GET requests of `path` with a Host header and extra headers, counted under `key`."""

    def __init__(self, key, host, headers, count, path="/"):
        self.key, self.host, self.headers, self.count, self.path = key, host, dict(headers or {}), int(count), path


def accepted_gateway_class(check):
    """The class named by the gateway_class option, else the first one Accepted by its controller."""
    classes = check.list("GatewayClasses", check.cluster.path(GW, "gatewayclasses"))
    wanted = check.params.get("gateway_class")
    candidates = [c for c in classes if not wanted or c["metadata"]["name"] == wanted]
    check.require(candidates, "GatewayClass %s not found" % wanted if wanted else "no GatewayClass exists")
    accepted = [c for c in candidates if has_condition(c, "Accepted")]
    check.require(accepted, "GatewayClass %s not Accepted by a controller" % ", ".join(
        c["metadata"]["name"] for c in candidates))
    check.facts["gateway_class"] = accepted[0]["metadata"]["name"]
    return "GatewayClass %s Accepted (controller %s)" % (accepted[0]["metadata"]["name"],
                                                         accepted[0]["spec"].get("controllerName"))


def create_gateway(check, probe, name="inference", port=80):
    """A Gateway of the Accepted class with one HTTP listener, waited on until Accepted."""
    gateway_class = check.facts.get("gateway_class") or check.fail("no Accepted GatewayClass")
    gateway = probe.create({"apiVersion": GW, "kind": "Gateway", "metadata": {"name": name},
                            "spec": {"gatewayClassName": gateway_class, "listeners": [
                                {"name": "http", "protocol": "HTTP", "port": port,
                                 "allowedRoutes": {"namespaces": {"from": "Same"}}}]}})
    return probe.wait_for(gateway, lambda g: has_condition(g, "Accepted"), "Gateway Accepted")


def parent_ref(gateway):
    return {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway["metadata"]["name"],
            "namespace": gateway["metadata"]["namespace"]}


def parent_status(route, gateway_name):
    """The route's status entry for a parent Gateway (by name), or None."""
    for parent in (route.get("status") or {}).get("parents") or []:
        if (parent.get("parentRef") or {}).get("name") == gateway_name:
            return parent
    return None


def route_condition(route, gateway_name, cond_type, status="True"):
    parent = parent_status(route, gateway_name)
    return bool(parent) and has_condition({"status": parent}, cond_type, status)


def route_reason(route, gateway_name, cond_type):
    """(reason, message) of a route condition set by a parent Gateway, (None, "") when absent."""
    found = condition({"status": parent_status(route, gateway_name) or {}}, cond_type) or {}
    return found.get("reason"), found.get("message", "")


def echo_backend(probe, name, image, paths=()):
    """A pod answering 'backend=<name>' on port 8080 at / and at each of `paths` (busybox httpd serves files only:
    any other path is a 404), and a Service echo-<name> (port 80) in front of it."""
    labels = {"app": "echo-" + name}
    files = ["/www/index.html"] + ["/www/" + path.strip("/") for path in paths]
    probe.create(command_pod("echo-" + name, "mkdir -p /www && %s && exec httpd -f -p 8080 -h /www" % " && ".join(
        "echo backend=%s > %s" % (name, f) for f in files), image=image, ports=[8080], labels=labels,
        restart_policy="Always"))
    probe.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo-" + name},
                  "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}})


def wait_running(probe, names):
    for name in names:
        probe.wait_for({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}},
                       lambda p: (p.get("status") or {}).get("phase") == "Running", "%s running" % name)


def programmed_address(check, probe, gateway):
    """Base URL of a Gateway once its data plane is Programmed with an address (the gateway_url option wins)."""
    if check.params.get("gateway_url"):
        return check.params["gateway_url"].rstrip("/")

    def addresses(g):
        return [a.get("value") for a in (g.get("status") or {}).get("addresses") or [] if a.get("value")]
    try:
        gateway = probe.wait_for(gateway, lambda g: has_condition(g, "Programmed") and addresses(g),
                                 "Gateway Programmed with an address")
    except WaitTimeout as exc:  # no data plane: the traffic could not be sent, which is not a routing failure
        last = exc.last or gateway
        programmed = condition(last, "Programmed") or {}
        check.cannot_run("the Gateway has %s and no gateway_url was given: traffic could not be sent (Programmed=%s "
                         "%s: %s)" % ("no address in its status" if not addresses(last) else "an address but is "
                                      "not Programmed", programmed.get("status"), programmed.get("reason"),
                                      programmed.get("message", "")[:160]))
    port = next((lst.get("port") for lst in gateway["spec"].get("listeners") or []
                 if lst.get("protocol") == "HTTP"), 80)
    host = addresses(gateway)[0]
    return "http://%s:%s" % (host if ":" not in host else "[%s]" % host, port)


def answer_of(body, backends):
    for name in backends:
        if "backend=%s" % name in body:
            return name
    return "other"


def _fetch(base, batch):
    """The first line of one answer ('HTTP <code>' for an error status); OSError when nothing answers."""
    headers = dict(batch.headers, Host=batch.host)
    try:
        body = open_url(base + batch.path, headers=headers, timeout=REQUEST_TIMEOUT_S, use_netrc=False).read()
    except HTTPError as exc:
        return "HTTP %s" % exc.code
    lines = body.decode("utf-8", "replace").strip().splitlines()
    return lines[0][:80] if lines else ""


class NoBackendAnswered(OSError):
    """Something answers at the Gateway's address from the controller, but never a backend: on a host that does
    not route the cluster's addresses, that is whatever the host's own network puts there (a proxy's 404)."""


def _from_controller(base, batches, backends, must_reach):
    lines = []
    for index, batch in enumerate(batches):
        first = index == 0 and must_reach
        deadline = time.time() + (CONTROLLER_TRY_S if first else WARM_UP_S)
        answer = _fetch(base, batch)
        while answer_of(answer, backends) == "other" and time.time() < deadline:
            time.sleep(0.5)
            answer = _fetch(base, batch)
        if first and answer_of(answer, backends) == "other":
            raise NoBackendAnswered("no backend answered within %ds (last answer: %s)"
                                    % (CONTROLLER_TRY_S, answer or "empty"))
        lines += ["%s %s" % (batch.key, _fetch(base, batch) or "none") for _unused in range(batch.count)]
    return lines


def _quote(text):
    return "'%s'" % str(text).replace("'", "'\"'\"'")


def client_script(base, batches, backends):
    """The in-cluster client: per batch a warm-up, then one log line '<key> <first line of the answer>'."""
    script = ['f() { timeout %d wget -q -O - "$@" 2>/dev/null | head -1; }' % REQUEST_TIMEOUT_S]
    for batch in batches:
        args = " ".join(["--header %s" % _quote("%s: %s" % (k, v)) for k, v in
                         sorted(dict(batch.headers, Host=batch.host).items())] + [_quote(base + batch.path)])
        script.append('n=0; until f %s | grep -q "backend=\\(%s\\)" || [ $n -ge %d ]; do n=$((n+1)); sleep 0.5; done'
                      % (args, "\\|".join(backends), WARM_UP_S * 2))
        script.append('for i in $(seq %d); do r=$(f %s); echo "%s ${r:-none}"; done' % (batch.count, args, batch.key))
    script.append('echo "DO""NE"')
    return "\n".join(script)


def count_lines(lines, batches, backends):
    """{batch key: {backend: n, ..., "other": n}} from lines '<key> <answer>'."""
    counts = {b.key: dict([(name, 0) for name in backends] + [("other", 0)]) for b in batches}
    for line in lines:
        key, _unused, answer = line.strip().partition(" ")
        if key in counts:
            counts[key][answer_of(answer, backends)] += 1
    return counts


def send_traffic(check, probe, base, batches, backends, image):
    """Send the batches through the Gateway; (counts, where they were sent from). Records the evidence."""
    started, where = time.time(), "the controller"
    try:
        lines = _from_controller(base, batches, backends, must_reach=not check.params.get("gateway_url"))
    except (URLError, OSError) as exc:
        if check.params.get("gateway_url"):  # the user's URL: no guessing
            check.cannot_run("the Gateway at %s could not be reached from the controller: %s" % (base, exc))
        check.note("the Gateway at %s was not reachable from the controller (%s); traffic sent from a pod"
                   % (base, exc))
        pod = probe.create(command_pod("traffic-client", client_script(base, batches, backends), image=image))
        try:
            text = probe.wait_for_log(pod, "DONE", "in-cluster client finished its requests")
        except CannotRun as err:
            check.cannot_run("the Gateway at %s was not reachable from the controller, and %s" % (base, err))
        lines, where = text.splitlines(), "a pod in the cluster"
    counts = count_lines(lines, batches, backends)
    sent = ["GET %s%s (Host %s%s) x%d" % (base, b.path, b.host, "".join(", %s: %s" % h for h in sorted(
        b.headers.items())), b.count) for b in batches]
    check.record("send requests through the Gateway from %s" % where, "; ".join(sent),
                 response={"counts": counts, "samples": lines[:5]}, duration_s=time.time() - started)
    return counts, where
