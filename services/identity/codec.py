"""Identity's conversions: domain ↔ protobuf (API and events) and domain ↔ table rows."""

from __future__ import annotations

from typing import Any

from emporium.identity.v1 import events_pb2
from emporium.identity.v1 import identity_service_pb2 as pb

from services.identity.domain import User
from services.platform.clock import timestamp
from services.platform.codec import fields_of, from_row
from services.platform.db import Row

#: The user's fields that the API message, the event and the table row hold as they are.
_SHARED = ("user_id", "username", "email", "display_name")


def _public(user: User) -> dict[str, Any]:
    """What the API's User and the UserRegistered event both say of a user."""
    return {**fields_of(user, *_SHARED), "roles": list(user.roles)}


def user_proto(user: User) -> pb.User:
    return pb.User(**_public(user), create_time=timestamp(user.created_at_us))


def user_registered(user: User) -> events_pb2.UserRegistered:
    return events_pb2.UserRegistered(**_public(user), occur_time=timestamp(user.created_at_us))


def user_row(user: User) -> dict[str, Any]:
    return {
        **fields_of(user, *_SHARED, "password_hash", "created_at_us"),
        "roles": ",".join(user.roles),
    }


def user_from_row(row: Row) -> User:
    return from_row(User, row, roles=tuple(r for r in row["roles"].split(",") if r))
