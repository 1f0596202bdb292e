"""A small evaluator of Istio AuthorizationPolicies, for the fields the chart uses.

Semantics as Istio documents them: a matching DENY policy denies; otherwise, when ALLOW
policies select the workload, one of their rules must match; rules match when every listed
source, operation and condition does; `notX` fields match values outside the patterns.
Unsupported fields raise, so the evaluator never ignores a rule silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Request:
    path: str
    principal: str | None = None  # the caller's mTLS identity; None: not in the mesh
    subject: str | None = None  # the validated token's subject; None: no valid token
    roles: tuple[str, ...] = ()
    port: int = 50051
    method: str = "POST"
    issuer: str = "emporium-identity"

    def source(self) -> dict[str, str | None]:
        namespace = self.principal.split("/")[2] if self.principal else None
        token = f"{self.issuer}/{self.subject}" if self.subject else None
        return {"principals": self.principal, "requestPrincipals": token, "namespaces": namespace}

    def operation(self) -> dict[str, str | None]:
        return {"paths": self.path, "ports": str(self.port), "methods": self.method}


def _match(pattern: str, value: str | None) -> bool:
    if value is None:
        return False
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _fields_match(spec: Obj, fields: dict[str, str | None]) -> bool:
    for key, patterns in spec.items():
        negated = key.startswith("not")
        field = key[3].lower() + key[4:] if negated else key
        if field not in fields:
            raise ValueError(f"unsupported field {key}")
        hit = any(_match(str(p), fields[field]) for p in patterns)
        if hit == negated:
            return False
    return True


def _conditions_hold(conditions: list[Obj], request: Request) -> bool:
    for condition in conditions:
        if condition["key"] != "request.auth.claims[roles]" or set(condition) != {"key", "values"}:
            raise ValueError(f"unsupported condition {condition}")
        if request.subject is None or not set(condition["values"]) & set(request.roles):
            return False
    return True


def _rule_matches(rule: Obj, request: Request) -> bool:
    if set(rule) - {"from", "to", "when"}:
        raise ValueError(f"unsupported rule fields {set(rule)}")
    sources = [entry["source"] for entry in rule.get("from", [])]
    operations = [entry["operation"] for entry in rule.get("to", [])]
    return (
        (not sources or any(_fields_match(s, request.source()) for s in sources))
        and (not operations or any(_fields_match(o, request.operation()) for o in operations))
        and _conditions_hold(rule.get("when", []), request)
    )


def allowed(policies: list[Obj], labels: dict[str, str], request: Request) -> bool:
    """Whether a workload with `labels` accepts `request` under `policies`."""
    applicable = [
        p["spec"]
        for p in policies
        if p["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    for spec in applicable:
        if spec["action"] == "DENY" and any(_rule_matches(r, request) for r in spec["rules"]):
            return False
    allows = [spec for spec in applicable if spec.get("action", "ALLOW") == "ALLOW"]
    return not allows or any(
        _rule_matches(rule, request) for spec in allows for rule in spec.get("rules", [])
    )
