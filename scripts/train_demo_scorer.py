"""Train the sequential scorer shipped for the demo catalog: SASRec over the movie-mention sequences
of ReDial dialogues (CC BY 4.0, Li et al. 2018), written as a crs.seqrec checkpoint with each
item's "Title (Year)" so that ``crs.rank.scorer.SeqScorer`` maps it onto the demo catalog by title and year.

    .venv/bin/python scripts/train_demo_scorer.py                      # -> knowledge/scorer/redial-sasrec.pt
    .venv/bin/python scripts/train_demo_scorer.py --holdout 0.1        # also report a held-out check

Only ids and titles of ReDial movies go into the file (no plots, no dialogue text). With
``--holdout`` a seeded tenth of the dialogues is kept out, and the next-mention HR@10 of the model
is printed beside a popularity baseline on those dialogues; the shipped file is trained on all.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from crs.eval.redial.data import RedialFiles, dialogue_mentions, load_dialogues  # noqa: E402
from crs.eval.redial.model import SeqTrainConfig, train_sasrec  # noqa: E402

log = logging.getLogger("train_demo_scorer")
OUT = ROOT / "knowledge" / "scorer" / "redial-sasrec.pt"


def _heldout(conversation_id: str, share: float) -> bool:
    return int(hashlib.sha1(conversation_id.encode()).hexdigest(), 16) % 1000 < share * 1000


def next_item_hr(model: torch.nn.Module | None, pop: np.ndarray, seqs: list[list[int]], k: int = 10) -> float:
    """HR@k of predicting each mention from the ones before it (items already named excluded);
    ``model`` None ranks by ``pop``. Items are 1-based indices."""
    hits = total = 0
    for s in seqs:
        for t in range(1, len(s)):
            if model is None:
                scores = torch.from_numpy(pop.astype(np.float32)).clone()
            else:
                with torch.no_grad():
                    scores = model.score_all(torch.tensor([s[:t]]))[0]  # (N + 1,)
            scores[0] = float("-inf")
            scores[s[:t]] = float("-inf")
            hits += int((scores > scores[s[t]]).sum()) < k
            total += 1
    return hits / max(total, 1)


def main(argv: list[str] | None = None) -> None:
    from crs.catalog import load_catalog, load_redial_movies
    from crs.rank.scorer import SeqScorer
    from crs.seqrec.checkpoint import save

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--train", nargs="+", type=Path, default=list(RedialFiles.from_config().train), help="raw ReDial dialogue files"
    )
    p.add_argument(
        "--movies", type=Path, default=RedialFiles.from_config().movies, help="ReDial movies_with_mentions.csv"
    )
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--holdout", type=float, default=0.0, help="share of dialogues kept out for a check (0: none)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1)
    start = time.perf_counter()
    movies = load_redial_movies(args.movies)
    dialogues = load_dialogues(args.train)
    held = [d for d in dialogues if args.holdout and _heldout(str(d["conversationId"]), args.holdout)]
    fit = [d for d in dialogues if d not in held]
    mentions = [dialogue_mentions(d, movies) for d in fit]
    ids = sorted({i for s in mentions for i in s}, key=int)  # only movies the dialogues name
    index = {iid: k for k, iid in enumerate(ids)}  # catalog-style 0-based index (SASRec uses +1)
    seqs = [[index[i] for i in s] for s in mentions if len(s) >= 2]
    print(f"{len(fit)} dialogues, {len(seqs)} sequences of 2+ movies, {len(ids)} movies", flush=True)
    model = train_sasrec(len(ids), seqs, SeqTrainConfig(epochs=args.epochs, max_seconds=600.0, seed=args.seed))
    if held:
        pop = np.zeros(len(ids) + 1)
        for s in seqs:
            pop[[i + 1 for i in s]] += 1
        test = [[index[i] + 1 for i in dialogue_mentions(d, movies) if i in index] for d in held]
        test = [s for s in test if len(s) >= 2]
        print(
            f"held-out {len(held)} dialogues ({sum(len(s) - 1 for s in test)} next mentions): "
            f"HR@10 SASRec {next_item_hr(model, pop, test):.3f}, popularity {next_item_hr(None, pop, test):.3f}"
        )
    labels = {it.id: it.label for it in movies}
    save(model, args.out, item_ids=["<pad>", *ids], titles=["", *(labels[i] for i in ids)])
    scorer = SeqScorer.load(args.out, load_catalog(ROOT / "knowledge" / "movies.jsonl.gz"))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.0f} s")
    print(f"demo catalog: {scorer.match}")


if __name__ == "__main__":
    main()
