"""Offline validation of the Kubernetes packaging: Helm chart, Istio policy, Dockerfile."""
