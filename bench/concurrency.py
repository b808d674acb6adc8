"""Several users at once: turn times when 1, 4 and 8 sessions chat with one agent at the same time.

    python bench/concurrency.py [--sessions 1 4 8] [--turns 24]

Each session is a thread that plays the shipped scripted dialogues (different ones per session, back
to back) through one shared agent, as ``crs serve`` shares one agent between its sessions (with
``[serve] concurrency`` at least the session count here). Reports p50/p95 of the whole turn per
session count and the ratio to one session, and p50/p95 of the time to a turn's first words.
Writes bench/results/concurrency.md and .json.
Target: p95 with 8 sessions <= 3x p95 with one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.index_bench import percentile  # noqa: E402
from bench.turn_latency import DIALOGUES, TimedAgent  # noqa: E402
from crs.config import load_config  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def run_sessions(agent: Any, dialogues: list[Any], sessions: int, turns: int) -> tuple[list[float], list[float]]:
    """Seconds of the whole turn and to its first words, of ``sessions`` threads, each playing
    dialogues until it has ``turns`` turns."""
    from crs.eval.scripted import run_dialogue

    times: list[float] = []
    firsts: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(sessions)

    def user(n: int) -> None:
        timed = TimedAgent(agent)
        start.wait()
        i = n
        while len(timed.turns) < turns:
            run_dialogue(timed, dialogues[i % len(dialogues)])
            i += sessions
        with lock:
            times.extend(t["seconds"]["total"] for t in timed.turns[:turns])
            firsts.extend(t["seconds"]["first_token"] for t in timed.turns[:turns] if "first_token" in t["seconds"])

    threads = [threading.Thread(target=user, args=(n,), name=f"session-{n}") for n in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, firsts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--turns", type=int, default=24, help="turns per session")
    ap.add_argument("--out", type=Path, default=RESULTS / "concurrency")
    args = ap.parse_args()

    from crs.agent import Agent
    from crs.eval.scripted import load_dialogues, run_dialogue

    cfg = load_config()
    agent = Agent.from_config(cfg)
    dialogues = load_dialogues(DIALOGUES)
    run_dialogue(TimedAgent(agent), dialogues[0])  # warm-up
    rows = []
    for n in args.sessions:
        started = time.perf_counter()
        times, firsts = run_sessions(agent, dialogues, n, args.turns)
        wall = time.perf_counter() - started
        rows.append(
            {
                "sessions": n,
                "turns": len(times),
                "p50": percentile(times, 0.5),
                "p95": percentile(times, 0.95),
                "first_p50": percentile(firsts, 0.5),
                "first_p95": percentile(firsts, 0.95),
                "turns_per_s": len(times) / wall,
            }
        )
        print(rows[-1], flush=True)
    one = next((r for r in rows if r["sessions"] == 1), rows[0])
    for r in rows:
        r["p95_ratio"] = r["p95"] / one["p95"]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        "# Several sessions at once",
        "",
        f"`python bench/concurrency.py --sessions {' '.join(map(str, args.sessions))} --turns {args.turns}` on "
        f"{machine}; LLM `{agent.llm.name}`; one shared agent, each session a thread playing scripted dialogues.",
        "",
        "| sessions | turns | p50 (s) | p95 (s) | p95 / p95 of one | first words p50 (s) | first words p95 (s) | "
        "turns/s (all sessions) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['sessions']} | {r['turns']} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p95_ratio']:.1f}x | "
            f"{r['first_p50']:.2f} | {r['first_p95']:.2f} | {r['turns_per_s']:.2f} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    payload = {"machine": machine, "llm": agent.llm.name, "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
