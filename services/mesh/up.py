"""``scripts/up``: start the whole mesh locally, seed it, print where to reach it, and keep
it running (a service that exits is restarted) until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path

from services.mesh.local import ADMIN_USER, LocalMesh, Options, implemented

__all__ = ["ADMIN_USER", "implemented", "main", "run"]


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT (Ctrl-C) or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def start(mesh: LocalMesh, options: Options) -> bool:
    """Every step up to the banner; ``False`` (the reason printed) when one fails."""
    mesh.start_services(mesh.start_redis())
    if not await mesh.wait_healthy():
        return False
    healthy_after = time.monotonic() - mesh.started
    created = await mesh.seed()
    if options.edge and not await mesh.start_front():
        return False
    if options.observe and not await mesh.start_prometheus():
        return False
    print(mesh.banner())
    print(f"\nAll {len(mesh.names)} services healthy in {healthy_after:.1f}s; seeded {created}.")
    sys.stdout.flush()
    return True


async def _unless_stopped(starting: asyncio.Task[bool], stop: asyncio.Event) -> bool | None:
    """``starting``'s result, or ``None`` when Ctrl-C came first (``starting`` cancelled)."""
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if starting.done():
        return starting.result()
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    return None


async def run(options: Options) -> int:
    """Starts the mesh, seeds it, prints the banner and supervises it until stopped.
    Ctrl-C (or SIGTERM) at any point, during the start too, stops every process."""
    mesh = LocalMesh(options)
    stop = _stop_on_signals()
    try:
        started = await _unless_stopped(asyncio.create_task(start(mesh, options)), stop)
        if started is False:
            return 1
        if started:
            await mesh.supervise(stop)
        print("\nstopping…")
        return 0 if started else 130
    finally:
        mesh.stop()
        print("stopped.")


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
    options = Options(
        data_dir=Path(args.data_dir).resolve(),
        port_offset=args.port_offset,
        grpc_port_offset=args.port_offset
        if args.grpc_port_offset is None
        else args.grpc_port_offset,
        only=tuple(args.only or ()),
        timeout=args.timeout,
        edge=args.edge,
        canary=args.canary,
        observe=args.observe,
    )
    return asyncio.run(run(options))
