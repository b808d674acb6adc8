"""Reading one message in its conversation: the public entry point of understanding.

``Understander.read(text, belief, turn)`` links what the message names (``Linker``), finds what it
points at among the films just shown (``find_references``), asks the learned reader which dialogue
acts it performs and how it speaks of each mention, and keeps the rules where exactness matters
(an explicit "no X" is always a dislike, year limits, critiques' directions, "forget X"). It returns
a ``Reading``: the acts, every mention with its polarity and where it came from, the references, the
film a question or reaction is about, and the ``BeliefUpdate`` the message makes. No retrieval and no
LLM run here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crs.state import BeliefState, BeliefUpdate, Preference
from crs.understand.intents import Intent, question_field, read_intent
from crs.understand.lexicon import NEGATING_PAIRS
from crs.understand.linker import Linker, Mention
from crs.understand.nlu import RuleReading, one_statement_each, opinion_of, read_mentions, statement_starts
from crs.understand.redial_acts import ACTS
from crs.understand.references import Reference, find_references, selects
from crs.understand.text import Token, content_words, tokenize

if TYPE_CHECKING:
    from crs.catalog import Catalog
    from crs.understand.reader import MessageReader
    from crs.understand.reader import Reading as ReaderReading

log = logging.getLogger(__name__)

REACTIONS = ("accept", "reject", "seen")
_REQUEST_WORDS = frozenset(
    "more another else recommend recommendation suggest suggestion suggestions show give any anything something ideas "
    "watch pick".split()
)


@dataclass(frozen=True)
class MentionReading:
    """One thing the message names, and how the message speaks of it."""

    kind: str  # item | person | genre | keyword
    value: str  # item id, canonical name, genre, theme
    text: str  # the words as typed
    polarity: str  # like | dislike | seen | neutral | none (the words do not name it here)
    rule: int  # the rules' polarity: +1, -1, 0
    model: str | None = None  # the learned reader's polarity, when it read the message
    negated: bool = False  # under an explicit negation: always a dislike
    exact: bool = True  # False: linked despite a typo
    describes: bool = False  # only says which shown film is meant ("the one with Keanu")


@dataclass(frozen=True)
class Reading:
    text: str
    acts: tuple[str, ...]  # dialogue acts, most probable first
    mentions: tuple[MentionReading, ...]
    references: tuple[Reference, ...]
    referent: str | None  # the film a question, an explanation or a reaction is about
    intent: Intent  # the rules' reading: question field, critique, constraints, retractions, shift
    update: BeliefUpdate  # what the message changes in the belief
    act_probs: Mapping[str, float] = field(default_factory=dict)  # empty when the rules read it
    source: str = "rules"  # rules | model
    question: str | None = None  # what a question about the referent asks: director, cast, plot, year, genre, general
    model_acts: tuple[str, ...] = ()  # the learned reader's acts alone (``acts`` adds the exact rules)

    def to_dict(self, catalog: Catalog | None = None) -> dict[str, object]:
        """A JSON-ready record, films named by label when ``catalog`` is given."""

        def name(item_id: str) -> str:
            item = catalog.get(item_id) if catalog is not None else None
            return item.label if item else item_id

        u = self.update
        return {
            "text": self.text,
            "acts": list(self.acts),
            "act_probs": {a: round(p, 4) for a, p in self.act_probs.items()},
            "model_acts": list(self.model_acts),
            "source": self.source,
            "mentions": [
                {
                    "kind": m.kind,
                    "value": m.value,
                    "label": name(m.value) if m.kind == "item" else m.value,
                    "text": m.text,
                    "polarity": m.polarity,
                    "rule": m.rule,
                    "model": m.model,
                    "negated": m.negated,
                    "exact": m.exact,
                    "describes": m.describes,
                }
                for m in self.mentions
            ],
            "references": [{"items": [name(i) for i in r.item_ids], "how": r.how} for r in self.references],
            "referent": name(self.referent) if self.referent else None,
            "question": self.question,
            "update": {
                "liked": [_pref_name(p, name) for p in u.preferences if p.polarity > 0],
                "disliked": [_pref_name(p, name) for p in u.preferences if p.polarity < 0],
                "seen": [name(i) for i in u.seen],
                "accepted": [name(i) for i in u.accepted],
                "retract": [f"{k}: {v}" for k, v in u.retract],
                "constraints": [f"{c.kind} {c.value}" for c in u.constraints],
            },
        }


def _pref_name(p: Preference, name: object) -> str:
    return name(p.value) if p.kind == "item" else f"{p.kind}: {p.value}"  # type: ignore[operator]


class Understander:
    """Reads messages for all sessions: the linker, the optional learned reader (shared, read-only)."""

    def __init__(self, linker: Linker, reader: MessageReader | None = None) -> None:
        self.linker = linker
        self.reader = reader

    @property
    def catalog(self) -> Catalog:
        return self.linker.catalog

    def _asks_after_comma(self, text: str, tokens: list[Token], context: str, belief: BeliefState) -> bool:
        """A statement opened by a comma asks for a recommendation on its own."""
        if self.reader is None:
            return False
        parts = _comma_parts(text, tokens)
        context = context or agent_context(belief, self.catalog) if parts else context
        return any("request" in self.reader.read(part, context, []).chosen for part in parts)

    def read(self, text: str, belief: BeliefState, turn: int = 0, context: str = "") -> Reading:
        """What ``text`` says, given what the conversation believes and showed so far. ``context``:
        the agent's last words (the learned reader reads the message against them)."""
        tokens = tokenize(text)
        mentions = self.linker.mentions(text)
        shown = [it for it in (self.catalog.get(i) for i in belief.last_shown) if it is not None]
        focus = self.catalog.get(belief.focus) if belief.focus else None
        references = find_references(text, shown, focus, mentions, tokens)
        pointed = next((r.item_ids[0] for r in references if len(r.item_ids) == 1), None)
        intent = read_intent(text, self.linker, belief, turn, mentions=mentions, referent=pointed)
        rules = read_mentions(text, self.linker, mentions)
        if self.reader is not None and tokens:
            spans = [(tokens[m.start].start, tokens[m.end - 1].end) for m in mentions]
            got = self.reader.read(text, context or agent_context(belief, self.catalog), spans)
            probs = got.acts
            # Rules kept where they are exact: a critique's direction ("newer", "funnier", "not that one"),
            # and a greeting, thanks or goodbye (small talk by the annotation guideline's own definition).
            exact = ["critique"] if intent.critique else []
            exact += ["chitchat"] if _SMALL_TALK.search(text) else []
            exact += ["request"] if _MORE.search(text) or self._asks_after_comma(text, tokens, context, belief) else []
            exact += ["request"] if _asks_for_a_kind(intent, references, mentions) else []
            acts = _consistent(tuple(dict.fromkeys([*got.chosen, *exact])), text, tokens, references, mentions, belief)
            if "request" in exact and "ask_item" in acts and not references:
                acts = tuple(a for a in acts if a != "ask_item")
            model_acts = got.chosen
            model_pols: list[str | None] = list(
                sentence_polarities(self.reader, text, context or agent_context(belief, self.catalog), spans, got)
            )
            source = "model"
        else:
            acts, probs = tuple(rule_acts(intent, rules, references, belief, text)), {}
            model_acts = ()
            model_pols = [None] * len(mentions)
            source = "rules"
        described = {k for r in references if r.how == "descriptor" for k in range(r.start, r.end)}
        readings = tuple(
            _mention_reading(r, pol, r.mention.start in described) for r, pol in zip(rules, model_pols, strict=True)
        )
        words = [t.norm for t in tokens]
        selectors = {r.mention.value for r in rules if r.mention.kind == "person" and selects(words, r.mention.start)}
        referent = self._referent(acts, intent, references, readings, belief, selectors)
        update = self._update(readings, acts, intent, references, referent, belief, turn, rules, tokens)
        asks = "ask_item" in acts and "ask_why" not in acts
        question = (intent.about if intent.kind == "question" else question_field(text)) if asks else None
        return Reading(
            text,
            tuple(acts),
            readings,
            tuple(references),
            referent,
            intent,
            update,
            probs,
            source,
            question,
            model_acts,
        )

    def _referent(
        self,
        acts: tuple[str, ...] | list[str],
        intent: Intent,
        references: list[Reference],
        readings: tuple[MentionReading, ...],
        belief: BeliefState,
        selectors: set[str],
    ) -> str | None:
        """The film a question, an explanation or a reaction is about: what the message points at,
        else a film it names, else the one in focus, else the first shown. ``selectors``: people the
        message picks a film out by ("the one with Keanu")."""
        if references:
            first = references[0].item_ids[0]
            if "ask_why" in acts and first not in belief.shown and belief.last_shown:
                return belief.last_shown[0]  # "why that one?" asks about a pick, not a film asked about
            return first
        named = [m.value for m in readings if m.kind == "item" and m.polarity != "none"]
        if named and (intent.kind != "none" or {"ask_item", "ask_why"} & set(acts)):
            return named[0]
        if intent.item_id:
            return intent.item_id
        if {"ask_item", "ask_why", *REACTIONS} & set(acts) and not named:
            fallback = belief.focus or (belief.last_shown[0] if belief.last_shown else None)
            item = self.catalog.get(fallback) if fallback else None
            if item is not None and selectors and not selectors & set(item.people):
                return None  # "the one with Keanu" when the film in focus has no Keanu: about none shown
            return fallback
        return None

    def _update(
        self,
        readings: tuple[MentionReading, ...],
        acts: tuple[str, ...] | list[str],
        intent: Intent,
        references: list[Reference],
        referent: str | None,
        belief: BeliefState,
        turn: int,
        rules: list[RuleReading],
        tokens: list[Token] | None = None,
    ) -> BeliefUpdate:
        asking = bool({"ask_item", "ask_why"} & set(acts))
        prefs: list[Preference] = []
        seen: list[str] = []
        for m, r in zip(readings, rules, strict=True):
            if m.describes or (asking and m.value == referent and not m.negated):
                continue  # "the one with Keanu", "what is Heat about?": no taste said
            if m.polarity in ("like", "dislike"):
                polarity = 1 if m.polarity == "like" else -1
                source = "rule" if m.model is None else "reader"
                prefs.append(Preference(m.kind, m.value, polarity, turn, source, m.text, r.strength))  # type: ignore[arg-type]
            if m.kind == "item" and (m.polarity == "seen" or r.seen and m.polarity != "none"):
                seen.append(m.value)
        # Reactions to shown films: "the fourth looks good", "seen both of those", "not my cup of tea".
        targets = list(dict.fromkeys(i for r in references for i in r.item_ids)) or ([referent] if referent else [])
        accepted: list[str] = []
        if targets and not asking:
            if "seen" in acts:
                seen += targets
            if "reject" in acts and "accept" not in acts:
                prefs += [Preference("item", t, -1, turn=turn, source="critique", text="rejected") for t in targets]
            elif "accept" in acts:
                if "seen" in acts and opinion_of([t.norm for t in tokens or []]) > 0:  # "seen it, loved it"
                    prefs += [Preference("item", t, 1, turn=turn, source="reader", text="liked") for t in targets]
                else:
                    accepted += targets
        own = BeliefUpdate(
            preferences=one_statement_each(prefs), seen=tuple(dict.fromkeys(seen)), accepted=tuple(accepted)
        )
        return own.merged(BeliefUpdate(intent.update.preferences, (), intent.update.retract, intent.update.constraints))


def _comma_parts(text: str, tokens: list[Token]) -> list[str]:
    """The statements a comma opens ("no Tom Cruise, a thriller"): the reader, trained on whole
    chat messages, may miss a request that follows a dislike in the same sentence."""
    starts = statement_starts(text, tokens)
    ends = [at for at, _ in starts[1:]] + [len(text)]
    return [text[at:end] for (at, by_comma), end in zip(starts, ends, strict=False) if by_comma]


def sentence_polarities(
    reader: MessageReader, text: str, context: str, spans: list[tuple[int, int]], whole: ReaderReading | None = None
) -> list[str]:
    """The reader's polarity of each span, read in the span's own sentence (``whole``: the reading of
    the whole message, when there is one already): in "I'd rather avoid Tom Cruise. a thriller" the
    first sentence does not colour the second."""
    whole = whole or reader.read(text, context, spans)
    out = [whole.polarity(k) for k in range(len(spans))]
    for lo, hi, ks in _sentences_with(text, spans):
        if len(ks) < len(spans):
            part = reader.read(text[lo:hi], context, [(spans[k][0] - lo, spans[k][1] - lo) for k in ks])
            for j, k in enumerate(ks):
                out[k] = part.polarity(j)
    return out


def _sentences_with(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int, list[int]]]:
    """The statements of ``text`` that hold mentions: (start, end, the mentions' indices); see
    ``nlu.statement_starts``."""
    cuts = [at for at, _ in statement_starts(text, tokenize(text), spans)]
    bounds = list(zip([0, *cuts], [*cuts, len(text)], strict=True))
    out = []
    for lo, hi in bounds:
        ks = [k for k, (a, _) in enumerate(spans) if lo <= a < hi]
        if ks:
            out.append((lo, hi, ks))
    return out


def _mention_reading(rule: RuleReading, model: str | None, describes: bool) -> MentionReading:
    m: Mention = rule.mention
    if model == "none" and not describes and m.kind != "item":
        model = None  # a genre or person the words name, though the reader says not: the rules read it
    polarity = product_polarity(rule, model)
    return MentionReading(m.kind, m.value, m.text, polarity, rule.polarity, model, rule.negated, m.exact, describes)


def product_polarity(rule: RuleReading, model: str | None) -> str:
    """How the product reads a mention: the reader's polarity, except that a quoted sentence carries no
    taste, an explicit "no X" is never overruled, and where the rules read like or dislike in the
    mention's own clause and the reader the opposite, the rules' reading stands."""
    if rule.quoted:
        polarity = "neutral"
    elif rule.negated:
        polarity = "dislike"  # an explicit "no X" is never overruled
    elif model is not None and rule.polarity < 0 and model != "none":
        # A dislike is the costlier thing to lose: where the rules read one in the mention's own
        # clause ("X was terrible, I loved Y"), the reader's "like" does not lift it.
        polarity = "dislike"
    elif model == "dislike" and rule.polarity > 0:
        # Where the reader's dislike meets the rules' like, the rules read the mention's own clause and
        # were right more often on the dev split (5 of 9 such spans against 3); the reader reads the
        # whole message and its context ("now something with Arnold Schwarzenegger instead").
        polarity = "like"
    elif model is not None:
        polarity = model
    elif rule.polarity:
        polarity = "like" if rule.polarity > 0 else "dislike"
    else:
        polarity = "seen" if rule.seen else "neutral"
    return polarity


def rule_acts(
    intent: Intent, rules: list[RuleReading], references: list[Reference], belief: BeliefState, text: str
) -> list[str]:
    """The dialogue acts the rules alone read (used without a learned reader, and measured against it)."""
    acts: list[str] = []
    shown = set(belief.last_shown)
    if intent.kind == "question":
        acts.append("ask_item")
    if intent.kind == "explain":
        acts.append("ask_why")
    if intent.critique or any(c.text.endswith("last picks") for c in intent.update.constraints):
        acts.append("critique")
    opinions = [_opinion_after(ref, text) for ref in references]
    seen_words = bool(_SEEN.search(text)) and not _NOT_SEEN.search(text)
    if intent.reaction == "accept" or any(o > 0 for o in opinions):
        acts.append("accept")
    reject = intent.reaction == "reject" and not (seen_words and references)
    if reject or any(o < 0 for o in opinions) or any(r.polarity < 0 and r.mention.value in shown for r in rules):
        acts.append("reject")
    if any(r.seen for r in rules) or (seen_words and references):
        acts.append("seen")
    if any(r.polarity != 0 and r.mention.value not in shown for r in rules):
        acts.append("preference")
    if not acts and (content_words(text) or _REQUEST_WORDS.intersection(t.norm for t in tokenize(text))):
        acts.append("request")
    if not acts:
        acts.append("chitchat")
    return [a for a in ACTS if a in acts]


# Asking for more of the same: a request whatever else the message does ("ok, show me more").
_MORE = re.compile(
    r"\b(show me more|more (?:please|pls|of (?:those|these|that|them))|(?:any|some|got) (?:more|others)\b|"
    r"something else|other (?:ones|options|suggestions|picks)|next (?:one|ones|batch|few)|what else)",
    re.I,
)


def _asks_for_a_kind(intent: Intent, references: list[Reference], mentions: list[Mention]) -> bool:
    """ "what about the 90s": a question that names years and points at no film asks for films of those
    years, not about a film shown."""
    if references or intent.item_id or any(m.kind == "item" for m in mentions) or intent.kind == "question":
        return False
    return bool(intent.update.constraints) and not intent.critique


def _consistent(
    acts: tuple[str, ...],
    text: str,
    tokens: list[Token],
    references: list[Reference],
    mentions: list[Mention],
    belief: BeliefState,
) -> tuple[str, ...]:
    """The reader's acts, made consistent where a rule is exact: a question that asks for a fact ("who
    directed Jaws?") is no "why"; "ok" beside a request that points at no shown film ("ok, show me more",
    "change of plan: a family movie") takes no pick."""
    out = list(acts)
    if "ask_item" in out and "ask_why" in out and question_field(text) not in (None, "general"):
        out.remove("ask_why")
    if "ask_why" in out and not _ASKS_WHY.search(text):
        out.remove("ask_why")  # "and no jennifer aniston either": nothing asks why
    pointed = references or any(m.kind == "item" and m.value in belief.last_shown for m in mentions)
    if "accept" in out and ("request" in out or "critique" in out) and not pointed:
        out.remove("accept")  # "something newer": asks for other films, takes none of these
    words = [t.norm for t in tokens]
    verdict = opinion_of(words) or (-1 if any(p in NEGATING_PAIRS for p in zip(words, words[1:], strict=False)) else 0)
    if "accept" in out and "seen" in out and _AHEAD.search(text) and not _SEEN.search(text):
        # "the fourth looks good, I'll take it": taken, and the words look ahead; "I loved that one" was watched.
        out.remove("seen")
    if "accept" in out and "seen" in out and verdict <= 0:
        out.remove("accept")  # "already watched that one": seen, not taken
    if "accept" in out and verdict < 0:
        # "I'll pass on the first one", "didn't care for the second one": the words say no.
        out = [a for a in out if a != "accept"] + (["reject"] if "reject" not in out else [])
    return tuple(out)


_SMALL_TALK = re.compile(
    r"\b(hi|hello|hey|hiya|howdy|good (?:morning|afternoon|evening|night)|thanks?|thank you|thx|ty|bye|goodbye|"
    r"have a (?:good|nice|great) (?:day|night|one|evening))\b",
    re.I,
)
_ASKS_WHY = re.compile(r"\?|\b(?:why|how come|what makes|reason|explain)\b", re.I)
_SEEN = re.compile(r"\b(seen|saw|watched|already watch)", re.I)
# Words about a film still to be watched: a verdict on how it looks, or a plan to watch it.
_AHEAD = re.compile(
    r"\b(?:looks?|sounds?|seems?)\b|\b(?:i'?ll|i will|i'?m going to|gonna|going to|let'?s|will)\s+(?:\w+\s+)?"
    r"(?:take|watch|try|check|give|go|see|pick|have|do)\b|\btake (?:it|that|this)\b",
    re.I,
)
_NOT_SEEN = re.compile(r"\b(not|never|haven'?t|hasn'?t|didn'?t|havent|didnt)\b[^.,;!?]{0,12}\b(seen|saw|watched)", re.I)


def _opinion_after(ref: Reference, text: str) -> int:
    """What the words after a reference say of it, to the end of its clause: "the second one is not my
    cup of tea" (-1), "the fourth looks good" (+1)."""
    from crs.understand.nlu import opinion_of

    tokens = tokenize(text)
    words = []
    for t in tokens[ref.end :]:
        if words and re.search(r"[,.;!?]", text[tokens[ref.end + len(words) - 1].end : t.start]):
            break
        words.append(t.norm)
    return opinion_of(words)


def agent_context(belief: BeliefState, catalog: Catalog) -> str:
    """The agent's last words as the reader expects them: the films just shown, in a sentence."""
    labels = [it.label for it in (catalog.get(i) for i in belief.last_shown) if it is not None]
    if belief.focus and (item := catalog.get(belief.focus)) is not None:
        return f"{item.label} is a film." if not labels else f"{item.label} is one of: " + ", ".join(labels) + "."
    if not labels:
        return "Hi! What kind of movies do you like?"
    return "How about " + (", ".join(labels[:-1]) + " or " + labels[-1] if len(labels) > 1 else labels[0]) + "?"
