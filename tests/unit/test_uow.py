"""A service's SqlTx: the outbox of its stream and one repository per declared attribute."""

from __future__ import annotations

from typing import cast

from services.platform.db import Transaction
from services.platform.uow import SqlRepository, SqlTx


class SqlNotes(SqlRepository):
    __slots__ = ()


class SqlTags(SqlRepository):
    __slots__ = ()


class Built:
    """Not a repository: declared, but left to the subclass's ``__init__``."""

    def __init__(self, tx: Transaction, prefix: str) -> None:
        self.tx, self.prefix = tx, prefix


class SqlNotesTx(SqlTx):
    stream = "notes"
    notes: SqlNotes
    tags: SqlTags


class SqlTaggedTx(SqlNotesTx):
    built: Built

    def __init__(self, tx: Transaction) -> None:
        super().__init__(tx)
        self.built = Built(tx, "x")


def test_each_declared_repository_is_built_on_the_transaction() -> None:
    tx = cast(Transaction, object())
    notes = SqlNotesTx(tx)
    assert isinstance(notes.notes, SqlNotes)
    assert isinstance(notes.tags, SqlTags)
    assert notes.notes._tx is tx
    assert notes.tags._tx is tx
    assert notes.outbox._stream == "notes"
    assert notes.outbox._tx is tx


def test_a_subclass_inherits_the_declarations_and_builds_the_rest_itself() -> None:
    tx = cast(Transaction, object())
    tagged = SqlTaggedTx(tx)
    assert isinstance(tagged.notes, SqlNotes)
    assert isinstance(tagged.tags, SqlTags)
    assert tagged.built.prefix == "x"
    assert tagged.built.tx is tx
