"""A million items on a Chroma server: insert rate, search latency plain and with the belief's filters,
whether filtered searches still return k items that pass, recall against exact search, server memory.

    python bench/scale.py [--items 1000000] [--queries 200] [--k 10] [--ef-search 100]

Starts ``chroma run`` on a temporary directory and writes through crs's own ``ItemStore`` (the metadata
layout searches filter on), so the searches are the agent's searches.

The items are synthetic, built from the real demo index: each copies the genres of a real film, its
year moved by up to 5 years, and gets that film's real all-MiniLM-L6-v2 vector plus Gaussian noise
(cosine about 0.8 to it), normalised. So the vectors cluster as real film vectors do, and the genre and
year filters are as selective as on the real catalog. Embedding a million real texts on 2 cores would
take about 4 hours. Queries are real sentences ("a horror film like Alien") embedded by the real model.

The belief filter of a search: two excluded genres, years 1980-2010, and the 30 items the same query
ranks first without filters excluded by id (what a session has shown or the user rejected). People
are filtered after the store (they are not metadata), so they are not part of this bench.
Writes bench/results/scale.md and .json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.index_bench import percentile  # noqa: E402
from bench.robustness_ops import free_port, stop_process  # noqa: E402
from crs.catalog import Item, load_catalog  # noqa: E402
from crs.config import load_config  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
NOISE_COS = 0.8  # cosine of a synthetic vector to the real film vector it is made from
EXCLUDED_BY_ID = 30


def start_server(path: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    chroma = Path(sys.executable).with_name("chroma")
    cmd = [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"chroma run exited: {log.read_text()[-2000:]}") from None
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("chroma run did not open its port in 60 s")


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children, in MB."""
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 1e6


def synthetic(base: list[Item], vectors: np.ndarray, n: int, seed: int) -> tuple[list[Item], np.ndarray]:
    """``n`` items made from the real ones (see the module doc); returns them and their (n, dim) vectors."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(base), n)
    dim = vectors.shape[1]
    sigma = np.sqrt((1 / NOISE_COS**2 - 1) / dim)  # ||noise||^2 = dim * sigma^2 = 1/cos^2 - 1
    out = vectors[pick] + rng.normal(0.0, sigma, (n, dim)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    shifts = rng.integers(-5, 6, n)
    items = []
    for i, (b, dy) in enumerate(zip(pick, shifts, strict=True)):
        src = base[int(b)]
        year = min(2025, max(1900, src.year + int(dy))) if src.year else None
        items.append(Item(id=f"s{i}", title=f"{src.title} #{i}", year=year, genres=src.genres))
    return items, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ef-search", type=int, default=100)
    ap.add_argument("--chunk", type=int, default=5000, help="items per upsert (at most the server's max batch)")
    ap.add_argument("--exact", type=int, default=50, help="queries checked against exact search (recall@k)")
    ap.add_argument("--narrow", type=int, default=20, help="queries with a narrow filter (one rare genre)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "scale")
    args = ap.parse_args()

    from tqdm.auto import tqdm

    from crs.rank.metadata import genre_key
    from crs.rank.store import ItemStore

    cfg = load_config()
    real_store = ItemStore.from_config(cfg)  # the demo index: real vectors of real films
    catalog = load_catalog(cfg.catalog.path)
    stored = real_store.get_embeddings(item.id for item in catalog)
    base = [item for item in catalog if item.id in stored]
    base_vectors = np.stack([stored[item.id] for item in base]).astype(np.float32)
    print(f"{len(base)} real films and vectors from {cfg.store.path}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="crs-scale-"))
    port = free_port()
    server = start_server(work / "chroma", port, work / "chroma.log")
    result: dict[str, Any] = {}
    try:
        store_cfg = dataclasses.replace(
            cfg.store, host="127.0.0.1", port=port, collection="scale", hnsw_ef_search=args.ef_search
        )
        store = ItemStore.from_config(dataclasses.replace(cfg, store=store_cfg), embedder=real_store.embedder)
        chunk = store.upsert_chunk(args.chunk)
        rss_before = rss_mb(server.pid)
        all_vectors = np.empty((args.items, base_vectors.shape[1]), dtype=np.float32)
        items_meta: dict[str, Item] = {}
        inserted, insert_s = 0, 0.0
        with tqdm(total=args.items, desc="inserting", unit="item") as bar:
            for start in range(0, args.items, chunk):
                n = min(chunk, args.items - start)
                items, vectors = synthetic(base, base_vectors, n, args.seed + start)
                items = [dataclasses.replace(it, id=f"s{start + j}") for j, it in enumerate(items)]
                all_vectors[start : start + n] = vectors
                items_meta.update((it.id, it) for it in items)
                t0 = time.perf_counter()
                store.upsert_vectors(items, vectors, ["synthetic"] * n)
                insert_s += time.perf_counter() - t0
                inserted += n
                bar.update(n)
        count = store.count()
        rss_after = rss_mb(server.pid)
        print(f"inserted {inserted} in {insert_s:.0f} s; the server holds {count}", flush=True)

        rng = random.Random(args.seed)
        genres = sorted({g for it in base for g in it.genres})
        queries = [
            f"a {g.casefold()} film like {it.title}"
            for it in rng.sample(base, args.queries)
            for g in [rng.choice(it.genres) if it.genres else "good"]
        ]
        qvec = real_store.embedder.encode(queries)
        plain_ms, filt_ms, short, wrong = [], [], 0, 0
        recalls = []
        store.search(query_embedding=qvec[0], k=args.k)  # warm-up
        for qi, vector in enumerate(tqdm(qvec, desc="searching", unit="query")):
            t0 = time.perf_counter()
            plain = store.search(query_embedding=vector, k=max(args.k, EXCLUDED_BY_ID))
            plain_ms.append((time.perf_counter() - t0) * 1000)
            if qi < args.exact:
                exact = np.argsort(-(all_vectors @ vector))[: args.k]
                got = {h.id for h in plain[: args.k]}
                recalls.append(len(got & {f"s{i}" for i in exact}) / args.k)
            excluded = rng.sample(genres, 2)
            ids = {h.id for h in plain[:EXCLUDED_BY_ID]}
            t0 = time.perf_counter()
            hits = store.search(
                query_embedding=vector,
                k=args.k,
                exclude_genres=excluded,
                year_min=1980,
                year_max=2010,
                exclude_ids=ids,
            )
            filt_ms.append((time.perf_counter() - t0) * 1000)
            short += len(hits) < args.k
            keys = {genre_key(g) for g in excluded}
            for h in hits:
                it = items_meta[h.id]
                bad = h.id in ids or not it.year or not 1980 <= it.year <= 2010
                wrong += bad or bool(keys & {genre_key(g) for g in it.genres})
        # A narrow filter (one rare genre wanted): too few of the nearest pass, so Chroma's metadata filter runs.
        counts: dict[str, int] = {}
        for it in base:
            for g in it.genres:
                counts[g] = counts.get(g, 0) + 1
        rare = min((g for g, c in counts.items() if c >= 0.01 * len(base)), key=lambda g: counts[g])
        narrow_ms, narrow_short = [], 0
        for vector in tqdm(qvec[: args.narrow], desc="narrow filter", unit="query"):
            t0 = time.perf_counter()
            hits = store.search(query_embedding=vector, k=args.k, include_genres=[rare])
            narrow_ms.append((time.perf_counter() - t0) * 1000)
            narrow_short += len(hits) < args.k
            wrong += sum(rare not in items_meta[h.id].genres for h in hits)
        result = {
            "narrow_genre": rare,
            "narrow_share": round(counts[rare] / len(base), 4),
            "narrow_ms": {"p50": percentile(narrow_ms, 0.5), "p95": percentile(narrow_ms, 0.95)},
            "narrow_short": narrow_short,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "chromadb": __import__("chromadb").__version__,
            "items": count,
            "insert_s": round(insert_s, 1),
            "insert_per_s": round(inserted / insert_s, 1),
            "upsert_chunk": chunk,
            "hnsw": store_cfg.hnsw(),
            "server_rss_mb_before": round(rss_before, 1),
            "server_rss_mb_after": round(rss_after, 1),
            "disk_mb": round(sum(f.stat().st_size for f in (work / "chroma").rglob("*") if f.is_file()) / 1e6, 1),
            "queries": len(queries),
            "k": args.k,
            "plain_ms": {"p50": percentile(plain_ms, 0.5), "p95": percentile(plain_ms, 0.95)},
            "filtered_ms": {"p50": percentile(filt_ms, 0.5), "p95": percentile(filt_ms, 0.95)},
            "filtered_short": short,
            "filtered_wrong_items": wrong,
            "recall_at_k_vs_exact": round(sum(recalls) / max(1, len(recalls)), 3),
            "recall_queries": len(recalls),
        }
        result["target_filtered_p95_ms"] = {"value": result["filtered_ms"]["p95"], "limit": 100.0}
        result["target_filtered_p95_ms"]["met"] = result["filtered_ms"]["p95"] <= 100.0
    finally:
        stop_process(server, 30)
        shutil.rmtree(work, ignore_errors=True)
    r = result
    table = "\n".join(
        [
            "# A million items on a Chroma server",
            "",
            f"`python bench/scale.py --items {args.items} --queries {args.queries} --k {args.k} --ef-search "
            f"{args.ef_search}` on {r['machine']}, chromadb {r['chromadb']} (`chroma run`, one node), HNSW "
            f"{r['hnsw']}. Synthetic items from the real demo index (see the bench's docstring).",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| items in the collection | {r['items']:,} |",
            f"| insert rate (items/s, {r['upsert_chunk']} per upsert) | {r['insert_per_s']:,.0f} |",
            f"| insert time (s) | {r['insert_s']:,.0f} |",
            f"| server memory before / after (MB) | {r['server_rss_mb_before']:,.0f} / {r['server_rss_mb_after']:,.0f} |",
            f"| on disk (MB) | {r['disk_mb']:,.0f} |",
            f"| plain search, top {max(args.k, EXCLUDED_BY_ID)}: p50 / p95 (ms) | "
            f"{r['plain_ms']['p50']:.1f} / {r['plain_ms']['p95']:.1f} |",
            f"| filtered search, top {args.k}: p50 / p95 (ms) | "
            f"{r['filtered_ms']['p50']:.1f} / {r['filtered_ms']['p95']:.1f} |",
            f"| filtered searches with fewer than {args.k} items | {r['filtered_short']} of {r['queries']} |",
            f"| filtered items breaking the filter (both kinds) | {r['filtered_wrong_items']} |",
            f"| narrow filter (only {r['narrow_genre']}, {r['narrow_share']:.1%} of items), top {args.k}: "
            f"p50 / p95 (ms) | {r['narrow_ms']['p50']:.0f} / {r['narrow_ms']['p95']:.0f} |",
            f"| recall@{args.k} against exact search ({r['recall_queries']} queries) | {r['recall_at_k_vs_exact']:.3f} |",
            "",
            f"Target: filtered p95 <= 100 ms: {'met' if r['target_filtered_p95_ms']['met'] else 'not met'}.",
        ]
    )
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
