module k8s-ai-conformance.invalid/lab/accelerator-metrics-standin

go 1.26
