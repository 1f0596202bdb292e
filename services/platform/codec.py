"""What every service's ``codec.py`` shares: copying fields that keep their name.

Most fields cross the service's boundaries under one name: ``order_id`` in the domain object
is ``order_id`` in the proto message and in the table row. Those are copied by name here; a
codec spells out only what changes on the way (money, enums, timestamps, nested messages).
Rows and messages are read by the names of the domain dataclass's fields, so a column or a
field missing on the other side fails at once (``KeyError``/``AttributeError``), not later.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from services.platform.db import Row

T = TypeVar("T")


def fields_of(source: object, *names: str) -> dict[str, Any]:
    """``{name: source.name}`` for each name: keyword arguments of a message or a row."""
    return {name: getattr(source, name) for name in names}


@functools.cache
def field_names(kind: type) -> tuple[str, ...]:
    """The field names of the dataclass ``kind``, in their order."""
    return tuple(field.name for field in dataclasses.fields(kind))


def from_row(kind: Callable[..., T], row: Row | Mapping[str, Any], **converted: Any) -> T:
    """A ``kind`` dataclass from a row: each field from the column of its name, but for the
    ``converted`` ones, which the caller gives (a Money from two columns, an enum, a bool)."""
    names = field_names(_dataclass(kind))
    return kind(**{name: row[name] for name in names if name not in converted}, **converted)


def from_message(kind: Callable[..., T], message: object, **converted: Any) -> T:
    """A ``kind`` dataclass from a proto message's fields of the same names, but for the
    ``converted`` ones, which the caller gives."""
    names = field_names(_dataclass(kind))
    return kind(
        **{name: getattr(message, name) for name in names if name not in converted}, **converted
    )


def _dataclass(kind: Callable[..., Any]) -> type:
    if not (isinstance(kind, type) and dataclasses.is_dataclass(kind)):
        raise TypeError(f"{kind!r} is not a dataclass")
    return kind
