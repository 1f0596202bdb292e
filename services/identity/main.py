"""Identity's composition root."""

from __future__ import annotations

from pathlib import Path

from emporium.identity.v1 import identity_service_pb2 as pb
from emporium.identity.v1 import identity_service_pb2_grpc as pb_grpc

from services.identity.domain import service_account_username
from services.identity.handlers import Identity, load_signing_key
from services.identity.passwords import Passwords
from services.identity.repository import SqlIdentityTx
from services.identity.service import IdentityServicer
from services.identity.tokens import TokenIssuer
from services.platform import runner
from services.platform.auth import ADMIN_ROLE, SERVICE_ROLE, JwksCache, TokenVerifier
from services.platform.config import Settings
from services.platform.db import Database
from services.platform.metrics import Metrics
from services.platform.publishing import outbox_publishing
from services.platform.server import ServiceDefinition
from services.platform.uow import SqlUnitOfWork

SERVICE = pb.DESCRIPTOR.services_by_name["IdentityService"].full_name
PUBLIC = [f"/{SERVICE}/Register", f"/{SERVICE}/Login", f"/{SERVICE}/GetJwks"]
MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: Settings, metrics: Metrics) -> ServiceDefinition:
    db = Database(settings.database_url, MIGRATIONS)
    await db.migrate()
    uow = SqlUnitOfWork(db, SqlIdentityTx)
    key = await load_signing_key(uow, settings.jwt_signing_key_pem)
    issuer = TokenIssuer(
        key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.jwt_ttl_seconds,
    )
    reserved = frozenset([settings.bootstrap_admin[0]] if settings.bootstrap_admin else [])
    identity = Identity(uow, Passwords(settings.password_hash_cost), issuer, reserved=reserved)

    async def jwks() -> list[dict[str, str]]:
        return identity.jwks()

    verifier = TokenVerifier(
        JwksCache(jwks), issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )

    async def bootstrap_accounts() -> None:
        if settings.bootstrap_admin is not None:
            username, password = settings.bootstrap_admin
            await identity.ensure_account(
                f"admin:{username}", username, password, (ADMIN_ROLE, "customer")
            )
        for name, secret in settings.service_credentials.items():
            await identity.ensure_account(
                f"service:{name}", service_account_username(name), secret, (SERVICE_ROLE,)
            )

    start_publishing, stop_publishing = outbox_publishing(settings, db, metrics)

    return runner.definition(
        settings,
        metrics,
        IdentityServicer(identity),
        pb_grpc.add_IdentityServiceServicer_to_server,
        SERVICE,
        public_methods=PUBLIC,
        verifier=verifier,
        readiness=[db.ping],
        on_start=[bootstrap_accounts, *start_publishing],
        on_stop=[*stop_publishing, db.dispose],
    )


def main() -> None:
    runner.run("identity", build)
