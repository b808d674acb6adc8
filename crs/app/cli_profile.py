"""``crs profile show|edit|import|export|delete USER``: user profiles from the command line."""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import logging
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from crs.catalog import Item, normalize_title
from crs.config import Config
from crs.profiles.summary import METHODS, HistoryItem, movielens_title
from crs.profiles.text import ProfileError, parse_profile

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("profile", help="show, edit, import, export or delete a user's profile")
    pr = sp.add_subparsers(dest="profile_command", required=True)
    show = pr.add_parser("show", help="print the user's profile")
    show.add_argument("user")
    show.add_argument("--history", action="store_true", help="list every version, newest first")
    show.add_argument("--json", action="store_true", help="print JSON")
    edit = pr.add_parser("edit", help="replace the profile (with --text, or in $EDITOR)")
    edit.add_argument("user")
    edit.add_argument("--text", help="the new profile text ('-' reads standard input)")
    imp = pr.add_parser("import", help="build a first profile from MovieLens ratings by summarisation")
    imp.add_argument("user")
    imp.add_argument("--ratings", required=True, help="ratings.csv (or .csv.gz): userId,movieId,rating,timestamp")
    imp.add_argument("--movies", help="movies.csv with titles (default: beside the ratings file)")
    imp.add_argument("--ml-user", help="the userId to import when the file holds several users")
    imp.add_argument("--max-items", type=int, default=0, help="summarise the latest N matched ratings (0: all)")
    imp.add_argument("--method", choices=METHODS, help="default: [profile] method")
    imp.add_argument("--block-size", type=int, help="default: [profile] block_size")
    exp = pr.add_parser("export", help="print all data kept about the user as JSON")
    exp.add_argument("user")
    exp.add_argument("--out", help="write to this file instead")
    dele = pr.add_parser("delete", help="delete the user's profiles and conversation logs")
    dele.add_argument("user")
    dele.add_argument("--yes", action="store_true", help="confirm")
    for p in (show, edit, imp, exp, dele):
        p.add_argument("--db", help="profile database file (default: [profile] db_path)")


def _store(cfg: Config, args: argparse.Namespace):  # noqa: ANN202
    from crs.profiles.db import ProfileStore

    if args.db:
        return ProfileStore(args.db, max_chars=cfg.profile.max_chars)
    return ProfileStore.from_config(cfg)


def _linker(cfg: Config):  # noqa: ANN202
    from crs.catalog import load_catalog
    from crs.understand.linker import Linker

    return Linker(load_catalog(cfg.catalog.path, cfg.catalog.format))


def _report_parse(text: str, cfg: Config) -> None:
    from crs.profiles.text import likes_line

    linker = _linker(cfg)
    parse = parse_profile(text, linker)
    print(f"understood: {likes_line(parse, linker.catalog, max_chars=2000) or 'no preferences'}")
    for sentence in parse.unparsed:
        print(f"kept as text, not understood as a preference: {sentence}")


def cmd_profile(cfg: Config, args: argparse.Namespace) -> int:
    store = _store(cfg, args)
    try:
        return _COMMANDS[args.profile_command](cfg, args, store)
    finally:
        store.close()


def _show(cfg: Config, args: argparse.Namespace, store) -> int:  # noqa: ANN001
    versions = store.history(args.user) if args.history else [p for p in [store.get(args.user)] if p]
    if not versions:
        raise ProfileError(f"no profile for user {args.user!r}")
    if args.json:
        print(json.dumps([p.__dict__ for p in versions], ensure_ascii=False, indent=1))
        return 0
    for p in versions:
        print(f"# {p.user}: version {p.version} ({p.source}, {p.created_at})")
        print(p.text)
        print()
    return 0


def _edit(cfg: Config, args: argparse.Namespace, store) -> int:  # noqa: ANN001
    current = store.get(args.user)
    if args.text == "-":
        text = sys.stdin.read()
    elif args.text is not None:
        text = args.text
    else:
        text = _in_editor(current.text if current else "")
    text = store.check_text(text)
    if current is not None and text == current.text:
        print(f"no change to {args.user}'s profile (version {current.version})")
        return 0
    profile = store.save(args.user, text, "edit:cli")
    print(f"saved version {profile.version} of {profile.user}'s profile")
    _report_parse(text, cfg)
    return 0


def _in_editor(text: str) -> str:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profile.txt"
        path.write_text(text, encoding="utf-8")
        try:
            done = subprocess.run([*shlex.split(editor), str(path)], check=False)
        except OSError as exc:
            raise ProfileError(f"cannot run the editor {editor!r} ($EDITOR): {exc}; or use --text") from None
        if done.returncode != 0:
            raise ProfileError(f"the editor {editor!r} exited with status {done.returncode}; nothing was saved")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ProfileError("the edited profile is not UTF-8 text; nothing was saved") from None


def _export(cfg: Config, args: argparse.Namespace, store) -> int:  # noqa: ANN001
    data = json.dumps(store.export(args.user), ensure_ascii=False, indent=1)
    if args.out:
        Path(args.out).write_text(data + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(data)
    return 0


def _delete(cfg: Config, args: argparse.Namespace, store) -> int:  # noqa: ANN001
    if not args.yes:
        raise ProfileError(f"this deletes every profile version and conversation log of {args.user!r}; add --yes")
    if not store.delete(args.user):
        raise ProfileError(f"no user {args.user!r} in {store.path}")
    print(f"deleted {args.user}: all profile versions and conversation logs")
    return 0


# ---- import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rating:
    movie_id: str
    rating: float
    timestamp: int


def _open_csv(path: Path) -> io.TextIOBase:
    if not path.is_file():
        raise ProfileError(f"file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    return opener(path, "rt", encoding="utf-8", newline="")  # type: ignore[return-value]


def read_ratings(path: Path, ml_user: str | None) -> list[Rating]:
    """One user's ratings, oldest first."""
    by_user: dict[str, list[Rating]] = {}
    try:
        with _open_csv(path) as fh:
            reader = csv.DictReader(fh)
            missing = {"userId", "movieId", "rating", "timestamp"} - set(reader.fieldnames or [])
            if missing:
                raise ProfileError(f"{path} is no MovieLens ratings file: no column(s) {', '.join(sorted(missing))}")
            for n, row in enumerate(reader, 2):
                if ml_user is not None and row["userId"] != ml_user:
                    continue
                try:
                    rating = Rating(row["movieId"], float(row["rating"]), int(float(row["timestamp"])))
                except (TypeError, ValueError):
                    raise ProfileError(f"{path}, line {n}: cannot read rating {row!r}") from None
                by_user.setdefault(row["userId"], []).append(rating)
    except (UnicodeDecodeError, OSError, csv.Error) as exc:
        raise ProfileError(f"cannot read {path}: {exc}") from None
    if ml_user is not None and ml_user not in by_user:
        raise ProfileError(f"{path} has no ratings of user {ml_user}")
    if len(by_user) > 1:
        raise ProfileError(f"{path} holds ratings of {len(by_user)} users; choose one with --ml-user")
    if not by_user:
        raise ProfileError(f"{path} has no ratings")
    (rows,) = by_user.values()
    return sorted(rows, key=lambda r: (r.timestamp, r.movie_id))


def read_movies(path: Path) -> dict[str, tuple[str, int | None, tuple[str, ...]]]:
    out = {}
    try:
        with _open_csv(path) as fh:
            for row in csv.DictReader(fh):
                title, year = movielens_title(row.get("title") or "")
                out[row.get("movieId") or ""] = (title, year, tuple((row.get("genres") or "").split("|")))
    except (UnicodeDecodeError, OSError, csv.Error) as exc:
        raise ProfileError(f"cannot read {path}: {exc}") from None
    return out


def match(title: str, year: int | None, index: dict[str, list[Item]]) -> Item | None:
    """The catalog item with this normalised title and year (±1: release dates differ by country)."""
    for key in dict.fromkeys([normalize_title(title), normalize_title(title.split(" (")[0])]):
        cands = index.get(key, [])
        for tolerance in (0, 1):
            close = [it for it in cands if year and it.year and abs(it.year - year) <= tolerance]
            if close:
                return close[0]
    return None


def _import(cfg: Config, args: argparse.Namespace, store) -> int:  # noqa: ANN001
    from crs.llm.registry import load_chat_model
    from crs.profiles.summary import profile_text, summarise

    ratings_path = Path(args.ratings)
    movies_path = Path(args.movies) if args.movies else ratings_path.parent / "movies.csv"
    ratings = read_ratings(ratings_path, args.ml_user)
    movies = read_movies(movies_path)
    linker = _linker(cfg)
    index: dict[str, list[Item]] = {}
    for item in linker.catalog:
        index.setdefault(normalize_title(item.title), []).append(item)
    history: list[HistoryItem] = []
    for r in ratings:
        title, year, _ = movies.get(r.movie_id, ("", None, ()))
        item = match(title, year, index) if title else None
        if item is not None:
            history.append(HistoryItem(item.label, item.genres, r.rating, item.id))
    rate = len(history) / len(ratings)
    print(f"matched {len(history)} of {len(ratings)} rated films to the catalog ({rate:.0%})")
    if not history:
        raise ProfileError("no rated film matched the catalog; nothing to summarise")
    if args.max_items and len(history) > args.max_items:
        history = history[-args.max_items :]
        print(f"summarising the latest {len(history)}")
    method = args.method or cfg.profile.method
    block_size = args.block_size or cfg.profile.block_size
    summary = summarise(history, load_chat_model(cfg), linker, block_size=block_size, method=method)
    text = profile_text(summary.draft)
    profile = store.save(args.user, text[: store.max_chars], f"import:{method}")
    worded = "the LLM's wording" if summary.draft.phrased else "plain wording (the LLM's did not state the facts)"
    print(
        f"saved version {profile.version} of {profile.user}'s profile ({method}, {summary.blocks} blocks, "
        f"{worded}, {summary.seconds:.1f}s):\n"
    )
    print(profile.text)
    return 0


_COMMANDS = {"show": _show, "edit": _edit, "import": _import, "export": _export, "delete": _delete}
