"""Migration files are named and chained so the newest revision is the highest file number.

A start decides whether to run Alembic from file names alone
(``services.platform.migrations.newest_revision``); these tests keep that decision right:
every file is ``NNNN_<what>.py``, numbered from 0001 without gaps, declares its own number
as ``revision`` and the one before as ``down_revision``, and Alembic finds the same head.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from services.platform.migrations import FILE_NAME, newest_revision, revision_files

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = sorted(
    [*(ROOT / "services").glob("*/migrations"), ROOT / "tests" / "busapp" / "migrations"]
)


def _assignments(path: Path) -> dict[str, object]:
    """The module-level constant assignments of a migration file (without importing it)."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant):
                found[target.id] = node.value.value
    return found


def test_every_service_has_a_migrations_folder() -> None:
    services = {p.parent.name for p in (ROOT / "services").glob("*/main.py")}
    assert services <= {folder.parent.name for folder in FOLDERS}


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.parent.name)
def test_every_migration_file_is_named_by_its_number(folder: Path) -> None:
    python_files = sorted(p.name for p in (folder / "versions").glob("*.py"))
    assert python_files, f"{folder} has no migrations"
    assert [name for name in python_files if not FILE_NAME.fullmatch(name)] == []


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.parent.name)
def test_migrations_are_numbered_from_one_without_gaps(folder: Path) -> None:
    numbers = [int(p.name[:4]) for p in revision_files(folder)]
    assert numbers == list(range(1, len(numbers) + 1))


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.parent.name)
def test_each_migration_revises_the_one_numbered_before_it(folder: Path) -> None:
    previous: str | None = None
    for path in revision_files(folder):
        declared = _assignments(path)
        assert (declared.get("revision"), declared.get("down_revision")) == (
            path.name[:4],
            previous,
        ), path.name
        previous = path.name[:4]


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.parent.name)
def test_the_newest_file_is_the_head_alembic_finds(folder: Path) -> None:
    config = Config()
    config.set_main_option("script_location", str(folder))
    assert newest_revision(folder) == ScriptDirectory.from_config(config).get_current_head()


def test_a_file_named_otherwise_is_not_a_revision(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    for name in ("0001_first.py", "0002_second.py", "notes.py", "0003_draft.py.orig"):
        (versions / name).write_text("")
    (versions / "__pycache__").mkdir()
    assert newest_revision(tmp_path) == "0002"
    assert [p.name for p in revision_files(tmp_path)] == ["0001_first.py", "0002_second.py"]
