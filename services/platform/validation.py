"""Requests whose fields declare their limits: ``validate()`` checks them all.

Standard library only, like the domain modules that use it. A string field's type
carries its limit, named once per service::

    OrderId = Annotated[str, Text(MAX_ORDER_ID)]

    @dataclass(frozen=True, slots=True)
    class ReleaseReservation(Validated):
        order_id: OrderId
        reason: Annotated[str, Text(MAX_REASON, required=False)] = ""

:meth:`Validated.validate` checks the declared fields in their order, then the rules a
request adds in :meth:`Validated.check` (its lists, amounts, cards, …), and raises every
violation together as one ``InvalidArgument``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from services.platform.errors import Validator


@dataclass(frozen=True, slots=True)
class Text:
    """A string field's limit: at most ``max_len`` characters and, when ``required``, not
    blank (:meth:`Validator.text`)."""

    max_len: int
    required: bool = True


class Validated:
    """The base of a request dataclass whose ``Annotated[str, Text(...)]`` fields
    :meth:`validate` checks."""

    __slots__ = ()

    def validate(self) -> None:
        """Raises ``InvalidArgument`` naming every field that breaks a rule."""
        v = Validator()
        for name, text in _text_fields(type(self)):
            v.text(getattr(self, name), name, max_len=text.max_len, required=text.required)
        self.check(v)
        v.raise_if_any()

    def check(self, v: Validator) -> None:
        """The rules beyond the fields' declared limits, checked after them; none here."""


_TextFields = tuple[tuple[str, Text], ...]
_text_fields_of: dict[type, _TextFields] = {}


def _text_fields(cls: type) -> _TextFields:
    """The fields of dataclass ``cls`` that declare a :class:`Text` limit, in their order
    (read once per class)."""
    found = _text_fields_of.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        found = _text_fields_of[cls] = tuple(
            (field.name, limit)
            for field in dataclasses.fields(cls)
            for limit in getattr(hints[field.name], "__metadata__", ())
            if isinstance(limit, Text)
        )
    return found
