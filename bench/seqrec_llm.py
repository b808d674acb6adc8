"""LLM-based sequential recommenders on MovieLens ml-latest-small (which has titles): P2Rec-enhanced
SASRec vs the same SASRec without enhancement, and DUIP vs the plain LSTM intent encoder it starts
from. Leave-one-out, model selection on validation NDCG@10 (sampled-100), test under full ranking
(and sampled-100), several seeds, deltas.

    .venv/bin/python bench/seqrec_llm.py --seeds 42,43                    # CPU scale-down
    python bench/seqrec_llm.py --device cuda --full --seeds 42,43,44 --model-dir DIR   # full scale

The CPU run scales the LLM stages down (see SCALES: fewer LoRA/DUIP steps, shorter prompts, a
training-time cap on the backbones); ``--full`` runs the settings meant for a GPU, unchanged.
Rows are merged into bench/results/seqrec.json (keyed by dataset, model, protocol, seed; full-scale
rows have model names ending in ``-full``) and the table goes to bench/results/seqrec_llm.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from seqrec import merge_rows  # noqa: E402  (bench/seqrec.py, beside this file)

from crs.config import load_config  # noqa: E402
from crs.seqrec.checkpoint import build_model  # noqa: E402
from crs.seqrec.data import load_dataset, load_item_titles  # noqa: E402
from crs.seqrec.metrics import evaluate  # noqa: E402
from crs.seqrec.train import TrainConfig, train  # noqa: E402

log = logging.getLogger("bench.seqrec_llm")

DATA = load_config().paths.data_root / "movielens-latest-small"
RESULTS = ROOT / "bench" / "results"
BACKBONE = {"max_len": 200, "hidden": 50, "blocks": 2, "heads": 1, "dropout": 0.2}  # bench/seqrec.py's SASRec
LSTM = {"max_len": 50, "embedding": 64, "hidden": 128, "dropout": 0.2}  # bench/seqrec.py's LSTM, 50 recent items
SCALES: dict[str, dict[str, Any]] = {
    # 2-core CPU: every user and item, but few LLM steps and short prompts; backbones capped in time.
    "cpu": {
        "sasrec_epochs": 20, "lstm_seconds": 300, "llm_layers": 8, "p2rec": {"tune_steps": 30, "tune_batch": 8, "max_titles": 8, "lora_r": 8},
        "duip": {"soft_prompts": 4, "prompt_items": 3, "lora_r": 0}, "duip_steps": 60, "duip_batch": 16,
        "duip_evals": 2, "duip_eval_users": 128, "dtype": "bfloat16", "protocols": ("full",), "backbones_on_device": False,
    },
    # a minutes-long check that every stage runs (write it elsewhere: --out /tmp/x.json --table /tmp/x.md)
    "smoke": {
        "sasrec_epochs": 1, "lstm_seconds": 10, "llm_layers": 2, "p2rec": {"tune_steps": 2, "tune_batch": 2, "max_titles": 3, "lora_r": 4},
        "duip": {"soft_prompts": 2, "prompt_items": 2, "lora_r": 4}, "duip_steps": 3, "duip_batch": 4,
        "duip_evals": 1, "duip_eval_users": 32, "dtype": "bfloat16", "protocols": ("full",), "backbones_on_device": False,
    },
    # GPU: long histories in the LoRA texts and the hard prompt, LoRA on DUIP, many more steps.
    "full": {
        "sasrec_epochs": 200, "lstm_seconds": None, "llm_layers": 0, "p2rec": {"tune_steps": 1500, "tune_batch": 16, "max_titles": 50, "lora_r": 8},
        "duip": {"soft_prompts": 8, "prompt_items": 20, "lora_r": 8}, "duip_steps": 3000, "duip_batch": 64,
        "duip_evals": 10, "duip_eval_users": None, "dtype": "bfloat16", "protocols": ("full", "sampled100"), "backbones_on_device": True,
    },
}  # fmt: skip


def _eval_rows(
    args: Any, model: Any, ds: Any, name: str, seed: int, seconds: float, extra: dict[str, Any]
) -> list[dict]:
    rows = []
    for protocol in SCALES[extra["scale"]]["protocols"]:
        ev = evaluate(model, ds, "test", protocol, seed=seed, batch_size=64, progress=False)
        rows.append({
            "dataset": "ml-latest-small", "model": name, "protocol": protocol,
            "hr@10": round(ev["hr@10"], 4), "ndcg@10": round(ev["ndcg@10"], 4),
            "train_seconds": round(seconds, 1), "seed": seed, "users": ev.users, **extra,
        })  # fmt: skip
        print(f"  {name} seed {seed} {protocol}: HR@10 {ev['hr@10']:.4f} NDCG@10 {ev['ndcg@10']:.4f}", flush=True)
    write(rows, args.out, args.table)  # after every model, so a run cut off by a time limit leaves its rows
    return rows


def _train_cfg(name: str, seed: int, scale: dict, args: Any) -> TrainConfig:
    """The backbones train on the CPU (crs.seqrec.train) except at full scale, where they use ``--device`` too. SASRec
    runs (base, enhanced, control) get the same epoch budget, so CPU load cannot favour one of them."""
    return TrainConfig(
        epochs=200 if name == "lstm" else scale["sasrec_epochs"], batch_size=128, seed=seed, eval_every=5,
        patience=4, num_threads=args.threads, max_seconds=scale["lstm_seconds"] if name == "lstm" else None,
        device=args.device if scale["backbones_on_device"] else "cpu", progress=not args.no_progress,
    )  # fmt: skip


def _train_backbone(name: str, settings: dict[str, Any], ds: Any, seed: int, scale: dict, args: Any) -> tuple:
    model = build_model(name, ds.num_items, **settings)
    res = train(model, ds, _train_cfg(name, seed, scale, args))
    return model, res


def run_p2rec(ds: Any, texts: list[str], seed: int, scale: dict, args: Any) -> list[dict]:
    from crs.seqrec.duip import load_llm
    from crs.seqrec.p2rec import P2RecConfig, attach_knowledge, build_knowledge

    suffix = "-full" if args.full else ""
    base, base_res = _train_backbone("sasrec", BACKBONE, ds, seed, scale, args)
    rows = _eval_rows(args, base, ds, f"sasrec-p2rec-base{suffix}", seed, base_res.train_seconds,
                      {"epochs": base_res.epochs_run, "best_epoch": base_res.best_epoch, "scale": args.scale})  # fmt: skip
    t0 = time.perf_counter()
    llm, tok = load_llm(args.model_dir, scale["dtype"], scale["llm_layers"])
    llm.to(args.device)
    pcfg = P2RecConfig(seed=seed, progress=not args.no_progress, **scale["p2rec"])
    know = build_knowledge(base, ds, texts, llm, tok, pcfg)
    del llm
    llm_seconds = time.perf_counter() - t0
    enhanced = build_model("sasrec", ds.num_items, **BACKBONE)
    attach_knowledge(enhanced, know.knowledge, know.projection)
    res = train(enhanced, ds, _train_cfg("sasrec", seed, scale, args))
    total = base_res.train_seconds + llm_seconds + res.train_seconds
    rows += _eval_rows(args, enhanced, ds, f"p2rec-sasrec{suffix}", seed, total, {
        "epochs": res.epochs_run, "best_epoch": res.best_epoch, "scale": args.scale,
        "llm_seconds": round(llm_seconds, 1), "stage_seconds": {k: round(v, 1) for k, v in know.seconds.items()},
        "tune_kl_first_last": [round(know.tune_losses[0], 4), round(float(np.mean(know.tune_losses[-10:])), 4)],
        "settings": scale["p2rec"],
    })  # fmt: skip
    # control: a fresh SASRec warm-started from the pre-trained item table (no LLM), same training
    warm = build_model("sasrec", ds.num_items, **BACKBONE)
    with torch.no_grad():
        warm.item_emb.weight.copy_(base.item_emb.weight)
    wres = train(warm, ds, _train_cfg("sasrec", seed, scale, args))
    rows += _eval_rows(args, warm, ds, f"sasrec-warm{suffix}", seed, base_res.train_seconds + wres.train_seconds,
                       {"epochs": wres.epochs_run, "best_epoch": wres.best_epoch, "scale": args.scale})  # fmt: skip
    return rows


def run_duip(ds: Any, titles: list[str], seed: int, scale: dict, args: Any) -> list[dict]:
    from crs.seqrec.duip import DUIP, DUIPConfig, DUIPTrainConfig, init_from_lstm, train_duip

    suffix = "-full" if args.full else ""
    lstm, lstm_res = _train_backbone("lstm", LSTM, ds, seed, scale, args)
    rows = _eval_rows(args, lstm, ds, f"lstm-duip-base{suffix}", seed, lstm_res.train_seconds,
                      {"epochs": lstm_res.epochs_run, "best_epoch": lstm_res.best_epoch, "scale": args.scale})  # fmt: skip
    cfg = DUIPConfig(
        num_items=ds.num_items, max_len=LSTM["max_len"], embedding=LSTM["embedding"], hidden=LSTM["hidden"],
        dropout=LSTM["dropout"], model_dir=str(args.model_dir), dtype=scale["dtype"], llm_layers=scale["llm_layers"], **scale["duip"],
    )  # fmt: skip
    model = DUIP(cfg, titles)
    init_from_lstm(model, lstm)
    model.to(args.device)
    tcfg = DUIPTrainConfig(
        steps=scale["duip_steps"], batch_size=scale["duip_batch"], seed=seed, eval_every=max(scale["duip_steps"] // scale["duip_evals"], 1),
        eval_users=scale["duip_eval_users"], num_threads=args.threads, progress=not args.no_progress,
        max_seconds=args.duip_minutes * 60 if args.duip_minutes else None,
    )  # fmt: skip
    summary = train_duip(model, ds, tcfg)
    total = lstm_res.train_seconds + summary["train_seconds"]
    rows += _eval_rows(args, model, ds, f"duip{suffix}", seed, total, {
        "scale": args.scale, "duip_steps": summary["steps"], "best_step": summary["best_step"],
        "duip_seconds": round(summary["train_seconds"], 1), "settings": scale["duip"],
    })  # fmt: skip
    # control: the same start, steps, loss and head, with the LLM state replaced by zeros
    control = DUIP(replace(cfg, use_llm=False, lora_r=0), titles, model.llm, model.tokenizer)
    init_from_lstm(control, lstm)
    control.to(args.device)
    csum = train_duip(control, ds, replace(tcfg, losses=[]))
    rows += _eval_rows(args, control, ds, f"duip-no-llm{suffix}", seed, lstm_res.train_seconds + csum["train_seconds"],
                       {"scale": args.scale, "duip_steps": csum["steps"], "best_step": csum["best_step"]})  # fmt: skip
    return rows


def write(new_rows: list[dict[str, Any]], out_json: Path, out_md: Path) -> str:
    """Merge into the shared seqrec.json (same dataset/model/protocol/seed replaced); rewrite the table."""
    text = table(merge_rows(new_rows, out_json))
    out_md.write_text(text + "\n")
    return text


PAIRS = [
    ("p2rec-sasrec", "sasrec-p2rec-base"),
    ("sasrec-warm", "sasrec-p2rec-base"),
    ("p2rec-sasrec", "sasrec-warm"),
    ("duip", "lstm-duip-base"),
    ("duip-no-llm", "lstm-duip-base"),
    ("duip", "duip-no-llm"),
]


def table(rows: list[dict[str, Any]]) -> str:
    mine = [r for r in rows if r.get("scale") in SCALES]
    by = {(r["model"], r["protocol"], r["seed"]): r for r in mine}
    lines = [
        "ml-latest-small (610 users, 9,724 rated items), leave-one-out (last item test, second last valid), "
        "selected on valid NDCG@10 (sampled-100), test under full ranking (all items but the user's history; "
        "sampled-100 too at full scale). LLM: SmolLM2-135M-Instruct, bf16. Each LLM model is compared with the "
        "baseline trained in the same run and seed: P2Rec's pre-trained SASRec (step a) is its baseline; DUIP starts "
        "from the LSTM it is compared with (same weights, scoring head = the LSTM's head plus a zero-initialised "
        "LLM part), so DUIP's delta is what its LLM training adds. Train seconds of an LLM model include its baseline's.",
        "",
        "Scale `cpu` (the 2-core CPU, shared with 3 other jobs, so every time here is inflated several-fold): "
        f"every user and item, but only the first {SCALES['cpu']['llm_layers']} of SmolLM2's 30 layers; P2Rec LoRA tuning {SCALES['cpu']['p2rec']['tune_steps']} steps x "
        f"{SCALES['cpu']['p2rec']['tune_batch']} users on their last {SCALES['cpu']['p2rec']['max_titles']} titles; "
        f"DUIP {SCALES['cpu']['duip_steps']} steps x {SCALES['cpu']['duip_batch']}, frozen LLM, "
        f"{SCALES['cpu']['duip']['soft_prompts']} soft prompts + the last {SCALES['cpu']['duip']['prompt_items']} "
        f"titles; SASRec trained {SCALES['cpu']['sasrec_epochs']} epochs (every SASRec run alike), the LSTM "
        f"(50 recent items) capped at {SCALES['cpu']['lstm_seconds']} s, so both baselines are under-trained (bench/results/seqrec.md has them "
        "trained fully). Scale `full` (`--device cuda --full`, for a GPU): see SCALES in bench/seqrec_llm.py; "
        "it ran once (seed 42) on an NVIDIA H200 through the device tool, backbones on the GPU too, with "
        "`--duip-minutes 2`, which stopped DUIP at 699 of its 3000 steps while its no-LLM control ran all 3000 "
        "(log: bench/results/seqrec_llm_gpu_full.log). Every SASRec there stops on the same rule (patience 4 "
        "validations on 610 users): the plain one at epoch 35 (best 15), the warm control at 25 (best 5), "
        "P2Rec's at 115 (best 95).",
        "",
        "| scale | model | vs | protocol | seed | HR@10 | NDCG@10 | ΔHR@10 | ΔNDCG@10 | train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(mine, key=lambda r: (r["scale"], r["protocol"], r["model"], r["seed"])):
        base_name = next((b for m, b in PAIRS if r["model"].removesuffix("-full") == m), None)  # first pair
        vs, dh, dn = "", "", ""
        if base_name:
            b = by.get((base_name + ("-full" if r["model"].endswith("-full") else ""), r["protocol"], r["seed"]))
            if b:
                vs = b["model"]
                dh, dn = f"{r['hr@10'] - b['hr@10']:+.4f}", f"{r['ndcg@10'] - b['ndcg@10']:+.4f}"
        lines.append(
            f"| {r['scale']} | {r['model']} | {vs} | {r['protocol']} | {r['seed']} | {r['hr@10']:.4f} | "
            f"{r['ndcg@10']:.4f} | {dh} | {dn} | {r['train_seconds']:.0f} |"
        )
    lines += ["", "Mean deltas over seeds (full ranking):", ""]
    for m, b in PAIRS:
        for suffix in ("", "-full"):
            deltas = [
                (by[(m + suffix, "full", s)]["ndcg@10"] - by[(b + suffix, "full", s)]["ndcg@10"], s)
                for (name, proto, s) in by
                if name == m + suffix and proto == "full" and (b + suffix, "full", s) in by
            ]
            if deltas:
                d = np.array([x for x, _ in deltas])
                seeds = ",".join(str(s) for _, s in sorted(deltas, key=lambda t: t[1]))
                lines.append(
                    f"- {m}{suffix} vs {b}{suffix}: ΔNDCG@10 mean {d.mean():+.4f} (min {d.min():+.4f}, "
                    f"max {d.max():+.4f}) over seeds {seeds}; better in {(d > 0).sum()} of {len(d)}"
                )
    return "\n".join(lines)


def default_model_dir() -> Path:
    from crs.llm.local import ensure_local_model

    return ensure_local_model(load_config())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="p2rec,duip", help="comma-separated: p2rec, duip")
    p.add_argument("--seeds", default="42", help="comma-separated seeds")
    p.add_argument("--full", action="store_true", help="the full-scale settings (meant for a GPU)")
    p.add_argument("--smoke", action="store_true", help="tiny settings: check that every stage runs")
    p.add_argument("--device", default="cpu", help="device for the LLM stages (cpu, cuda)")
    p.add_argument("--model-dir", type=Path, default=None, help="SmolLM2 transformers dir (default: the crs cache)")
    p.add_argument("--data", type=Path, default=DATA, help="folder with ratings.csv(.gz) and movies.csv")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--duip-minutes", type=float, default=None, help="cap on each DUIP training run (default: none)")
    p.add_argument("--out", type=Path, default=RESULTS / "seqrec.json")
    p.add_argument("--table", type=Path, default=RESULTS / "seqrec_llm.md")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args.scale = "full" if args.full else "smoke" if args.smoke else "cpu"
    scale = SCALES[args.scale]
    args.model_dir = args.model_dir or default_model_dir()
    ds = load_dataset(args.data, name="ml-latest-small")
    titles, texts = load_item_titles(args.data / "movies.csv", ds.item_ids)
    print(ds.stats(), f"LLM {args.model_dir} on {args.device}, scale {args.scale}", flush=True)
    start = time.perf_counter()
    for seed in [int(s) for s in args.seeds.split(",")]:
        for part in args.parts.split(","):
            torch.manual_seed(seed)  # each model's rows are written as it is evaluated (_eval_rows)
            run_p2rec(ds, texts, seed, scale, args) if part == "p2rec" else run_duip(ds, titles, seed, scale, args)
    print()
    print(args.table.read_text())
    print(f"\ntotal {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
