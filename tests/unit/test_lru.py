"""The platform's bounded map: the least recently used entry goes first."""

from __future__ import annotations

from services.platform.lru import Lru


def test_the_least_recently_used_entry_is_forgotten_first() -> None:
    known: Lru[str, int] = Lru(2)
    known.put("a", 1)
    known.put("b", 2)
    assert known.get("a") == 1  # "b" is now the least recently used
    known.put("c", 3)
    assert (known.get("a"), known.get("b"), known.get("c"), len(known)) == (1, None, 3, 2)


def test_a_replaced_entry_counts_once_and_a_forgotten_one_is_gone() -> None:
    known: Lru[str, int] = Lru(2)
    known.put("a", 1)
    known.put("a", 2)
    known.forget("a")
    known.forget("never there")
    assert (known.get("a"), len(known)) == (None, 0)


def test_a_capacity_of_zero_remembers_nothing() -> None:
    known: Lru[str, int] = Lru(0)
    known.put("a", 1)
    assert (known.get("a"), len(known)) == (None, 0)
