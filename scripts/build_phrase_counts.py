"""Count how people write words in movie chats: ``knowledge/reader/phrases.json.gz``.

    python scripts/build_phrase_counts.py [--out knowledge/reader/phrases.json.gz]

From the ReDial training dialogues that are not in the validation file (CC BY 4.0, Li et al.
2018), two tables:

- ``plain``: every 1- to 4-word phrase of the messages' ordinary text (with the ``@movie`` marks
  cut out), counted when it occurs at least twice;
- ``marked``: for every movie written with an ``@`` mark, its normalised title, counted.

``crs.understand.titles`` reads them as a prior: a title that people write far more often as
ordinary words ("anything else", "it", "love", "in the mood") than as the film is only linked
with evidence (a year, quotes, Title Case mid-sentence). Only counts are stored, no text.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crs.catalog import normalize_title, split_title_year  # noqa: E402
from crs.eval.redial.data import RedialFiles, file_dialogue_ids, load_dialogues  # noqa: E402
from crs.understand.text import phrase_keys  # noqa: E402

_AT = re.compile(r"@(\d+)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("knowledge/reader/phrases.json.gz"))
    args = ap.parse_args()
    evaluated = file_dialogue_ids(RedialFiles.from_config().turns)
    dialogues = [
        d for d in load_dialogues(RedialFiles.from_config().train) if str(d["conversationId"]) not in evaluated
    ]
    plain: Counter[str] = Counter()
    marked: Counter[str] = Counter()
    for d in dialogues:
        names = d.get("movieMentions") or {}
        names = names if isinstance(names, dict) else {}
        for msg in d["messages"]:
            text = str(msg.get("text") or "")
            for movie_id in _AT.findall(text):
                title, _ = split_title_year(str(names.get(movie_id) or ""))
                if title:
                    marked[normalize_title(title)] += 1
            for part in _AT.split(text)[::2]:  # the ordinary text between marks
                plain.update(phrase_keys(part, 4))
    table = {
        "source": "ReDial partial-train dialogues outside the validation file (CC BY 4.0, Li et al. 2018)",
        "dialogues": len(dialogues),
        "plain": {k: c for k, c in sorted(plain.items()) if c >= 2},
        "marked": dict(sorted(marked.items())),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(json.dumps(table, separators=(",", ":")).encode())
    print(f"{len(dialogues)} dialogues: {len(table['plain'])} phrases, {len(marked)} marked titles -> {args.out}")


if __name__ == "__main__":
    main()
