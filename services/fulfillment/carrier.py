"""The carrier port and a simulated carrier that accepts every parcel at once."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from services.fulfillment.domain import Shipment


@dataclass(frozen=True, slots=True)
class Handover:
    """What the carrier gives back when it takes a parcel."""

    carrier: str
    tracking_number: str


class Carrier(Protocol):
    """Takes a shipment. Called inside the consumer's transaction, so it must be quick."""

    def dispatch(self, shipment: Shipment) -> Handover: ...


class SimulatedCarrier:
    """Deterministic: the tracking number is derived from the shipment id."""

    name = "Emporium Express"

    def dispatch(self, shipment: Shipment) -> Handover:
        digest = hashlib.sha256(shipment.shipment_id.encode()).hexdigest()[:12].upper()
        return Handover(self.name, f"EX{digest}")
