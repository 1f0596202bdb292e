"""Fixed test ports, movable as a whole so that two test runs can share one machine.

Meshes started by the tests listen on fixed ports (below the kernel's ephemeral range, so
no outgoing connection can hold one). ``EMPORIUM_TEST_PORT_SHIFT`` (default 0) moves every
one of them by the same amount: two checkouts tested side by side set different shifts.
"""

from __future__ import annotations

import os

SHIFT_ENV = "EMPORIUM_TEST_PORT_SHIFT"


def shift() -> int:
    return int(os.environ.get(SHIFT_ENV, "0") or 0)
