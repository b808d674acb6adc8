"""The SQLite profile store: versions, users kept apart, logs, export/delete, migrations, bad
input, corrupt files, and a real process killed in the middle of its writes."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crs.config import PROJECT_ROOT
from crs.profiles.db import MIGRATIONS, ProfileStore, UnknownUserError
from crs.profiles.text import ProfileError
from tests.conftest import test_config


def test_versions_users_and_logs(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "crs.db")
    assert store.get("ann") is None and store.history("ann") == []
    first = store.save("ann", "Likes:\n- Horror", "edit:cli")
    second = store.save("ann", "  Likes:\n- Comedy\r\n", "edit:chat")
    store.save("bob", "Dislikes:\n- Western", "edit:ui")
    assert (first.version, second.version) == (1, 2)
    assert store.get("ann") == second and second.text == "Likes:\n- Comedy"
    assert [p.version for p in store.history("ann")] == [2, 1]
    assert store.get("bob").text == "Dislikes:\n- Western"  # type: ignore[union-attr]
    assert second.created_at.endswith("Z") and first.created_at <= second.created_at

    store.log_turn("ann", "s1", "what now?", "Try Alien.", "recommend", ["alien-1979"])
    data = store.export("ann")
    assert [p["version"] for p in data["profiles"]] == [1, 2]  # type: ignore[index]
    assert data["turns"] == [  # type: ignore[comparison-overlap]
        {
            "session_id": "s1",
            "created_at": data["turns"][0]["created_at"],  # type: ignore[index]
            "user_text": "what now?",
            "reply": "Try Alien.",
            "act": "recommend",
            "item_ids": ["alien-1979"],
        }
    ]
    assert store.export("bob")["turns"] == [] and "Horror" not in str(store.export("bob"))

    assert store.delete("ann") is True and store.delete("ann") is False
    assert store.get("ann") is None and store.users() == ["bob"]
    with pytest.raises(UnknownUserError, match="no user 'ann'"):
        store.export("ann")
    store.close()
    # Deleted means gone from the file, not only hidden.
    assert b"Comedy" not in (tmp_path / "crs.db").read_bytes()


def test_from_config_uses_the_data_dir_or_db_path(tmp_path: Path) -> None:
    store = ProfileStore.from_config(test_config(tmp_path))
    assert store.path == tmp_path / "data" / "crs.db"
    other = ProfileStore.from_config(test_config(tmp_path, profile={"db_path": str(tmp_path / "x" / "p.db")}))
    assert other.path == tmp_path / "x" / "p.db" and other.path.exists()
    with sqlite3.connect(other.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    ("user", "text", "message"),
    [
        ("ann", "", "empty"),
        ("ann", " \n\t ", "empty"),
        ("ann", "x" * 4001, "4,001 characters long; at most 4,000"),
        ("", "hi", "user name is empty"),
        ("a" * 65, "hi", "65 characters"),
        ("ann\x00", "hi", "control characters"),
        ("ann", None, "must be a string"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_saved(tmp_path: Path, user: str, text: str, message: str) -> None:
    store = ProfileStore(tmp_path / "crs.db")
    with pytest.raises(ProfileError, match=message):
        store.save(user, text, "edit:cli")
    assert store.users() == []


def test_hostile_text_is_stored_verbatim(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "crs.db")
    text = 'Robert\'); DROP TABLE profiles;-- \u202e émoji 🎬 "quotes"'
    store.save("o'brien", text, "edit:cli")
    assert store.get("o'brien").text == text  # type: ignore[union-attr]
    assert ProfileStore(tmp_path / "crs.db").get("o'brien").text == text  # type: ignore[union-attr]


def test_corrupt_or_foreign_files_are_reported_and_left_untouched(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is no database\n" * 200)
    good = ProfileStore(tmp_path / "good.db")
    good.save("ann", "Likes:\n- Horror", "edit:cli")
    good.close()
    damaged = tmp_path / "damaged.db"
    raw = (tmp_path / "good.db").read_bytes()
    damaged.write_bytes(raw[:100] + b"\xff" * (len(raw) - 100))
    for path in (garbage, damaged):
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        with pytest.raises(ProfileError, match="left untouched"):
            ProfileStore(path)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    with pytest.raises(ProfileError, match="is a directory"):
        ProfileStore(tmp_path)


def test_migrations_run_in_order_and_keep_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # a database written when only the first migration existed
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        MIGRATIONS[0](db)
        db.execute("INSERT INTO schema_version VALUES (1)")
        db.execute("INSERT INTO users (name, created_at) VALUES ('ann', '2024-01-01T00:00:00Z')")
        db.execute("INSERT INTO profiles (user_id, version, text, source, created_at) VALUES (1, 1, 'old', 'x', 'y')")
    store = ProfileStore(path)
    assert store.schema_version() == len(MIGRATIONS) == 3
    assert store.get("ann").text == "old"  # type: ignore[union-attr]
    store.log_turn("ann", "s", "hi", "hello", "ask", [])  # the table the second migration made
    store.close()
    # A database of the second migration, with a logged turn: the third adds the record column, the row stays.
    v2 = tmp_path / "v2.db"
    with sqlite3.connect(v2) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        MIGRATIONS[0](db)
        MIGRATIONS[1](db)
        db.execute("INSERT INTO schema_version VALUES (2)")
        db.execute("INSERT INTO users (name, created_at) VALUES ('bob', '2024-01-01T00:00:00Z')")
        db.execute(
            "INSERT INTO turns (user_id, session_id, created_at, user_text, reply, act, item_ids) "
            "VALUES (1, 's0', '2024-01-02T00:00:00Z', 'old message', 'old reply', 'ask', '[]')"
        )
    store = ProfileStore(v2)
    assert store.schema_version() == 3
    store.log_turn("bob", "s1", "new", "reply", "recommend", ["x"], {"seconds": {"total": 1.5}})
    old, new = store.turns("bob")
    assert (old["user_text"], old["session_id"], old.get("seconds")) == ("old message", "s0", None)
    assert new["seconds"] == {"total": 1.5} and new["item_ids"] == ["x"]
    assert [t["user_text"] for t in store.logged_turns(session="s1")] == ["new"]
    assert [t["user_text"] for t in store.logged_turns(since="2024-01-03")] == ["new"]
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(ProfileError, match="schema version 99, newer"):
        ProfileStore(path)


WRITER = """
import sys
from crs.profiles.db import ProfileStore
store = ProfileStore(sys.argv[1])
n = 0
while True:
    n += 1
    p = store.save("ann", f"version {n} " + "words " * 300, "edit:test")
    store.log_turn("ann", "s", f"message {n}", "reply " * 100, "ask", ["x"])
    print(p.version, flush=True)
"""


def test_a_killed_writer_loses_nothing_it_committed(tmp_path: Path) -> None:
    path = tmp_path / "crs.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT
    )
    assert proc.stdout is not None
    reported: list[int] = []
    deadline = time.monotonic() + 120
    while len(reported) < 150 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        reported.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)  # mid-loop: almost surely inside a transaction
    rest, _ = proc.communicate(timeout=30)
    reported += [int(x) for x in rest.split()]
    assert proc.returncode == -signal.SIGKILL and len(reported) >= 150

    store = ProfileStore(path)
    versions = {p.version for p in store.history("ann")}
    assert set(reported) <= versions  # every reported commit survived
    assert versions == set(range(1, max(versions) + 1))  # and nothing half-written
    assert store.get("ann").text.startswith(f"version {max(versions)} ")  # type: ignore[union-attr]
    assert len(store.turns("ann")) >= len(reported)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
