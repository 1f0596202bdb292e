"""The environment of every process of a mesh on one machine, built in one place.

``scripts/up``, the end-to-end and fault tests and the benchmarks all start the same
processes; what differs is where they listen, which database each uses and a few
knobs. :class:`MeshEnvironment` holds what the processes share (each other's
addresses, the data directory, Redis, the service accounts and the bootstrap admin);
:meth:`MeshEnvironment.service` adds what is one process's own.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.platform.config import SERVICES, sqlite_url

#: The services that log in to identity with a service account of their own.
SERVICE_ACCOUNTS: tuple[str, ...] = ("order",)


@dataclass(frozen=True)
class Credentials:
    """The bootstrap admin and each service account's secret."""

    admin: tuple[str, str]
    service_secrets: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def fresh(cls, admin: str, password: str | None = None) -> Credentials:
        """New random secrets for the admin (unless given) and every service account."""
        return cls(
            admin=(admin, password or secrets.token_urlsafe(12)),
            service_secrets={name: secrets.token_urlsafe(24) for name in SERVICE_ACCOUNTS},
        )

    def service_credentials(self, names: tuple[str, ...] | None = None) -> str:
        """``SERVICE_CREDENTIALS``: ``name:secret,...`` of ``names`` (default: all)."""
        chosen = self.service_secrets if names is None else names
        return ",".join(f"{n}:{self.service_secrets[n]}" for n in chosen)


@dataclass(frozen=True)
class MeshEnvironment:
    """What every process of one mesh shares; :meth:`service` gives one process's."""

    targets: Mapping[str, str]
    data_dir: Path
    credentials: Credentials
    redis_url: str | None = None
    #: Added to every process's environment (``PASSWORD_HASH_COST``, ``EMPORIUM_*``, …).
    extra: Mapping[str, str] = field(default_factory=dict)

    def common(self) -> dict[str, str]:
        """The variables every process gets."""
        env = {f"{name.upper()}_TARGET": target for name, target in self.targets.items()}
        env.update(DATA_DIR=str(self.data_dir), PYTHONUNBUFFERED="1")
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update(self.extra)
        return env

    def service(
        self,
        service: str,
        grpc_port: int,
        metrics_port: int,
        *,
        database_url: str | None = None,
        version: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The environment of one process of ``service``.

        ``database_url`` defaults to the service's SQLite file in the data directory (a
        second instance, like the order canary, passes its first instance's);
        ``version`` sets ``SERVICE_VERSION``.
        """
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}")
        env = {
            **self.common(),
            "DATABASE_URL": database_url or sqlite_url(self.data_dir, service),
            "GRPC_PORT": str(grpc_port),
            "METRICS_PORT": str(metrics_port),
        }
        accounts = self.credentials.service_secrets
        if service == "identity":
            admin, password = self.credentials.admin
            env["BOOTSTRAP_ADMIN"] = f"{admin}:{password}"
            if accounts:
                env["SERVICE_CREDENTIALS"] = self.credentials.service_credentials()
        elif service in accounts:
            env["SERVICE_CREDENTIALS"] = self.credentials.service_credentials((service,))
        if version is not None:
            env["SERVICE_VERSION"] = version
        env.update(extra or {})
        return env
