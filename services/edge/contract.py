"""The RPCs the edge can route, read from the descriptor set buf builds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = ROOT / "gen" / "descriptor" / "emporium.binpb"

_VERBS = ("get", "put", "post", "delete", "patch")
_HTTP_RULE: Any = annotations_pb2.http  # the google.api.http method option


@dataclass(frozen=True, slots=True)
class Rpc:
    """One method of one Emporium service, with its REST binding."""

    context: str  # "catalog"
    service: str  # "emporium.catalog.v1.CatalogService"
    method: str  # "ListProducts"
    http_method: str  # "GET"
    http_path: str  # "/v1/products/{product_id}"
    body: str  # "*" or ""
    server_streaming: bool

    @property
    def path(self) -> str:
        """The gRPC path, which is also the route the edge matches after transcoding."""
        return f"/{self.service}/{self.method}"


def _with_dependencies(file: _descriptor.FileDescriptor) -> list[_descriptor.FileDescriptor]:
    """``file`` after everything it imports (a descriptor pool builds files in order)."""
    ordered: list[_descriptor.FileDescriptor] = []
    for dependency in file.dependencies:
        ordered += _with_dependencies(dependency)
    return [*ordered, file]


def edge_descriptor(descriptor: bytes | None = None) -> bytes:
    """The descriptor set the transcoder gets: buf's, plus ``google.rpc`` error details.

    The services put a ``google.rpc.BadRequest`` in every INVALID_ARGUMENT; the transcoder
    can print it in the JSON error only if it knows the type.
    """
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor or DESCRIPTOR.read_bytes())
    present = {file.name for file in files.file}
    for extra in _with_dependencies(error_details_pb2.DESCRIPTOR):
        if extra.name not in present:
            present.add(extra.name)
            proto = files.file.add()
            extra.CopyToProto(proto)
    return files.SerializeToString(deterministic=True)


def load_rpcs(descriptor: bytes) -> list[Rpc]:
    """Every method of every ``emporium.<context>.v1`` service, in descriptor order."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor)
    rpcs: list[Rpc] = []
    for file in files.file:
        parts = file.package.split(".")
        if len(parts) != 3 or parts[0] != "emporium":
            continue
        for service in file.service:
            for method in service.method:
                rule: http_pb2.HttpRule = method.options.Extensions[_HTTP_RULE]
                verb = rule.WhichOneof("pattern")
                if verb not in _VERBS:
                    raise ValueError(f"{service.name}.{method.name} has no google.api.http rule")
                rpcs.append(
                    Rpc(
                        context=parts[1],
                        service=f"{file.package}.{service.name}",
                        method=method.name,
                        http_method=verb.upper(),
                        http_path=getattr(rule, verb),
                        body=rule.body,
                        server_streaming=method.server_streaming,
                    )
                )
    return rpcs


def services(rpcs: list[Rpc]) -> dict[str, str]:
    """Context → full service name, in descriptor order."""
    return {rpc.context: rpc.service for rpc in rpcs}
