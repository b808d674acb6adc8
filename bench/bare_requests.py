"""Bare requests ("I want a comedy"): do they start from films people know?

    python bench/bare_requests.py

For each genre of the demo catalog's most common ones, one turn "I want a <genre>" through the real
agent (Chroma over the default index, the shipped scorer; a stand-in LLM, since only the picks
matter), with two settings side by side: *narrow* (50 candidates, popularity weight 0.01: the
setting of every request before) and *broad* (the shipped ``[retrieval] broad_*`` settings: 300
candidates, popularity weight 0.04). Popularity is the film's ReDial mention count (how often people
named it in 11,000 movie chats); "known" means 10 mentions or more. Prints a table and writes
bench/results/bare_requests.md and .json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crs.agent import Agent  # noqa: E402
from crs.config import load_config  # noqa: E402
from crs.llm.scripted import ScriptedChatModel
from crs.state import Session  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
GENRES = ["comedy", "drama", "horror", "thriller", "action", "romance", "science fiction", "crime", "animated",
          "western", "war", "musical", "fantasy", "documentary", "sports", "family", "mystery", "adventure"]  # fmt: skip
KNOWN = 10


def run(agent: Agent) -> dict[str, dict]:
    out = {}
    for genre in GENRES:
        final = agent.respond(Session(), f"I want a {genre}")
        pops = [i.popularity for i in final.items]  # type: ignore[attr-defined]
        out[genre] = {
            "picks": [i.label for i in final.items],  # type: ignore[attr-defined]
            "median_popularity": statistics.median(pops) if pops else 0,
            "known": sum(p >= KNOWN for p in pops),
            "shown": len(pops),
            "in_genre": sum(1 for i in final.items if any(genre.split()[0] in g.casefold() for g in i.genres)),  # type: ignore[attr-defined]
        }
    return out


def main() -> None:
    cfg = load_config()
    narrow = dataclasses.replace(
        cfg,
        retrieval=dataclasses.replace(cfg.retrieval, broad_candidates=cfg.retrieval.candidates),
        scoring=dataclasses.replace(cfg.scoring, broad_popularity=cfg.scoring.popularity),
    )
    llm = ScriptedChatModel(default="Here are some picks.")
    broad_agent = Agent.from_config(cfg, progress=False, llm=llm, profiles=False)
    narrow_agent = Agent(narrow, broad_agent.catalog, broad_agent.store, llm, scorer=broad_agent.scorer)
    results = {"narrow": run(narrow_agent), "broad": run(broad_agent)}
    lines = [
        '# Bare requests: "I want a <genre>"',
        "",
        f"Command: `python bench/bare_requests.py`. {len(GENRES)} genres, top {cfg.retrieval.show} picks each; popularity = "
        f"ReDial mentions, known = {KNOWN}+ mentions.",
        "",
        "| setting | known picks | median popularity (mean over genres) | picks in the genre |",
        "|---|---|---|---|",
    ]
    for name, rows in results.items():
        known = sum(r["known"] for r in rows.values())
        shown = sum(r["shown"] for r in rows.values())
        in_genre = sum(r["in_genre"] for r in rows.values())
        med = statistics.mean(r["median_popularity"] for r in rows.values())
        lines.append(f"| {name} | {known}/{shown} ({known / max(shown, 1):.0%}) | {med:.1f} | {in_genre}/{shown} |")
    lines += ["", "| genre | narrow (before) | broad (now) |", "|---|---|---|"]
    for genre in GENRES:
        lines.append(
            f"| {genre} | {'; '.join(results['narrow'][genre]['picks'])} | {'; '.join(results['broad'][genre]['picks'])} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bare_requests.md").write_text(text, encoding="utf-8")
    (RESULTS / "bare_requests.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
