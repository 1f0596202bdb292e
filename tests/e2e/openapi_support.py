"""The edge of the mesh ``scripts/up`` started (tests/e2e/conftest.py), as a REST client sees it."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from services.mesh.edge import EDGE_PORT
from services.mesh.seed import DEMO_USER
from tests.e2e.conftest import Mesh


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def edge_url(mesh: Mesh) -> str:
    return f"http://127.0.0.1:{EDGE_PORT + mesh.offset}"


def call(
    mesh: Mesh,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    url = urllib.parse.urlsplit(edge_url(mesh))
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        return Reply(
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        connection.close()


def login(mesh: Mesh, username: str, password: str) -> str:
    reply = call(mesh, "POST", "/v1/sessions", {"username": username, "password": password})
    assert reply.status == 200, reply.body
    token: str = reply.json()["accessToken"]
    return token


def user_token(mesh: Mesh) -> str:
    return login(mesh, *DEMO_USER)


def admin_token(mesh: Mesh) -> str:
    secrets = json.loads((mesh.data_dir / "local-secrets.json").read_text())
    return login(mesh, "admin", secrets["admin"])
