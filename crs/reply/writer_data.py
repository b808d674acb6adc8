"""What the reply writer reads, and its training examples from real recommender turns.

At run time the agent fills ``prompts/reply.j2`` with the act, the user's last words, what they like
and rule out, and one fact line per film to name (``fact_line``: title, year, genres, a few cast
names, the director, a sentence of the summary, all from the catalog record). The training examples
are the same form, built from ReDial: each recommender turn that names a film (act ``recommend``) or
asks the seeker about their taste (act ``ask``), with the films it names mapped to the demo catalog,
the seeker's taste so far from the annotated earlier turns, and the seeker's last words; the target
is the human recommender's own words, each ``@movie`` written as the catalog's "Title (Year)".
Dialogues are split like the reader's (``crs.understand.redial_acts.split_of``): no dialogue of the
ReDial validation file is ever used.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crs.catalog import director_of
from crs.rank.embed import first_sentences
from crs.understand.redial_acts import MovieFact

if TYPE_CHECKING:
    from crs.catalog import Item
    from crs.llm.prompts import Prompts
    from crs.understand.linker import Linker
    from crs.understand.titles import TitleIndex

_AT = re.compile(r"@(\d+)")


def fact_line(item: Item, brief: bool = False) -> str:
    """One line of what the catalog says about a film: the only facts the writer may use. ``brief``:
    its title, year and genres only."""
    parts = [item.label]
    if item.genres:
        parts.append("genres " + ", ".join(item.genres[:3]))
    if brief:
        return "; ".join(parts)
    if item.cast:
        parts.append("starring " + ", ".join(item.cast[:3]))
    if director := director_of(item.summary):
        parts.append(f"directed by {director}")
    line = "; ".join(parts)
    sentence = plot_sentence(item)
    if sentence:
        line += ". " + (sentence if len(sentence) <= 220 else sentence[:220].rsplit(" ", 1)[0] + " ...")
    return line


def plot_sentence(item: Item) -> str:
    """A sentence of the summary that tells the story, not the lead that lists genre and makers
    ("Alien is a 1979 science fiction horror film directed by ..."), when the summary has one."""
    sentences = re.split(r"(?<=[.!?])\s+", first_sentences(item.summary, 4))
    for sentence in sentences[1:]:
        if not re.search(
            r"\b(stars|starring|features|featuring|cast|produced|written|distributed|released|premiered|grossed)\b",
            sentence,
        ):
            return sentence.strip()
    return sentences[0].strip() if sentences else ""


@dataclass(frozen=True)
class WriterExample:
    key: str
    act: str  # recommend | ask
    message: str
    likes: tuple[str, ...]
    dislikes: tuple[str, ...]
    films: tuple[str, ...]  # fact lines
    target: str
    item_ids: tuple[str, ...] = ()  # the catalog films the target names

    def variables(self) -> dict[str, object]:
        return {
            "act": self.act,
            "message": self.message,
            "likes": list(self.likes),
            "dislikes": list(self.dislikes),
            "films": list(self.films),
            "note": "",
            "profile": "",
        }


def _fill(text: str, facts: dict[str, MovieFact], labels: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        return labels.get(m.group(1)) or (facts[m.group(1)].title if m.group(1) in facts else "that movie")

    return re.sub(r"\s+", " ", _AT.sub(sub, text)).strip()


def writer_examples(dialogues: Iterable[dict], index: TitleIndex, labels: dict[str, dict]) -> list[WriterExample]:
    """Examples from raw ReDial dialogues; ``labels`` are the reader's annotations (taste so far)."""
    from crs.understand.redial_acts import movie_facts

    out: list[WriterExample] = []
    for d in dialogues:
        facts = movie_facts(d)
        items = {mid: index.resolve(f.title) for mid, f in facts.items()}
        catalog_labels = {mid: it.label for mid, it in items.items() if it is not None}
        seeker = d["initiatorWorkerId"]
        utts: list[tuple[str, str]] = []
        for msg in d.get("messages") or []:
            role = "seeker" if msg.get("senderWorkerId") == seeker else "recommender"
            text = str(msg.get("text") or "").strip()
            if not text:
                continue
            if utts and utts[-1][0] == role:
                utts[-1] = (role, utts[-1][1] + " " + text)
            else:
                utts.append((role, text))
        likes: list[str] = []
        dislikes: list[str] = []
        for k, (role, text) in enumerate(utts):
            if role == "seeker":
                label = labels.get(f"{d['conversationId']}:{k}") or {}
                for mid, pol in (label.get("movies") or {}).items():
                    name = catalog_labels.get(mid)
                    if name and pol == "like" and name not in likes:
                        likes.append(name)
                    elif name and pol == "dislike" and name not in dislikes:
                        dislikes.append(name)
                for words, pol in label.get("other") or []:
                    target = likes if pol == "like" else dislikes if pol == "dislike" else None
                    if target is not None and len(words) <= 40 and words not in target:
                        target.append(words)
                continue
            if k == 0 or utts[k - 1][0] != "seeker":
                continue
            named = [mid for mid in dict.fromkeys(_AT.findall(text)) if mid in catalog_labels]
            unmapped = [mid for mid in _AT.findall(text) if mid not in catalog_labels]
            message = _fill(utts[k - 1][1], facts, catalog_labels)[:300]
            target = _fill(text, facts, catalog_labels)
            if len(target) < 8 or len(target) > 400 or unmapped:
                continue
            if named:
                films = tuple(fact_line(items[mid]) for mid in named[:3])  # type: ignore[arg-type]
                act = "recommend"
            elif target.rstrip().endswith("?") and k <= 4:
                films, act = (), "ask"
            else:
                continue
            ids = tuple(items[mid].id for mid in named[:3])  # type: ignore[union-attr]
            key = f"{d['conversationId']}:{k}"
            out.append(WriterExample(key, act, message, tuple(likes[-4:]), tuple(dislikes[-3:]), films, target, ids))
    return out


def well_grounded(ex: WriterExample, linker: Linker) -> bool:
    """A target worth learning: 5 to 45 words, and every sentence passes the reply guard with only the
    example's films allowed (no other film, no name or title its facts do not hold, no third person)."""
    from crs.reply.grounding import GroundingGuard

    if not 5 <= len(ex.target.split()) <= 45:
        return False
    guard = GroundingGuard(linker, set(ex.item_ids))
    guard.feed(ex.target + " ")
    guard.flush()
    return not guard.removed


def encode_example(
    tokenizer: object, prompts: Prompts, ex: WriterExample, max_len: int = 320
) -> tuple[list[int], list[int]]:
    """Token ids of the filled prompt and the target, and the labels (-100 on the prompt: only the
    target is learned or scored)."""
    messages = [{"role": m.role, "content": m.content} for m in prompts.render("reply", **ex.variables())]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)  # type: ignore[attr-defined]
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    t_ids = tokenizer(ex.target + "<|im_end|>", add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    p_ids = p_ids[-(max_len - len(t_ids)) :] if len(p_ids) + len(t_ids) > max_len else p_ids
    return p_ids + t_ids, [-100] * len(p_ids) + t_ids


def pad_batches(rows: list[tuple[list[int], list[int]]], size: int, pad: int) -> list[tuple]:
    """(input ids, attention mask, labels) tensors of ``size`` rows each, right-padded."""
    import torch

    out = []
    for i in range(0, len(rows), size):
        chunk = rows[i : i + size]
        n = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), n), pad)
        labels = torch.full((len(chunk), n), -100)
        mask = torch.zeros((len(chunk), n), dtype=torch.long)
        for r, (x, y) in enumerate(chunk):
            ids[r, : len(x)] = torch.tensor(x)
            labels[r, : len(y)] = torch.tensor(y)
            mask[r, : len(x)] = 1
        out.append((ids, mask, labels))
    return out


def perplexity(model: object, batches: list[tuple], device: str = "cpu") -> float:
    """Per-token perplexity of the targets (the labelled tokens) under ``model``."""
    import math

    import torch

    model.eval()  # type: ignore[attr-defined]
    total, tokens = 0.0, 0
    with torch.inference_mode():
        for ids, mask, labels in batches:
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))  # type: ignore[operator]
            n = int((labels[:, 1:] != -100).sum())
            total += float(out.loss) * n
            tokens += n
    return math.exp(total / max(tokens, 1))


def sample(examples: list[WriterExample], n: int, seed: int = 0) -> list[WriterExample]:
    """``n`` examples, recommend and ask turns in their natural share, fixed by ``seed``."""
    rng = random.Random(seed)
    return rng.sample(examples, n) if n < len(examples) else list(examples)
