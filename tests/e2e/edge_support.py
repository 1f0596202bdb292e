"""A mesh behind the real Envoy edge for end-to-end tests: service processes, Envoy, and a
small HTTP client (http.client: no extra packages) for REST, gRPC-Web and CORS."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import urllib.parse
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.edge.contract import DESCRIPTOR, load_rpcs
from services.edge.spec import EdgeSpec, Endpoint, local_spec, with_endpoints
from services.identity.tokens import SigningKey
from services.mesh import edge
from services.mesh.environment import Credentials, MeshEnvironment
from services.mesh.health import wait_serving
from services.mesh.processes import ProcessGroup
from services.mesh.seed import seed
from services.platform.embedded_redis import EmbeddedRedis
from tests.conftest import ADMIN, ORDER_SERVICE_SECRET

ROOT = Path(__file__).resolve().parents[2]
RPCS = load_rpcs(DESCRIPTOR.read_bytes())
BASE_SERVICES = ("identity", "catalog", "inventory")
ORDER_SERVICES = ("payment", "order", "fulfillment")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Instance:
    """One service process the edge routes to."""

    name: str  # process and log name, e.g. "catalog-b"
    service: str  # "catalog"
    port: int
    database: Path
    metrics_port: int = field(default_factory=lambda: free_port())

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class EdgeMesh:
    spec: EdgeSpec
    group: ProcessGroup
    data_dir: Path
    instances: dict[str, Instance] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.spec.listen_port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.spec.admin_port}"

    @property
    def edge_log(self) -> Path:
        return self.data_dir / "logs" / "edge.log"

    def log(self, name: str) -> Path:
        return self.data_dir / "logs" / f"{name}.log"

    def access_log(self) -> list[dict[str, Any]]:
        """The edge's JSON access log lines so far."""
        lines = []
        for line in self.edge_log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    lines.append(json.loads(line))
        return lines

    def admin_get(self, path: str) -> str:
        with urllib_get(f"{self.admin}{path}") as text:
            return text


@contextlib.contextmanager
def urllib_get(url: str) -> Iterator[str]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        yield response.read().decode()


@contextlib.asynccontextmanager
async def edge_mesh(
    data_dir: Path,
    key: SigningKey,
    *,
    orders: bool = True,
    canary: bool = False,
    extra_instances: Mapping[str, str] | None = None,
    **spec_changes: Any,
) -> AsyncIterator[EdgeMesh]:
    """Starts identity, catalog and inventory (and, with ``orders``, the order flow) as
    processes on free ports, seeds them, and puts the real Envoy edge in front.

    ``extra_instances`` adds more processes of a service (name → service) to that
    service's cluster; ``canary`` starts ``order-v2``; ``spec_changes`` tune the edge.
    """
    services = [*BASE_SERVICES, *(ORDER_SERVICES if orders else ())]
    instances = {
        name: Instance(name, name, free_port(), data_dir / f"{name}.db") for name in services
    }
    for name, service in (extra_instances or {}).items():
        instances[name] = Instance(name, service, free_port(), data_dir / f"{name}.db")
    if canary and orders:
        # v2 shares v1's database, like the chart's second Deployment.
        instances["order-v2"] = Instance(
            "order-v2", "order", free_port(), instances["order"].database
        )
    targets = {name: instances[name].target for name in services}
    group = ProcessGroup(data_dir / "logs")
    redis = None
    try:
        if orders:
            redis = EmbeddedRedis(data_dir / "redis")
            redis.start()
        environment = MeshEnvironment(
            targets,
            data_dir,
            Credentials(ADMIN, {"order": ORDER_SERVICE_SECRET}),
            redis.url if redis is not None else None,
            extra={"PASSWORD_HASH_COST": "fast", "JWT_SIGNING_KEY_PEM": key.pem()},
        )
        # v2 starts once v1 has migrated the shared database.
        for phase in (False, True):
            started = {}
            for instance in instances.values():
                if (instance.name == "order-v2") != phase:
                    continue
                env = environment.service(
                    instance.service,
                    instance.port,
                    instance.metrics_port,
                    database_url=f"sqlite+aiosqlite:///{instance.database}",
                    version="v2" if instance.name == "order-v2" else None,
                )
                group.python(instance.name, ["services", instance.service], env)
                started[instance.name] = instance.target
            missing = await wait_serving(started, timeout=120)
            if missing:
                logs = {n: (data_dir / "logs" / f"{n}.log").read_text()[-2000:] for n in missing}
                raise AssertionError(f"not serving: {missing}\n{logs}")
        await seed(targets, ADMIN)
        extra: dict[str, list[Endpoint]] = {}
        for instance in instances.values():
            if instance.name not in targets and instance.name != "order-v2":
                extra.setdefault(instance.service, []).append(Endpoint("127.0.0.1", instance.port))
        spec = local_spec(
            targets,
            canary_target=instances["order-v2"].target if "order-v2" in instances else None,
            listen_port=free_port(),
            admin_port=free_port(),
            **spec_changes,
        )
        spec = with_endpoints(spec, extra)
        child = edge.start(group, spec, data_dir / "edge", log_level="info")
        if not await edge.wait_ready(spec, child, timeout=60):
            raise AssertionError("the edge did not come up:\n" + child.log_path.read_text()[-4000:])
        yield EdgeMesh(spec, group, data_dir, instances)
    finally:
        group.stop_all(grace=5)
        if redis is not None:
            redis.stop()


# ---- HTTP ---------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def request(
    mesh: EdgeMesh,
    method: str,
    path: str,
    *,
    body: bytes | str | Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    token: str | None = None,
    query: Mapping[str, str] | None = None,
    source: str | None = None,
    timeout: float = 60.0,
) -> Response:
    """One HTTP/1.1 request to the edge; ``source`` picks the client's address (any
    127.0.0.0/8 address), so tests can be distinct clients."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", mesh.port, timeout=timeout, source_address=(source, 0) if source else None
    )
    all_headers = dict(headers or {})
    if isinstance(body, Mapping):
        body = json.dumps(body)
        all_headers.setdefault("content-type", "application/json")
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    if query:
        path = f"{path}?{urllib.parse.urlencode(query)}"
    try:
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        found = {name.lower(): value for name, value in response.getheaders()}
        return Response(response.status, found, data)
    finally:
        connection.close()


# ---- gRPC-Web -----------------------------------------------------------------------------


def grpc_web_frame(message: bytes) -> bytes:
    """A gRPC-Web data frame: flag 0, big-endian length, the protobuf bytes."""
    return struct.pack(">BI", 0, len(message)) + message


def grpc_web_parse(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    """The messages and the trailers (flag 0x80 frame) of a gRPC-Web response body."""
    messages: list[bytes] = []
    trailers: dict[str, str] = {}
    offset = 0
    while offset + 5 <= len(body):
        flag, length = struct.unpack(">BI", body[offset : offset + 5])
        payload = body[offset + 5 : offset + 5 + length]
        offset += 5 + length
        if flag & 0x80:
            for line in payload.decode().split("\r\n"):
                name, sep, value = line.partition(":")
                if sep:
                    trailers[name.strip().lower()] = value.strip()
        else:
            messages.append(payload)
    return messages, trailers


class Client:
    """A keep-alive HTTP/1.1 connection to the edge, for many requests in a row."""

    def __init__(self, mesh: EdgeMesh, source: str | None = None) -> None:
        self._connection = http.client.HTTPConnection(
            "127.0.0.1", mesh.port, timeout=60, source_address=(source, 0) if source else None
        )

    def get(self, path: str, headers: Mapping[str, str]) -> Response:
        self._connection.request("GET", path, headers=dict(headers))
        response = self._connection.getresponse()
        data = response.read()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

    def close(self) -> None:
        self._connection.close()


@dataclass
class Stream:
    """A streaming REST response: one JSON object per line (WatchOrder)."""

    status: int
    headers: dict[str, str]
    connection: http.client.HTTPConnection
    response: http.client.HTTPResponse

    def next(self) -> Any | None:
        line = self.response.readline()
        return json.loads(line) if line.strip() else None

    def close(self) -> None:
        self.connection.close()


def open_stream(mesh: EdgeMesh, path: str, token: str, timeout: float = 60.0) -> Stream:
    connection = http.client.HTTPConnection("127.0.0.1", mesh.port, timeout=timeout)
    connection.request("GET", path, headers={"authorization": f"Bearer {token}"})
    response = connection.getresponse()
    headers = {k.lower(): v for k, v in response.getheaders()}
    return Stream(response.status, headers, connection, response)


async def access_log_line(mesh: EdgeMesh, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """The edge's access log line of the request ``request_id`` (waits for the flush)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        for line in mesh.access_log():
            if line.get("request_id") == request_id:
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no access log line for request {request_id}")
        await asyncio.sleep(0.1)


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus metric's samples whose labels include ``labels``."""
    total = 0.0
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    for line in text.splitlines():
        if line.startswith(name + "{") and all(w in line for w in wanted):
            total += float(line.rsplit(" ", 1)[1])
    return total


def metrics_of(instance: Instance) -> str:
    with urllib_get(f"http://127.0.0.1:{instance.metrics_port}/metrics") as text:
        return text
