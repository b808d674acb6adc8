"""Prepare ReDial seeker turns for annotation, and merge the annotators' labels.

    python scripts/reader_annotate.py prepare --out /tmp/annot --chunks 6
    python scripts/reader_annotate.py merge /tmp/annot/labels_*.jsonl --out knowledge/reader/redial_acts.jsonl.gz

See docs/reader_annotation.md for the guideline. Labels are keyed by ``conversationId:turn`` and
carry no ReDial text; the training script reads the text from ReDial itself.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crs.eval.redial.data import RedialFiles, file_dialogue_ids, load_dialogues  # noqa: E402
from crs.understand.redial_acts import ACTS, POLARITIES, SeekerTurn, turns_by_split  # noqa: E402

_AT = re.compile(r"@(\d+)")


def render(turn: SeekerTurn) -> str:
    def mark(text: str) -> str:
        return _AT.sub(
            lambda m: f"[m{m.group(1)} {turn.facts[m.group(1)].title if m.group(1) in turn.facts else '?'}]", text
        )

    lines = [f"### {turn.key}"]
    lines += [f"CONTEXT {role}: {mark(text)}" for role, text in turn.context]
    lines.append(f"SEEKER: {mark(turn.text)}")
    ids = list(dict.fromkeys(_AT.findall(" ".join(t for _, t in turn.context) + " " + turn.text)))
    facts = []
    for i in ids:
        f = turn.facts.get(i)
        if f is not None:
            who = "recommender" if f.suggested else "seeker"
            facts.append(f"m{i} {f.title}: suggested by {who}; seeker seen={f.seen} liked={f.liked}")
    if facts:
        lines.append("FACTS: " + " | ".join(facts))
    return "\n".join(lines)


def prepare(out: Path, chunks: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    splits = turns_by_split(
        load_dialogues(RedialFiles.from_config().train), file_dialogue_ids(RedialFiles.from_config().turns)
    )
    turns = [t for s in ("train", "dev", "test") for t in splits[s]]
    size = -(-len(turns) // chunks)
    for c in range(chunks):
        part = turns[c * size : (c + 1) * size]
        (out / f"chunk_{c + 1}.txt").write_text("\n\n".join(render(t) for t in part) + "\n", encoding="utf-8")
        print(f"chunk_{c + 1}.txt: {len(part)} turns ({part[0].key} .. {part[-1].key})")


def merge(files: list[Path], out: Path) -> None:
    labels: dict[str, dict] = {}
    bad = 0
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                acts = [a for a in rec["acts"] if a in ACTS]
                movies = {str(k): v for k, v in (rec.get("movies") or {}).items() if v in POLARITIES}
                other = [[str(w), p] for w, p in rec.get("other") or [] if p in ("like", "dislike", "neutral")]
                refers = rec.get("refers")
                labels[str(rec["id"])] = {
                    "id": str(rec["id"]),
                    "acts": acts,
                    "movies": movies,
                    "refers": str(refers).lstrip("m") if refers else None,
                    "other": other,
                }
            except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
                bad += 1
                print(f"{f}:{n}: skipped ({exc})", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        for key in sorted(labels, key=lambda k: (int(k.split(":")[0]), int(k.split(":")[1]))):
            fh.write(json.dumps(labels[key]) + "\n")
    print(f"{len(labels)} labelled turns -> {out} ({bad} malformed lines skipped)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--chunks", type=int, default=6)
    m = sub.add_parser("merge")
    m.add_argument("files", nargs="+", type=Path)
    m.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args.out, args.chunks)
    else:
        merge(args.files, args.out)


if __name__ == "__main__":
    main()
