"""Prometheus metrics: one registry per process, served over HTTP on the metrics port."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    """The metrics every service exports; services add their own to ``registry``."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        self.rpcs = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by method and status code.",
            ["grpc_service", "grpc_method", "grpc_code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "grpc_server_handling_seconds",
            "Time to handle an RPC, by method.",
            ["grpc_service", "grpc_method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.info = Gauge(
            "emporium_service_info",
            "Always 1; labels say what runs.",
            ["service", "version"],
            registry=self.registry,
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` over HTTP; returns the port actually bound."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_address[1])
