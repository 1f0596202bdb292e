#!/usr/bin/env python3
"""Micro-benchmark: protobuf (upb) vs betterproto 2.0.0b7 encode/decode of an Order.

Usage: .venv/bin/python scripts/bench_codec.py [--lines 10]

The betterproto classes are hand-written equivalents of emporium.order.v1.Order (same field
numbers and types, as `protoc --python_betterproto_out` would generate them); the script first
checks that both libraries produce wire-compatible bytes, then times each operation with timeit
(several repeats, median) and prints ns per operation and the betterproto / upb ratio.
"""

# ruff: noqa: RUF009  (betterproto fields are declared with dataclass field() helpers)
import argparse
import platform
import statistics
import sys
import timeit
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import betterproto
from google.protobuf import __version__ as protobuf_version
from google.protobuf.internal import api_implementation

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gen" / "python"))
from emporium.order.v1 import order_service_pb2 as pb


class BpOrderStatus(betterproto.Enum):
    ORDER_STATUS_UNSPECIFIED = 0
    ORDER_STATUS_PENDING = 1
    ORDER_STATUS_CONFIRMED = 2


@dataclass(eq=False, repr=False)
class BpMoney(betterproto.Message):
    amount_minor: int = betterproto.int64_field(1)
    currency_code: str = betterproto.string_field(2)


@dataclass(eq=False, repr=False)
class BpShippingAddress(betterproto.Message):
    name: str = betterproto.string_field(1)
    line1: str = betterproto.string_field(2)
    line2: str = betterproto.string_field(3)
    city: str = betterproto.string_field(4)
    postal_code: str = betterproto.string_field(5)
    country_code: str = betterproto.string_field(6)


@dataclass(eq=False, repr=False)
class BpOrderLine(betterproto.Message):
    product_id: str = betterproto.string_field(1)
    sku: str = betterproto.string_field(2)
    name: str = betterproto.string_field(3)
    quantity: int = betterproto.int32_field(4)
    unit_price: BpMoney = betterproto.message_field(5)
    line_total: BpMoney = betterproto.message_field(6)


@dataclass(eq=False, repr=False)
class BpOrder(betterproto.Message):
    order_id: str = betterproto.string_field(1)
    user_id: str = betterproto.string_field(2)
    status: BpOrderStatus = betterproto.enum_field(3)
    lines: list[BpOrderLine] = betterproto.message_field(4)
    total: BpMoney = betterproto.message_field(5)
    rejection_reason: str = betterproto.string_field(6)
    payment_id: str = betterproto.string_field(7)
    shipment_id: str = betterproto.string_field(8)
    create_time: datetime = betterproto.message_field(9)
    update_time: datetime = betterproto.message_field(10)
    version: int = betterproto.int64_field(11)
    shipping_address: BpShippingAddress = betterproto.message_field(12)


NOW = datetime(2025, 3, 14, 15, 9, 26, 535000, tzinfo=UTC)
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "line2": "Flat 3",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country_code": "GB",
}


def line_data(i: int) -> dict[str, Any]:
    return {
        "product_id": f"prd_01HZX{i:04d}K3M9QF7T2B",
        "sku": f"SKU-BOOK-{i:05d}",
        "name": f"The Art of Computer Programming, Volume {i}",
        "quantity": i % 3 + 1,
        "unit": 1999 + 100 * i,
    }


def build_upb(n: int) -> pb.Order:
    order = pb.Order(
        order_id="ord_01HZX9V4QK3M9QF7T2B5N8R6WE",
        user_id="usr_01HZX7Y2B5N8R6WEQK3M9QF7T2",
        status=pb.ORDER_STATUS_CONFIRMED,
        payment_id="pay_01HZX9V4R6WEQK3M9QF7T2B5N8",
        version=3,
        shipping_address=pb.ShippingAddress(**ADDRESS),
    )
    total = 0
    for i in range(n):
        d = line_data(i)
        line = order.lines.add(
            product_id=d["product_id"], sku=d["sku"], name=d["name"], quantity=d["quantity"]
        )
        line.unit_price.amount_minor, line.unit_price.currency_code = d["unit"], "EUR"
        line.line_total.amount_minor = d["unit"] * d["quantity"]
        line.line_total.currency_code = "EUR"
        total += d["unit"] * d["quantity"]
    order.total.amount_minor, order.total.currency_code = total, "EUR"
    order.create_time.FromDatetime(NOW)
    order.update_time.FromDatetime(NOW)
    return order


def build_betterproto(n: int) -> BpOrder:
    lines = []
    total = 0
    for i in range(n):
        d = line_data(i)
        lines.append(
            BpOrderLine(
                product_id=d["product_id"],
                sku=d["sku"],
                name=d["name"],
                quantity=d["quantity"],
                unit_price=BpMoney(d["unit"], "EUR"),
                line_total=BpMoney(d["unit"] * d["quantity"], "EUR"),
            )
        )
        total += d["unit"] * d["quantity"]
    return BpOrder(
        order_id="ord_01HZX9V4QK3M9QF7T2B5N8R6WE",
        user_id="usr_01HZX7Y2B5N8R6WEQK3M9QF7T2",
        status=BpOrderStatus.ORDER_STATUS_CONFIRMED,
        lines=lines,
        total=BpMoney(total, "EUR"),
        payment_id="pay_01HZX9V4R6WEQK3M9QF7T2B5N8",
        create_time=NOW,
        update_time=NOW,
        version=3,
        shipping_address=BpShippingAddress(**ADDRESS),
    )


def median_ns(stmt: Any, repeat: int, min_time: float) -> float:
    timer = timeit.Timer(stmt)
    number, _ = timer.autorange()
    number = max(1, int(number * min_time / 0.2))
    runs = timer.repeat(repeat=repeat, number=number)
    return statistics.median(runs) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10, help="order lines (default 10)")
    parser.add_argument("--repeat", type=int, default=7, help="timeit repeats (default 7)")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per repeat")
    args = parser.parse_args()

    upb_msg = build_upb(args.lines)
    bp_msg = build_betterproto(args.lines)
    upb_bytes = upb_msg.SerializeToString()
    bp_bytes = bytes(bp_msg)
    # Wire compatibility: each side decodes the other's bytes to the same message.
    assert pb.Order.FromString(bp_bytes) == upb_msg, "betterproto bytes decode differently"
    assert bytes(BpOrder().parse(upb_bytes)) == bp_bytes, "upb bytes decode differently"

    print(
        f"python {platform.python_version()}, protobuf {protobuf_version} "
        f"(backend: {api_implementation.Type()}), betterproto {betterproto_version()}"
    )
    print(f"message: Order with {args.lines} lines, {len(upb_bytes)} bytes encoded")
    results = {
        "encode": (
            median_ns(upb_msg.SerializeToString, args.repeat, args.min_time),
            median_ns(bp_msg.__bytes__, args.repeat, args.min_time),
        ),
        "decode": (
            median_ns(lambda: pb.Order.FromString(upb_bytes), args.repeat, args.min_time),
            median_ns(lambda: BpOrder().parse(bp_bytes), args.repeat, args.min_time),
        ),
    }
    print(f"{'op':<8}{'protobuf/upb ns':>18}{'betterproto ns':>18}{'ratio':>9}")
    for op, (upb_ns, bp_ns) in results.items():
        print(f"{op:<8}{upb_ns:>18,.0f}{bp_ns:>18,.0f}{bp_ns / upb_ns:>8.1f}x")


def betterproto_version() -> str:
    from importlib.metadata import version

    return version("betterproto")


if __name__ == "__main__":
    main()
