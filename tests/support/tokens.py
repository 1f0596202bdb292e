"""Tokens for tests: good ones from identity, and every kind of bad one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from services.identity.tokens import SigningKey

ISSUER, AUDIENCE = "emporium-identity", "emporium"


def mint(key: SigningKey, subject: str, roles: list[str], **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "name": subject,
        "roles": roles,
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})


def bad_tokens(key: SigningKey, subject: str) -> dict[str, str]:
    """Each kind of token a service must refuse, by name."""
    now = int(time.time())
    other = SigningKey.generate()
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = base64.urlsafe_b64encode(
        json.dumps(
            {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "exp": now + 600}
        ).encode()
    )
    return {
        "expired": mint(key, subject, [], iat=now - 7200, exp=now - 3600),
        "wrong_signature": jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "exp": now + 600},
            other.private_key,
            algorithm="ES256",
            headers={"kid": key.kid},
        ),
        "unknown_kid": mint(other, subject, []),
        "alg_none": (header.rstrip(b"=") + b"." + payload.rstrip(b"=") + b".").decode(),
        "wrong_audience": mint(key, subject, [], aud="somebody-else"),
        "wrong_issuer": mint(key, subject, [], iss="somebody-else"),
        "hs256_with_public_key": _hs256(public_pem, subject, now, key.kid),
        "garbage": "not-a-jwt",
    }


def _hs256(secret: bytes, subject: str, now: int, kid: str) -> str:
    """The key-confusion attack: HS256 keyed with the public key (PyJWT refuses to make it)."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "exp": now + 600}
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(body).encode())
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
