"""Identity's conversions: domain ↔ protobuf (API and events) and domain ↔ table rows."""

from __future__ import annotations

from typing import Any

from emporium.identity.v1 import events_pb2
from emporium.identity.v1 import identity_service_pb2 as pb

from services.identity.domain import User
from services.platform.clock import timestamp
from services.platform.db import Row


def user_proto(user: User) -> pb.User:
    return pb.User(
        user_id=user.user_id,
        username=user.username,
        email=user.email,
        display_name=user.display_name,
        roles=list(user.roles),
        create_time=timestamp(user.created_at_us),
    )


def user_registered(user: User) -> events_pb2.UserRegistered:
    return events_pb2.UserRegistered(
        user_id=user.user_id,
        username=user.username,
        email=user.email,
        display_name=user.display_name,
        roles=list(user.roles),
        occur_time=timestamp(user.created_at_us),
    )


def user_row(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "roles": ",".join(user.roles),
        "password_hash": user.password_hash,
        "created_at_us": user.created_at_us,
    }


def user_from_row(row: Row) -> User:
    return User(
        user_id=row["user_id"],
        username=row["username"],
        email=row["email"],
        display_name=row["display_name"],
        roles=tuple(r for r in row["roles"].split(",") if r),
        created_at_us=row["created_at_us"],
        password_hash=row["password_hash"],
    )
