"""The item store: catalog items embedded with a sentence-transformers model, kept in Chroma.

``ItemStore`` indexes items idempotently (each item carries a fingerprint of the text it was
embedded from, so a re-index embeds only new or changed items) and searches them by cosine
similarity with metadata filters. Filters are applied twice: in Chroma's ``where`` clause, and
again on the hits in Python, so an excluded genre, year or id never comes back.

Embeddings are always computed here and passed to Chroma; Chroma's own default embedding
function (which downloads a model) is never used.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import socket
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from crs.catalog import Catalog, Item
from crs.config import Config
from crs.rank.embed import Embedder, embed_text
from crs.rank.metadata import Filter, Hit, StoreError, genre_key, hit_from_metadata, item_metadata
from crs.rank.store_check import (
    REBUILD_HINT,
    SQLITE_FILE,
    check_files,
    first_line,
    is_chroma_dir,
    probe_collection,
    probe_in_subprocess,
    segment_dirs,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1  # part of every fingerprint: bump it when the metadata layout changes
_GET_PAGE = 2000  # ids fetched per page when listing the collection
_OVERFETCH_MARGIN = 10  # extra hits asked of Chroma beyond k and the excluded ids
_POSTFILTER_FACTOR = 4  # a filtered search first takes this many times its hits unfiltered, and filters them
_POSTFILTER_MAX = 3200  # ... widening up to this many before Chroma's where clause filters instead
T = TypeVar("T")


@dataclass(frozen=True)
class IndexReport:
    added: int
    updated: int
    unchanged: int
    removed: int
    seconds: float

    @property
    def embedded(self) -> int:
        return self.added + self.updated


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _fingerprint(text: str, embedder_name: str) -> str:
    return hashlib.sha1(f"{SCHEMA_VERSION}\n{embedder_name}\n{text}".encode()).hexdigest()


class ItemStore:
    """Items embedded in a Chroma collection: a local directory, a server, or memory (tests).

    ``cfg.store.host`` set means a Chroma server (``chroma run``); otherwise a PersistentClient
    at ``cfg.store.path``; ``ephemeral=True`` keeps everything in memory. Note that Chroma shares
    one in-memory database between all ephemeral clients of a process: give each ephemeral store
    its own ``cfg.store.collection`` when they must not see each other's items.

    Opening checks the index (``crs.rank.store_check``): a local directory's files before Chroma
    reads them (``isolate=True`` also opens it once in a child process first, so a crash
    there is a message here), then counts and a probe query. Any failure of a Chroma call,
    on open or later, raises ``StoreError`` naming the fix (``crs index --rebuild``).
    """

    def __init__(
        self,
        cfg: Config,
        embedder: Embedder | None = None,
        *,
        ephemeral: bool = False,
        check: bool = True,
        isolate: bool = False,
    ) -> None:
        self.cfg = cfg
        self.embedder = embedder if embedder is not None else Embedder.from_config(cfg)
        self.ephemeral = ephemeral
        if check and self.is_local:
            self._check_files(isolate)
        self._client = self._connect(ephemeral)
        self._collection = self._open_collection()
        if check:
            problems = self._guard("probe", probe_collection, self._collection)
            if problems:
                raise StoreError(self._damaged(problems[0]))

    @classmethod
    def from_config(cls, cfg: Config, embedder: Embedder | None = None) -> ItemStore:
        """The configured store, checked; ``[store] isolated_check`` opens a local index in a
        child process first."""
        return cls(cfg, embedder, isolate=cfg.store.isolated_check)

    @classmethod
    def rebuilt(cls, cfg: Config, embedder: Embedder | None = None) -> ItemStore:
        """An empty store in place of the configured one, however damaged that was: a local
        index's Chroma files are deleted without opening them; a server's collection is dropped."""
        store = cfg.store
        if not store.host:
            wipe_index_dir(Path(store.path).expanduser())
            return cls(cfg, embedder)
        fresh = cls.__new__(cls)
        fresh.cfg, fresh.ephemeral = cfg, False
        fresh.embedder = embedder if embedder is not None else Embedder.from_config(cfg)
        fresh._client = fresh._connect(False)
        fresh._drop_collection()
        fresh._collection = fresh._open_collection()
        return fresh

    # -- connection -------------------------------------------------------------------------

    @property
    def location(self) -> str:
        store = self.cfg.store
        if self.ephemeral:
            return "memory"
        return f"{store.host}:{store.port}" if store.host else str(store.path)

    @property
    def is_local(self) -> bool:
        """A PersistentClient directory (not memory, not a server)."""
        return not self.ephemeral and not self.cfg.store.host

    def _damaged(self, problem: str) -> str:
        if self.is_local:
            return f"the item index at {self.location} is damaged ({problem}); {REBUILD_HINT}"
        where = "in memory" if self.ephemeral else f"on the Chroma server at {self.location}"
        return f"the item index {where} failed ({problem}); {REBUILD_HINT}"

    def _check_files(self, isolate: bool) -> None:
        path = Path(self.cfg.store.path).expanduser()
        problems = check_files(path)
        if not problems and isolate and is_chroma_dir(path):
            problems = probe_in_subprocess(path, self.cfg.store.collection, self.cfg.store.check_timeout)
        if problems:
            log.debug("index check of %s: %s", path, problems)
            raise StoreError(self._damaged(problems[0]))

    def _guard(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call Chroma; any failure, a Rust panic (pyo3's PanicException is a BaseException)
        included, becomes a StoreError naming the fix."""
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:
            log.debug("chroma %s failed", what, exc_info=True)
            raise StoreError(self._damaged(f"{what}: {first_line(exc)}")) from exc

    def _connect(self, ephemeral: bool) -> Any:
        try:
            import chromadb
            from chromadb.config import Settings
        except ImportError:
            raise StoreError("chromadb is not installed: pip install chromadb") from None
        settings = Settings(anonymized_telemetry=False)
        store = self.cfg.store
        if ephemeral:
            return chromadb.EphemeralClient(settings=settings)
        if not store.host:
            path = Path(store.path).expanduser()
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the index directory {path}: {exc}") from exc
            return self._guard("open", chromadb.PersistentClient, path=str(path), settings=settings)
        where = f"{store.host}:{store.port}"
        # The Chroma HTTP client has no timeout; probe the port first so a dead host fails fast.
        try:
            with socket.create_connection((store.host, store.port), timeout=5.0):
                pass
        except OSError as exc:
            raise StoreError(f"cannot reach the Chroma server at {where}: {exc} (is `chroma run` running?)") from None
        try:
            client = chromadb.HttpClient(host=store.host, port=store.port, settings=settings)
            client.heartbeat()
        except Exception as exc:
            raise StoreError(f"the Chroma server at {where} does not answer: {exc}") from exc
        return client

    def _open_collection(self) -> Any:
        name = self.cfg.store.collection
        collection = self._guard(
            f"open collection {name!r}",
            self._client.get_or_create_collection,
            name,
            embedding_function=None,  # never Chroma's default: it downloads a model
            configuration={"hnsw": {"space": "cosine", **self.cfg.store.hnsw()}},
            metadata={"crs_schema": SCHEMA_VERSION},
        )
        config = getattr(collection, "configuration", None) or {}
        space = (config.get("hnsw") or {}).get("space") or (collection.metadata or {}).get("hnsw:space", "l2")
        if space != "cosine":
            raise StoreError(
                f"collection {name!r} in {self.location} uses {space!r} distance, not cosine; "
                "reset it (ItemStore.reset) or use another [store] collection"
            )
        return collection

    # -- indexing ---------------------------------------------------------------------------

    def count(self) -> int:
        return int(self._guard("count", self._collection.count))

    def fingerprints(self) -> dict[str, str]:
        """``{id: fingerprint}`` for every stored item, read in pages."""
        out: dict[str, str] = {}
        offset = 0
        while True:
            page = self._guard("list", self._collection.get, include=["metadatas"], limit=_GET_PAGE, offset=offset)
            ids = page["ids"]
            for item_id, meta in zip(ids, page["metadatas"] or [{}] * len(ids), strict=True):
                out[item_id] = str((meta or {}).get("fp") or "")
            if len(ids) < _GET_PAGE:
                return out
            offset += len(ids)

    def index(
        self,
        items: Iterable[Item],
        batch_size: int | None = None,
        progress: bool = True,
        *,
        prune: bool = False,
    ) -> IndexReport:
        """Embed and store new or changed items; with ``prune``, delete stored items not given."""
        started = time.perf_counter()
        batch_size = batch_size or self.cfg.store.batch_size
        wanted = {item.id: item for item in items}  # the last of duplicate ids wins
        existing = self.fingerprints()
        todo: list[tuple[Item, str, str]] = []
        for item in wanted.values():
            text = embed_text(item)
            fp = _fingerprint(text, self.embedder.name)
            if existing.get(item.id) != fp:
                todo.append((item, text, fp))
        added = sum(1 for item, _, _ in todo if item.id not in existing)
        updated = len(todo) - added
        if todo:
            self._embed_and_upsert(todo, batch_size, progress)
        removed = 0
        if prune:
            stale = [item_id for item_id in existing if item_id not in wanted]
            self.delete(stale)
            removed = len(stale)
        seconds = time.perf_counter() - started
        report = IndexReport(added, updated, len(wanted) - len(todo), removed, seconds)
        log.info("indexed %s: %s", self.location, report)
        return report

    def _embed_and_upsert(self, todo: list[tuple[Item, str, str]], batch_size: int, progress: bool) -> None:
        from tqdm.auto import tqdm

        # Upsert in chunks of several embedding batches: an interrupted run keeps what it did.
        chunk = self.upsert_chunk(max(batch_size, 256))
        with tqdm(total=len(todo), desc="embedding items", unit="item", disable=not progress) as bar:
            for part in _chunks(todo, chunk):
                vectors = self.embedder.encode([text for _, text, _ in part], batch_size=batch_size)
                self.upsert_vectors([item for item, _, _ in part], vectors, [fp for _, _, fp in part])
                bar.update(len(part))

    def upsert_chunk(self, wanted: int) -> int:
        """How many items one upsert may carry: ``wanted``, at most what the client accepts."""
        max_batch = getattr(self._client, "get_max_batch_size", lambda: wanted)()
        return max(1, min(wanted, int(max_batch)))

    def upsert_vectors(self, items: Sequence[Item], vectors: np.ndarray, fingerprints: Sequence[str]) -> None:
        """Store items with vectors computed elsewhere ((n, dim) unit vectors), in the metadata layout
        searches filter on; ``len(items)`` at most :meth:`upsert_chunk` allows."""
        try:
            self._collection.upsert(
                ids=[item.id for item in items],
                embeddings=vectors,
                metadatas=[item_metadata(item, fp) for item, fp in zip(items, fingerprints, strict=True)],
            )
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a Rust panic too
            raise StoreError(
                f"cannot write to collection {self.cfg.store.collection!r} in {self.location}: "
                f"{first_line(exc)} (a different embedder dimension, or a damaged index: {REBUILD_HINT})"
            ) from exc

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        for part in _chunks(ids, _GET_PAGE):
            self._guard("delete", self._collection.delete, ids=list(part))

    def reset(self) -> None:
        """Delete every item (the collection is dropped and created again)."""
        self._drop_collection()
        self._collection = self._open_collection()

    def _drop_collection(self) -> None:
        try:
            self._client.delete_collection(self.cfg.store.collection)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a collection that was already gone is fine
            log.debug("delete_collection: %s", first_line(exc))

    # -- reading ----------------------------------------------------------------------------

    def get_embeddings(self, ids: Iterable[str]) -> dict[str, np.ndarray]:
        """``{id: (dim,) float32 unit vector}`` for the given ids that are stored."""
        ids = list(dict.fromkeys(ids))
        out: dict[str, np.ndarray] = {}
        for part in _chunks(ids, _GET_PAGE):
            got = self._guard("get", self._collection.get, ids=list(part), include=["embeddings"])
            embeddings = got["embeddings"]
            if embeddings is None:
                continue
            for item_id, vector in zip(got["ids"], embeddings, strict=True):
                out[item_id] = np.asarray(vector, dtype=np.float32)
        return out

    def search(
        self,
        query: str | None = None,
        *,
        k: int = 10,
        include_genres: Sequence[str] = (),
        exclude_genres: Sequence[str] = (),
        year_min: int | None = None,
        year_max: int | None = None,
        exclude_ids: Collection[str] = (),
        query_embedding: np.ndarray | None = None,
    ) -> list[Hit]:
        """The ``k`` items nearest to ``query`` (or ``query_embedding``) that pass the filters.

        Genres match case-insensitively; ``include_genres`` means any of them. Any year bound
        leaves out items of unknown year. With neither a query nor an embedding, the result is
        a filter-only listing in store order, every score 0.0.
        """
        if query is not None and query_embedding is not None:
            raise ValueError("give a query or a query_embedding, not both")
        flt = Filter(
            include=frozenset(genre_key(g) for g in include_genres),
            exclude=frozenset(genre_key(g) for g in exclude_genres),
            year_min=year_min,
            year_max=year_max,
            exclude_ids=frozenset(exclude_ids),
        )
        if k <= 0:
            return []
        if query is None and query_embedding is None:
            return self._listing(flt, k)
        vector = self.embedder.encode_one(query) if query is not None else np.asarray(query_embedding, np.float32)
        return self._nearest(vector.reshape(-1), flt, k)

    def _nearest(self, vector: np.ndarray, flt: Filter, k: int) -> list[Hit]:
        # No count() first: on a Chroma server it is a pass over the collection (~120 ms at a million
        # items), and a query asking for more than there is returns what there is.
        where = flt.where()
        n = k + len(flt.exclude_ids) + _OVERFETCH_MARGIN
        if where is not None:
            # First the nearest items without the where clause, filtered here, widening up to
            # _POSTFILTER_MAX: a graph search costs about log(items), Chroma's metadata filter a pass over
            # every item (~10 us each: seconds at a million; bench/scale.py). When enough of the nearest
            # pass, the filtered top k is among them; a filter too narrow for that is left to Chroma.
            wide = n * _POSTFILTER_FACTOR
            while True:
                hits, fetched = self._query(vector, wide, None, flt)
                if len(hits) >= k or fetched < wide:
                    return hits[:k]
                if wide >= _POSTFILTER_MAX:
                    break
                wide = min(_POSTFILTER_MAX, wide * 4)
            log.debug("search: %d of the %d nearest pass the filter; filtering in the store", len(hits), fetched)
        while True:
            hits, fetched = self._query(vector, n, where, flt)
            if len(hits) >= k or fetched < n:
                return hits[:k]
            log.debug("search: %d of %d hits kept, asking for more", len(hits), n)
            n *= 4

    def _query(self, vector: np.ndarray, n: int, where: dict[str, Any] | None, flt: Filter) -> tuple[list[Hit], int]:
        """The hits among Chroma's ``n`` nearest (under ``where``) that ``flt`` keeps, and how many came back."""
        result = self._guard(
            "query",
            self._collection.query,
            query_embeddings=[vector],
            n_results=n,
            where=where,
            include=["metadatas", "distances"],
        )
        ids = result["ids"][0]
        metas = (result["metadatas"] or [[]])[0] or [None] * len(ids)
        dists = (result["distances"] or [[]])[0]
        hits = (hit_from_metadata(i, m, 1.0 - float(d)) for i, m, d in zip(ids, metas, dists, strict=True))
        return [h for h in hits if flt.keep(h)], len(ids)

    def _listing(self, flt: Filter, k: int) -> list[Hit]:
        where = flt.where()
        hits: list[Hit] = []
        offset = 0
        while len(hits) < k:
            page = self._guard(
                "list", self._collection.get, where=where, include=["metadatas"], limit=_GET_PAGE, offset=offset
            )
            ids = page["ids"]
            metas = page["metadatas"] or [None] * len(ids)
            hits.extend(
                h for h in (hit_from_metadata(i, m, 0.0) for i, m in zip(ids, metas, strict=True)) if flt.keep(h)
            )
            if len(ids) < _GET_PAGE:
                break
            offset += len(ids)
        return hits[:k]


def wipe_index_dir(path: Path) -> None:
    """Delete a persistent Chroma directory's own files (``chroma.sqlite3`` and its journals, the
    UUID-named HNSW segment folders) without opening them; anything else there is left alone."""
    if not path.exists():
        return
    if not path.is_dir():
        raise StoreError(f"the index path {path} is not a directory")
    for name in (SQLITE_FILE, f"{SQLITE_FILE}-wal", f"{SQLITE_FILE}-shm", f"{SQLITE_FILE}-journal"):
        (path / name).unlink(missing_ok=True)
    for seg in segment_dirs(path):
        shutil.rmtree(seg)
    log.info("deleted the Chroma files in %s", path)


def index_subset(cfg: Config, catalog: Catalog) -> Catalog:
    """The items of ``catalog`` to index. ``[catalog] subset``: "auto" applies ``min_year`` and
    ``min_summary_chars`` to the shipped demo catalog only (a custom catalog is indexed whole),
    "on" to any catalog, "off" to none."""
    from crs.catalog import CatalogError
    from crs.config import DEMO_CATALOG

    mode = cfg.catalog.subset
    path = Path(cfg.catalog.path).expanduser()
    demo = path.exists() and DEMO_CATALOG.exists() and path.resolve() == DEMO_CATALOG.resolve()
    apply = mode == "on" or (mode == "auto" and demo)
    if not apply or not (cfg.catalog.min_year or cfg.catalog.min_summary_chars):
        return catalog
    subset = catalog.filter(cfg.catalog.min_year, cfg.catalog.min_summary_chars)
    if not subset.items and catalog.items:
        raise CatalogError(
            f"the subset filter (films from {cfg.catalog.min_year} on with summaries of at least "
            f"{cfg.catalog.min_summary_chars} characters) leaves none of the {len(catalog):,} items of "
            f"{path.name}; use --full, or set [catalog] min_year / min_summary_chars lower"
        )
    return subset
