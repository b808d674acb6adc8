"""ReDial data for the benchmark: the movie catalog, raw dialogues and recommender turns.

Two turn formats are read into the same ``RecTurn`` records:
- ``processed``: iEvaLM/UniCRS per-turn samples (``dialog_id, turn_id, context[], entity[], rec[]``,
  titles written "Title (Year)"). Speakers are not given: utterances alternate, the last one of the
  context being the seeker's. Movie ids per utterance come from the product's linker over the text,
  plus the sample's ``entity`` movie names (resolved by exact label) placed in the utterance that
  contains them.
- ``raw``: official ReDial dialogues (``conversationId``, ``messages`` with ``@<movie_id>``);
  consecutive messages of one sender are merged, every recommender utterance that mentions a movie
  is a turn, its ``@`` ids are the gold and each utterance's ids are given by the ``@`` marks.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from crs.catalog import Catalog, CatalogError, Item, load_redial_info, load_redial_movies
from crs.config import Config, load_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedialFiles:
    """Where the ReDial files are, under the config's ``[paths] data_root`` (``../shared/data``)."""

    data_root: Path

    @classmethod
    def from_config(cls, cfg: Config | None = None) -> RedialFiles:
        return cls((cfg or load_config()).paths.data_root)

    @property
    def root(self) -> Path:
        return self.data_root / "redial"

    @property
    def turns(self) -> Path:  # the validation file, iEvaLM processed
        return self.root / "ievalm_processed" / "valid_data_processed.jsonl.gz"

    @property
    def movies(self) -> Path:
        return self.root / "official" / "movies_with_mentions.csv"

    @property
    def info(self) -> Path:
        return self.root / "ievalm_processed" / "id2info.json.gz"

    @property
    def train(self) -> tuple[Path, ...]:  # raw training dialogues
        return (
            self.root / "partial_train" / "kgsf_valid_data.jsonl.gz",
            self.root / "partial_train" / "ievalm_valid_data.jsonl.gz",
        )

    @property
    def movielens(self) -> Path:
        return self.data_root / "movielens-latest-small"


Role = Literal["seeker", "recommender"]
_PLACEHOLDER = re.compile(r"@(\d+)")


class RedialDataError(ValueError):
    """A ReDial file that is missing, unreadable or malformed; the message names the file."""


@dataclass(frozen=True)
class Utterance:
    role: Role
    text: str  # movies written "Title (Year)"
    item_ids: tuple[str, ...] = ()  # ids given by the data format (raw @ids, processed entity names)


@dataclass(frozen=True)
class RecTurn:
    dialog_id: str
    turn: int
    context: tuple[Utterance, ...]
    gold: tuple[str, ...]  # ReDial ids the recommender named in this turn, in order


def load_redial_catalog(movies: str | Path, info: str | Path | None) -> Catalog:
    """The full ReDial movie list (``movies_with_mentions.csv``, popularity left at 0: its
    ``nbMentions`` counts test dialogues), with genres, cast, director and plot from ``id2info``
    where it has the movie. The plots are IMDb text: for evaluation only, never shipped."""
    base = load_redial_movies(movies)
    if info is None:
        return base
    extra = {item.id: item for item in load_redial_info(info)}
    merged: list[Item] = []
    for item in base:
        more = extra.get(item.id)
        if more is not None:
            item = replace(item, genres=more.genres, cast=more.cast, summary=more.summary, attributes=more.attributes)
        merged.append(item)
    return Catalog(merged, name=base.name)


def label_index(catalog: Catalog) -> dict[str, str]:
    """``{"Title (Year)" normalised: id}``; on a clash the item with info (genres) wins."""
    out: dict[str, str] = {}
    for item in sorted(catalog, key=lambda it: not it.genres):
        out.setdefault(_norm_label(item.label), item.id)
    return out


def _norm_label(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _open(path: Path) -> Iterator[tuple[int, str]]:
    if not path.is_file():
        raise RedialDataError(f"ReDial file not found: {path}")
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    yield lineno, line
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise RedialDataError(f"{path}: cannot read ({exc})") from None


def _records(path: Path, required: tuple[str, ...]) -> Iterator[dict]:
    for lineno, line in _open(path):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RedialDataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(rec, dict) or any(k not in rec for k in required):
            raise RedialDataError(f"{path}:{lineno}: expected an object with {', '.join(required)}")
        yield rec


def load_dialogues(paths: Iterable[str | Path]) -> list[dict]:
    """Raw ReDial dialogues from jsonl(.gz) files, the first copy of each ``conversationId``."""
    out: dict[str, dict] = {}
    for path in paths:
        for d in _records(Path(path), ("conversationId", "messages", "initiatorWorkerId", "respondentWorkerId")):
            out.setdefault(str(d["conversationId"]), d)
    return list(out.values())


def detect_format(path: str | Path) -> Literal["processed", "raw"]:
    for _, line in _open(Path(path)):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RedialDataError(f"{path}:1: not valid JSON ({exc.msg})") from None
        if isinstance(rec, dict) and "conversationId" in rec:
            return "raw"
        if isinstance(rec, dict) and "dialog_id" in rec:
            return "processed"
        raise RedialDataError(f"{path}: neither processed turns (dialog_id) nor raw ReDial dialogues (conversationId)")
    raise RedialDataError(f"{path}: no records")


def dialogue_utterances(dialogue: dict, catalog: Catalog) -> list[Utterance]:
    """A raw dialogue as utterances: consecutive messages of one sender merged, ``@id`` written as
    "Title (Year)" (the dialogue's own name for it, else the catalog's)."""
    names = dialogue.get("movieMentions") or {}
    names = names if isinstance(names, dict) else {}
    seeker = dialogue["initiatorWorkerId"]

    def fill(m: re.Match) -> str:
        name = names.get(m.group(1)) or (catalog.get(m.group(1)).label if m.group(1) in catalog else "")
        return re.sub(r"\s+", " ", name).strip() or m.group(0)

    out: list[Utterance] = []
    for msg in dialogue["messages"]:
        if not isinstance(msg, dict):
            continue
        text = str(msg.get("text") or "")
        role: Role = "seeker" if msg.get("senderWorkerId") == seeker else "recommender"
        ids = tuple(dict.fromkeys(i for i in _PLACEHOLDER.findall(text) if i in catalog))
        filled = _PLACEHOLDER.sub(fill, text)
        if out and out[-1].role == role:
            last = out[-1]
            out[-1] = Utterance(role, f"{last.text} {filled}", tuple(dict.fromkeys(last.item_ids + ids)))
        else:
            out.append(Utterance(role, filled, ids))
    return out


def dialogue_mentions(dialogue: dict, catalog: Catalog) -> list[str]:
    """Catalog ids mentioned in a raw dialogue, in order of first mention."""
    ids = [i for m in dialogue["messages"] if isinstance(m, dict) for i in _PLACEHOLDER.findall(str(m.get("text")))]
    return [i for i in dict.fromkeys(ids) if i in catalog]


def seeker_history(dialogues: Iterable[dict], catalog: Catalog) -> dict[str, list[tuple[str, list[str]]]]:
    """Per seeker (``initiatorWorkerId``), each of their dialogues' id and the catalog movies they
    said they liked in its questionnaire (``initiatorQuestions`` liked = 1, else the recommender's
    answers about the seeker), in dialogue order: the history a profile is built from."""
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for d in dialogues:
        seeker = str(d.get("initiatorWorkerId") or "")
        answers = d.get("initiatorQuestions") or d.get("respondentQuestions") or {}
        if not seeker or not isinstance(answers, dict):
            continue
        liked = [i for i, a in answers.items() if isinstance(a, dict) and a.get("liked") == 1 and i in catalog]
        if liked:
            out.setdefault(seeker, []).append((str(d["conversationId"]), liked))
    for history in out.values():
        history.sort(key=lambda h: int(h[0]) if h[0].isdigit() else 0)
    return out


def raw_turns(dialogues: Iterable[dict], catalog: Catalog) -> list[RecTurn]:
    """Every recommender utterance that names a catalog movie, with the utterances before it."""
    out = []
    for d in dialogues:
        utts = dialogue_utterances(d, catalog)
        for k, utt in enumerate(utts):
            if utt.role == "recommender" and utt.item_ids and k > 0:
                out.append(RecTurn(str(d["conversationId"]), k, tuple(utts[:k]), utt.item_ids))
    return out


def processed_turns(path: str | Path, catalog: Catalog) -> list[RecTurn]:
    """Turns of an iEvaLM/UniCRS processed file; gold titles are resolved by exact label (a title
    the catalog lacks is dropped, and counted in the log)."""
    labels = label_index(catalog)
    out, unknown = [], 0
    for rec in _records(Path(path), ("dialog_id", "context", "rec")):
        context = [str(t) for t in rec["context"] if isinstance(t, str) and t.strip()]
        given = [labels[n] for e in rec.get("entity") or [] if (n := _norm_label(str(e))) in labels]
        utts = []
        for back, text in enumerate(reversed(context)):
            role: Role = "seeker" if back % 2 == 0 else "recommender"
            ids = tuple(i for i in given if _norm_label(catalog[i].label) in _norm_label(text))
            utts.append(Utterance(role, text, ids))
        gold = []
        for title in rec["rec"]:
            item_id = labels.get(_norm_label(str(title)))
            if item_id is None:
                unknown += 1
            else:
                gold.append(item_id)
        if gold and utts:
            out.append(RecTurn(str(rec["dialog_id"]), int(rec.get("turn_id") or 0), tuple(reversed(utts)), tuple(gold)))
    if unknown:
        log.warning("%s: %d gold titles are not in the catalog and were dropped", path, unknown)
    return out


def read_turns(path: str | Path, catalog: Catalog, fmt: str = "auto") -> list[RecTurn]:
    """Recommender turns with gold movies from ``path`` (``processed``, ``raw`` or ``auto``)."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "raw":
        return raw_turns(load_dialogues([path]), catalog)
    if fmt == "processed":
        return processed_turns(path, catalog)
    raise RedialDataError(f"unknown turn format {fmt!r} (processed, raw, auto)")


def file_dialogue_ids(path: str | Path) -> set[str]:
    """Every dialogue id in a turn file (processed ``dialog_id`` or raw ``conversationId``),
    including dialogues with no turn to evaluate: all are left out of training."""
    key = "conversationId" if detect_format(path) == "raw" else "dialog_id"
    return {str(rec[key]) for rec in _records(Path(path), (key,))}


def movielens_sequences(folder: str | Path, catalog: Catalog, min_rating: float = 4.0) -> list[list[str]]:
    """ml-latest-small users' liked films (rating >= ``min_rating``) in time order, as ReDial ids,
    matched through IMDb ids (``links.csv`` against the catalog's ``imdb_id``)."""
    import csv

    folder = Path(folder)
    imdb = {it.attributes["imdb_id"].lstrip("t").lstrip("0"): it.id for it in catalog if it.attributes.get("imdb_id")}
    try:
        with open(folder / "links.csv", encoding="utf-8") as fh:
            ml2rd = {r["movieId"]: imdb[k] for r in csv.DictReader(fh) if (k := r["imdbId"].lstrip("0")) in imdb}
        ratings = folder / "ratings.csv.gz"
        if not ratings.exists():
            ratings = folder / "ratings.csv"
        opener = gzip.open if ratings.suffix == ".gz" else open
        users: dict[str, list[tuple[int, str]]] = {}
        with opener(ratings, "rt", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                if r["movieId"] in ml2rd and float(r["rating"]) >= min_rating:
                    users.setdefault(r["userId"], []).append((int(r["timestamp"]), ml2rd[r["movieId"]]))
    except (OSError, KeyError, ValueError, csv.Error, EOFError, zlib.error) as exc:
        raise CatalogError(f"{folder}: cannot read MovieLens ratings ({exc})") from None
    return [list(dict.fromkeys(i for _, i in sorted(v, key=lambda x: x[0]))) for v in users.values()]
