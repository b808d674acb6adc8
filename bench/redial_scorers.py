"""The chat's scorer candidates side by side on ReDial, strict and leak-free, several seeds.

    .venv/bin/python bench/redial_scorers.py [--seeds 0,1,2] [--jobs 2] [--weight 0.1]

1. Trains, for each seed, the candidates with ``scripts/train_demo_scorer.py`` on the ReDial
   partial-train dialogues that are not in the validation file plus ml-latest-small (the recipe of
   the shipped default: every film named in a dialogue, MovieLens films rated 4+, the indexed demo
   films as cold items): ``sasrec`` and ``p2rec`` (P2Rec-enhanced SASRec). ``--previous`` adds the
   previous shipped scorer's recipe (SASRec on ReDial mention sequences only, trained by the
   ``scripts/train_demo_scorer.py`` of git history on the same dialogues). Checkpoints are cached in
   ``--work`` and reused.
2. Reads the validation file once: one ``crs eval redial`` run (``crs.eval.redial.run_redial``) ranks
   every turn with every checkpoint, alone and in the chat's ``[scoring]`` weights with the chosen
   sequential weight, fed the seeker's liked movies as the chat feeds them (and, as a diagnostic,
   every movie named).
3. Writes ``bench/results/redial_scorers.md`` and ``.json``: per seed and mean +- sd per model.

Settings (sequences of every film named, CE loss, the liked-movie input, sequential weight 0.1)
were chosen on a development fifth of the training dialogues (``--dev-out``), never on this file.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crs.eval.redial.data import RedialFiles  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MODELS = ("sasrec", "p2rec")
log = logging.getLogger("redial_scorers")


def train_jobs(args: argparse.Namespace, files: RedialFiles) -> list[tuple[Path, list[str]]]:
    """(checkpoint, command) for every candidate and seed."""
    py = sys.executable
    common = ["--exclude", str(files.turns), "--redial-sequences", "mentioned", "--threads", "1",
              "--epochs", str(args.epochs), "--max-minutes", "0"]  # fmt: skip
    jobs = []
    for seed in args.seeds:
        for model in MODELS:
            out = args.work / f"{model}-s{seed}.pt"
            cmd = [py, str(ROOT / "scripts" / "train_demo_scorer.py"), "--model", model, "--seed", str(seed)]
            jobs.append((out, [*cmd, *common, "--out", str(out)]))
    return jobs


def run_jobs(jobs: list[tuple[Path, list[str]]], workers: int) -> None:
    def one(job: tuple[Path, list[str]]) -> None:
        out, cmd = job
        if out.exists():
            return
        with open(out.with_suffix(".log"), "w", encoding="utf-8") as fh:
            subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        log.info("trained %s", out.name)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, jobs))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=lambda v: [int(x) for x in v.split(",")], default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2, help="trainings at once (one thread each)")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--weight", type=float, default=0.1, help="the [scoring] sequential weight (chosen on dev)")
    p.add_argument("--work", type=Path, default=ROOT / "out" / "redial_scorers")
    p.add_argument("--previous", type=Path, help="the previous shipped recipe's checkpoint trained without the file")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "chromadb", "sentence_transformers", "transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    files = RedialFiles.from_config()
    args.work.mkdir(parents=True, exist_ok=True)
    jobs = train_jobs(args, files)
    run_jobs(jobs, args.jobs)

    from crs.eval.redial.run import RedialRun, run_redial

    scorers = [out for out, _ in jobs] + ([args.previous] if args.previous else [])
    run = RedialRun(
        turns=files.turns, out=None, movies=files.movies, info=files.info, train_files=files.train,
        movielens=files.movielens, scorers=tuple(scorers), scorer_weights=(args.weight,),
        scorer_inputs=("liked", "mentioned"),
    )  # fmt: skip
    md, summary = tables(run_redial(run), scorers, args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "redial_scorers.md").write_text(md, encoding="utf-8")
    (RESULTS / "redial_scorers.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(md)
    return 0


def _cells(row: dict) -> list[float]:
    nr = row["no_repeat"]
    return [row["recall@1"], row["recall@10"], row["recall@50"], nr["recall@1"], nr["recall@10"], nr["recall@50"]]


def tables(report: dict, scorers: list[Path], args: argparse.Namespace) -> tuple[str, dict]:
    """Markdown (per seed, then mean +- sd per model) and the JSON summary."""
    head = "| model | input | row | seeds | R@1 | R@10 | R@50 | no-repeat R@1 | no-repeat R@10 | no-repeat R@50 |"
    title = f"# Chat scorers on ReDial (strict: validation file read once, {len(args.seeds)} seeds)"
    lines = [title, "", head, "|---" * 10 + "|"]
    summary: dict = {"weight": args.weight, "seeds": args.seeds, "rows": {}, "scorers": {}}
    from crs.eval.redial.run import AGENT_ROW

    ablation = report["ablation"]
    base = ablation[AGENT_ROW]
    lines.append("| pipeline SASRec (ReDial mentions, trained inside the eval) | every movie named | chat weights | – | "
                 + " | ".join(f"{v:.3f}" for v in _cells(base)) + " |")  # fmt: skip
    summary["agent_row"] = _cells(base)
    for reads in ("liked", "mentioned"):
        groups: dict[tuple[str, str], list[list[float]]] = {}
        for path in scorers:
            stem = path.stem
            model = stem.rsplit("-s", 1)[0] if stem.rsplit("-s", 1)[-1].isdigit() else stem
            name = stem if reads == "liked" else f"{stem} reading every movie named"
            for kind, row in (("alone", f"(alone) chat scorer {name}"),
                              ("chat weights", f"the chat agent's [scoring] weights, chat scorer {name} (sequential {args.weight:g})")):  # fmt: skip
                groups.setdefault((model, kind), []).append(_cells(ablation[row]))
                summary["rows"][f"{reads}/{stem}/{kind}"] = _cells(ablation[row])
        for (model, kind), vals in sorted(groups.items()):
            cols = list(zip(*vals, strict=True))
            cell = [
                f"{statistics.mean(c):.3f} ± {statistics.stdev(c):.3f}" if len(c) > 1 else f"{c[0]:.3f}" for c in cols
            ]
            shown = "liked movies" if reads == "liked" else "every movie named"
            lines.append(f"| {model} | {shown} | {kind} | {len(vals)} | " + " | ".join(cell) + " |")
    summary["scorers"] = report.get("scorers", {})
    known = ", ".join(f"{name}: {d['matched_catalog']}" for name, d in summary["scorers"].items())
    lines += ["", f"ReDial catalog films each scorer knows (of {report.get('catalog_items', '?')}): {known}."]
    lines += ["", "Columns: Recall@k over (turn, gold movie) samples of `valid_data_processed.jsonl.gz`, all "
              "mentions and with repeated mentions removed. `input`: what the scorer reads, the seeker's liked "
              "movies (what the chat feeds it) or every movie named (a diagnostic). `chat weights`: the chat's "
              f"`[scoring]` weights with sequential {args.weight:g}; `alone`: the scorer's z-scores only."]  # fmt: skip
    return "\n".join(lines) + "\n", summary


if __name__ == "__main__":
    raise SystemExit(main())
