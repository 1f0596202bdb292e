"""Declared field limits: checked in field order, then the request's own rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import pytest

from services.platform.errors import InvalidArgument, Validator
from services.platform.validation import Text, Validated

Name = Annotated[str, Text(5)]


@dataclass(frozen=True, slots=True)
class Rename(Validated):
    name: Name
    count: int
    note: Annotated[str, Text(3, required=False)] = ""

    def check(self, v: Validator) -> None:
        v.positive(self.count, "count")


@dataclass(frozen=True, slots=True)
class Plain(Validated):
    name: Name


def _violations(request: Validated) -> list[tuple[str, str]]:
    with pytest.raises(InvalidArgument) as caught:
        request.validate()
    return [(v.field, v.description) for v in caught.value.violations]


def test_declared_fields_come_first_in_their_order_then_the_own_rules() -> None:
    assert _violations(Rename(" ", 0, "long")) == [
        ("name", "must not be empty"),
        ("note", "must be at most 3 characters"),
        ("count", "must be greater than zero"),
    ]
    assert _violations(Plain("toolong")) == [("name", "must be at most 5 characters")]


def test_a_valid_request_passes_and_an_optional_text_may_be_empty() -> None:
    Rename("ok", 1).validate()
    Plain("fine").validate()
