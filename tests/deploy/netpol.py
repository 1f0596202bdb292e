"""A small NetworkPolicy evaluator: would the rendered policies let A reach B on a port?

It follows the Kubernetes semantics the chart relies on: a pod selected by a policy of one
direction is isolated in that direction, and traffic passes only when some rule of some
selecting policy allows it, at both ends (egress of the source, ingress of the destination).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class External:
    ip: str


Endpoint = Pod | External


def _expression_holds(expression: Obj, labels: Mapping[str, str]) -> bool:
    key, operator = expression["key"], expression["operator"]
    values: list[str] = expression.get("values", [])
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    raise ValueError(f"unknown operator {operator}")


def _selects(selector: Obj, labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and all(
        _expression_holds(e, labels) for e in selector.get("matchExpressions", [])
    )


def _peer_matches(peer: Obj, endpoint: Endpoint, namespace: str) -> bool:
    if "ipBlock" in peer:
        if not isinstance(endpoint, External):
            return False
        ip = ipaddress.ip_address(endpoint.ip)
        block = peer["ipBlock"]
        excluded = any(ip in ipaddress.ip_network(c) for c in block.get("except", []))
        return ip in ipaddress.ip_network(block["cidr"]) and not excluded
    if isinstance(endpoint, External):
        return False
    if "namespaceSelector" in peer:
        ns_labels = {"kubernetes.io/metadata.name": endpoint.namespace}
        in_namespace = _selects(peer["namespaceSelector"], ns_labels)
    else:
        in_namespace = endpoint.namespace == namespace
    return in_namespace and _selects(peer.get("podSelector", {}), endpoint.labels)


def _port_matches(ports: list[Obj] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if not isinstance(entry.get("port", 0), int):
            raise ValueError(f"named ports are not evaluated: {entry}")
        if entry.get("protocol", "TCP") == protocol and entry.get("port") in (None, port):
            return True
    return False


def _policy_types(spec: Obj) -> list[str]:
    return spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]


def _allowed(
    policies: list[Obj], pod: Pod, direction: str, peer: Endpoint, port: int, protocol: str
) -> bool:
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p["spec"]
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and _selects(p["spec"]["podSelector"], pod.labels)
        and direction in _policy_types(p["spec"])
    ]
    if not selecting:
        return True
    return any(
        (
            not rule.get(peers_key)
            or any(_peer_matches(x, peer, pod.namespace) for x in rule[peers_key])
        )
        and _port_matches(rule.get("ports"), port, protocol)
        for spec in selecting
        for rule in spec.get(rules_key, [])
    )


def reachable(
    policies: list[Obj], source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """Whether `source` may open a connection to `destination` on `port`."""
    egress = not isinstance(source, Pod) or _allowed(
        policies, source, "Egress", destination, port, protocol
    )
    ingress = not isinstance(destination, Pod) or _allowed(
        policies, destination, "Ingress", source, port, protocol
    )
    return egress and ingress
