"""Domain errors: what went wrong, in the domain's words.

Standard library only, so domain modules can raise them. The platform maps each class
to one gRPC status code in one place (:mod:`services.platform.status`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field of a request: its path and what is wrong with it."""

    field: str
    description: str


class DomainError(Exception):
    """Base class of every error a handler raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """The request is malformed; ``violations`` names each bad field."""

    def __init__(self, violations: list[FieldViolation], message: str = "") -> None:
        text = message or "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(text or "invalid argument")
        self.violations = violations


class NotFound(DomainError):
    """The resource does not exist, or the caller may not know that it does."""


class AlreadyExists(DomainError):
    """A resource with the same unique key exists."""


class FailedPrecondition(DomainError):
    """The resource is not in a state that allows the operation."""


class Conflict(DomainError):
    """A concurrent change won; the caller may retry (ABORTED)."""


class Unauthenticated(DomainError):
    """No valid credentials."""


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""


class ResourceExhausted(DomainError):
    """A quota or capacity limit was hit."""


class Unavailable(DomainError):
    """A dependency is unavailable; retrying later may succeed."""


class Validator:
    """Collects field violations and raises them together.

    >>> v = Validator()
    >>> v.check(len(name) > 0, "name", "must not be empty")
    >>> v.raise_if_any()
    """

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def check(self, ok: bool, field: str, description: str) -> bool:
        if not ok:
            self.violations.append(FieldViolation(field, description))
        return ok

    def text(self, value: str, field: str, *, max_len: int, required: bool = True) -> None:
        if required and not value.strip():
            self.violations.append(FieldViolation(field, "must not be empty"))
        elif len(value) > max_len:
            self.violations.append(FieldViolation(field, f"must be at most {max_len} characters"))

    def positive(self, value: int, field: str, *, maximum: int | None = None) -> None:
        if value <= 0:
            self.violations.append(FieldViolation(field, "must be greater than zero"))
        elif maximum is not None and value > maximum:
            self.violations.append(FieldViolation(field, f"must be at most {maximum}"))

    def page_size(self, value: int, field: str = "page_size", *, maximum: int = 100) -> None:
        if value < 0 or value > maximum:
            self.violations.append(FieldViolation(field, f"must be between 0 and {maximum}"))

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidArgument(list(self.violations))
