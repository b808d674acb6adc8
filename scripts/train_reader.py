"""Train the message reader (dialogue acts + mention polarity) on annotated ReDial seeker turns.

    python scripts/train_reader.py [--epochs 4] [--threads 2] [--out knowledge/reader]

Data: the ReDial partial-train dialogues outside the validation file, split by dialogue id
(``crs.understand.redial_acts.split_of``): ``train`` to fit, ``dev`` to pick the epoch and the act
thresholds. The ``test`` dialogues (a part of the validation file) are never read here. Labels:
``knowledge/reader/redial_acts.jsonl.gz`` (annotated by reading each turn, docs/reader_annotation.md),
plus ``knowledge/reader/synthetic.jsonl`` (hand-written messages for acts ReDial seekers almost never
perform: asking why, critiquing). Each epoch writes the training messages' titles anew in one of
the ways people type them (with year, plain, lower case, with a typo).

Writes ``reader.pt`` (LoRA adapter + heads) and ``reader.json`` (config, thresholds, dev figures).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from crs.catalog import load_catalog  # noqa: E402
from crs.config import load_config  # noqa: E402
from crs.eval.redial.data import RedialFiles, file_dialogue_ids, load_dialogues  # noqa: E402
from crs.understand.linker import Linker
from crs.understand.reader import encode, encoder_dir  # noqa: E402
from crs.understand.reader_data import Example, examples, label_counts, load_labels, synthetic_examples  # noqa: E402
from crs.understand.reader_model import ReaderConfig, ReaderModel  # noqa: E402
from crs.understand.redial_acts import ACTS, POLARITIES, turns_by_split  # noqa: E402

log = logging.getLogger("train_reader")


def batches(items: list[Example], size: int, rng: random.Random | None) -> list[list[Example]]:
    order = list(items)
    if rng is not None:
        rng.shuffle(order)
    else:  # evaluation: similar lengths together, less padding
        order.sort(key=lambda e: len(e.text) + len(e.context))
    return [order[i : i + size] for i in range(0, len(order), size)]


def tensors(
    tokenizer: object, batch: list[Example], max_len: int
) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
    enc, spans, where = encode(
        tokenizer,
        [e.text for e in batch],
        [e.context for e in batch],
        [[(s.start, s.end) for s in e.spans] for e in batch],
        max_len,
    )
    acts = torch.tensor([[1.0 if a in e.acts else 0.0 for a in ACTS] for e in batch])
    labels = [POLARITIES.index(s.label) for e in batch for s in e.spans]
    pol = torch.tensor([lab for lab, w in zip(labels, where, strict=True) if w >= 0], dtype=torch.long)
    return enc, spans, acts, pol


def predict(
    model: ReaderModel, tokenizer: object, items: list[Example], max_len: int
) -> tuple[list[list[float]], list[tuple[int, int]]]:
    """Act probabilities per example (input order) and (gold, predicted) polarity per span."""
    model.eval()
    probs: dict[str, list[float]] = {}
    pairs: list[tuple[int, int]] = []
    with torch.inference_mode():
        for batch in batches(items, 64, None):
            enc, spans, _, pol = tensors(tokenizer, batch, max_len)
            act_logits, pol_logits = model(**enc, spans=spans)
            for e, p in zip(batch, torch.sigmoid(act_logits).tolist(), strict=True):
                probs[e.key] = p
            if pol.numel():
                pairs += list(zip(pol.tolist(), pol_logits.argmax(-1).tolist(), strict=True))
    return [probs[e.key] for e in items], pairs


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def act_scores(items: list[Example], probs: list[list[float]], thresholds: dict[str, float]) -> dict[str, float]:
    out = {}
    for k, act in enumerate(ACTS):
        tp = fp = fn = 0
        for e, p in zip(items, probs, strict=True):
            pred, gold = p[k] >= thresholds.get(act, 0.5), act in e.acts
            tp += pred and gold
            fp += pred and not gold
            fn += gold and not pred
        out[act] = round(f1(tp, fp, fn), 4)
    return out


def tune_thresholds(items: list[Example], probs: list[list[float]]) -> dict[str, float]:
    """Per act, the threshold in 0.1..0.9 with the best dev F1 (0.5 when the act never occurs)."""
    out = {}
    for act in ACTS:
        if not any(act in e.acts for e in items):
            out[act] = 0.5
            continue
        best = max((act_scores(items, probs, {act: t / 20})[act], -abs(t / 20 - 0.5), t / 20) for t in range(2, 19))
        out[act] = best[2]
    return out


def pol_accuracy(pairs: list[tuple[int, int]]) -> dict[str, float]:
    out = {"accuracy": round(sum(g == p for g, p in pairs) / max(len(pairs), 1), 4)}
    for k, name in enumerate(POLARITIES):
        tp = sum(g == k and p == k for g, p in pairs)
        fp = sum(g != k and p == k for g, p in pairs)
        fn = sum(g == k and p != k for g, p in pairs)
        out[name] = round(f1(tp, fp, fn), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("knowledge/reader"))
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--max-minutes", type=float, default=28.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    started = time.time()

    cfg_app = load_config()
    linker = Linker(load_catalog(cfg_app.catalog.path, cfg_app.catalog.format))
    labels = load_labels()
    splits = turns_by_split(
        load_dialogues(RedialFiles.from_config().train), file_dialogue_ids(RedialFiles.from_config().turns)
    )
    synthetic = synthetic_examples()
    dev = examples(splits["dev"], labels, linker, seed=1) + [e for e in synthetic if e.key.startswith("dev")]
    train_syn = [e for e in synthetic if not e.key.startswith("dev")]
    log.info(
        "train %d turns (+%d synthetic), dev %d",
        sum(t.key in labels for t in splits["train"]),
        len(train_syn),
        len(dev),
    )

    from transformers import AutoTokenizer

    cfg = ReaderConfig()
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir()))
    model = ReaderModel(cfg, encoder_dir())
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    first = examples(splits["train"], labels, linker, seed=100) + train_syn
    steps = args.epochs * math.ceil(len(first) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    counts = label_counts(first)
    pos = torch.tensor([counts["acts"][a] for a in ACTS], dtype=torch.float)
    pos_weight = ((len(first) - pos) / pos.clamp(min=1)).clamp(max=8.0).sqrt()  # rare acts weigh more
    pol_freq = torch.tensor([counts["polarities"][p] for p in POLARITIES], dtype=torch.float)
    pol_weight = (pol_freq.sum() / pol_freq.clamp(min=1) / len(POLARITIES)).clamp(max=10.0).sqrt()
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    ce = torch.nn.CrossEntropyLoss(weight=pol_weight)

    best: dict = {"score": -1.0}
    history = []
    for epoch in range(args.epochs):
        train = first if epoch == 0 else examples(splits["train"], labels, linker, seed=100 + epoch) + train_syn
        model.train()
        total, n = 0.0, 0
        for batch in tqdm(batches(train, args.batch, rng), desc=f"epoch {epoch + 1}", leave=False):
            enc, spans, acts, pol = tensors(tokenizer, batch, cfg.max_len)
            act_logits, pol_logits = model(**enc, spans=spans)
            loss = bce(act_logits, acts) + (ce(pol_logits, pol) if pol.numel() else 0.0)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            total, n = total + float(loss), n + 1
        probs, pairs = predict(model, tokenizer, dev, cfg.max_len)
        thresholds = tune_thresholds(dev, probs)
        scores = act_scores(dev, probs, thresholds)
        pol = pol_accuracy(pairs)
        macro = sum(scores[a] for a in ACTS if any(a in e.acts for e in dev)) / max(
            1, sum(any(a in e.acts for e in dev) for a in ACTS)
        )
        score = macro + pol["accuracy"]
        history.append(
            {
                "epoch": epoch + 1,
                "loss": round(total / max(n, 1), 4),
                "dev_act_f1": scores,
                "dev_macro_f1": round(macro, 4),
                "dev_polarity": pol,
            }
        )
        log.info(
            "epoch %d loss %.4f dev macro-F1 %.3f polarity acc %.3f %s",
            epoch + 1,
            total / max(n, 1),
            macro,
            pol["accuracy"],
            scores,
        )
        if score > best["score"]:
            best = {"score": score, "epoch": epoch + 1, "state": model.trainable_state(), "thresholds": thresholds}
        if (time.time() - started) / 60 > args.max_minutes:
            log.info("stopping: %.1f minutes used", (time.time() - started) / 60)
            break

    cfg.thresholds = best["thresholds"]
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(best["state"], args.out / "reader.pt")
    meta = cfg.to_dict() | {
        "trained": {
            "best_epoch": best["epoch"],
            "minutes": round((time.time() - started) / 60, 1),
            "threads": args.threads,
            "seed": args.seed,
            "train_examples": len(first),
            "dev_examples": len(dev),
            "history": history,
        }
    }
    (args.out / "reader.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    log.info("best epoch %d -> %s (%.1f min)", best["epoch"], args.out, (time.time() - started) / 60)


if __name__ == "__main__":
    main()
