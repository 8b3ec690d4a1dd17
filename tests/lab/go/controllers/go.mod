module k8s-ai-conformance/lab/controllers

go 1.26.0

require (
	sigs.k8s.io/jobset v0.12.0
	sigs.k8s.io/kueue v0.19.2
	sigs.k8s.io/kwok v0.8.0
)
