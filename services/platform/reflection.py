"""Server reflection: a service describes itself, and the whole mesh when the edge asks.

Called directly (``grpcurl -plaintext 127.0.0.1:50052 list``) a service lists its own
services. Through the edge, which routes reflection to one service and adds
``x-emporium-reflection: mesh``, it lists every Emporium service, so ``grpcurl`` against the
edge lists, describes and calls the whole public API without ``-protoset``. Either way every
Emporium type can be described: the descriptors of all contexts are loaded (they are the
generated modules in gen/python, part of every image).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from grpc import aio
from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from services.platform.config import DEFAULT_PORTS
from services.platform.types import Context

#: The request header (gRPC metadata) the edge adds on the reflection route.
MESH_HEADER = "x-emporium-reflection"
MESH_VALUE = "mesh"


def mesh_service_names() -> list[str]:
    """Every Emporium service, loading each context's descriptors into the default pool."""
    names: list[str] = []
    for context in DEFAULT_PORTS:
        module: Any = importlib.import_module(f"emporium.{context}.v1.{context}_service_pb2")
        names += [service.full_name for service in module.DESCRIPTOR.services_by_name.values()]
    return names


class MeshReflection(reflection_pb2_grpc.ServerReflectionServicer):  # type: ignore[misc]
    """Reflection over all of Emporium's descriptors; the service list depends on the caller."""

    def __init__(self, own: Sequence[str]) -> None:
        always = [health.SERVICE_NAME, reflection.SERVICE_NAME]
        mesh = mesh_service_names()
        self._own = reflection.aio.ReflectionServicer([*own, *always])
        self._mesh = reflection.aio.ReflectionServicer([*mesh, *always])

    async def ServerReflectionInfo(
        self,
        request_iterator: AsyncIterator[reflection_pb2.ServerReflectionRequest],
        context: Context,
    ) -> AsyncIterator[reflection_pb2.ServerReflectionResponse]:
        metadata = dict(context.invocation_metadata() or ())
        inner = self._mesh if metadata.get(MESH_HEADER) == MESH_VALUE else self._own
        async for response in inner.ServerReflectionInfo(request_iterator, context):
            yield response


def enable(own: Sequence[str], server: aio.Server) -> None:
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(MeshReflection(own), server)
