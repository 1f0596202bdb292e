"""Service configuration, read once from an injectable mapping (the environment)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

#: Default gRPC and metrics ports of every service on one machine.
DEFAULT_PORTS: dict[str, tuple[int, int]] = {
    "identity": (50051, 9101),
    "catalog": (50052, 9102),
    "inventory": (50053, 9103),
    "payment": (50054, 9104),
    "order": (50055, 9105),
    "fulfillment": (50056, 9106),
}

SERVICES: tuple[str, ...] = tuple(DEFAULT_PORTS)

N = TypeVar("N", int, float)


class ConfigError(ValueError):
    """A configuration variable is missing or malformed."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a service process needs to know about its surroundings."""

    service: str
    grpc_host: str
    grpc_port: int
    metrics_port: int
    database_url: str
    data_dir: Path
    version: str
    redis_url: str | None
    jwt_issuer: str
    jwt_audience: str
    jwt_ttl_seconds: int
    otlp_endpoint: str | None
    log_level: str
    jwt_signing_key_pem: str | None = None
    service_credentials: dict[str, str] = field(default_factory=dict)
    bootstrap_admin: tuple[str, str] | None = None
    password_hash_cost: str = "standard"
    breaker_failure_threshold: int = 5
    breaker_reset_timeout_seconds: float = 5.0
    bulkhead_max_concurrent: int = 100
    event_loop: str = "uvloop"
    targets: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)

    def seconds(self, name: str, default: float, *, maximum: float = 3600) -> float:
        """A duration from an ``EMPORIUM_*`` variable: a number of seconds in (0, maximum].

        The bound catches a value given in the wrong unit (milliseconds, say); durations
        that are meant to be long (a payment hold lasts days) pass a larger ``maximum``.
        """
        value = _float(self.extra, name, default)
        if not 0 < value <= maximum:
            raise ConfigError(f"{name} must be in (0, {maximum:g}], got {self.extra.get(name)!r}")
        return value

    def target(self, service: str) -> str:
        """The ``host:port`` where ``service`` is reached."""
        return self.targets[service]

    @property
    def grpc_address(self) -> str:
        return f"{self.grpc_host}:{self.grpc_port}"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int, "an integer")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float, "a number")


def _number(
    env: Mapping[str, str], name: str, default: N, parse: Callable[[str], N], kind: str
) -> N:
    """``env[name]`` parsed, ``default`` when unset or empty; :class:`ConfigError` names
    the variable when its value is not ``kind``."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be {kind}, got {raw!r}") from exc


def sqlite_url(data_dir: Path, service: str) -> str:
    return f"sqlite+aiosqlite:///{data_dir / f'{service}.db'}"


def _pairs(raw: str, name: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.partition(":")
        if not sep or not key or not value:
            raise ConfigError(f"{name} must be 'name:secret[,name:secret]'")
        pairs[key] = value
    return pairs


def _admin(raw: str) -> tuple[str, str] | None:
    if not raw:
        return None
    pairs = _pairs(raw, "BOOTSTRAP_ADMIN")
    return next(iter(pairs.items()))


def load_settings(service: str, env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings of ``service`` from ``env`` (defaults to ``os.environ``).

    Variables (all optional, local defaults in brackets):
    ``GRPC_HOST`` [127.0.0.1], ``GRPC_PORT`` and ``METRICS_PORT`` [per service],
    ``DATA_DIR`` [./var], ``DATABASE_URL`` [SQLite file ``DATA_DIR/<service>.db``],
    ``SERVICE_VERSION`` [v1], ``REDIS_URL``, ``JWT_ISSUER`` [emporium-identity],
    ``JWT_AUDIENCE`` [emporium], ``JWT_TTL_SECONDS`` [3600],
    ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``LOG_LEVEL`` [INFO] and ``<SERVICE>_TARGET``
    (``host:port``) for each other service. Identity also reads
    ``JWT_SIGNING_KEY_PEM`` (else a key kept in its database), ``SERVICE_CREDENTIALS``
    (``name:secret,...``: service accounts), ``BOOTSTRAP_ADMIN`` (``user:password``)
    and ``PASSWORD_HASH_COST`` [standard; ``fast`` for tests only]. Outgoing calls read
    ``BREAKER_FAILURE_THRESHOLD`` [5], ``BREAKER_RESET_TIMEOUT_SECONDS`` [5] and
    ``BULKHEAD_MAX_CONCURRENT`` [100]. ``EVENT_LOOP`` [uvloop; or asyncio, the standard
    library's] picks the event loop.
    """
    if service not in DEFAULT_PORTS:
        raise ConfigError(f"unknown service {service!r}")
    env = os.environ if env is None else env
    grpc_default, metrics_default = DEFAULT_PORTS[service]
    data_dir = Path(env.get("DATA_DIR") or "var").resolve()
    targets = {
        name: env.get(f"{name.upper()}_TARGET") or f"127.0.0.1:{ports[0]}"
        for name, ports in DEFAULT_PORTS.items()
    }
    return Settings(
        service=service,
        grpc_host=env.get("GRPC_HOST") or "127.0.0.1",
        grpc_port=_int(env, "GRPC_PORT", grpc_default),
        metrics_port=_int(env, "METRICS_PORT", metrics_default),
        database_url=env.get("DATABASE_URL") or sqlite_url(data_dir, service),
        data_dir=data_dir,
        version=env.get("SERVICE_VERSION") or "v1",
        redis_url=env.get("REDIS_URL") or None,
        jwt_issuer=env.get("JWT_ISSUER") or "emporium-identity",
        jwt_audience=env.get("JWT_AUDIENCE") or "emporium",
        jwt_ttl_seconds=_int(env, "JWT_TTL_SECONDS", 3600),
        otlp_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
        log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        jwt_signing_key_pem=env.get("JWT_SIGNING_KEY_PEM") or None,
        service_credentials=_pairs(env.get("SERVICE_CREDENTIALS", ""), "SERVICE_CREDENTIALS"),
        bootstrap_admin=_admin(env.get("BOOTSTRAP_ADMIN", "")),
        password_hash_cost=env.get("PASSWORD_HASH_COST") or "standard",
        breaker_failure_threshold=_int(env, "BREAKER_FAILURE_THRESHOLD", 5),
        breaker_reset_timeout_seconds=_float(env, "BREAKER_RESET_TIMEOUT_SECONDS", 5.0),
        bulkhead_max_concurrent=_int(env, "BULKHEAD_MAX_CONCURRENT", 100),
        event_loop=_event_loop(env.get("EVENT_LOOP") or "uvloop"),
        targets=targets,
        extra={k: v for k, v in env.items() if k.startswith("EMPORIUM_")},
    )


#: The event loops a service can run on (docs/adr/0005-event-loop.md).
EVENT_LOOPS = ("uvloop", "asyncio")


def _event_loop(name: str) -> str:
    if name not in EVENT_LOOPS:
        raise ConfigError(f"EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, got {name!r}")
    return name
