"""Identity frozen (SIGSTOP) for 60 s while orders flow with tokens it issued before.

Identity holds its connections but answers nothing, the worst kind of down. Every other
service verifies tokens against identity's keys (JWKS) and the order service calls
inventory and payment with its own service token. With keys and tokens already in hand,
the mesh must not notice: sagas placed during the freeze complete (ship or, for the
declined card, are rejected) before identity thaws, and GetOrder answers as fast as it did
before the freeze.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fault import invariants
from tests.support.cluster import Fleet
from tests.support.mesh import Mesh, Shop, running_mesh
from tests.support.workload import APPROVED, DECLINED, Books, Placement

pytestmark = pytest.mark.slow

PORT_BASE = 22900
FREEZE_SECONDS = 60.0
#: Reads during the freeze may be slower than before on two busy cores, not stalled on a
#: hung identity (a JWKS wait is seconds).
SLOWEST_READ_SECONDS = 0.5


@pytest.fixture
async def mesh(tmp: Path) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp / "mesh", PORT_BASE) as running:
        yield running


async def _read_latencies(placement: Placement, order_ids: list[str], reads: int) -> list[float]:
    took: list[float] = []
    for index in range(reads):
        order_id = order_ids[index % len(order_ids)]
        started = time.monotonic()
        await placement.fleet.get(order_id, placement.owners[order_id])
        took.append(time.monotonic() - started)
        await asyncio.sleep(0.05)
    return took


async def test_a_frozen_identity_neither_stalls_sagas_nor_slows_reads(mesh: Mesh) -> None:
    shop = await Shop(mesh).open()
    rng = random.Random(9)
    placement = Placement(Fleet(mesh, ["order"], rng), [shop.customer], Books(), rng)
    try:
        product = await shop.new_product(price_minor=990, stock=1000)
        placement.books.stock = {product.sku: 1000}
        warm = [await placement.place([(product, 1)], APPROVED[0]) for _ in range(3)]
        await invariants.settle(mesh, warm, 60)
        before = await _read_latencies(placement, warm, 40)

        mesh.freeze("identity")
        frozen = time.monotonic()
        try:
            during: list[str] = []
            for index in range(20):
                number = DECLINED[0] if index % 5 == 4 else APPROVED[index % len(APPROVED)]
                during.append(await placement.place([(product, 1 + index % 2)], number))
                await asyncio.sleep(0.5)
            reads = await _read_latencies(placement, warm + during, 100)
            left = FREEZE_SECONDS - (time.monotonic() - frozen)
            seen = await invariants.settle(mesh, during, max(1.0, left - 1.0))
            still_frozen = time.monotonic() - frozen < FREEZE_SECONDS
        finally:
            await asyncio.sleep(max(0.0, frozen + FREEZE_SECONDS - time.monotonic()))
            mesh.thaw("identity")

        late = {o: s for o, s in seen.items() if s not in invariants.FINAL}
        assert not late, f"sagas stalled while identity was frozen: {late}"
        assert still_frozen, "the sagas ended only after identity thawed"
        expected = {o: "REJECTED" if i % 5 == 4 else "SHIPPED" for i, o in enumerate(during)}
        assert seen == expected
        typical = statistics.median(before)
        assert max(reads) < max(SLOWEST_READ_SECONDS, 5 * typical), (
            f"GetOrder took up to {max(reads):.2f}s with identity frozen "
            f"(median {statistics.median(reads):.3f}s; {typical:.3f}s before)"
        )
        await invariants.settle(mesh, warm + during, 30)
        await invariants.assert_hold(mesh, placement.books, seed=0)
    finally:
        await placement.fleet.close()
        await shop.close()
