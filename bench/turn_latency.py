"""How long a chat turn takes, by stage: every turn of the shipped scripted dialogues.

    python bench/turn_latency.py [--dialogues crs/eval/dialogues] [--limit N] [--engine auto|llamacpp|transformers]

Plays the dialogues through the real agent (the config's LLM, store and scorer) and reads the
timings each turn records (``Turn.seconds``): time to the first streamed token, the whole turn,
the model's own first token (its reading of the prompt; on recommend turns the agent's opener is
streamed before it), and the stages (understanding, belief, retrieval, scoring, LLM, guard). One
warm-up turn runs first and is not counted. Prints p50/p95 and writes bench/results/turn_latency.md and .json.
Targets on 2 cores: first token <= 0.6 s p50, whole turn <= 1.5 s p50 and <= 3 s p95.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.index_bench import percentile  # noqa: E402
from crs.config import load_config  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DIALOGUES = Path(__file__).resolve().parents[1] / "crs" / "eval" / "dialogues"
# stage in the table -> the keys of Turn.seconds it sums
STAGES = {
    "understanding": ("understand", "llm_extract"),
    "belief": ("belief",),
    "retrieval": ("retrieve", "lookup_item"),
    "scoring": ("score", "sequential"),
    "LLM (reply)": ("llm",),
    "guard": ("guard",),
}
TARGETS = {"first token p50": 0.6, "turn p50": 1.5, "turn p95": 3.0}


class TimedAgent:
    """The agent, with each turn's ``seconds`` kept as it ends."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.turns: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.agent, name)

    def step(self, session: Any, text: str) -> Iterator[Any]:
        before = len(session.turns)
        yield from self.agent.step(session, text)
        if len(session.turns) > before:
            turn = session.turns[-1]
            self.turns.append({"act": turn.act, "seconds": dict(turn.seconds)})


def summarise(turns: list[dict[str, Any]]) -> dict[str, Any]:
    def stat(values: list[float]) -> dict[str, float]:
        return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95), "mean": sum(values) / len(values)}

    totals = [t["seconds"]["total"] for t in turns]
    firsts = [t["seconds"]["first_token"] for t in turns if "first_token" in t["seconds"]]
    model_firsts = [t["seconds"]["llm_first"] for t in turns if "llm_first" in t["seconds"]]
    stages = {name: stat([sum(t["seconds"].get(k, 0.0) for k in keys) for t in turns]) for name, keys in STAGES.items()}
    by_act: dict[str, list[float]] = {}
    for t in turns:
        by_act.setdefault(t["act"], []).append(t["seconds"]["total"])
    return {
        "turns": len(turns),
        "first_token": stat(firsts),
        "llm_first_token": stat(model_firsts) | {"turns": len(model_firsts)},
        "total": stat(totals),
        "stages": stages,
        "by_act": {act: stat(v) | {"turns": len(v)} for act, v in sorted(by_act.items())},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dialogues", type=Path, default=DIALOGUES)
    ap.add_argument("--limit", type=int, default=0, help="at most N dialogues (0 = all)")
    ap.add_argument("--engine", choices=("auto", "llamacpp", "transformers"), default=None)
    ap.add_argument("--out", type=Path, default=RESULTS / "turn_latency")
    args = ap.parse_args()

    from crs.agent import Agent
    from crs.eval.scripted import load_dialogues, run_dialogue

    cfg = load_config()
    if args.engine:
        cfg = dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, engine=args.engine))
    started = time.perf_counter()
    agent = Agent.from_config(cfg)
    load_s = time.perf_counter() - started
    dialogues = load_dialogues(args.dialogues)
    if args.limit:
        dialogues = dialogues[: args.limit]
    timed = TimedAgent(agent)
    run_dialogue(timed, dialogues[0])  # warm-up: first calls into the model, the store and the reader
    timed.turns.clear()
    from tqdm.auto import tqdm

    for d in tqdm(dialogues, desc="dialogues", unit="dialogue"):
        run_dialogue(timed, d)
    stats = summarise(timed.turns)
    met = {
        "first token p50": stats["first_token"]["p50"],
        "turn p50": stats["total"]["p50"],
        "turn p95": stats["total"]["p95"],
    }
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "llm": agent.llm.name,
        "agent_load_s": round(load_s, 2),
        "dialogues": len(dialogues),
        **stats,
        "targets": {k: {"value": round(v, 3), "target": TARGETS[k], "met": v <= TARGETS[k]} for k, v in met.items()},
    }
    lines = [
        "# Turn latency",
        "",
        f"`python bench/turn_latency.py` on {result['machine']}; LLM `{result['llm']}`; {len(dialogues)} "
        f"scripted dialogues, {stats['turns']} turns (one warm-up turn not counted); agent loaded in {load_s:.1f} s.",
        "",
        "| measure | p50 (s) | p95 (s) | mean (s) | target |",
        "|---|---:|---:|---:|---|",
    ]
    model_first = f"the model's first token ({stats['llm_first_token']['turns']} turns that call it)"
    for name, key in (
        ("first streamed token", "first_token"),
        ("whole turn", "total"),
        (model_first, "llm_first_token"),
    ):
        s = stats[key]
        target = {"first_token": "p50 <= 0.6", "total": "p50 <= 1.5, p95 <= 3"}.get(key, "")
        lines.append(f"| {name} | {s['p50']:.3f} | {s['p95']:.3f} | {s['mean']:.3f} | {target} |")
    for name, s in stats["stages"].items():
        lines.append(f"| stage: {name} | {s['p50']:.3f} | {s['p95']:.3f} | {s['mean']:.3f} | |")
    lines += ["", "| act | turns | p50 (s) | p95 (s) |", "|---|---:|---:|---:|"]
    for act, s in stats["by_act"].items():
        lines.append(f"| {act} | {s['turns']} | {s['p50']:.3f} | {s['p95']:.3f} |")
    lines += ["", "| target | value (s) | limit (s) | met |", "|---|---:|---:|---|"]
    for k, t in result["targets"].items():
        lines.append(f"| {k} | {t['value']:.3f} | {t['target']} | {'yes' if t['met'] else 'no'} |")
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
