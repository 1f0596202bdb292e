"""Start-up's objects are kept out of the collector's generations once a service is built."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.platform.runner import settle_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_settle_heap_freezes_what_exists_and_leaves_later_objects_collectable() -> None:
    built = [{"statement": n} for n in range(1000)]
    settle_heap()
    frozen = gc.get_freeze_count()
    assert frozen >= len(built)

    later = [[n] for n in range(1000)]
    assert gc.is_tracked(later[0])
    gc.collect()
    assert gc.get_freeze_count() == frozen  # a collection neither walks nor thaws them
