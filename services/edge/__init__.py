"""The Envoy edge's configuration, rendered from one source.

Routes come from the contracts (the descriptor set buf builds), access rules and resilience
thresholds from the Helm chart's values, and the few things that differ between the local
mesh and the cluster (addresses, the canary split) from an :class:`~services.edge.spec.EdgeSpec`.
``python -m services.edge render`` writes ``envoy/envoy.yaml`` and the chart's
``files/envoy.yaml``; ``python -m services.edge check`` fails when either has drifted.
"""
