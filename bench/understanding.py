"""Understanding real users: dialogue acts, mention polarity, references, entity linking, latency.

    python bench/understanding.py [--split dev] [--limit N] [--reader DIR]

Data: annotated ReDial seeker turns (``knowledge/reader/redial_acts.jsonl.gz``; guideline in
docs/reader_annotation.md), split by dialogue (``crs.understand.redial_acts.split_of``). ``dev`` is
part of the training dialogues (never trained on; thresholds and the epoch were chosen on it);
``test`` is a part of the ReDial validation file, read once for the final figures. Each ``@movie``
is written the way people type titles (with year, plain, lower case, with a typo; fixed seed).

Systems, side by side, all through ``crs read``'s code path (``crs.understand.replay``):
- **reader**: the learned reader (``knowledge/reader``) with the rules kept for exactness;
- **rules**: the same product with the reader off (``[nlu] reader = "off"``);
- **keyword**: one regular expression per act (below), and "a negation word in the message" for polarity.

Also: the hand-written synthetic dev messages (acts ReDial seekers rarely perform), the film each
reaction or question is about (against the annotated ``refers``), entity-linking precision and
recall of the marked movies against the demo catalog, and the reading latency per message.
Prints tables and writes bench/results/understanding.md and .json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crs.catalog import load_catalog  # noqa: E402
from crs.config import load_config  # noqa: E402
from crs.eval.redial.data import RedialFiles, file_dialogue_ids, load_dialogues  # noqa: E402
from crs.understand.linker import Linker, Mention
from crs.understand.message import Understander, product_polarity, sentence_polarities  # noqa: E402
from crs.understand.nlu import RuleReading, read_mentions
from crs.understand.reader import MessageReader  # noqa: E402
from crs.understand.reader_data import (  # noqa: E402
    STYLES,
    Example,
    load_labels,
    make_example,
    render,
    synthetic_examples,
)
from crs.understand.redial_acts import ACTS, SeekerTurn, turns_by_split  # noqa: E402
from crs.understand.replay import replay  # noqa: E402
from crs.understand.text import tokenize  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# The keyword baseline: one line per act, as a first attempt would write it.
KEYWORDS = {
    "request": r"\b(recommend|suggest|suggestions?|looking for|any (good|other|ideas)|something|anything else|what else)\b",
    "preference": r"\b(i (really )?(like|love|enjoy|prefer|hate)|fan of|i'?m into|favou?rite)\b",
    "accept": r"\b(sounds? (good|great|interesting)|i'?ll (check|watch|try|look|add)|will (check|watch)|looks good)\b",
    "reject": r"\b(not (for me|interested|really|my)|no thanks|pass|don'?t like|didn'?t like|not a fan)\b",
    "seen": r"\b(seen|saw|watched)\b",
    "ask_item": r"\b(what'?s it about|who'?s in|what is it about|is it (good|scary|funny)|about\?)",
    "ask_why": r"\bwhy\b",
    "critique": r"\b(newer|older|funnier|less|more recent|something else|different)\b",
    "chitchat": r"\b(hi|hello|hey|bye|thanks?|thank you|good ?night|have a (good|nice|great))\b",
}
NEGATION = re.compile(r"\b(not|no|never|don'?t|didn'?t|hate|dislike|without|nothing)\b", re.I)


def f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def act_table(gold: list[tuple[str, ...]], predicted: list[tuple[str, ...]]) -> dict[str, dict[str, float]]:
    out = {}
    for act in ACTS:
        tp = sum(act in g and act in p for g, p in zip(gold, predicted, strict=True))
        fp = sum(act not in g and act in p for g, p in zip(gold, predicted, strict=True))
        fn = sum(act in g and act not in p for g, p in zip(gold, predicted, strict=True))
        p, r, f = f1(tp, fp, fn)
        out[act] = {"support": tp + fn, "precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}
    return out


def keyword_acts(text: str) -> tuple[str, ...]:
    return tuple(a for a, pattern in KEYWORDS.items() if re.search(pattern, text, re.I))


def records(examples: list[Example], turns: dict[str, SeekerTurn], linker: Linker) -> list[dict]:
    """crs read input records: the message, the films the recommender named just before (resolved in
    the demo catalog), and the recommender's words."""
    out = []
    for ex in examples:
        turn = turns.get(ex.key)
        shown: list[str] = []
        if turn is not None:
            for movie_id in turn.shown_before():
                fact = turn.facts.get(movie_id)
                item = linker.resolve(fact.title) if fact else None
                if item is not None:
                    shown.append(item.label)
        out.append({"text": ex.text, "shown": shown, "context": ex.context, "key": ex.key})
    return out


def rule_reading(text: str, linker: Linker, start: int, end: int) -> RuleReading | None:
    """The rules' reading of the words at [start, end), read as a mention of whatever they name."""
    tokens = tokenize(text)
    ks = [k for k, t in enumerate(tokens) if t.start < end and t.end > start]
    if not ks:
        return None
    return read_mentions(text, linker, [Mention("item", "x", text[start:end], ks[0], ks[-1] + 1)])[0]


def polarity_of(rule: RuleReading | None) -> str:
    if rule is None:
        return "neutral"
    if rule.polarity:
        return "like" if rule.polarity > 0 else "dislike"
    return "seen" if rule.seen else "neutral"


def polarity_table(pairs: list[tuple[str, str]]) -> dict[str, object]:
    out: dict[str, object] = {
        "spans": len(pairs),
        "accuracy": round(sum(g == p for g, p in pairs) / max(len(pairs), 1), 4),
    }
    for name in ("like", "dislike", "seen", "neutral"):
        tp = sum(g == name and p == name for g, p in pairs)
        fp = sum(g != name and p == name for g, p in pairs)
        fn = sum(g == name and p != name for g, p in pairs)
        out[name] = {"support": tp + fn, "f1": round(f1(tp, fp, fn)[2], 4)}
    return out


def linking(turns: list[SeekerTurn], labels: dict[str, dict], linker: Linker) -> dict[str, dict[str, float]]:
    """Recall: marked movies (that the demo catalog holds) linked to the right film, per typing style.
    Precision: film links outside the marked movies that are no film the annotator listed as typed."""
    out = {}
    for style in STYLES:
        rng = random.Random(5)
        found = total = wrong = links = 0
        for turn in turns:
            if turn.key not in labels:
                continue
            text, marked = render(turn.text, turn.facts, style, rng)
            gold = {}
            for s, e, movie_id in marked:
                item = linker.resolve(turn.facts[movie_id].title)
                if item is not None:
                    gold[(s, e)] = item.id
            tokens = tokenize(text)
            other = " ".join(w for w, _ in labels[turn.key].get("other") or []).casefold()
            for m in linker.mentions(text):
                if m.kind != "item":
                    continue
                s, e = tokens[m.start].start, tokens[m.end - 1].end
                hit = next(((gs, ge) for gs, ge in gold if s < ge and gs < e), None)
                links += 1
                if hit is not None:
                    found += gold[hit] == m.value
                    wrong += gold[hit] != m.value
                elif m.text.casefold() not in other:
                    wrong += 1
            total += len(gold)
        p, r, f = f1(found, wrong, total - found)
        out[style] = {
            "marked": total,
            "links": links,
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(f, 4),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["dev", "test"], default="dev")
    ap.add_argument("--limit", type=int, default=0, help="only the first N turns (a quick look)")
    ap.add_argument("--reader", default="", help="reader folder (default: the shipped one)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS / "understanding"), help="results path without extension")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    cfg = load_config()
    linker = Linker(load_catalog(cfg.catalog.path, cfg.catalog.format))
    labels = load_labels()
    split_turns = turns_by_split(
        load_dialogues(RedialFiles.from_config().train), file_dialogue_ids(RedialFiles.from_config().turns)
    )[args.split]
    split_turns = [t for t in split_turns if t.key in labels][: args.limit or None]
    by_key = {t.key: t for t in split_turns}
    rng = random.Random(1)
    examples = [make_example(t, labels[t.key], linker, rng) for t in split_turns]
    reader = MessageReader.load(args.reader) if args.reader else MessageReader.load()
    systems = {"product": Understander(linker, reader), "rules": Understander(linker, None)}
    recs = records(examples, by_key, linker)
    gold = [e.acts for e in examples]

    results: dict[str, object] = {
        "split": args.split,
        "turns": len(examples),
        "dialogues": len({t.dialog_id for t in split_turns}),
    }
    acts: dict[str, dict] = {}
    referents: dict[str, dict] = {}
    latency: dict[str, dict] = {}
    model_alone: list[tuple[str, ...]] = []
    for name, system in systems.items():
        predicted, seconds, hits, asked = [], [], 0, 0
        for rec, ex in zip(recs, examples, strict=True):
            start = time.perf_counter()
            _, reading = next(replay(system, [rec]))
            seconds.append(time.perf_counter() - start)
            predicted.append(reading.acts)
            if name == "product":
                model_alone.append(reading.model_acts)
            turn = by_key.get(ex.key)
            refers = labels[ex.key].get("refers")
            if turn is not None and refers and set(ex.acts) & {"accept", "reject", "seen", "ask_item", "ask_why"}:
                fact = turn.facts.get(refers)
                item = linker.resolve(fact.title) if fact else None
                if item is not None and item.label in rec["shown"]:
                    asked += 1
                    hits += reading.referent == item.id
        acts[name] = act_table(gold, predicted)
        referents[name] = {"turns": asked, "accuracy": round(hits / max(asked, 1), 4)}
        ms = sorted(s * 1000 for s in seconds)
        latency[name] = {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1)}
    acts["reader"] = act_table(gold, model_alone)
    acts["keyword"] = act_table(gold, [keyword_acts(e.text) for e in examples])
    results["acts"] = acts
    results["referent"] = referents
    results["latency"] = latency

    # Mention polarity on the labelled spans (marked movies, and what the linker finds in plain text).
    pol_pairs: dict[str, list[tuple[str, str]]] = {"product": [], "reader": [], "rules": [], "keyword": []}
    labelled = [(e, s) for e in examples for s in e.spans if s.label != "none"]
    for e in examples:
        spans = [s for s in e.spans if s.label != "none"]
        if not spans:
            continue
        got = reader.read(e.text, e.context, [(s.start, s.end) for s in spans])
        in_sentence = sentence_polarities(reader, e.text, e.context, [(s.start, s.end) for s in spans], got)
        for k, s in enumerate(spans):
            model = got.polarity(k) if got.polarity(k) != "none" else "neutral"
            rule = rule_reading(e.text, linker, s.start, s.end)
            product = product_polarity(rule, in_sentence[k]) if rule is not None else in_sentence[k]
            pol_pairs["product"].append((s.label, "neutral" if product == "none" else product))
            pol_pairs["reader"].append((s.label, model))
            pol_pairs["rules"].append((s.label, polarity_of(rule)))
            pol_pairs["keyword"].append((s.label, "dislike" if NEGATION.search(e.text) else "like"))
    results["polarity"] = {name: polarity_table(pairs) for name, pairs in pol_pairs.items()}
    results["polarity_spans"] = len(labelled)

    synthetic = [e for e in synthetic_examples() if e.key.startswith("dev")]
    syn_recs = [
        {"text": e.text, "context": e.context, "shown": re.findall(r"(?:How about |, | or )(.+? \(\d{4}\))", e.context)}
        for e in synthetic
    ]
    syn_gold = [e.acts for e in synthetic]
    syn_product = [r for _, r in replay(systems["product"], syn_recs)]
    results["synthetic"] = {
        "product": act_table(syn_gold, [r.acts for r in syn_product]),
        "reader": act_table(syn_gold, [r.model_acts for r in syn_product]),
        "rules": act_table(syn_gold, [r.acts for _, r in replay(systems["rules"], syn_recs)]),
        "keyword": act_table(syn_gold, [keyword_acts(e.text) for e in synthetic]),
    }
    results["synthetic_messages"] = len(synthetic)
    results["linking"] = linking(split_turns, labels, linker)
    results["machine"] = f"{platform.machine()}, {args.threads} torch threads"
    results["command"] = "python bench/understanding.py " + " ".join(sys.argv[1:])
    write(results, Path(args.out))


def _row(name: str, table: dict[str, dict], key: str = "f1") -> str:
    return f"| {name} | " + " | ".join(f"{table[a][key]:.2f}" for a in ACTS) + " |"


def write(results: dict, out: Path) -> None:
    acts, syn = results["acts"], results["synthetic"]
    lines = [
        f"# Understanding real users ({results['split']} split)",
        "",
        f"Command: `{results['command']}` ({results['machine']}). {results['turns']:,} annotated ReDial seeker turns from "
        f"{results['dialogues']} dialogues (split by dialogue; guideline docs/reader_annotation.md); titles written as "
        "people type them (with year, plain, lower case, with a typo).",
        "",
        "## Dialogue acts, F1",
        "",
        "| system | " + " | ".join(ACTS) + " |",
        "|---|" + "---|" * len(ACTS),
        "| support | " + " | ".join(str(acts["reader"][a]["support"]) for a in ACTS) + " |",
    ]
    lines += [_row(name, acts[name]) for name in ("product", "reader", "rules", "keyword")]
    lines += [
        "",
        "*product*: what the agent reads: the learned reader, plus the rules kept where they are exact (a critique's "
        'direction, a greeting or thanks; an explicit "no X" for polarity). *reader*: the learned reader alone. '
        "*rules*: the agent with the reader off. *keyword*: one regular expression per act.",
        "",
        f"Hand-written synthetic dev messages ({results['synthetic_messages']}; acts ReDial seekers rarely perform, "
        "written by us: weaker evidence than the ReDial rows):",
        "",
        "| system | " + " | ".join(ACTS) + " |",
        "|---|" + "---|" * len(ACTS),
        "| support | " + " | ".join(str(syn["reader"][a]["support"]) for a in ACTS) + " |",
    ]
    lines += [_row(name, syn[name]) for name in ("product", "reader", "rules", "keyword")]
    pol = results["polarity"]
    lines += [
        "",
        f"## Mention polarity ({results['polarity_spans']:,} labelled spans: marked movies and linked genres, people, typed titles)",
        "",
        "| system | accuracy | like F1 | dislike F1 | seen F1 | neutral F1 |",
        "|---|---|---|---|---|---|",
        "| support | | "
        + " | ".join(str(pol["reader"][k]["support"]) for k in ("like", "dislike", "seen", "neutral"))
        + " |",
    ]
    for name in ("product", "reader", "rules", "keyword"):
        p = pol[name]
        lines.append(
            f"| {name} | {p['accuracy']:.3f} | "
            + " | ".join(f"{p[k]['f1']:.2f}" for k in ("like", "dislike", "seen", "neutral"))
            + " |"
        )
    ref = results["referent"]
    lines += [
        "",
        "## The film a reaction or question is about",
        "",
        "Turns that accept, reject, say seen or ask about a film the recommender had just named, against the annotated film.",
        "",
        "| system | turns | accuracy |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {r['turns']} | {r['accuracy']:.3f} |" for name, r in ref.items()]
    link = results["linking"]
    lines += [
        "",
        "## Entity linking (marked movies, demo catalog)",
        "",
        "Recall: marked movies the demo catalog holds, linked to the right film. Precision: film links that are a marked "
        "movie, or a typed title the annotator listed.",
        "",
        "| typed as | marked | links | precision | recall | F1 |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {style} | {v['marked']} | {v['links']} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} |"
        for style, v in link.items()
    ]
    lat = results["latency"]
    lines += [
        "",
        "## Latency of reading one message (linking, references, rules, and the reader)",
        "",
        "| system | p50 ms | p95 ms |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {v['p50_ms']} | {v['p95_ms']} |" for name, v in lat.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
