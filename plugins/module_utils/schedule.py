# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0
"""When each check of a verify run may start: no batches, a check starts the moment it may.

A check may start when fewer than `concurrency` checks run and what it uses is free. Checks declare
what they use (`uses`: {check: {resource: "shared" | "exclusive"}}): any number of checks share a
resource, an exclusive user has it alone (e.g. cluster_autoscaling asks for a whole node's worth of
accelerators; the DRA checks each take one device, so they share "accelerators" and never overlap
with it). Checks that use nothing in common run side by side - their probes are namespace-isolated.

Order is the plan's order, except that a check waiting for a resource does not hold back the checks
after it that do not need that resource. An exclusive user waiting for a resource is not starved: no
new shared user of that resource starts before it.
"""

from __future__ import absolute_import, division, print_function

SHARED = "shared"
EXCLUSIVE = "exclusive"
MODES = (SHARED, EXCLUSIVE)


def normalise_uses(uses, checks):
    """{check: {resource: mode}} for the given checks; raises ValueError naming a bad entry."""
    out = {}
    for check, wanted in (uses or {}).items():
        if not isinstance(wanted, dict):
            raise ValueError("uses of %s: expected a mapping resource -> shared|exclusive, got %r"
                             % (check, wanted))
        for resource, mode in wanted.items():
            if mode not in MODES:
                raise ValueError("uses of %s: resource %s has mode %r; use shared or exclusive"
                                 % (check, resource, mode))
        if check in checks:
            out[check] = dict(wanted)
    return out


class Scheduler:
    """Decides which pending checks start now; start()/finish() keep the books."""

    def __init__(self, checks, uses=None, concurrency=8):
        if int(concurrency) < 1:
            raise ValueError("concurrency must be at least 1, got %r" % concurrency)
        self.pending = list(checks)
        self.concurrency = int(concurrency)
        self.uses = normalise_uses(uses, set(checks))
        self.running = set()
        self.holders = {}  # resource -> {check: mode}

    @staticmethod
    def _may_use(wanted, holders, reserved):
        for resource, mode in wanted.items():
            modes = holders.get(resource, {}).values()
            if EXCLUSIVE in modes or (mode == EXCLUSIVE and modes):
                return False
            if mode == SHARED and resource in reserved:
                return False  # an earlier exclusive user waits for it
        return True

    def startable(self):
        """The pending checks that may start now, in plan order (they are not yet marked started)."""
        holders = {r: dict(h) for r, h in self.holders.items()}
        chosen, reserved = [], set()
        for check in self.pending:
            if len(self.running) + len(chosen) >= self.concurrency:
                break
            wanted = self.uses.get(check, {})
            if self._may_use(wanted, holders, reserved):
                chosen.append(check)
                for resource, mode in wanted.items():
                    holders.setdefault(resource, {})[check] = mode
            else:
                reserved.update(r for r, m in wanted.items() if m == EXCLUSIVE)
        return chosen

    def start(self, check):
        self.pending.remove(check)
        self.running.add(check)
        for resource, mode in self.uses.get(check, {}).items():
            self.holders.setdefault(resource, {})[check] = mode

    def finish(self, check):
        self.running.discard(check)
        for holders in self.holders.values():
            holders.pop(check, None)

    @property
    def done(self):
        return not self.pending and not self.running
