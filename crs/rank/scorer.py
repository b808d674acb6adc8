"""The sequential scorer the agent uses: a trained ``crs.seqrec`` checkpoint over catalog items.

A checkpoint's items (``item_ids``, and ``titles`` when it has them) are mapped to catalog items by
id first, then by normalised title and year (MovieLens writes "Matrix, The (1999)", the catalog
"The Matrix" 1999), then by title and a year one off (a festival year against a release year);
``match`` reports how many mapped. The session's liked items, in the order they
were liked, form the sequence; ``scores`` returns the model's scores of the candidates as z-scores
over the mapped candidates, which ``crs.rank.candidates.score`` fuses with the retrieval score.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crs.catalog import Catalog, normalize_title, split_title_year
from crs.tools import tool

if TYPE_CHECKING:
    from crs.seqrec.base import SeqRecModel

log = logging.getLogger(__name__)

_TRAILING_ARTICLE = re.compile(r"^(?P<title>.*),\s*(?P<article>the|a|an|les|la|le|il|el|der|die|das)$", re.IGNORECASE)
_PARENTHESES = re.compile(r"\s*\([^()]*\)\s*$")


class ScorerError(ValueError):
    """A checkpoint that cannot serve as the agent's sequential scorer."""


def title_keys(name: str, year: int | None = None) -> list[tuple[str, int | None]]:
    """Normalised (title, year) keys for a name like "City of Lost Children, The (Cité des enfants
    perdus, La) (1995)": the title as written, with a trailing article moved to the front, and without
    a trailing alternative title in parentheses."""
    title, found_year = split_title_year(name)
    year = year if year is not None else found_year
    forms = [title]
    bare = _PARENTHESES.sub("", title)
    if bare and bare != title:
        forms.append(bare)
    for form in list(forms):
        m = _TRAILING_ARTICLE.match(form)
        if m:
            forms.append(f"{m['article']} {m['title']}")
    keys: list[tuple[str, int | None]] = []
    for form in forms:
        key = (normalize_title(form), year)
        if key[0] and key not in keys:
            keys.append(key)
    return keys


@dataclass(frozen=True)
class MatchReport:
    total: int  # items in the model (padding excluded)
    by_id: int
    by_title: int  # title and the same year (or no year on either side)
    by_near_year: int = 0  # title and a year one off

    @property
    def matched(self) -> int:
        return self.by_id + self.by_title + self.by_near_year

    @property
    def rate(self) -> float:
        return self.matched / self.total if self.total else 0.0

    def __str__(self) -> str:
        return (
            f"{self.matched} of {self.total} model items matched the catalog ({self.rate:.1%}: "
            f"{self.by_id} by id, {self.by_title} by title and year, {self.by_near_year} by title and a year one off)"
        )


def match_items(
    item_ids: Sequence[str], titles: Sequence[str] | None, catalog: Catalog
) -> tuple[dict[str, int], MatchReport]:
    """Catalog id -> model item index, and the report. Index 0 (padding) is skipped; when two model
    items claim one catalog item, the first keeps it. The year-one-off pass runs after every exact
    match, so it never takes a catalog item an exact title and year would have claimed."""
    by_key: dict[tuple[str, int | None], str] = {}
    for item in catalog:
        for key in title_keys(item.title, item.year):
            by_key.setdefault(key, item.id)
    mapping: dict[str, int] = {}
    by_id = by_title = by_near = 0
    unmatched: list[int] = []
    for index in range(1, len(item_ids)):
        iid = str(item_ids[index])
        if iid in catalog and iid not in mapping:
            mapping[iid] = index
            by_id += 1
            continue
        if titles is None or not titles[index]:
            continue
        cid = next((c for key in title_keys(titles[index]) if (c := by_key.get(key)) and c not in mapping), None)
        if cid is None:
            unmatched.append(index)
        else:
            mapping[cid] = index
            by_title += 1
    for index in unmatched:
        keys = [(t, y + d) for t, y in title_keys(titles[index]) if y is not None for d in (-1, 1)]  # type: ignore[index]
        cid = next((c for key in keys if (c := by_key.get(key)) and c not in mapping), None)
        if cid is not None:
            mapping[cid] = index
            by_near += 1
    return mapping, MatchReport(len(item_ids) - 1, by_id, by_title, by_near)


class SeqScorer:
    """Scores catalog candidates with a sequential model, given the items a user liked."""

    def __init__(
        self,
        model: SeqRecModel,
        item_ids: Sequence[str],
        catalog: Catalog,
        titles: Sequence[str] | None = None,
        name: str = "",
    ) -> None:
        if len(item_ids) != model.item_emb.weight.shape[0]:
            raise ScorerError(f"{len(item_ids)} item ids for a model with {model.item_emb.weight.shape[0]} item rows")
        self.model = model.eval()
        self.name = name or type(model).__name__
        self.to_index, self.match = match_items(item_ids, titles, catalog)
        log.info("sequential scorer %s: %s", self.name, self.match)

    @classmethod
    def load(cls, path: str | Path, catalog: Catalog, model_dir: str | Path | None = None) -> SeqScorer:
        """A checkpoint written by ``crs train seqrec`` (or ``crs.seqrec.checkpoint.save``)."""
        from crs.seqrec.checkpoint import load

        try:
            ck = load(path, model_dir)
        except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
            raise ScorerError(f"cannot load the sequential scorer: {exc}") from exc
        if ck.item_ids is None:
            raise ScorerError(
                f"{path}: the checkpoint has no item id map, so its items cannot be matched to the catalog"
            )
        scorer = cls(ck.model, ck.item_ids, catalog, ck.titles, name=f"{type(ck.model).__name__} ({Path(path).name})")
        if scorer.match.matched == 0:
            raise ScorerError(f"{path}: none of the model's {scorer.match.total} items match the catalog")
        return scorer

    def sequence(self, liked_ids: Sequence[str]) -> list[int]:
        """Model indices of the liked items it knows, oldest first."""
        return [self.to_index[i] for i in liked_ids if i in self.to_index]

    def scores(self, liked_ids: Sequence[str], candidate_ids: Sequence[str]) -> dict[str, float]:
        """Z-scores of the model's scores for the candidates it knows (mean 0, sd 1 over them);
        empty when none of the liked items or fewer than two candidates are known to the model."""
        import torch

        seq = self.sequence(liked_ids)
        known = [c for c in dict.fromkeys(candidate_ids) if c in self.to_index]
        if not seq or len(known) < 2:
            return {}
        max_len = getattr(self.model.config, "max_len", len(seq))
        with torch.inference_mode():
            s = torch.tensor([seq[-max_len:]])  # (1, L)
            cand = torch.tensor([[self.to_index[c] for c in known]])  # (1, C)
            raw = self.model.score(s, cand)[0].float()  # (C,)
        z = (raw - raw.mean()) / raw.std().clamp(min=1e-6)
        return {c: float(v) for c, v in zip(known, z.tolist(), strict=True)}


def _how(out: dict[str, float], a: Mapping[str, Any]) -> str:
    scorer: SeqScorer | None = a["scorer"]
    if scorer is None:
        return "no sequential model: retrieval + popularity"
    if not out:
        return "the sequential model knows none of the liked items: retrieval + popularity"
    return f"sequential model {scorer.name} on {len(scorer.sequence(a['liked_ids']))} liked item(s)"


@tool(summary=_how, name="sequential", hidden=("scorer", "candidate_ids"))
def sequential_scores(
    scorer: SeqScorer | None, liked_ids: Sequence[str], candidate_ids: Sequence[str]
) -> dict[str, float]:
    """The sequential model's z-scored candidate scores after the liked items (``SeqScorer.scores``);
    empty without a model."""
    return {} if scorer is None else scorer.scores(liked_ids, candidate_ids)
