"""Train the chat's default sequential scorer: a P2Rec-enhanced SASRec over the liked films of ReDial
dialogues (CC BY 4.0, Li et al. 2018) and of MovieLens ml-latest-small users (GroupLens usage
license), joined to the demo catalog by title and year (``crs.seqrec.sources``).

    .venv/bin/python scripts/train_demo_scorer.py                  # -> knowledge/scorer/p2rec-sasrec.pt
    .venv/bin/python scripts/train_demo_scorer.py --model sasrec --out /tmp/sasrec.pt
    .venv/bin/python scripts/train_demo_scorer.py --exclude VALID --dev-out DIR   # for a strict evaluation

Sequences are what the chat feeds the scorer: the films a user liked, in the order they said so.
P2Rec (``crs.seqrec.p2rec``): a SASRec backbone, k-means categories of its item vectors, a user-level
LoRA tuning of the local LLM (SmolLM2) that predicts each user's category distribution from their
titles, the tuned LLM's pooled vectors of every item's text, and a fresh SASRec whose item table adds
a learned projection of those vectors. The indexed films that no sequence holds are added as cold
items, their rows the projected knowledge of their text (``fold_knowledge``), so every indexed film
can be scored; the file holds the folded item table only (no LLM vectors), a few MB.

``--exclude FILE`` leaves out every dialogue of a ReDial file (the evaluated one), and ``--dev-out DIR``
also holds out a dialogue-level fifth of the rest as a development split, writing ``DIR/dev.jsonl.gz``
and ``DIR/fit.jsonl.gz`` (raw dialogues, for ``crs eval redial --turns DIR/dev.jsonl.gz --train
DIR/fit.jsonl.gz``) and training on the fit part only. A JSON summary (sources, coverage of the
indexed films, training) is written beside the checkpoint.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crs.eval.redial.data import RedialFiles  # noqa: E402

log = logging.getLogger("train_demo_scorer")
OUT = ROOT / "knowledge" / "scorer" / "p2rec-sasrec.pt"
DEV_FOLDS = 5  # the development split is one dialogue-level fold of this many


def main(argv: list[str] | None = None) -> int:
    import torch

    from crs.catalog import load_catalog, load_redial_movies
    from crs.config import load_config
    from crs.eval.redial.data import file_dialogue_ids, load_dialogues
    from crs.eval.redial.train import dialogue_fold
    from crs.rank.store import index_subset
    from crs.seqrec.checkpoint import save
    from crs.seqrec.data import item_text
    from crs.seqrec.fit import LLMStage, fit_model
    from crs.seqrec.p2rec import fold_knowledge
    from crs.seqrec.sources import coverage, movielens_liked, redial_liked
    from crs.seqrec.train import TrainConfig

    files = RedialFiles.from_config()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["p2rec", "sasrec", "lstm"], default="p2rec")
    p.add_argument("--train", nargs="+", type=Path, default=list(files.train), help="raw ReDial dialogue files")
    p.add_argument("--movies", type=Path, default=files.movies, help="ReDial movies_with_mentions.csv")
    p.add_argument("--movielens", default=str(files.movielens), help="a MovieLens folder ('' for none)")
    p.add_argument("--catalog", type=Path, default=ROOT / "knowledge" / "movies.jsonl.gz")
    p.add_argument("--exclude", nargs="*", type=Path, default=[], help="ReDial files whose dialogues are left out")
    p.add_argument("--dev-out", type=Path, help="hold out a development fifth of the dialogues, written here")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument(
        "--cold", choices=["none", "indexed", "indexed+redial"], default="indexed",
        help="films no sequence holds, added to the vocabulary: the indexed demo films (default), also every "
        "ReDial film (for crs eval redial), or none",
    )  # fmt: skip
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument(
        "--whole", action="store_true",
        help="train on every item of every sequence for exactly --epochs (no leave-one-out validation; choose the "
        "epochs on a --dev-out run first)",
    )  # fmt: skip
    p.add_argument("--max-minutes", type=float, default=0.0, help="training budget per network (0: none)")
    p.add_argument("--steps", type=int, default=100, help="p2rec: LoRA tuning steps")
    p.add_argument("--llm-layers", type=int, default=8, help="p2rec: the LLM's first n layers (0: all 30)")
    p.add_argument("--redial-sequences", choices=["liked", "mentioned"], default="mentioned",
                   help="from each dialogue: every film named (default), or only the seeker's liked ones")  # fmt: skip
    p.add_argument("--loss", choices=["ce", "bce", "sce"], default="ce", help="SASRec/LSTM training loss")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "chromadb", "sentence_transformers", "transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    cfg = load_config()
    catalog = load_catalog(args.catalog)
    indexed = index_subset(cfg, catalog)

    left_out = set().union(*(file_dialogue_ids(f) for f in args.exclude)) if args.exclude else set()
    dialogues = [d for d in load_dialogues(args.train) if str(d["conversationId"]) not in left_out]
    dialogues = list({str(d["conversationId"]): d for d in dialogues}.values())  # a dialogue in two files once
    if args.dev_out:
        dev = [d for d in dialogues if dialogue_fold(str(d["conversationId"]), DEV_FOLDS) == 0]
        dialogues = [d for d in dialogues if dialogue_fold(str(d["conversationId"]), DEV_FOLDS) != 0]
        args.dev_out.mkdir(parents=True, exist_ok=True)
        for name, part in (("dev", dev), ("fit", dialogues)):
            with gzip.open(args.dev_out / f"{name}.jsonl.gz", "wt", encoding="utf-8") as fh:
                fh.writelines(json.dumps(d) + "\n" for d in part)
        print(f"development split: {len(dev)} dialogues held out, {len(dialogues)} to fit ({args.dev_out})")

    inter = redial_liked(
        dialogues, load_redial_movies(args.movies), catalog, liked_only=args.redial_sequences == "liked"
    )
    if args.movielens:
        movielens_liked(args.movielens, catalog, into=inter)
    cold = set() if args.cold == "none" else {it.id for it in indexed} - inter.items
    if args.cold == "indexed+redial":
        cold |= set(inter.films["redial"]) - inter.items
    ds = inter.dataset(cold=cold)
    items = [inter.item(i, catalog) for i in ds.item_ids[1:]]
    titles = ["", *(it.label for it in items)]
    texts = ["", *(item_text(it.label, it.genres) for it in items)]
    print(f"{ds.stats()}; sources {inter.sources}; {len(cold)} of the items are in no sequence", flush=True)

    tcfg = TrainConfig(epochs=args.epochs, seed=args.seed, max_seconds=args.max_minutes * 60 or None)
    stage = None
    if args.model == "p2rec":
        from crs.llm.local import ensure_local_model

        stage = LLMStage(str(ensure_local_model(cfg)), args.steps, "cpu", args.threads, args.llm_layers)
    fitted = fit_model(
        args.model, ds.whole() if args.whole else ds, tcfg, {"loss": args.loss}, texts=texts, titles=titles, llm=stage
    )
    model = fold_knowledge(fitted.model) if args.model == "p2rec" else fitted.model
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save(model, args.out, ds.item_ids, titles)

    warm, total = coverage(inter.items, indexed)
    scored, _ = coverage(ds.item_ids[1:], indexed)
    summary = {
        "model": args.model,
        "seed": args.seed,
        "whole": args.whole,
        "epochs": args.epochs,
        "dataset": ds.stats(),
        "sources": inter.sources,
        "title_matches": {k: str(v) for k, v in inter.matches.items()},
        "dialogues": len(dialogues),
        "dialogues_left_out": len(left_out),
        "indexed_films": total,
        "indexed_with_sequences": warm,
        "indexed_in_vocabulary": scored,
        "training": fitted.summary,
        "seconds": round(time.perf_counter() - start, 1),
    }
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8")
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {summary['seconds']:.0f} s; indexed films: "
        f"{warm} of {total} ({warm / total:.1%}) in training sequences, {scored} ({scored / total:.1%}) in its vocabulary"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
