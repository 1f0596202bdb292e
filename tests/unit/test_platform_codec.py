"""The field copying every codec shares: by name, and loud about a missing name."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from services.platform.codec import field_names, fields_of, from_message, from_row


@dataclass(frozen=True, slots=True)
class Parcel:
    parcel_id: str
    weight_g: int
    fragile: bool
    note: str = ""


class Message:
    parcel_id = "p-1"
    weight_g = 250
    fragile = 1
    note = "by hand"


def test_fields_of_copies_the_named_attributes_only() -> None:
    parcel = Parcel("p-1", 250, True, "by hand")
    assert fields_of(parcel, "parcel_id", "note") == {"parcel_id": "p-1", "note": "by hand"}


def test_field_names_are_the_dataclass_fields_in_order() -> None:
    assert field_names(Parcel) == ("parcel_id", "weight_g", "fragile", "note")


def test_from_row_reads_each_field_from_its_column_but_the_converted_ones() -> None:
    row = {"parcel_id": "p-1", "weight_g": 250, "fragile": 1, "note": "x", "extra": "ignored"}
    parcel = from_row(Parcel, row, fragile=bool(row["fragile"]))
    assert parcel == Parcel("p-1", 250, True, "x")
    assert parcel.fragile is True


def test_from_row_fails_on_a_column_the_row_lacks() -> None:
    with pytest.raises(KeyError, match="note"):
        from_row(Parcel, {"parcel_id": "p-1", "weight_g": 250, "fragile": True})


def test_from_message_reads_attributes_and_fails_on_a_missing_one() -> None:
    assert from_message(Parcel, Message(), fragile=True) == Parcel("p-1", 250, True, "by hand")

    class Short:
        parcel_id = "p-2"

    with pytest.raises(AttributeError, match="weight_g"):
        from_message(Parcel, Short())


def test_only_dataclasses_can_be_built() -> None:
    with pytest.raises(TypeError, match="not a dataclass"):
        from_row(dict, {"a": 1})
