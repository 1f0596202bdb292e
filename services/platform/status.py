"""The one place where domain errors become gRPC statuses with ``google.rpc`` details."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.platform import errors

_CODES: tuple[tuple[type[errors.DomainError], grpc.StatusCode, int], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND, code_pb2.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS, code_pb2.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION, code_pb2.FAILED_PRECONDITION),
    (errors.Conflict, grpc.StatusCode.ABORTED, code_pb2.ABORTED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED, code_pb2.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED, code_pb2.PERMISSION_DENIED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED, code_pb2.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE, code_pb2.UNAVAILABLE),
)


def code_of(error: errors.DomainError) -> grpc.StatusCode:
    for cls, code, _ in _CODES:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.UNKNOWN


def to_status(error: errors.DomainError) -> grpc.Status:
    """A rich status for ``error``: code, message and, for bad input, a BadRequest."""
    number = next((num for cls, _, num in _CODES if isinstance(error, cls)), code_pb2.UNKNOWN)
    proto = status_pb2.Status(code=number, message=error.message)
    if isinstance(error, errors.InvalidArgument):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad_request)
        proto.details.append(detail)
    result: grpc.Status = rpc_status.to_status(proto)
    return result


def field_violations(rpc_error: grpc.RpcError) -> dict[str, str]:
    """The field violations carried by a failed call (for clients and tests)."""
    found: dict[str, str] = {}
    trailing: Any = rpc_error.trailing_metadata()
    for key, value in trailing or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request):
                for violation in bad_request.field_violations:
                    found[violation.field] = violation.description
    return found
