# -*- coding: utf-8 -*-
# Copyright: k8s_ai.conformance contributors
# Apache License 2.0
"""Inference-server probe workloads: an OpenAI-compatible server with vLLM's metrics, and requests to it.

    pod = probe.create(inference_pod("inference-server", model="probe-x", annotations=SCRAPE_ANNOTATIONS))
    probe.wait_for(pod, pod_ready, "inference server ready")
    ep = Endpoint.pod(probe.namespace, "inference-server", SERVER_PORT)
    complete(check, ep, "probe-x", 3)                   # 3 chat completions, each must answer 200
    served_counter(check, ep, REQUESTS_METRIC, "probe-x") -> 3.0 (the server's own /metrics)

The default server is llm-d's vLLM simulator (ghcr.io/llm-d/llm-d-inference-sim): vLLM's API and metric names
(vllm:request_success_total{model_name}, vllm:num_requests_running, ...) without a GPU or model weights. A made-up
model name and --force-dummy-tokenizer keep it offline (it would otherwise ask huggingface.co whether the model
exists, and fetch a real model's tokenizer).
"""

from __future__ import absolute_import, division, print_function

from ansible_collections.k8s_ai.conformance.plugins.module_utils.probe import command_pod, has_condition

INFERENCE_IMAGE = "ghcr.io/llm-d/llm-d-inference-sim:v0.10.2"
SERVER_BINARY = "/app/llm-d-inference-sim"  # where the upstream image keeps it (its entrypoint)
SERVER_PORT = 8000
REQUESTS_METRIC = "vllm:request_success_total"  # counter per model_name (and finish_reason)
SCRAPE_ANNOTATIONS = {"prometheus.io/scrape": "true", "prometheus.io/port": str(SERVER_PORT),
                      "prometheus.io/path": "/metrics"}


def inference_pod(name, model, image=INFERENCE_IMAGE, annotations=None, labels=None, extra_args=None, claims=None):
    """A pod serving `model` on SERVER_PORT (/v1/chat/completions, /metrics), ready on /health/ready; claims as in
    probe.pod_manifest."""
    # --force-dummy-tokenizer: no look-up of the model on huggingface.co (the pod needs no network but the probe's).
    argv = [SERVER_BINARY, "--model", model, "--port", str(SERVER_PORT), "--force-dummy-tokenizer"] + list(
        extra_args or [])
    pod = command_pod(name, argv, image=image, ports=[{"name": "http", "containerPort": SERVER_PORT}],
                      labels=dict(labels or {}, app=name), annotations=annotations, restart_policy="Always",
                      requests={"cpu": "10m", "memory": "32Mi"}, claims=claims)
    pod["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/health/ready", "port": SERVER_PORT}, "periodSeconds": 1, "failureThreshold": 3}
    return pod


def pod_ready(pod):
    return has_condition(pod, "Ready")


def complete(check, ep, model, count, prompt="ping"):
    """Send `count` chat completions for `model`; each must answer HTTP 200 (else the part fails)."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 4}
    with check.evidence.step("%d chat completions for %s" % (count, model),
                             "POST %s x%d" % (ep.location("/v1/chat/completions"), count), request=body) as step:
        answers = [ep.post_json(check.cluster, "/v1/chat/completions", body) for _unused in range(count)]
        step.response = answers[-1]
    refused = [status for status, _unused in answers if status != 200]
    check.require(not refused, "the inference server refused %d of %d requests (HTTP %s)"
                  % (len(refused), count, refused[:3]))
    return count


def served_counter(check, ep, metric, model):
    """The sum of `metric`{model_name=model} in the server's own /metrics (None when it exposes none)."""
    with check.evidence.step("%s of %s on the server" % (metric, model), "GET " + ep.location("/metrics")) as step:
        text = ep.get_text(check.cluster, "/metrics", accept="text/plain")
        lines = [line for line in text.splitlines()
                 if line.startswith(metric + "{") and 'model_name="%s"' % model in line]
        step.response = "\n".join(lines)
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines) if lines else None
