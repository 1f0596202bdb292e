"""Seeded load for the fault scenarios: random baskets, mixed test cards, steady arrivals.

Everything random comes from one ``random.Random(seed)``, so a seed names a run: the
baskets, the cards, the order of arrivals and the faults. (The processes' own timing
still varies; the seed fixes what the test does, not what the machine does.)
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc

from tests.support.cluster import ELSEWHERE, Fleet
from tests.support.mesh import Product

#: docs/payments.md's sandbox cards, by what the processor does with them.
APPROVED = ("4242424242424242", "5555555555554444", "4111111111111111")
DECLINED = ("4000000000000002", "4000000000009995", "4000000000000069", "4000000000000127")
PROCESSOR_ERROR = "4000000000000101"
#: How long a client keeps replaying one PlaceOrder while no order process answers (a
#: lone replica restarting on two busy cores: drain, then an interpreter start).
PLACE_WITHIN_SECONDS = 150.0
#: A mix: mostly approved, some declined, a few processor errors.
CARD_WEIGHTS = ((APPROVED, 80), (DECLINED, 15), ((PROCESSOR_ERROR,), 5))


@dataclass
class Books:
    """What a scenario did: the stock it put on each SKU and the orders it placed."""

    stock: dict[str, int] = field(default_factory=dict)
    #: order id → units per SKU
    lines: dict[str, Counter[str]] = field(default_factory=dict)
    #: order id → the total the order service priced it at
    totals: dict[str, int] = field(default_factory=dict)

    def placed(self, order_id: str, lines: Iterable[tuple[str, int]], total_minor: int) -> None:
        units = Counter[str]()
        for sku, quantity in lines:
            units[sku] += quantity
        self.lines[order_id] = units
        self.totals[order_id] = total_minor


def pick_card(rng: random.Random) -> str:
    groups, weights = zip(*CARD_WEIGHTS, strict=True)
    return rng.choice(rng.choices(groups, weights)[0])


def basket(rng: random.Random, products: list[Product]) -> list[tuple[Product, int]]:
    """One to three distinct products, one to three units each."""
    chosen = rng.sample(products, rng.randint(1, min(3, len(products))))
    return [(product, rng.randint(1, 3)) for product in chosen]


@dataclass
class Placement:
    """Orders placed through a :class:`Fleet`, retried until the mesh takes them."""

    fleet: Fleet
    customers: list[tuple[tuple[str, str], ...]]
    books: Books
    rng: random.Random
    #: order id → card number it was paid with
    cards: dict[str, str] = field(default_factory=dict)
    #: order id → the customer's metadata (to read it back)
    owners: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    #: Answers after which PlaceOrder is sent again with the same key (a replay is safe).
    retry_on: tuple[grpc.StatusCode, ...] = ELSEWHERE

    async def place(self, lines: list[tuple[Product, int]], number: str) -> str:
        """Places one order; while no replica answers, retries with the same key."""
        customer = self.rng.choice(self.customers)
        key = uuid.uuid4().hex
        deadline = time.monotonic() + PLACE_WITHIN_SECONDS
        while True:
            try:
                order = await self.fleet.place(lines, number, customer, key)
                break
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in self.retry_on or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        self.books.placed(order.order_id, [(p.sku, q) for p, q in lines], order.total.amount_minor)
        self.cards[order.order_id] = number
        self.owners[order.order_id] = customer
        return str(order.order_id)

    async def stream(
        self,
        products: list[Product],
        count: int,
        per_second: float,
        stop: asyncio.Event | None = None,
    ) -> list[str]:
        """``count`` random orders (fewer if ``stop`` is set first) arriving at
        ``per_second``; their ids once all are taken."""
        tasks: list[asyncio.Task[str]] = []
        started = time.monotonic()
        for index in range(count):
            if stop is not None and stop.is_set():
                break
            lines, number = basket(self.rng, products), pick_card(self.rng)
            await asyncio.sleep(max(0.0, started + index / per_second - time.monotonic()))
            tasks.append(asyncio.create_task(self.place(lines, number)))
        return list(await asyncio.gather(*tasks))
