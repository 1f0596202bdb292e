"""The edge's REST API as OpenAPI 3.1, from what ``protoc-gen-swagger`` makes of the protos.

``protoc-gen-swagger`` (Debian ``golang-grpc-gateway``) reads the ``google.api.http``
annotations and writes one Swagger 2.0 file per proto file. This module merges those files
into the one OpenAPI 3.1 document the edge serves at ``/openapi.json``, and makes it say what
the edge really does:

- only the methods the edge routes (service-only methods are 404 there);
- query parameters by their JSON names (``pageSize``), as the transcoder reads them;
- path-bound fields left out of request bodies (the transcoder rejects a body field that
  collides with the path);
- schemas named ``<context>.<Message>`` (two contexts may both have a ``PaymentCard``);
- errors as ``google.rpc.Status`` (what ``convert_grpc_status`` and the local replies send);
- bearer JWT on every route that is not public, the admin role where it is needed;
- WatchOrder's body as newline-delimited JSON, one message per line (content-type
  ``application/json``, as Envoy sends it).

``python -m services.edge.openapi SWAGGER_DIR DESCRIPTOR OUT`` writes the document
(scripts/generate does).
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

from services.edge.contract import Rpc, load_rpcs
from services.edge.policy import Policy, load_policy

Json = dict[str, Any]

STATUS = "google.rpc.Status"
BEARER = "bearerAuth"
#: Answers every route may give (the edge's own and the services' mapped gRPC codes).
_ERRORS = {
    "400": "Invalid argument: a google.rpc.BadRequest detail names each bad field.",
    "401": "No token, or a bad one.",
    "403": "The token lacks the role this method needs.",
    "404": "No such resource (other users' resources too).",
    "409": "Already exists, or aborted by a concurrent change.",
    "413": "Request body too large.",
    "429": "Rate limited.",
    "431": "Request headers (or the URL) too large.",
    "503": "The service is unavailable; retry later.",
    "504": "The deadline passed.",
}
#: Methods for admins and service callers alike (the chart's adminMethods would shut the
#: service accounts out): a user token needs the admin role for them too.
_ADMIN_OR_SERVICE = {("payment", "GetPayment")}
_REF = re.compile(r"^#/definitions/(.+)$")
_INTEGER_FORMATS = {"int64": "^-?[0-9]{1,19}$", "uint64": "^[0-9]{1,20}$"}


def _status_schema() -> Json:
    return {
        "type": "object",
        "description": "A gRPC status as JSON: the code (google.rpc.Code), a message and details "
        "(e.g. google.rpc.BadRequest with the bad fields).",
        "properties": {
            "code": {"type": "integer", "format": "int32"},
            "message": {"type": "string"},
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"@type": {"type": "string"}},
                    "additionalProperties": True,
                },
            },
        },
        "required": ["code", "message"],
    }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _type_names(files: descriptor_pb2.FileDescriptorSet) -> dict[str, dict[str, str]]:
    """package → {swagger's name for a message or enum (nested names joined): full name}."""
    names: dict[str, dict[str, str]] = {}

    def walk(package: str, prefix: str, messages: Any, enums: Any) -> None:
        table = names.setdefault(package, {})
        for enum in enums:
            table[prefix + enum.name] = f"{package}.{prefix}{enum.name}"
        for message in messages:
            table[prefix + message.name] = f"{package}.{prefix}{message.name}"
            walk(package, prefix + message.name, message.nested_type, message.enum_type)

    for file in files.file:
        walk(file.package, "", file.message_type, file.enum_type)
    return names


def _short(full_name: str) -> str:
    """``emporium.order.v1.PaymentCard`` → ``order.PaymentCard``."""
    parts = full_name.split(".")
    return f"{parts[1]}.{'.'.join(parts[3:])}" if parts[0] == "emporium" else full_name


class _Namer:
    """Maps one file's swagger definition names (``v1Order``) to document-wide names."""

    def __init__(self, packages: list[str], names: dict[str, dict[str, str]]) -> None:
        self.packages = packages  # the file's own package first, then its imports'
        self.names = names

    def __call__(self, swagger_name: str) -> str:
        for package in self.packages:
            version = package.rsplit(".", 1)[-1]
            local = swagger_name.removeprefix(version)
            if local != swagger_name and local in self.names.get(package, {}):
                return _short(self.names[package][local])
        if swagger_name.startswith("protobuf") or swagger_name.startswith("rpc"):
            return f"google.{swagger_name}"
        raise ValueError(f"cannot resolve swagger definition {swagger_name!r}")


def _convert_schema(node: Any, namer: _Namer) -> Any:
    """A Swagger 2 schema as an OpenAPI 3.1 one (refs renamed, ``format: boolean`` dropped)."""
    if isinstance(node, list):
        return [_convert_schema(item, namer) for item in node]
    if not isinstance(node, dict):
        return node
    out: Json = {}
    for key, value in node.items():
        if key == "$ref":
            match = _REF.match(value)
            out[key] = f"#/components/schemas/{namer(match.group(1))}" if match else value
        elif key == "format" and value == "boolean":
            continue
        elif key == "title" and "description" not in node:
            out["description"] = value
        elif key != "title":
            out[key] = _convert_schema(value, namer)
    if out.get("type") == "string" and out.get("format") in _INTEGER_FORMATS:
        # 64-bit integers are JSON strings in proto3's mapping; the transcoder parses them.
        out["pattern"] = _INTEGER_FORMATS[out["format"]]
    if out.get("type") == "object" and "properties" in out:
        # The transcoder rejects a JSON member with an empty name (400).
        out["propertyNames"] = {"minLength": 1}
    if "$ref" in out and len(out) > 1:
        # 3.1 allows siblings of $ref; keep the field's own description, drop the rest.
        return {
            "$ref": out["$ref"],
            **({"description": out["description"]} if "description" in out else {}),
        }
    return out


def _parameter(param: Json, namer: _Namer) -> Json:
    keys = ("type", "format", "items", "enum", "default")
    schema: Json = _convert_schema({k: v for k, v in param.items() if k in keys}, namer)
    converted: Json = {
        "name": param["name"] if param["in"] == "path" else _camel(param["name"]),
        "in": param["in"],
        "required": bool(param.get("required", False)),
        "schema": schema,
    }
    if param.get("description"):
        converted["description"] = param["description"]
    if schema.get("type") == "array":
        converted["style"], converted["explode"] = "form", True
    return converted


def _body(param: Json, path_fields: set[str], schemas: Json, namer: _Namer) -> Json:
    """The request body: the message, without the fields bound to the path."""
    schema = _convert_schema(param["schema"], namer)
    if path_fields and "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        body = copy.deepcopy(schemas[name])
        for field in path_fields:
            body.get("properties", {}).pop(field, None)
        schema = body
    # An absent body is an empty message to the transcoder (every field at its default).
    return {"required": False, "content": {"application/json": {"schema": schema}}}


def _responses(ok: Json, rpc: Rpc, public: bool, admin: bool, namer: _Namer) -> Json:
    schema = _convert_schema(ok.get("schema", {}), namer)
    description = (
        "A stream: one JSON object per line (newline-delimited JSON), each as this schema."
        if rpc.server_streaming
        else "OK"
    )
    content = {"application/json": {"schema": schema}}
    responses: Json = {"200": {"description": description, "content": content}}
    for code in _ERRORS:
        if (code == "401" and public) or (code == "403" and not admin):
            continue
        responses[code] = {"$ref": f"#/components/responses/{code}"}
    responses["default"] = {"$ref": "#/components/responses/default"}
    return responses


def _error_responses() -> Json:
    error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{STATUS}"}}}
    texts = {**_ERRORS, "default": "Any other gRPC status, as JSON."}
    return {code: {"description": text, "content": error} for code, text in texts.items()}


def _summary(text: str) -> str:
    """The first sentence of a doc comment, on one line."""
    flat = " ".join(text.split())
    head, dot, _ = flat.partition(". ")
    return head + ("." if dot else "")


def _operation(operation: Json, rpc: Rpc, policy: Policy, schemas: Json, namer: _Namer) -> Json:
    public = rpc.method in policy.public_methods.get(rpc.context, frozenset())
    admin = (rpc.context, rpc.method) in _ADMIN_OR_SERVICE or rpc.method in (
        policy.admin_methods.get(rpc.context, frozenset())
    )
    params = operation.get("parameters", [])
    path_fields = {_camel(p["name"]) for p in params if p["in"] == "path"}
    out: Json = {
        "operationId": f"{rpc.context}.{rpc.method}",
        "summary": _summary(operation.get("summary", "")),
        "description": operation.get("summary", "")
        + ("\n\nNeeds a user token with the `admin` role." if admin else ""),
        "tags": [rpc.context],
        "parameters": [_parameter(p, namer) for p in params if p["in"] != "body"],
        "responses": _responses(operation["responses"]["200"], rpc, public, admin, namer),
        "security": [] if public else [{BEARER: []}],
        "x-grpc-method": rpc.path,
    }
    for param in params:
        if param["in"] == "body":
            out["requestBody"] = _body(param, path_fields, schemas, namer)
    if admin:
        out["x-emporium-roles"] = ["admin"]
    if not out["parameters"]:
        del out["parameters"]
    return out


def _packages(file: descriptor_pb2.FileDescriptorProto, by_name: dict[str, Any]) -> list[str]:
    seen: list[str] = [file.package]
    pending = list(file.dependency)
    while pending:
        dep = by_name.get(pending.pop(0))
        if dep is None:
            continue
        if dep.package not in seen:
            seen.append(dep.package)
        pending.extend(dep.dependency)
    return seen


def _refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    ref = node.get("$ref")
    found = {ref.rsplit("/", 1)[-1]} if isinstance(ref, str) and "/schemas/" in ref else set()
    return found.union(*(_refs(value) for value in node.values()))


def _reachable(paths: Json, schemas: Json) -> Json:
    """Only the schemas the routes use (service-only methods' messages are left out)."""
    keep: set[str] = set()
    pending = _refs(paths) | {STATUS}
    while pending:
        name = pending.pop()
        if name not in keep:
            keep.add(name)
            pending |= _refs(schemas[name])
    return {name: schemas[name] for name in sorted(keep)}


def document(swagger_dir: Path, descriptor: bytes, policy: Policy) -> Json:
    """The OpenAPI 3.1 document of the edge's REST routes."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor)
    by_name = {file.name: file for file in files.file}
    names = _type_names(files)
    rpcs = {(rpc.service, rpc.method): rpc for rpc in load_rpcs(descriptor)}
    schemas: Json = {STATUS: _status_schema()}
    paths: Json = {}
    for file in files.file:
        if not file.service:
            continue
        source = swagger_dir / file.name.replace(".proto", ".swagger.json")
        swagger: Json = json.loads(source.read_text())
        namer = _Namer(_packages(file, by_name), names)
        for name, schema in swagger.get("definitions", {}).items():
            schemas[namer(name)] = _convert_schema(schema, namer)
        service = f"{file.package}.{file.service[0].name}"
        for path, item in swagger.get("paths", {}).items():
            for verb, operation in item.items():
                rpc = rpcs[(service, operation["operationId"])]
                if rpc.method in policy.service_methods.get(rpc.context, frozenset()):
                    continue  # service-only: 404 at the edge
                paths.setdefault(path, {})[verb] = _operation(
                    operation, rpc, policy, schemas, namer
                )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Emporium REST API",
            "version": "v1",
            "description": "REST/JSON at the Emporium edge, transcoded to the services' gRPC "
            "methods (google.api.http annotations in protos/). Errors are google.rpc.Status "
            "JSON. Generated by scripts/generate (protoc-gen-swagger, then "
            "services/edge/openapi.py); do not edit.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": context} for context in sorted({r.context for r in rpcs.values()})],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _reachable(paths, schemas),
            "responses": _error_responses(),
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from POST /v1/sessions (accessToken).",
                }
            },
        },
    }


def render(document_: Json) -> str:
    return json.dumps(document_, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python -m services.edge.openapi SWAGGER_DIR DESCRIPTOR OUT", file=sys.stderr)
        return 2
    swagger, descriptor, out = Path(argv[1]), Path(argv[2]), Path(argv[3])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(document(swagger, descriptor.read_bytes(), load_policy())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
