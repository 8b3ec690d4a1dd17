module k8s-ai-conformance.invalid/lab/pause

go 1.26
