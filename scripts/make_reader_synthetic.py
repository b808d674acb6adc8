"""Write ``knowledge/reader/synthetic.jsonl``: hand-written messages for what ReDial seekers rarely do.

    python scripts/make_reader_synthetic.py

In ReDial the recommender suggests one or two films at a time and is almost never asked *why*, so the
annotated turns hold no ``ask_why``, few critiques, and no references by position ("the fourth
one"). This crs agent shows five picks in a list. The templates below were written by hand for
those cases, with the agent's own context ("How about A (1999), B (2004), ...?"); each is filled
with random catalog titles. About 15% go to a ``dev`` part (keys ``dev-*``), which the training
script scores apart from the ReDial dev turns. Spans carry the polarity of a named film.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDINALS = ["first", "second", "third", "fourth", "fifth", "last", "top", "2nd", "3rd", "#2", "number 3"]

# (act(s), template). {ref}: a reference to a shown film ("the second one", "that one" or its title);
# {title}: a shown film's title (a span with the act's polarity).
TEMPLATES: list[tuple[tuple[str, ...], str]] = [
    # asking why
    (("ask_why",), "why did you pick {title}?"),
    (("ask_why",), "why {title}?"),
    (("ask_why",), "why the {ord} one"),
    (("ask_why",), "what makes {title} a good fit for me"),
    (("ask_why",), "why would i like {title}"),
    (("ask_why",), "how is {title} anything like what i asked for?"),
    (("ask_why",), "why that one?"),
    (("ask_why",), "y did u recommend that"),
    (("ask_why",), "why'd you suggest {title}"),
    (("ask_why",), "what does the {ord} one have to do with what i said"),
    (("ask_why",), "how come you chose {title}?"),
    (("ask_why",), "whats the reason for {title}"),
    (("ask_why",), "why is {title} on the list"),
    (("ask_why",), "explain the {ord} pick"),
    (("ask_why",), "what made you think of {title}?"),
    (("ask_why",), "why do you think i'd enjoy that one"),
    (("ask_why",), "Why did you recommend {title}?"),
    (("ask_why",), "wait why {title} lol"),
    (("ask_why", "ask_item"), "why the {ord} one, is it even funny?"),
    # critiques of the list just shown
    (("critique",), "something newer"),
    (("critique",), "anything more recent?"),
    (("critique",), "those are too old"),
    (("critique",), "older ones please, i like classics"),
    (("critique",), "funnier please"),
    (("critique",), "something lighter"),
    (("critique",), "less violent maybe"),
    (("critique",), "too dark, something happier?"),
    (("critique",), "not so scary pls"),
    (("critique",), "more action"),
    (("critique",), "something different"),
    (("critique",), "these all look the same, something else"),
    (("critique",), "can it be more romantic"),
    (("critique",), "less gore"),
    (("critique",), "something from the last few years"),
    (("critique",), "a bit more serious"),
    (("critique",), "more like the {ord} one"),
    (("critique",), "none of those, something else"),
    (("critique", "reject"), "meh, not really feeling these. got anything else"),
    (("critique",), "Something a little less intense?"),
    (("critique",), "shorter ones? i dont have much time"),
    (("critique",), "any that are more family friendly"),
    (("critique",), "hmm smarter ones"),
    # questions about a shown film, by position
    (("ask_item",), "what's the {ord} one about?"),
    (("ask_item",), "who's in the {ord} one?"),
    (("ask_item",), "is the {ord} one scary?"),
    (("ask_item",), "who directed the {ord} one"),
    (("ask_item",), "when did the {ord} one come out"),
    (("ask_item",), "tell me more about the {ord} one"),
    (("ask_item",), "what is {title} about"),
    (("ask_item",), "whos in {title}"),
    (("ask_item",), "is {title} any good?"),
    # reactions to a shown film, by position or by title
    (("accept",), "the {ord} one looks good, i'll take it"),
    (("accept",), "ooh {title} sounds great"),
    (("accept",), "i'll go with the {ord}"),
    (("accept",), "{title} it is"),
    (("accept",), "adding {title} to my list"),
    (("accept",), "the {ord} one sounds fun"),
    (("reject",), "the {ord} one is not my cup of tea"),
    (("reject",), "i'll pass on {title}"),
    (("reject",), "nah not {title}"),
    (("reject",), "the {ord} doesnt appeal to me"),
    (("reject",), "{title} looks boring tbh"),
    (("reject",), "not feeling the {ord} one"),
    (("seen",), "already watched the {ord} one"),
    (("seen",), "seen {title} already"),
    (("seen",), "i've seen the {ord} one"),
    (("seen",), "watched both of those"),
    (("seen",), "seen all of them lol"),
    (("seen",), "not that one, seen it"),
    (("seen", "accept"), "saw {title} last year, loved it"),
    (("seen", "reject"), "seen the {ord} one, didnt like it"),
    (("seen", "request"), "seen those, anything else?"),
]
POLARITY = {"accept": "like", "reject": "dislike", "seen": "seen"}


def context(titles: list[str]) -> str:
    return "How about " + ", ".join(titles[:-1]) + " or " + titles[-1] + "?"


def main() -> None:
    rng = random.Random(7)
    with gzip.open(ROOT / "knowledge" / "movies.jsonl.gz", "rt", encoding="utf-8") as fh:
        films = [json.loads(line) for line in fh]
    films = [f for f in films if f.get("year", 0) >= 1970 and f.get("popularity", 0) >= 5]
    out = []
    for n in range(3):
        for k, (acts, template) in enumerate(TEMPLATES):
            shown = rng.sample(films, 5)
            labels = [f"{f['title']} ({f['year']})" for f in shown]
            pick = rng.choice(shown)
            written = pick["title"].lower() if rng.random() < 0.4 else pick["title"]
            text = template.replace("{ord}", rng.choice(ORDINALS))
            spans = []
            if "{title}" in text:
                start = text.index("{title}")
                text = text.replace("{title}", written)
                label = next((POLARITY[a] for a in acts if a in POLARITY), "neutral")
                spans.append({"start": start, "end": start + len(written), "label": label})
            part = "dev" if (k + n) % 7 == 0 else "train"
            out.append(
                {"key": f"{part}-{n}-{k}", "text": text, "context": context(labels), "acts": list(acts), "spans": spans}
            )
    path = ROOT / "knowledge" / "reader" / "synthetic.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    print(f"{len(out)} messages ({sum(r['key'].startswith('dev') for r in out)} dev) -> {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
