"""What runs beside the loop in a cluster: Lease leader election, health and metrics endpoints, JSON
logs, and the install manifests.
"""
