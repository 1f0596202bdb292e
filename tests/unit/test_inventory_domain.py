"""Inventory's domain rules, without I/O."""

from __future__ import annotations

import pytest

from services.inventory.domain import (
    DEFAULT_TTL_SECONDS,
    AdjustStock,
    CommitReservation,
    GetStock,
    Line,
    ReleaseReservation,
    Reservation,
    ReserveStock,
    Status,
)
from services.platform.errors import InvalidArgument


def _violations(command: ReserveStock | ReleaseReservation | AdjustStock) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        command.validate()
    return {v.field: v.description for v in caught.value.violations}


def _reservation(*lines: Line) -> Reservation:
    return Reservation("r-1", "o-1", Status.RESERVED, lines, (), 2, 1, 1)


def test_a_well_formed_reservation_request_is_valid() -> None:
    ReserveStock("o-1", (Line("a", 1), Line("b", 1000)), ttl_seconds=86_400).validate()


def test_a_zero_ttl_means_the_default_of_fifteen_minutes() -> None:
    assert ReserveStock("o", (Line("a", 1),)).ttl_us == DEFAULT_TTL_SECONDS * 1_000_000
    assert ReserveStock("o", (Line("a", 1),), ttl_seconds=2).ttl_us == 2_000_000


def test_every_bad_field_of_a_reservation_request_is_reported_at_once() -> None:
    command = ReserveStock(
        "",
        (Line("", 1), Line("a", 0), Line("a", 1001), Line("x" * 65, 1)),
        ttl_seconds=-5,
    )
    assert set(_violations(command)) == {
        "order_id",
        "lines[0].sku",
        "lines[1].quantity",
        "lines[2].sku",
        "lines[2].quantity",
        "lines[3].sku",
        "ttl_seconds",
    }


def test_a_repeated_sku_is_reported_on_the_repeating_line() -> None:
    found = _violations(ReserveStock("o", (Line("a", 1), Line("b", 1), Line("a", 2))))
    assert set(found) == {"lines[2].sku"}
    assert "repeat" in found["lines[2].sku"]


def test_too_many_lines_is_one_violation_not_one_per_line() -> None:
    command = ReserveStock("o", tuple(Line(f"sku-{i}", 0) for i in range(150)))
    found = _violations(command)
    assert "lines" in found
    assert sum(field.endswith(".quantity") for field in found) == 100


def test_no_lines_and_an_oversized_ttl_are_invalid() -> None:
    assert set(_violations(ReserveStock("o", (), ttl_seconds=86_401))) == {
        "lines",
        "ttl_seconds",
    }


def test_a_reservation_matches_the_same_lines_in_any_order_only() -> None:
    reservation = _reservation(Line("a", 1), Line("b", 2))
    assert reservation.requested((Line("b", 2), Line("a", 1)))
    assert not reservation.requested((Line("a", 1), Line("b", 3)))
    assert not reservation.requested((Line("a", 1),))
    assert not reservation.requested((Line("a", 1), Line("b", 2), Line("c", 1)))


def test_release_needs_an_order_and_at_most_a_short_reason() -> None:
    ReleaseReservation("o", "").validate()
    assert set(_violations(ReleaseReservation("", "r" * 201))) == {"order_id", "reason"}


def test_commit_and_get_stock_need_their_identifier() -> None:
    with pytest.raises(InvalidArgument):
        CommitReservation("  ").validate()
    with pytest.raises(InvalidArgument):
        GetStock("").validate()


@pytest.mark.parametrize(
    ("command", "fields"),
    [
        (AdjustStock("a", 0, "restock"), {"delta"}),
        (AdjustStock("a", -(10**9) - 1, "restock"), {"delta"}),
        (AdjustStock("", 5, ""), {"sku", "reason"}),
        (AdjustStock("a", 5, "r" * 201), {"reason"}),
    ],
)
def test_adjust_stock_rejects_a_zero_or_huge_delta_and_bad_text(
    command: AdjustStock, fields: set[str]
) -> None:
    assert set(_violations(command)) == fields


def test_adjust_stock_accepts_removals_within_bounds() -> None:
    AdjustStock("a", -(10**9), "damaged").validate()
