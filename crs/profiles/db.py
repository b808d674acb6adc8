"""SQLite persistence for users, their profile versions and their conversation logs.

One file in WAL mode with ``synchronous=FULL``: a write either commits whole or not at all, and
a process killed mid-write loses nothing it had committed. The schema is built by an ordered list
of migration functions; ``schema_version`` holds how many have run. A file that is not a SQLite
database, or was written by a newer crs, is reported and left untouched.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from crs.profiles.text import Profile, ProfileEdit, ProfileError, apply_edit, edit_message
from crs.tools import tool

if TYPE_CHECKING:
    from crs.config import Config
    from crs.understand.linker import Linker

log = logging.getLogger(__name__)

MAX_USER_CHARS = 64
DEFAULT_MAX_CHARS = 4000


# a user's profile versions, newest first: (text, version, created_at, source), the Profile fields after user
_VERSIONS = (
    "SELECT p.text, p.version, p.created_at, p.source FROM profiles p JOIN users u ON u.id = p.user_id "
    "WHERE u.name = ? ORDER BY p.version DESC"
)


class UnknownUserError(ProfileError):
    """A user the database has no record of."""


def _m1_users_profiles(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE profiles (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            text TEXT NOT NULL,
            source TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (user_id, version))"""
    )


def _m2_conversation_log(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            session_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            user_text TEXT NOT NULL,
            reply TEXT NOT NULL,
            act TEXT NOT NULL,
            item_ids TEXT NOT NULL)"""
    )
    db.execute("CREATE INDEX turns_by_user ON turns (user_id, id)")


def _m3_turn_records(db: sqlite3.Connection) -> None:
    """What research needs of a turn beyond its text (update, belief, tool calls, stage times), as
    JSON; turns logged before this migration keep their rows with an empty record."""
    db.execute("ALTER TABLE turns ADD COLUMN record TEXT NOT NULL DEFAULT '{}'")
    db.execute("CREATE INDEX turns_by_time ON turns (created_at)")


# Append only: a released migration is never edited, a schema change is a new function.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _m1_users_profiles,
    _m2_conversation_log,
    _m3_turn_records,
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def check_user(user: object) -> str:
    """A valid user name, or ``ProfileError`` saying what is wrong with it."""
    if not isinstance(user, str) or not user.strip():
        raise ProfileError("the user name is empty")
    name = user.strip()
    if len(name) > MAX_USER_CHARS:
        raise ProfileError(f"the user name is {len(name)} characters long; at most {MAX_USER_CHARS} are allowed")
    if any(not ch.isprintable() for ch in name):
        raise ProfileError("the user name has control characters")
    return name


class ProfileStore:
    """Users, profile versions and conversation logs in one SQLite file; safe across threads
    (one connection behind a lock) and processes (WAL, busy timeout)."""

    def __init__(self, path: Path | str, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        self.path = Path(path).expanduser()
        self.max_chars = max_chars
        self._lock = threading.Lock()
        if self.path.is_dir():
            raise ProfileError(f"profile database path {self.path} is a directory")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size and not self._looks_like_sqlite():
            raise ProfileError(
                f"{self.path} is not a SQLite database (corrupt or another file?); it was left untouched. "
                "Move it away to start a new one, or point [profile] db_path elsewhere."
            )
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 30000")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                log.warning("%s: journal mode is %s, not WAL", self.path, mode)
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise ProfileError(
                f"cannot open the profile database {self.path}: {exc}; it was left untouched. "
                "Move it away to start a new one, or point [profile] db_path elsewhere."
            ) from None

    @classmethod
    def from_config(cls, cfg: Config) -> ProfileStore:
        raw = cfg.profile.db_path.strip()
        path = Path(raw).expanduser() if raw else cfg.paths.data_dir / "crs.db"
        return cls(path, max_chars=cfg.profile.max_chars)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _looks_like_sqlite(self) -> bool:
        with open(self.path, "rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction, holding the write lock from its start (no upgrade deadlocks)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            done = row[0] if row else 0
            if done > len(MIGRATIONS):
                raise ProfileError(
                    f"{self.path} has schema version {done}, newer than this crs knows ({len(MIGRATIONS)}); "
                    "upgrade crs to open it"
                )
            for n, migration in enumerate(MIGRATIONS[done:], done + 1):
                log.info("%s: migration %d (%s)", self.path, n, migration.__name__)
                migration(db)
            if row is None:
                db.execute("INSERT INTO schema_version VALUES (?)", (len(MIGRATIONS),))
            elif done < len(MIGRATIONS):
                db.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS),))

    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT version FROM schema_version").fetchone()[0])

    # ---- users and profiles -------------------------------------------------------------------

    @staticmethod
    def _user_id(db: sqlite3.Connection, user: str, create: bool = False) -> int | None:
        row = db.execute("SELECT id FROM users WHERE name = ?", (user,)).fetchone()
        if row is not None:
            return int(row[0])
        if not create:
            return None
        return int(db.execute("INSERT INTO users (name, created_at) VALUES (?, ?)", (user, now_iso())).lastrowid)

    def users(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT name FROM users ORDER BY name")]

    def get(self, user: str) -> Profile | None:
        """The latest profile version, or None when the user has none."""
        user = check_user(user)
        with self._lock:
            row = self._db.execute(_VERSIONS + " LIMIT 1", (user,)).fetchone()
        return Profile(user, *row) if row else None

    def history(self, user: str) -> list[Profile]:
        """Every version, newest first."""
        user = check_user(user)
        with self._lock:
            rows = self._db.execute(_VERSIONS, (user,)).fetchall()
        return [Profile(user, *row) for row in rows]

    def check_text(self, text: object, allow_empty: bool = False) -> str:
        if not isinstance(text, str):
            raise ProfileError(f"profile text must be a string, not {type(text).__name__}")
        text = text.replace("\r\n", "\n").replace("\x00", "").strip()
        if not text and not allow_empty:
            raise ProfileError("the profile text is empty; to remove a profile use `crs profile delete USER`")
        if len(text) > self.max_chars:
            raise ProfileError(
                f"the profile text is {len(text):,} characters long; at most {self.max_chars:,} are allowed "
                "(shorten it; nothing was saved)"
            )
        return text

    def save(self, user: str, text: str, source: str, allow_empty: bool = False) -> Profile:
        """Append a new version of the user's profile (creating the user) and return it."""
        user = check_user(user)
        text = self.check_text(text, allow_empty)
        created = now_iso()
        with self._tx() as db:
            uid = self._user_id(db, user, create=True)
            (last,) = db.execute("SELECT COALESCE(MAX(version), 0) FROM profiles WHERE user_id = ?", (uid,)).fetchone()
            db.execute(
                "INSERT INTO profiles (user_id, version, text, source, created_at) VALUES (?, ?, ?, ?, ?)",
                (uid, last + 1, text, source, created),
            )
        return Profile(user, text, last + 1, created, source)

    # ---- conversation logs ---------------------------------------------------------------------

    def log_turn(
        self,
        user: str,
        session_id: str,
        user_text: str,
        reply: str,
        act: str,
        item_ids: list[str],
        record: dict[str, object] | None = None,
    ) -> None:
        """Log one turn; ``record`` holds the rest (update, belief, tool calls, stage times) as JSON."""
        user = check_user(user)
        with self._tx() as db:
            uid = self._user_id(db, user, create=True)
            db.execute(
                "INSERT INTO turns (user_id, session_id, created_at, user_text, reply, act, item_ids, record) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (uid, session_id, now_iso(), user_text, reply, act, json.dumps(list(item_ids)),
                 json.dumps(record or {}, ensure_ascii=False)),
            )  # fmt: skip

    def turns(self, user: str) -> list[dict[str, object]]:
        """The user's logged turns, oldest first (without the user's name on each)."""
        return [{k: v for k, v in t.items() if k != "user"} for t in self.logged_turns(user=check_user(user))]

    def logged_turns(
        self, user: str | None = None, session: str | None = None, since: str | None = None
    ) -> Iterator[dict[str, object]]:
        """Logged turns, oldest first, of one user, one session and from an ISO time on (each optional):
        user, session_id, created_at, user_text, reply, act, item_ids and the record's fields."""
        where, args = [], []
        for clause, value in (("u.name = ?", user), ("t.session_id = ?", session), ("t.created_at >= ?", since)):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = (
            "SELECT u.name, t.session_id, t.created_at, t.user_text, t.reply, t.act, t.item_ids, t.record "
            "FROM turns t JOIN users u ON u.id = t.user_id"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY t.id"
        )
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        keys = ("user", "session_id", "created_at", "user_text", "reply", "act")
        for r in rows:
            yield dict(zip(keys, r[:6], strict=True)) | {"item_ids": json.loads(r[6])} | json.loads(r[7] or "{}")

    # ---- a user's data as a whole --------------------------------------------------------------

    def export(self, user: str) -> dict[str, object]:
        """All that is stored about a user, as JSON-ready data; ``UnknownUserError`` if none."""
        user = check_user(user)
        with self._lock:
            row = self._db.execute("SELECT created_at FROM users WHERE name = ?", (user,)).fetchone()
        if row is None:
            raise UnknownUserError(f"no user {user!r} in {self.path}")
        profiles = [
            {"version": p.version, "created_at": p.created_at, "source": p.source, "text": p.text}
            for p in reversed(self.history(user))
        ]
        return {"user": user, "created_at": row[0], "profiles": profiles, "turns": self.turns(user)}

    def delete(self, user: str) -> bool:
        """Remove the user with every profile version and logged turn; False if there was none."""
        user = check_user(user)
        with self._tx() as db:
            uid = self._user_id(db, user)
            if uid is None:
                return False
            db.execute("DELETE FROM turns WHERE user_id = ?", (uid,))
            db.execute("DELETE FROM profiles WHERE user_id = ?", (uid,))
            db.execute("DELETE FROM users WHERE id = ?", (uid,))
        with self._lock:  # deleted data should not linger in the WAL file
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return True


@tool(summary=lambda out, a: out.message, hidden=("store", "linker"))
def edit_profile(
    store: ProfileStore, user: str, instruction: str, linker: Linker, source: str = "edit:chat"
) -> ProfileEdit:
    """Change a user's profile as one instruction says and save it as a new version.

    Deterministic: list entries are added or removed; what cannot be read as a preference is
    kept as text and reported in ``message``. Raises ``ProfileError`` for text over the limit."""
    current = store.get(user)
    result = apply_edit(current.text if current else "", instruction, linker)
    profile = store.save(user, result.text, source, allow_empty=True) if result.changed else current
    return ProfileEdit(
        user, instruction, result.added, result.removed, result.unparsed, result.keys, profile,
        edit_message(result, instruction),
    )  # fmt: skip
