"""Build knowledge/movies.jsonl.gz from prust/wikipedia-movie-data (under [paths] data_root, ../shared/data).

Usage: python scripts/build_demo_catalog.py [SRC_DIR] [OUT] [REDIAL_MOVIES_CSV]

Records with the same (title, year) are merged: genres and cast are unioned in order,
the longest summary and the first article link win. Thumbnails are dropped (posters
are mostly non-free). Ids are stable slugs of title and year, e.g. ``alien-1979``.

``popularity`` is how often the film was mentioned in ReDial's movie chats (``nbMentions`` of
ReDial's ``movies_with_mentions.csv``, CC BY 4.0, Li et al. 2018), matched by normalised title and
year (±1); 0 for films ReDial never mentions. It is the prior that picks the well-known film among
namesakes and lets a bare "a comedy" start from films people talk about.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import json
import os
import re
import sys
import unicodedata


def slugify(title: str, year: int | None) -> str:
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "untitled"
    return f"{slug[:60]}-{year}" if year else slug[:60]


def merge(rows: list[dict]) -> list[dict]:
    merged: dict[tuple[str, int], dict] = {}
    for row in rows:
        title = (row.get("title") or "").strip()
        if not title:
            continue
        year = int(row.get("year") or 0)
        key = (title, year)
        href = row.get("href") or ""
        new = {
            "title": title,
            "year": year,
            "genres": [g.strip() for g in row.get("genres") or [] if g and g.strip()],
            "cast": [c.strip() for c in row.get("cast") or [] if c and c.strip()],
            "url": f"https://en.wikipedia.org/wiki/{href}" if href else "",
            "summary": (row.get("extract") or "").strip(),
        }
        old = merged.get(key)
        if old is None:
            merged[key] = new
            continue
        old["genres"] += [g for g in new["genres"] if g not in old["genres"]]
        old["cast"] += [c for c in new["cast"] if c not in old["cast"]]
        old["url"] = old["url"] or new["url"]
        if len(new["summary"]) > len(old["summary"]):
            old["summary"] = new["summary"]
    out = []
    seen: set[str] = set()
    for (title, year), rec in sorted(merged.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        item_id = slugify(title, year)
        if item_id in seen:  # distinct titles with the same slug ("Alien" vs "Alien!")
            item_id += "-" + hashlib.sha1(title.encode()).hexdigest()[:6]
        seen.add(item_id)
        out.append({"id": item_id, **rec})
    return out


def _norm(title: str) -> str:
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().casefold()
    text = re.sub(r"[^a-z0-9]+", " ", text.replace("&", " and ")).strip()
    return re.sub(r"^(the|a|an) ", "", text)


def redial_mentions(path: str) -> dict[tuple[str, int], int]:
    """{(normalised title, year): mentions} from ReDial's movies_with_mentions.csv."""
    out: dict[tuple[str, int], int] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            m = re.match(r"^\s*(.*?)\s*\((\d{4})\)\s*$", row["movieName"] or "")
            if m:
                key = (_norm(m.group(1)), int(m.group(2)))
                out[key] = out.get(key, 0) + int(row.get("nbMentions") or 0)
    return out


def add_popularity(items: list[dict], mentions: dict[tuple[str, int], int]) -> int:
    """Set each item's popularity from ReDial mentions (year ±1); return how many matched."""
    matched = 0
    for item in items:
        key = _norm(item["title"])
        count = max((mentions.get((key, item["year"] + d), 0) for d in (0, -1, 1)), default=0)
        item["popularity"] = count
        matched += count > 0
    return matched


def main(argv: list[str]) -> int:
    from crs.config import load_config

    data_root = load_config().paths.data_root
    src = argv[1] if len(argv) > 1 else str(data_root / "wikipedia-movie-data")
    dst = argv[2] if len(argv) > 2 else "knowledge/movies.jsonl.gz"
    rows: list[dict] = []
    for path in sorted(glob.glob(os.path.join(src, "movies-*.json.gz"))):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            rows += json.load(fh)
    if not rows:
        print(f"no movies-*.json.gz under {src}", file=sys.stderr)
        return 1
    items = merge(rows)
    redial = argv[3] if len(argv) > 3 else str(data_root / "redial" / "official" / "movies_with_mentions.csv")
    if os.path.exists(redial):
        print(f"popularity from ReDial mentions: {add_popularity(items, redial_mentions(redial))} films matched")
    else:
        print(f"{redial} not found: popularity left out", file=sys.stderr)
    # mtime=0 keeps the gzip bytes reproducible, so rebuilding does not dirty git.
    with open(dst, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as gz:
        for item in items:
            gz.write((json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8"))
    print(f"{len(rows)} records -> {len(items)} items -> {dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
