"""``crs profile ...`` and ``crs chat --user`` as real processes: profiles survive restarts, users
stay apart, bad input gives one error line, and MovieLens ratings are imported."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import sys
from pathlib import Path

import pytest

from crs.app.cli_profile import match, read_movies, read_ratings
from crs.catalog import Catalog, normalize_title
from crs.config import load_config
from crs.profiles.text import ProfileError
from tests.test_cli import run_crs, small_file  # noqa: F401  (small_file: a fixture)

ML = load_config(env={}).paths.data_root / "movielens-latest-small"


def crs(*args: str, tmp_path: Path, stdin: str | None = None, env: dict[str, str] | None = None):  # noqa: ANN201
    if env:
        import os

        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return run_crs(*args, tmp_path=tmp_path, stdin=stdin)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return run_crs(*args, tmp_path=tmp_path, stdin=stdin)


def error_line(out) -> str:  # noqa: ANN001
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("crs: error: "), out.stderr
    return lines[0]


def test_profiles_survive_restarts_and_users_stay_apart(tmp_path: Path) -> None:
    a = crs("profile", "edit", "alice", "--text", "I love westerns.\n\nDislikes:\n- Horror", tmp_path=tmp_path)
    assert a.returncode == 0, a.stderr
    assert "saved version 1" in a.stdout and "likes Western" in a.stdout and "dislikes Horror" in a.stdout
    b = crs("profile", "edit", "bob", "--text", "-", tmp_path=tmp_path, stdin="Likes: comedy, Tom Hanks\n")
    assert b.returncode == 0, b.stderr

    shown = crs("profile", "show", "alice", tmp_path=tmp_path)  # a new process reads what another wrote
    assert shown.returncode == 0 and "I love westerns." in shown.stdout and "- Horror" in shown.stdout
    assert "comedy" not in shown.stdout and "Tom Hanks" not in shown.stdout
    shown = crs("profile", "show", "bob", "--json", tmp_path=tmp_path)
    (bob,) = json.loads(shown.stdout)
    assert bob["text"] == "Likes: comedy, Tom Hanks" and bob["version"] == 1 and bob["source"] == "edit:cli"

    again = crs("profile", "edit", "alice", "--text", "Likes:\n- Western\n- Alien (1979)", tmp_path=tmp_path)
    assert "saved version 2" in again.stdout and "Alien (1979)" in again.stdout
    same = crs("profile", "edit", "alice", "--text", "Likes:\n- Western\n- Alien (1979)", tmp_path=tmp_path)
    assert "no change" in same.stdout
    history = crs("profile", "show", "alice", "--history", tmp_path=tmp_path).stdout
    assert history.index("version 2") < history.index("version 1")

    exported = json.loads(crs("profile", "export", "alice", tmp_path=tmp_path).stdout)
    assert [p["version"] for p in exported["profiles"]] == [1, 2] and exported["user"] == "alice"
    out = tmp_path / "alice.json"
    assert crs("profile", "export", "alice", "--out", str(out), tmp_path=tmp_path).returncode == 0
    assert json.loads(out.read_text())["profiles"][0]["text"].startswith("I love westerns.")

    assert "add --yes" in error_line(crs("profile", "delete", "alice", tmp_path=tmp_path))
    assert crs("profile", "delete", "alice", "--yes", tmp_path=tmp_path).returncode == 0
    assert "no profile for user 'alice'" in error_line(crs("profile", "show", "alice", tmp_path=tmp_path))
    assert crs("profile", "show", "bob", tmp_path=tmp_path).returncode == 0  # bob is untouched


def test_bad_input_gives_one_error_line(tmp_path: Path) -> None:
    assert "no profile for user 'zed'" in error_line(crs("profile", "show", "zed", tmp_path=tmp_path))
    assert "no user 'zed'" in error_line(crs("profile", "export", "zed", tmp_path=tmp_path))
    assert "no user 'zed'" in error_line(crs("profile", "delete", "zed", "--yes", tmp_path=tmp_path))
    assert "empty" in error_line(crs("profile", "edit", "zed", "--text", "  ", tmp_path=tmp_path))
    huge = error_line(crs("profile", "edit", "zed", "--text", "I like westerns. " * 500, tmp_path=tmp_path))
    assert "8,499 characters long; at most 4,000" in huge and "nothing was saved" in huge
    assert "user name is empty" in error_line(crs("profile", "show", "", tmp_path=tmp_path))
    assert "file not found" in error_line(
        crs("profile", "import", "zed", "--ratings", str(tmp_path / "nope.csv"), tmp_path=tmp_path)
    )
    assert "no profile for user 'zed'" in error_line(crs("profile", "show", "zed", tmp_path=tmp_path))

    db = tmp_path / "data" / "crs.db"
    db.write_bytes(b"\x00corrupt" * 1000)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for args in (("show", "zed"), ("edit", "zed", "--text", "Likes: Horror")):
        assert "left untouched" in error_line(crs("profile", *args, tmp_path=tmp_path))
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_edit_in_editor(tmp_path: Path) -> None:
    script = tmp_path / "editor.py"
    script.write_text("import sys\nopen(sys.argv[1], 'a').write('\\nDislikes:\\n- Romance\\n')\n")
    env = {"EDITOR": f"{sys.executable} {script}", "VISUAL": ""}
    assert crs("profile", "edit", "eve", "--text", "Likes: Heat (1995)", tmp_path=tmp_path).returncode == 0
    out = crs("profile", "edit", "eve", tmp_path=tmp_path, env=env)
    assert out.returncode == 0 and "saved version 2" in out.stdout and "dislikes Romance" in out.stdout
    failing = {"EDITOR": f"{sys.executable} -c 'import sys; sys.exit(3)'", "VISUAL": ""}
    assert "exited with status 3" in error_line(crs("profile", "edit", "eve", tmp_path=tmp_path, env=failing))
    assert "version 2" in crs("profile", "show", "eve", tmp_path=tmp_path).stdout  # nothing saved


# ---- import ------------------------------------------------------------------------------------


def write_ratings(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["userId", "movieId", "rating", "timestamp"])
        w.writerows(rows)
    return path


def test_read_and_match_movielens(tmp_path: Path, catalog: Catalog) -> None:
    movies = read_movies(ML / "movies.csv")
    assert movies["2571"][:2] == ("The Matrix", 1999)
    index: dict[str, list] = {}
    for item in catalog:
        index.setdefault(normalize_title(item.title), []).append(item)
    assert match("The Matrix", 1999, index).id == "the-matrix-1999"  # type: ignore[union-attr]
    assert match("Seven", 1995, index).id == "seven-1995"  # type: ignore[union-attr]
    assert match("The Matrix", 1950, index) is None  # the year must agree (±1)

    two = write_ratings(tmp_path / "r.csv", [("1", "2571", "5", "10"), ("2", "1", "3", "5"), ("1", "1", "4", "2")])
    with pytest.raises(ProfileError, match="2 users; choose one with --ml-user"):
        read_ratings(two, None)
    assert [r.movie_id for r in read_ratings(two, "1")] == ["1", "2571"]  # oldest first
    with pytest.raises(ProfileError, match="no ratings of user 9"):
        read_ratings(two, "9")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ProfileError, match="no MovieLens ratings file"):
        read_ratings(bad, None)
    bad.write_text("userId,movieId,rating,timestamp\n1,2,five,3\n")
    with pytest.raises(ProfileError, match="line 2"):
        read_ratings(bad, None)
    gz = tmp_path / "r.csv.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write("userId,movieId,rating,timestamp\n1,2571,5,1\n")
    assert len(read_ratings(gz, None)) == 1


@pytest.mark.slow
def test_import_builds_a_first_profile(tmp_path: Path) -> None:
    with gzip.open(ML / "ratings.csv.gz", "rt") as fh:
        rows = [r for r in csv.reader(fh) if r[0] == "1"][:12]
    ratings = write_ratings(tmp_path / "ratings.csv", [tuple(r) for r in rows])  # type: ignore[misc]
    out = crs(
        "profile", "import", "ml1", "--ratings", str(ratings), "--movies", str(ML / "movies.csv"),
        "--max-items", "5", "--method", "recurrent", tmp_path=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "of 12 rated films to the catalog" in out.stdout and "summarising the latest 5" in out.stdout
    assert "wording" in out.stdout  # the LLM's, or the plain one where it did not state the facts
    (stored,) = json.loads(crs("profile", "show", "ml1", "--json", tmp_path=tmp_path).stdout)
    assert stored["source"] == "import:recurrent" and "Likes:\n- " in stored["text"]


@pytest.mark.slow
def test_chat_as_a_user_reads_and_updates_the_profile(small_file: Path, tmp_path: Path) -> None:  # noqa: F811
    assert run_crs("index", "--catalog", str(small_file), tmp_path=tmp_path).returncode == 0
    crs("profile", "edit", "carol", "--text", "Likes:\n- Thriller\nDislikes:\n- Horror", tmp_path=tmp_path)
    chat = ("chat", "--catalog", str(small_file), "--user", "carol", "--once")
    out = crs(*chat, "what should I watch tonight?", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["act"] == "recommend" and data["items"]
    assert not [i for i in data["items"] if "Horror" in i["genres"]]

    out = crs(*chat, "forget that I dislike horror", "--json", tmp_path=tmp_path)
    assert json.loads(out.stdout)["act"] == "edit_profile", out.stdout
    shown = crs("profile", "show", "carol", tmp_path=tmp_path).stdout
    assert "version 2 (edit:chat" in shown and "Horror" not in shown
    turns = json.loads(crs("profile", "export", "carol", tmp_path=tmp_path).stdout)["turns"]
    assert [t["user_text"] for t in turns] == ["what should I watch tonight?", "forget that I dislike horror"]
    bad_user = crs("chat", "--catalog", str(small_file), "--user", "", "--once", "hi", tmp_path=tmp_path)
    assert "user name is empty" in error_line(bad_user)
