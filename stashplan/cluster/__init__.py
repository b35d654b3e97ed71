"""Cluster adapters: the embedded local store and the Kubernetes API, behind one interface."""
