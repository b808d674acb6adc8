"""Indexing, search and generation speed on this machine.

    python bench/index_bench.py [--full] [--limit N] [--queries 200] [--tokens 128]

Embeds and indexes the demo catalog (the default subset, or all of it with --full) into a
fresh temporary Chroma directory, re-indexes it (nothing should be embedded), measures search
latency over real queries with and without filters, and the local LLM's generation speed.
Prints a table and writes bench/results/index.md and bench/results/index.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crs.catalog import load_catalog  # noqa: E402
from crs.config import load_config  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="index the whole catalog")
    ap.add_argument("--limit", type=int, default=0, help="index at most N items (0 = all of the subset)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--tokens", type=int, default=128, help="new tokens per generation")
    ap.add_argument("--skip-llm", action="store_true")
    args = ap.parse_args()

    from crs.llm.base import Message
    from crs.llm.registry import load_chat_model
    from crs.rank.store import ItemStore

    cfg = load_config()
    if args.full:
        cfg = dataclasses.replace(cfg, catalog=dataclasses.replace(cfg.catalog, min_year=0, min_summary_chars=0))
    catalog = load_catalog(cfg.catalog.path)
    subset = catalog.filter(cfg.catalog.min_year, cfg.catalog.min_summary_chars)
    items = subset.items[: args.limit] if args.limit else subset.items
    rows: list[tuple[str, str]] = []
    result: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "items": len(items),
        "subset": "full catalog"
        if args.full
        else f"year >= {cfg.catalog.min_year}, summary >= {cfg.catalog.min_summary_chars} chars",
    }
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(cfg, store=dataclasses.replace(cfg.store, path=Path(tmp) / "index", host=""))
        t0 = time.perf_counter()
        store = ItemStore.from_config(cfg)
        store.embedder.encode(["warm up"])
        load_s = time.perf_counter() - t0
        report = store.index(items)
        per_s = len(items) / report.seconds
        t1 = time.perf_counter()
        again = store.index(items)
        reindex_s = time.perf_counter() - t1
        result.update(
            embedder_load_s=round(load_s, 2),
            index_s=round(report.seconds, 1),
            items_per_s=round(per_s, 1),
            reindex_s=round(reindex_s, 2),
            reindex_embedded=again.added + again.updated,
        )
        rows += [
            ("items indexed", f"{len(items):,} ({result['subset']})"),
            ("embedder load", f"{load_s:.1f} s"),
            ("embed + index", f"{report.seconds:.1f} s = {per_s:.1f} items/s"),
            ("re-index (unchanged)", f"{reindex_s:.1f} s, {again.added + again.updated} embedded"),
        ]
        rng = random.Random(0)
        genres = subset.genres()[:12]
        sample = rng.sample(items, min(args.queries, len(items)))
        for label, with_filters in (("search", False), ("search + filters", True)):
            latencies = []
            for item in sample:
                query = f"something like {item.title}: {' '.join(item.genres)}"
                kwargs: dict[str, object] = {}
                if with_filters:
                    kwargs = {
                        "exclude_genres": [rng.choice(genres)],
                        "year_min": 1980,
                        "year_max": 2015,
                        "exclude_ids": [item.id],
                    }
                t = time.perf_counter()
                store.search(query, k=10, **kwargs)
                latencies.append((time.perf_counter() - t) * 1000)
            p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
            key = label.replace(" + ", "_").replace(" ", "_")
            result[f"{key}_p50_ms"], result[f"{key}_p95_ms"] = round(p50, 1), round(p95, 1)
            rows.append((f"{label} latency (k=10, {len(sample)} queries)", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"))
    if not args.skip_llm:
        t = time.perf_counter()
        llm = load_chat_model(cfg)
        llm.generate([Message("user", "Hi")], max_new_tokens=4)  # warm up
        llm_load = time.perf_counter() - t
        prompts = ["Recommend a science fiction film and say why.", "Describe the film Alien in three sentences."]
        tokenizer = getattr(llm, "tokenizer", None)

        def count(text: str) -> int:
            return len(tokenizer(text).input_ids) if tokenizer is not None else len(text.split())

        speed: dict[str, float] = {}
        for mode in ("generate", "stream"):
            tokens = seconds = 0.0
            for prompt in prompts:
                t = time.perf_counter()
                if mode == "generate":
                    text = llm.generate([Message("user", prompt)], max_new_tokens=args.tokens)
                else:
                    text = "".join(llm.stream([Message("user", prompt)], max_new_tokens=args.tokens))
                seconds += time.perf_counter() - t
                tokens += count(text)
            speed[mode] = tokens / seconds
        tok_s = speed["generate"]
        result.update(
            llm=llm.name,
            llm_load_s=round(llm_load, 1),
            generate_tokens_per_s=round(tok_s, 1),
            stream_tokens_per_s=round(speed["stream"], 1),
        )
        rows += [
            ("LLM load (cached) + warm-up", f"{llm_load:.1f} s ({llm.name})"),
            (f"generation, {args.tokens} new tokens max", f"{tok_s:.1f} tokens/s"),
            ("generation, streamed (as in the chat)", f"{speed['stream']:.1f} tokens/s"),
        ]
    RESULTS.mkdir(exist_ok=True)
    table = "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    header = f"# Index, search and generation speed\n\nMachine: {result['machine']}. Command: `python bench/index_bench.py{' --full' if args.full else ''}`.\n\n"
    (RESULTS / "index.md").write_text(header + table + "\n")
    (RESULTS / "index.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
