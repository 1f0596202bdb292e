"""Identity's domain: users, their validation and roles. Standard library only."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated

from services.platform.errors import Validator
from services.platform.validation import Text, Validated

USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,31}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD, MAX_PASSWORD = 8, 128
MAX_EMAIL, MAX_DISPLAY_NAME = 254, 100
CUSTOMER_ROLE = "customer"
#: Service accounts are ``svc-<service>``; nobody may register such a name.
SERVICE_ACCOUNT_PREFIX = "svc-"
#: The domain of bootstrap accounts' email addresses; nobody may register one.
ACCOUNTS_DOMAIN = "accounts.emporium.invalid"


def service_account_username(service: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{service}"


def is_reserved(username: str, reserved: frozenset[str]) -> bool:
    """Names only the bootstrap may create: service accounts and ``reserved`` (the admin)."""
    return username.startswith(SERVICE_ACCOUNT_PREFIX) or username in reserved


@dataclass(frozen=True, slots=True)
class User:
    """A registered user (or a service account, whose id is ``service:<name>``)."""

    user_id: str
    username: str
    email: str
    display_name: str
    roles: tuple[str, ...]
    created_at_us: int
    password_hash: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Register:
    """Command: create a customer account."""

    username: str
    email: str
    password: str
    display_name: str

    def validate(self, reserved: frozenset[str] = frozenset()) -> None:
        """Checks every field; ``reserved`` names (the bootstrap admin's) are refused too."""
        v = Validator()
        if v.check(
            bool(USERNAME.match(self.username)),
            "username",
            "must be 3-32 characters: lowercase letters, digits, '_', '.', '-'",
        ):
            v.check(not is_reserved(self.username, reserved), "username", "is reserved")
        if v.check(
            len(self.email) <= MAX_EMAIL, "email", f"must be at most {MAX_EMAIL} characters"
        ) and v.check(bool(EMAIL.match(self.email)), "email", "must be an email address"):
            v.check(not self.email.lower().endswith("@" + ACCOUNTS_DOMAIN), "email", "is reserved")
        v.check(
            MIN_PASSWORD <= len(self.password) <= MAX_PASSWORD,
            "password",
            f"must be {MIN_PASSWORD}-{MAX_PASSWORD} characters",
        )
        v.text(self.display_name, "display_name", max_len=MAX_DISPLAY_NAME, required=False)
        v.raise_if_any()


@dataclass(frozen=True, slots=True)
class Login(Validated):
    """Command: exchange a username and password for an access token."""

    username: Annotated[str, Text(64)]
    password: Annotated[str, Text(MAX_PASSWORD)]
