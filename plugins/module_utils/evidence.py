# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0
"""Evidence recorder: what was applied or asked, what came back, how long it took.

    evidence = Evidence()
    evidence.add("list DeviceClasses", "GET /apis/resource.k8s.io/v1/deviceclasses", response=names)
    with evidence.step("create ResourceClaim", "POST /apis/...", request=claim) as step:
        step.response = cluster.create(path, claim)       # timed; response trimmed on exit

Objects are trimmed (managedFields, last-applied annotations, secret data dropped; long lists and
strings cut) so an evidence file stays readable and small on a 2,000-node cluster.
"""

from __future__ import absolute_import, division, print_function

import time

MAX_LIST_ITEMS = 20
MAX_STRING = 2000
MAX_DEPTH = 12
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def trim(value, depth=0):
    """A copy of value that is safe and short enough to show as evidence."""
    if depth > MAX_DEPTH:
        return "..."
    if isinstance(value, dict):
        out = {}
        is_secret = value.get("kind") == "Secret"
        for key, item in value.items():
            if key == "managedFields":
                continue
            if is_secret and key in ("data", "stringData"):
                out[key] = dict.fromkeys(item or {}, "<redacted>")
                continue
            if key == "annotations" and isinstance(item, dict):
                item = {k: v for k, v in item.items() if k not in DROPPED_ANNOTATIONS}
            out[key] = trim(item, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        items = [trim(v, depth + 1) for v in value[:MAX_LIST_ITEMS]]
        if len(value) > MAX_LIST_ITEMS:
            items.append("... %d more" % (len(value) - MAX_LIST_ITEMS))
        return items
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and len(value) > MAX_STRING:
        return value[:MAX_STRING] + "... (%d characters cut)" % (len(value) - MAX_STRING)
    return value


class Step:
    """One evidence entry being recorded; set .response (and optionally .request) inside the block."""

    def __init__(self, title, action, request=None):
        self.title = title
        self.action = action
        self.request = request
        self.response = None
        self.error = None


class Evidence:
    def __init__(self):
        self.entries = []

    def add(self, title, action, request=None, response=None, duration_s=None, error=None):
        entry = {"title": title, "action": action}
        if request is not None:
            entry["request"] = trim(request)
        if response is not None:
            entry["response"] = trim(response)
        if error is not None:
            entry["error"] = str(error)
        entry["duration_s"] = round(duration_s or 0.0, 3)
        self.entries.append(entry)
        return entry

    def step(self, title, action, request=None):
        return _StepContext(self, Step(title, action, request))


class _StepContext:
    def __init__(self, evidence, step):
        self.evidence = evidence
        self.step = step
        self.started = None

    def __enter__(self):
        self.started = time.time()
        return self.step

    def __exit__(self, exc_type, exc, tb):
        error = self.step.error if exc is None else exc
        self.evidence.add(self.step.title, self.step.action, self.step.request, self.step.response,
                          time.time() - self.started, error)
        return False
