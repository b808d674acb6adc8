"""Replies worth reading: the base SmolLM2 against the tuned reply writer, side by side.

    python bench/replies.py [--dev 120] [--dialogues 40] [--adapter knowledge/writer]

1. **Held-out human recommender turns** (ReDial ``dev`` dialogues, never trained on; never the
   validation file): per-token perplexity of the human turn given ``prompts/reply.j2``; and, for the
   first ``--generate`` of them, the model's own reply, checked *before* the reply guard: third-person
   talk about the user, a repeated sentence, an ungrounded name or title (a film outside the turn's
   films, or a capitalised name their facts do not hold); distinct-1/2, length, seconds.
2. **The shipped scripted dialogues** (the first ``--dialogues`` files by name), every turn through the
   real agent with each model: what the user reads after the guard (goal: no third person, no repeated
   sentence, no ungrounded name), the guard's drops by reason, recommend replies that name the top pick
   with a reason, and the turn's seconds.
3. **20 turns before and after**, chosen by a fixed rule: the first turn of each of the first 20
   dialogues by file name.

Prints the tables and writes bench/results/replies.md and .json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crs.agent import Agent  # noqa: E402
from crs.config import load_config  # noqa: E402
from crs.eval.redial.data import RedialFiles, file_dialogue_ids, load_dialogues  # noqa: E402
from crs.eval.scripted import load_dialogues as load_scripted  # noqa: E402
from crs.llm.base import Message  # noqa: E402
from crs.llm.local import LocalChatModel  # noqa: E402
from crs.llm.prompts import Prompts  # noqa: E402
from crs.reply.grounding import GroundingGuard  # noqa: E402
from crs.reply.writer_data import encode_example, pad_batches, perplexity, sample, well_grounded, writer_examples  # noqa: E402
from crs.state import FinalEvent, Session  # noqa: E402
from crs.understand.reader_data import load_labels  # noqa: E402
from crs.understand.redial_acts import split_of  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DIALOGUES = Path(__file__).resolve().parents[1] / "crs" / "eval" / "dialogues"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class Recording:
    """A chat model that remembers the raw text of every reply (before any guard)."""

    def __init__(self, model: LocalChatModel) -> None:
        self.model = model
        self.raw: list[str] = []
        self.name = model.name

    def generate(self, messages: list[Message], **kw: object) -> str:
        return self.model.generate(messages, **kw)  # type: ignore[arg-type]

    def stream(self, messages: list[Message], **kw: object):  # noqa: ANN201
        text = ""
        for piece in self.model.stream(messages, **kw):  # type: ignore[arg-type]
            text += piece
            yield piece
        self.raw.append(text)


def raw_checks(text: str, guard: GroundingGuard) -> dict[str, bool]:
    """What is wrong with a reply as the model wrote it."""
    sentences = [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]
    norm = [re.sub(r"\W+", " ", s.casefold()).strip() for s in sentences]
    return {
        "third_person": bool(re.search(r"\bthe user\b|\buser's\b", text, re.I)),
        "repeated": len(set(norm)) < len(norm),
        "ungrounded": any(_ungrounded(guard.problem(s)) for s in sentences),
    }


def _ungrounded(problem: str) -> bool:
    """A film outside the allowed set, an invented title, or a claim its record does not hold."""
    return problem in ("invented title", "names another film") or problem.startswith("unsupported")


def distinct(texts: list[str], n: int) -> float:
    grams = [tuple(ws[i : i + n]) for t in texts for ws in [t.casefold().split()] for i in range(len(ws) - n + 1)]
    return len(set(grams)) / max(len(grams), 1)


def held_out(
    model: LocalChatModel, linker: object, examples: list, generate: int, ppl: bool = True
) -> dict[str, object]:
    prompts = Prompts()
    tok = model.tokenizer
    rows = sorted((encode_example(tok, prompts, ex) for ex in examples), key=lambda r: len(r[0]))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ppl = perplexity(model.model, pad_batches(rows, 8, pad)) if ppl else float("nan")
    outs, flags, seconds = [], Counter(), []
    for ex in examples[:generate]:
        start = time.perf_counter()
        text = model.generate(prompts.render("reply", **ex.variables()), max_new_tokens=60, temperature=0.0)
        seconds.append(time.perf_counter() - start)
        outs.append(text.strip())
        flags.update(k for k, v in raw_checks(text, GroundingGuard(linker, set(ex.item_ids))).items() if v)  # type: ignore[arg-type]
    n = max(len(outs), 1)
    return {
        "perplexity": round(ppl, 3),
        "generated": len(outs),
        "third_person": round(flags["third_person"] / n, 4),
        "repeated": round(flags["repeated"] / n, 4),
        "ungrounded": round(flags["ungrounded"] / n, 4),
        "distinct1": round(distinct(outs, 1), 4),
        "distinct2": round(distinct(outs, 2), 4),
        "mean_words": round(statistics.mean(len(o.split()) for o in outs), 1) if outs else 0,
        "seconds_median": round(statistics.median(seconds), 2) if seconds else 0,
        "samples": [
            {"input": ex.message, "target": ex.target, "reply": o} for ex, o in zip(examples[:8], outs, strict=False)
        ],
    }


def scripted(agent: Agent, recording: Recording, dialogues: list) -> dict[str, object]:
    turns, seconds, flags, guard_drops = [], [], Counter(), Counter()
    named_top, recommends = 0, 0
    for dialogue in dialogues:
        session = Session(id=f"replies-{dialogue.name}", user="")
        for n, turn in enumerate(dialogue.turns):
            text = re.sub(r"\{prev_\w+\}", "that one", turn.user)
            start = time.perf_counter()
            events = list(agent.step(session, text))
            seconds.append(time.perf_counter() - start)
            final = next(e for e in events if isinstance(e, FinalEvent))
            reply = final.reply.split("\n\nMy picks:")[0]
            # The reply may name its picks and any film the conversation has named (liked, seen, shown before).
            belief = final.belief
            named = {p.value for p in belief.preferences if p.kind == "item"} | set(belief.seen) | set(belief.shown)
            guard = GroundingGuard(agent.linker, {i.id for i in final.items} | named)
            flags.update(k for k, v in raw_checks(reply, guard).items() if v)
            if final.act == "recommend" and final.items:
                recommends += 1
                top = final.items[0]
                named_top += top.title.split(":")[0] in reply and "because" in reply  # type: ignore[attr-defined]
            turns.append({"dialogue": dialogue.name, "turn": n + 1, "user": text, "act": final.act, "reply": reply})
            del events
    for raw in recording.raw:
        guard_drops.update(
            k for k, v in raw_checks(raw, GroundingGuard(agent.linker, set())).items() if v and k != "ungrounded"
        )
    n = max(len(turns), 1)
    return {
        "turns": len(turns),
        "shown_third_person": flags["third_person"] / n,
        "shown_repeated": flags["repeated"] / n,
        "shown_ungrounded": flags["ungrounded"] / n,
        "raw_third_person": round(guard_drops["third_person"] / max(len(recording.raw), 1), 4),
        "raw_repeated": round(guard_drops["repeated"] / max(len(recording.raw), 1), 4),
        "recommend_turns": recommends,
        "top_pick_with_reason": round(named_top / max(recommends, 1), 4),
        "distinct1": round(distinct([t["reply"] for t in turns], 1), 4),
        "distinct2": round(distinct([t["reply"] for t in turns], 2), 4),
        "mean_words": round(statistics.mean(len(t["reply"].split()) for t in turns), 1),
        "turn_seconds_median": round(statistics.median(seconds), 2),
        "turn_seconds_p95": round(sorted(seconds)[int(0.95 * (len(seconds) - 1))], 2),
        "replies": turns,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev", type=int, default=120, help="held-out human turns for perplexity")
    ap.add_argument("--generate", type=int, default=40, help="of those, how many the models also answer")
    ap.add_argument("--dialogues", type=int, default=40, help="scripted dialogues to play (first N by name)")
    ap.add_argument("--adapter", default="", help="the tuned writer (default: the shipped knowledge/writer)")
    ap.add_argument(
        "--decoding",
        default="1.0/0,1.1/0,1.0/3,1.1/3,1.2/4",
        help="repetition penalty / no-repeat n-gram size pairs tried with the tuned writer on the dev turns",
    )
    args = ap.parse_args()
    cfg = load_config()
    base_cfg = dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, adapter="off"))
    tuned_cfg = dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, adapter=args.adapter or "auto"))
    models = {"base": LocalChatModel(base_cfg), "tuned": LocalChatModel(tuned_cfg)}
    if models["tuned"].adapter is None:
        raise SystemExit("no tuned writer to compare: train one with scripts/train_writer.py")
    base_agent = Agent.from_config(cfg, progress=False, llm=models["base"], profiles=False)
    linker = base_agent.linker
    evaluated = file_dialogue_ids(RedialFiles.from_config().turns)
    raw = [
        d
        for d in load_dialogues(RedialFiles.from_config().train)
        if split_of(str(d["conversationId"]), evaluated) == "dev"
    ]
    dev = sample(
        [ex for ex in writer_examples(raw, linker.index, load_labels()) if well_grounded(ex, linker)], args.dev, 1
    )
    dialogues = load_scripted(DIALOGUES)[: args.dialogues]
    results: dict[str, object] = {"dev_turns": len(dev), "dialogues": len(dialogues)}
    for name, model in models.items():
        recording = Recording(model)
        agent = Agent(
            cfg,
            base_agent.catalog,
            base_agent.store,
            recording,
            scorer=base_agent.scorer,
            reader=base_agent.understander.reader,
        )  # type: ignore[arg-type]
        results[name] = {
            "held_out": held_out(model, linker, dev, args.generate),
            "scripted": scripted(agent, recording, dialogues),
        }
    results["decoding"] = decoding(models["tuned"], cfg, linker, dev, args.generate, args.decoding)
    write(results)


def decoding(model: LocalChatModel, cfg: object, linker: object, dev: list, generate: int, settings: str) -> list:
    """The tuned writer's own replies to the dev turns under each decoding setting (before any guard)."""
    rows, shipped = [], model.cfg
    for setting in settings.split(","):
        penalty, ngram = setting.split("/")
        llm = dataclasses.replace(shipped.llm, repetition_penalty=float(penalty), no_repeat_ngram_size=int(ngram))
        model.cfg = dataclasses.replace(shipped, llm=llm)
        got = held_out(model, linker, dev, generate, ppl=False)
        rows.append({"repetition_penalty": float(penalty), "no_repeat_ngram_size": int(ngram)} | got)
    model.cfg = shipped
    return rows


def write(results: dict) -> None:
    rows = []
    for name in ("base", "tuned"):
        h, s = results[name]["held_out"], results[name]["scripted"]
        rows.append(
            f"| {name} | {h['perplexity']:.2f} | {h['third_person']:.0%} | {h['repeated']:.0%} | {h['ungrounded']:.0%} | "
            f"{h['distinct1']:.2f} / {h['distinct2']:.2f} | {h['mean_words']} | {s['raw_third_person']:.0%} | "
            f"{s['raw_repeated']:.0%} | {s['shown_third_person']:.0%} / {s['shown_repeated']:.0%} / "
            f"{s['shown_ungrounded']:.0%} | "
            f"{s['top_pick_with_reason']:.0%} | {s['distinct1']:.2f} / {s['distinct2']:.2f} | {s['turn_seconds_median']} / {s['turn_seconds_p95']} |"
        )
    lines = [
        "# Replies: base SmolLM2-135M-Instruct against the tuned reply writer",
        "",
        f"Command: `python bench/replies.py`. Held-out: {results['dev_turns']} human recommender turns of ReDial dev "
        f"dialogues (perplexity of the human turn; the models' own replies to the first ones, before the guard). "
        f"Scripted: every turn of {results['dialogues']} shipped dialogues through the agent (raw = the model's text "
        "before the reply guard; shown = what the user reads).",
        "",
        "| model | held-out perplexity | raw third person | raw repeated | raw ungrounded | distinct-1/2 | words | "
        "scripted raw third person | scripted raw repeated | shown third person / repeated / ungrounded | recommend replies naming the "
        "top pick with a reason | shown distinct-1/2 | turn s p50 / p95 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "## Decoding settings of the tuned writer, on the dev turns (its own text, before the guard)",
        "",
        "| repetition penalty | no-repeat n-gram | third person | repeated | ungrounded | distinct-1/2 | words | s |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {d['repetition_penalty']} | {d['no_repeat_ngram_size']} | {d['third_person']:.0%} | {d['repeated']:.0%} | "
            f"{d['ungrounded']:.0%} | {d['distinct1']:.2f} / {d['distinct2']:.2f} | {d['mean_words']} | "
            f"{d['seconds_median']} |"
            for d in results["decoding"]
        ),
        "",
        "## 20 turns before (base) and after (tuned): the first turn of each of the first 20 dialogues",
        "",
        "| dialogue | user | base | tuned |",
        "|---|---|---|---|",
    ]
    base_turns = {(t["dialogue"], t["turn"]): t for t in results["base"]["scripted"]["replies"]}
    tuned_turns = {(t["dialogue"], t["turn"]): t for t in results["tuned"]["scripted"]["replies"]}
    for key in [k for k in base_turns if k[1] == 1][:20]:
        cell = lambda t: t["reply"].replace("|", "/").replace("\n", " ")  # noqa: E731
        lines.append(
            f"| {key[0]} | {base_turns[key]['user']} | {cell(base_turns[key])} | {cell(tuned_turns.get(key, base_turns[key]))} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replies.md").write_text(text, encoding="utf-8")
    (RESULTS / "replies.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
