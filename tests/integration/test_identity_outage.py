"""A service keeps verifying tokens at its normal speed while identity is frozen (SIGSTOP):
stale keys are served while identity is asked again in the background, for a bounded time.
Identity runs as its own process (so it can be frozen); payment, in this process, is the
service under test."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from emporium.payment.v1 import payment_service_pb2 as pb
from emporium.payment.v1 import payment_service_pb2_grpc as pb_grpc

from services.identity.tokens import SigningKey
from services.mesh.health import wait_serving
from services.mesh.processes import Child, ProcessGroup
from services.payment import main as payment_main
from tests.support import servers
from tests.support.tokens import bearer, mint

#: Keys go stale (and are revalidated) after this long; trusted this long without identity.
REFRESH, MAX_STALE = 0.3, 3.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def identity(tmp_path: Path, signing_key: SigningKey) -> AsyncIterator[tuple[Child, str]]:
    group = ProcessGroup(tmp_path / "logs")
    port = _free_port()
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}",
        "GRPC_PORT": str(port),
        "METRICS_PORT": str(_free_port()),
        "JWT_SIGNING_KEY_PEM": signing_key.pem(),
        "PASSWORD_HASH_COST": "fast",
    }
    child = group.python("identity", ["services", "identity"], env)
    target = f"127.0.0.1:{port}"
    try:
        assert not await wait_serving({"identity": target}, timeout=60), child.log_tail()
        yield child, target
    finally:
        child.process.send_signal(signal.SIGCONT)
        group.stop_all(grace=5)


async def _timed_get(stub: pb_grpc.PaymentServiceStub, token: str) -> tuple[float, grpc.StatusCode]:
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:  # no such payment: NOT_FOUND once verified
        await stub.GetPayment(
            pb.GetPaymentRequest(payment_id="no-such-payment"), metadata=bearer(token), timeout=10
        )
    return time.monotonic() - started, caught.value.code()


async def test_tokens_verify_at_normal_speed_while_identity_is_frozen(
    identity: tuple[Child, str], signing_key: SigningKey, tmp_path: Path
) -> None:
    child, target = identity
    settings = servers.settings_for(
        "payment",
        f"sqlite+aiosqlite:///{tmp_path / 'payment.db'}",
        IDENTITY_TARGET=target,
        EMPORIUM_JWKS_REFRESH_SECONDS=str(REFRESH),
        EMPORIUM_JWKS_MAX_STALE_SECONDS=str(MAX_STALE),
    )
    async with servers.serve(payment_main.build, settings) as payment:
        stub = pb_grpc.PaymentServiceStub(payment.channel)
        _, code = await _timed_get(stub, mint(signing_key, "admin:warm", ["admin"]))
        assert code == grpc.StatusCode.NOT_FOUND
        child.process.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        await asyncio.sleep(REFRESH * 2)  # the keys are stale from here on
        # Every call brings a token never seen before: each needs the (stale) key.
        results = [
            await _timed_get(stub, mint(signing_key, f"admin:{i}", ["admin"])) for i in range(20)
        ]
        assert time.monotonic() - frozen_at < MAX_STALE
        assert {code for _, code in results} == {grpc.StatusCode.NOT_FOUND}
        assert max(took for took, _ in results) < 0.5, results  # no wait for identity
        # Past the bound the keys are not trusted any more: refused, and quickly.
        await asyncio.sleep(max(0.0, frozen_at + MAX_STALE + 0.1 - time.monotonic()))
        took, code = await _timed_get(stub, mint(signing_key, "admin:late", ["admin"]))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert took < 2.5
        child.process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 20  # failed fetches are retried every 5 s
        while True:
            _, code = await _timed_get(stub, mint(signing_key, "admin:back", ["admin"]))
            if code == grpc.StatusCode.NOT_FOUND:
                break
            assert time.monotonic() < deadline, code
            await asyncio.sleep(0.2)
