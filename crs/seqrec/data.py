"""Interaction sequences for sequential recommendation, with a leave-one-out split.

Loaders (each accepts a plain or gzip file, ``.gz``):
- ``load_sasrec_txt``: the SASRec ``user item`` per-line format, already in time order per user.
- ``load_movielens``: MovieLens ``ratings.csv`` (``userId,movieId,rating,timestamp``); each user's
  ratings ordered by timestamp (ties keep file order).
- ``load_recbole_inter``: RecBole ``.inter`` atomic files: tab-separated, typed header such as
  ``user_id:token	item_id:token	rating:float	timestamp:float``; ordered by timestamp when present.
- ``load_dataset``: picks one of the above from the path (a file or a folder holding one).

Items get dense 1-based indices (0 is padding); ``SeqDataset.item_ids[i]`` is the original id of
index ``i``. Numeric ids are indexed in numeric order, so SASRec files keep their own numbering.

Split (as in SASRec): a user's last item is the test target, the second last the validation target,
the rest is training; users with fewer than 3 items keep them all for training and are not evaluated.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

PAD = "<pad>"  # item_ids[0]
Split = Literal["valid", "test"]


class DataFormatError(ValueError):
    """A malformed interaction file; the message names the file and line."""


@dataclass
class SeqDataset:
    """Per-user chronological item sequences (1-based item indices, 0 = padding)."""

    name: str
    sequences: list[np.ndarray]  # sequences[u]: int64 (n_u,), oldest first, values in 1..num_items
    item_ids: list[str]  # item_ids[i]: original id of item index i; item_ids[0] == PAD
    users: list[str]  # users[u]: original id of user u
    extra: dict[str, str] = field(default_factory=dict)  # provenance (path, format)
    # False: no leave-one-out split, every item trains and nothing validates (``whole``): for the final
    # fit of a model whose settings were chosen elsewhere, when the last two items of short sequences
    # (a dialogue names about five films) are too much data to give up.
    holdout: bool = True

    def __post_init__(self) -> None:
        if len(self.sequences) != len(self.users):
            raise ValueError(f"{len(self.sequences)} sequences but {len(self.users)} users")
        if not self.item_ids or self.item_ids[0] != PAD:
            raise ValueError(f"item_ids[0] must be the padding entry {PAD!r}")
        for u, seq in enumerate(self.sequences):
            if len(seq) and (seq.min() < 1 or seq.max() > self.num_items):
                raise ValueError(f"user {self.users[u]}: item index out of range 1..{self.num_items}")

    @property
    def num_items(self) -> int:
        return len(self.item_ids) - 1

    @property
    def num_users(self) -> int:
        return len(self.users)

    @property
    def num_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    # --- leave-one-out split ---
    def whole(self) -> SeqDataset:
        """The same data without the leave-one-out split: ``train(u)`` is the whole sequence and no
        user is evaluated."""
        return replace(self, holdout=False)

    def train(self, u: int) -> np.ndarray:
        """Training items of user ``u`` (all but the last two when the user has at least 3)."""
        seq = self.sequences[u]
        return seq[:-2] if len(seq) >= 3 and self.holdout else seq

    def valid(self, u: int) -> int:
        """The validation target of user ``u`` (second last item), or 0 if the user is not evaluated."""
        seq = self.sequences[u]
        return int(seq[-2]) if len(seq) >= 3 and self.holdout else 0

    def test(self, u: int) -> int:
        """The test target of user ``u`` (last item), or 0 if the user is not evaluated."""
        seq = self.sequences[u]
        return int(seq[-1]) if len(seq) >= 3 and self.holdout else 0

    def history(self, u: int, split: Split) -> np.ndarray:
        """The input sequence for predicting ``split``'s target: train items (+ the valid item for test)."""
        seq = self.sequences[u]
        if len(seq) < 3:
            return seq
        return seq[:-2] if split == "valid" else seq[:-1]

    def target(self, u: int, split: Split) -> int:
        return self.valid(u) if split == "valid" else self.test(u)

    def eval_users(self) -> np.ndarray:
        """Users with a validation and a test target (at least 3 interactions)."""
        return np.array([u for u, s in enumerate(self.sequences) if len(s) >= 3 and self.holdout], dtype=np.int64)

    # --- id maps ---
    @cached_property
    def item_index(self) -> dict[str, int]:
        """Original item id -> 1-based index."""
        return {iid: i for i, iid in enumerate(self.item_ids) if i > 0}

    def encode_items(self, ids: Iterable[str]) -> list[int]:
        """Original ids -> indices; unknown ids raise KeyError naming the id."""
        index = self.item_index
        out = []
        for iid in ids:
            if str(iid) not in index:
                raise KeyError(f"unknown item id {iid!r} in dataset {self.name!r}")
            out.append(index[str(iid)])
        return out

    def decode_items(self, indices: Iterable[int]) -> list[str]:
        return [self.item_ids[int(i)] for i in indices]

    def stats(self) -> str:
        lens = np.array([len(s) for s in self.sequences])
        return (
            f"{self.name}: {self.num_users} users, {self.num_items} items, {self.num_interactions} interactions, "
            f"mean length {lens.mean():.1f}"
        )


def pad_left(seqs: Sequence[np.ndarray], max_len: int, trim: bool = False) -> np.ndarray:
    """The last ``max_len`` items of each sequence, left-padded with 0 -> int64 (B, max_len);
    ``trim`` drops leading columns that are padding in every row (width = longest kept sequence)."""
    if trim:
        max_len = max(1, min(max_len, max((len(s) for s in seqs), default=1)))
    out = np.zeros((len(seqs), max_len), dtype=np.int64)
    for r, s in enumerate(seqs):
        s = s[-max_len:]
        if len(s):
            out[r, max_len - len(s) :] = s
    return out


class NegativeSampler:
    """Uniform item sampler that rejects items a given row (user) interacted with. Vectorised:
    (row, item) pairs are kept as sorted int64 keys ``row * (num_items + 1) + item``."""

    def __init__(self, rows_items: Sequence[np.ndarray], num_items: int) -> None:
        self.num_items = num_items
        keys = [r * (num_items + 1) + np.unique(items) for r, items in enumerate(rows_items)]
        self.keys = np.sort(np.concatenate(keys)) if keys else np.zeros(0, dtype=np.int64)
        counts = np.array([len(np.unique(s)) for s in rows_items], dtype=np.int64)
        self.full_rows = set(np.flatnonzero(counts >= num_items).tolist())

    def _seen(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = rows * (self.num_items + 1) + items
        pos = np.searchsorted(self.keys, keys).clip(max=max(len(self.keys) - 1, 0))
        return self.keys[pos] == keys if len(self.keys) else np.zeros(keys.shape, dtype=bool)

    def sample(self, rng: np.random.Generator, rows: np.ndarray, n: int) -> np.ndarray:
        """int64 (len(rows), n) items in 1..num_items, none seen by its row (drawn with replacement)."""
        if self.full_rows.intersection(rows.tolist()):
            raise ValueError("a user has interacted with every item; no negative can be sampled")
        rows2 = np.repeat(rows.astype(np.int64), n).reshape(len(rows), n)
        out = rng.integers(1, self.num_items + 1, size=(len(rows), n), dtype=np.int64)
        bad = self._seen(rows2, out)
        while bad.any():
            out[bad] = rng.integers(1, self.num_items + 1, size=int(bad.sum()), dtype=np.int64)
            bad[bad] = self._seen(rows2[bad], out[bad])
        return out


# --- loaders ---
def _open_text(path: Path) -> io.TextIOBase:
    if not path.exists():
        raise FileNotFoundError(f"interaction file not found: {path}")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")  # noqa: SIM115  # closed by the caller's with


def _sort_key(ids: Iterable[str]) -> list[str]:
    ids = list(ids)
    if all(i.lstrip("-").isdigit() for i in ids):
        return sorted(ids, key=int)
    return sorted(ids)


def _build(
    name: str, users: list[str], items: list[str], times: np.ndarray | None, extra: dict[str, str]
) -> SeqDataset:
    """Interaction triples (in file order) -> SeqDataset; each user's items ordered by time (stable)."""
    user_ids = _sort_key(set(users))
    item_ids = _sort_key(set(items))
    uix = {u: i for i, u in enumerate(user_ids)}
    iix = {it: i + 1 for i, it in enumerate(item_ids)}
    u_arr = np.fromiter((uix[u] for u in users), dtype=np.int64, count=len(users))
    i_arr = np.fromiter((iix[i] for i in items), dtype=np.int64, count=len(items))
    order = np.lexsort((times, u_arr)) if times is not None else np.argsort(u_arr, kind="stable")
    u_arr, i_arr = u_arr[order], i_arr[order]
    bounds = np.searchsorted(u_arr, np.arange(len(user_ids) + 1))
    sequences = [i_arr[bounds[u] : bounds[u + 1]].copy() for u in range(len(user_ids))]
    ds = SeqDataset(name=name, sequences=sequences, item_ids=[PAD, *item_ids], users=user_ids, extra=extra)
    log.info("loaded %s", ds.stats())
    return ds


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            yield lineno, line.rstrip("\r\n")


def load_sasrec_txt(path: str | Path, name: str | None = None) -> SeqDataset:
    """SASRec format: ``user item`` per line, in time order within each user."""
    path = Path(path)
    users: list[str] = []
    items: list[str] = []
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataFormatError(f"{path}:{lineno}: expected 'user item', got {line[:80]!r}")
        users.append(parts[0])
        items.append(parts[1])
    if not users:
        raise DataFormatError(f"{path}: no interactions")
    return _build(name or _stem(path), users, items, None, {"path": str(path), "format": "sasrec"})


def load_movielens(path: str | Path, name: str | None = None, min_rating: float | None = None) -> SeqDataset:
    """MovieLens ``ratings.csv`` (header ``userId,movieId,rating,timestamp``); ``min_rating`` keeps
    only ratings at or above it (default: every rating is an interaction)."""
    path = Path(path)
    users: list[str] = []
    items: list[str] = []
    times: list[float] = []
    with _open_text(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        need = ["userId", "movieId", "rating", "timestamp"]
        if header is None or any(h not in header for h in need):
            raise DataFormatError(f"{path}:1: expected a header with {','.join(need)}, got {header!r}")
        cu, ci, cr, ct = (header.index(h) for h in need)
        for row in reader:
            lineno = reader.line_num
            if not row:
                continue
            try:
                if len(row) != len(header):
                    raise ValueError(f"{len(row)} fields, expected {len(header)}")
                rating, ts = float(row[cr]), float(row[ct])
            except ValueError as e:
                raise DataFormatError(f"{path}:{lineno}: {e}: {','.join(row)[:80]!r}") from None
            if min_rating is not None and rating < min_rating:
                continue
            users.append(row[cu])
            items.append(row[ci])
            times.append(ts)
    if not users:
        raise DataFormatError(f"{path}: no interactions")
    return _build(name or _stem(path), users, items, np.array(times), {"path": str(path), "format": "movielens"})


def load_recbole_inter(
    path: str | Path,
    name: str | None = None,
    user_field: str = "user_id",
    item_field: str = "item_id",
    time_field: str = "timestamp",
) -> SeqDataset:
    """RecBole ``.inter`` atomic file: tab-separated, header fields ``name:type``
    (type one of token, token_seq, float, float_seq). Ordered by ``time_field`` when present."""
    path = Path(path)
    users: list[str] = []
    items: list[str] = []
    times: list[float] = []
    it = _lines(path)
    header_line = next(it, (1, ""))[1]
    fields = header_line.split("\t")
    names = []
    for f in fields:
        fname, sep, ftype = f.partition(":")
        if not sep or ftype not in {"token", "token_seq", "float", "float_seq"}:
            raise DataFormatError(
                f"{path}:1: header field {f!r} is not 'name:type' (token, token_seq, float, float_seq)"
            )
        names.append(fname)
    for needed in (user_field, item_field):
        if needed not in names:
            raise DataFormatError(f"{path}:1: header has no {needed!r} field: {header_line[:120]!r}")
    cu, ci = names.index(user_field), names.index(item_field)
    ct = names.index(time_field) if time_field in names else None
    for lineno, line in it:
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != len(names):
            raise DataFormatError(f"{path}:{lineno}: {len(parts)} fields, expected {len(names)}: {line[:80]!r}")
        if ct is not None:
            try:
                times.append(float(parts[ct]))
            except ValueError:
                raise DataFormatError(f"{path}:{lineno}: {time_field} {parts[ct]!r} is not a number") from None
        users.append(parts[cu])
        items.append(parts[ci])
    if not users:
        raise DataFormatError(f"{path}: no interactions")
    t = np.array(times) if ct is not None else None
    return _build(name or _stem(path), users, items, t, {"path": str(path), "format": "recbole"})


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".txt", ".csv", ".inter"):
        name = name.removesuffix(suffix)
    return name


def load_dataset(path: str | Path, name: str | None = None) -> SeqDataset:
    """Load by file name: ``*.inter[.gz]`` (RecBole), ``*.csv[.gz]`` (MovieLens ratings), ``*.txt[.gz]``
    (SASRec). In a folder: ``ratings.csv[.gz]``, else its one ``.inter``, else its one ``.txt`` (not README)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        found = [p for p in files if p.name.removesuffix(".gz") == "ratings.csv"]
        found = found or [p for p in files if p.name.removesuffix(".gz").endswith(".inter")]
        found = found or [
            p for p in files if p.name.removesuffix(".gz").endswith(".txt") and not p.name.upper().startswith("README")
        ]
        if len(found) != 1:
            names = [p.name for p in found]
            raise DataFormatError(f"{path}: expected one interaction file (ratings.csv, .inter, .txt), found {names}")
        name = name or path.name
        path = found[0]
    base = path.name.removesuffix(".gz")
    if base.endswith(".inter"):
        return load_recbole_inter(path, name)
    if base.endswith(".csv"):
        return load_movielens(path, name)
    if base.endswith(".txt"):
        return load_sasrec_txt(path, name)
    raise DataFormatError(f"{path}: unknown interaction format (expected .inter, ratings.csv or .txt)")


def item_text(title: str, genres: Sequence[str]) -> str:
    """What an LLM reads of an item (P2Rec's knowledge, DUIP's prompt): "Alien (1979): Horror, Sci-Fi"."""
    return f"{title}: {', '.join(genres)}" if genres else title


def load_item_titles(path: str | Path, item_ids: list[str]) -> tuple[list[str], list[str]]:
    """Names for a dataset's items from a CSV such as MovieLens ``movies.csv`` (header with an id
    column ``movieId``/``item_id``/``id``, a ``title`` column and optionally ``genres``, ``|``-separated)
    -> (titles, texts) aligned with ``item_ids``: titles like "Alien (1979)", texts "Alien (1979): Horror, Sci-Fi".
    Items missing from the file are named by their id."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"item titles file not found: {path}")
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    with io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        id_col = next((c for c in ("movieId", "item_id", "id") if c in fields), None)
        if id_col is None or "title" not in fields:
            raise ValueError(f"{path}: expected a header with an id column (movieId, item_id or id) and title")
        by_id: dict[str, tuple[str, str]] = {}
        for row in reader:
            title = (row.get("title") or "").strip()
            genres = [g for g in (row.get("genres") or "").split("|") if g and g != "(no genres listed)"]
            by_id[str(row[id_col]).strip()] = (title, item_text(title, genres))
    titles, texts = [""], [""]
    missing = 0
    for iid in item_ids[1:]:
        title, text = by_id.get(iid, ("", ""))
        if not title:
            missing += 1
            title = text = f"item {iid}"
        titles.append(title)
        texts.append(text)
    if missing:
        log.warning("%d of %d items have no title in %s", missing, len(item_ids) - 1, path)
    return titles, texts
