"""What every agent turn shares, built once at start from the config: the catalog's index, the sequential
scorer and the learned message reader. A shipped default that cannot load is skipped with a warning; a
chosen one that cannot is a ``ConfigError``."""

from __future__ import annotations

import logging
from pathlib import Path

from crs.catalog import Catalog
from crs.config import DEFAULT_SCORER, REDIAL_SCORER, Config, ConfigError
from crs.rank.scorer import ScorerError, SeqScorer
from crs.rank.store import IndexReport, ItemStore
from crs.understand.reader import MessageReader, ReaderError

log = logging.getLogger(__name__)


def index_catalog(
    cfg: Config, catalog: Catalog, store: ItemStore, progress: bool = True, prune: bool = False
) -> tuple[Catalog, IndexReport]:
    """Index the configured part of the catalog (idempotent: unchanged items are skipped): the
    demo catalog's default subset, or all of a custom catalog (``crs.rank.store.index_subset``); a
    subset filter that leaves nothing is a CatalogError, never an empty index."""
    from crs.rank.store import index_subset

    subset = index_subset(cfg, catalog)
    report = store.index(subset.items, progress=progress, prune=prune)
    log.info("index: %s", report)
    return subset, report


def load_scorer(cfg: Config, catalog: Catalog) -> SeqScorer | None:
    """The ``[scorer]`` checkpoint over ``catalog``; None when there is none. A chosen checkpoint that
    cannot be used is a ConfigError; the shipped default is skipped with a warning (a catalog with none
    of its ReDial films, say)."""
    if not cfg.scorer.checkpoint:
        return None
    try:
        return SeqScorer.load(cfg.scorer.checkpoint, catalog, cfg.scorer.model_dir or None)
    except ScorerError as exc:
        if Path(cfg.scorer.checkpoint) not in (DEFAULT_SCORER, REDIAL_SCORER):
            raise ConfigError(f"[scorer] checkpoint: {exc}") from exc
        log.warning("the shipped sequential scorer is not used (%s): ranking by retrieval + popularity", exc)
        return None


def load_reader(cfg: Config) -> MessageReader | None:
    """The ``[nlu] reader``: "auto" the shipped one (the rules alone, with a warning, when it cannot
    load), "off" none, else a folder with ``reader.pt`` and ``reader.json`` (an error if unusable)."""
    choice = cfg.nlu.reader
    if choice == "off":
        return None
    try:
        return MessageReader.load() if choice == "auto" else MessageReader.load(choice)
    except ReaderError as exc:
        if choice != "auto":
            raise ConfigError(f"[nlu] reader: {exc}") from exc
        log.warning("the learned message reader is not used (%s): the rules read messages alone", exc)
        return None
