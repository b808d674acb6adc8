"""The rules of reading one message: negation scope and the polarity of each mention.

``crs.understand.linker.Linker`` finds catalog titles, genres and people in free text;
``understand`` turns a message into a ``BeliefUpdate`` by giving each mention the polarity of
the cue that governs it in its clause ("I loved Alien but no romance" -> +Alien, -Romance).
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crs.catalog import Catalog
from crs.state import BeliefUpdate, Preference
from crs.understand.lexicon import (
    ACCEPTING,
    AFTER_ANAPHOR,
    ANAPHORS,
    ANSWER_NEXT,
    BUT_NEGATING,
    CLAUSE_BREAK,
    ELLIPTIC,
    EXPERIENCE,
    MILD_CUES,
    NEGATED_POSITIVE,
    NEGATING_PAIRS,
    NEGATORS,
    NEVER_FLIPPED,
    NOT_AFTER_TOO,
    POSITIVE,
    POST_NEGATIVE,
    POST_NEGATIVE_PHRASES,
    POST_POSITIVE,
    QUESTION_AUX,
    QUESTION_WORDS,
    SEEN_CUES,
    STRONG_CUES,
    SUBJECTS,
    YOU,
)
from crs.understand.linker import Linker, Mention
from crs.understand.text import Token, negative_words, tokenize

log = logging.getLogger(__name__)


def _polarities(
    tokens: list[Token], clauses: list[int] | None = None, inside: frozenset[int] = frozenset(), text: str = ""
) -> list[int]:
    """The polarity in force at each token: the last cue in the clause decides. 0: under a
    negated experience verb ("I haven't seen X"), which says nothing about taste. Tokens in
    ``inside`` (titles) are never cues: "Never Been Kissed", "Just Like Heaven"."""
    out: list[int] = []
    polarity, negated_recently, experienced, negative_at, comma_at = 1, -99, False, -99, -99
    for k, tok in enumerate(tokens):
        w = tok.norm
        prev = tokens[k - 1].norm if k else ""
        if k and "," in text[tokens[k - 1].end : tok.start]:
            comma_at = k
            if new_statement(text, tokens, k, inside):
                # "no Adam Sandler, give me a comedy": a new statement after the comma ends the negation's scope.
                polarity, negated_recently = 1, -99
        if clauses is not None and k and clauses[k] != clauses[k - 1]:
            # A new sentence starts afresh; "I've seen X but not Y" keeps the verb across 'but'.
            polarity, negated_recently, experienced, prev = 1, -99, experienced and w == "but", ""
        if k in inside:
            pass
        elif w == "as" and k > 1 and tokens[k - 2].norm == "as" and prev:
            polarity, negated_recently = 1, -99  # "not as good as X": X is the standard
        elif w == "but" and prev in BUT_NEGATING or w in {"except", "excluding"}:
            # "I have seen all of those except X": X is unseen, not disliked.
            polarity, negated_recently = (0 if experienced else -1), k
        elif w in CLAUSE_BREAK:
            polarity, experienced = 1, experienced and w == "but"
        elif w in NEGATORS and experienced and prev == "but":
            polarity, experienced = 0, False  # "I've seen X but not Y": Y is unseen
        elif w in NEGATED_POSITIVE and k - negated_recently <= 3:
            polarity, negated_recently = 1, -99
        elif w in EXPERIENCE:
            habit = w == "watch" and negated_recently >= 0 and _habitual(tokens, negated_recently)
            if k - negated_recently <= 5 and not habit:  # "I don't watch gore" is taste, not experience
                polarity, negated_recently = 0, -99
            experienced = True
        elif w == "than" and prev == "other" or w in NEGATORS and not (w == "least" and prev == "at"):
            polarity, negated_recently = -1, k
            negative_at = k if w == "nothing" else negative_at
        elif w in {"like", "similar"} and prev not in SUBJECTS and polarity < 0 and negative_at > comma_at:
            pass  # "not into movies like Saw", "nothing similar to Ted": examples share the polarity
        elif (prev, w) in NEGATING_PAIRS:
            polarity, negated_recently = -1, k  # "spare me the horror", "sick of superhero movies"
        elif w == "out" and prev in KEEPING_OUT:
            polarity, negated_recently = -1, k  # "rule out horror", "leave out Tom Cruise"
        elif w == "more" and prev in {"no", "not", "any", "nothing"}:
            polarity, negated_recently = -1, k  # "no more superhero movies"
        elif w in POSITIVE:
            # "don't like", "not a fan of", "never enjoyed": a negator just before a verb flips it.
            flipped = w not in NEVER_FLIPPED and k - negated_recently <= 3
            polarity, negated_recently = (-1, -99) if flipped else (1, negated_recently)
            negative_at = k if flipped else negative_at
        out.append(polarity)
    return out


def new_statement(text: str, tokens: list[Token], k: int, inside: frozenset[int] = frozenset()) -> bool:
    """A comma before token ``k`` opens a new statement: "no Adam Sandler, give me a comedy",
    "no horror, a comedy", "..., action please"; not one more item of a list ("no horror, comedy
    or romance"). Tokens in ``inside`` (titles) start no statement."""
    if not k or "," not in text[tokens[k - 1].end : tokens[k].start]:
        return False
    if tokens[k].norm in _STATEMENT_START and k not in inside:
        return True
    seg = [tokens[k].norm]
    for j in range(k + 1, len(tokens)):
        gap = text[tokens[j - 1].end : tokens[j].start]
        if "," in gap or _CLAUSE_GAP.search(gap):
            break
        seg.append(tokens[j].norm)
    return seg[0] not in {"or", "nor", "and"} and (seg[0] in {"a", "an"} or bool(_REQUEST_WORDS.intersection(seg)))


def statement_starts(text: str, tokens: list[Token], spans: Sequence[tuple[int, int]] = ()) -> list[tuple[int, bool]]:
    """Where each statement after the first begins, as (character offset, opened by a comma):
    after a stop, "!", "?", ";" or a line break that no title in ``spans`` holds ("Airplane!"),
    and after a comma that ``new_statement`` says opens one."""
    out = []
    for k in range(1, len(tokens)):
        lo, hi = tokens[k - 1].end, tokens[k].start
        if any(a < lo < b or a < hi < b for a, b in spans):
            continue
        if any(lo == b for _, b in spans) and text[lo:hi].lstrip()[:1] in {"!", "?"}:
            continue  # the title's own mark, maybe ("Airplane! was funny")
        if SENTENCE_GAP.search(text[lo:hi]):
            out.append((hi, False))
        elif new_statement(text, tokens, k):
            out.append((hi, True))
    return out


_REQUEST_WORDS = frozenset("please pls plz want give show recommend suggest".split())


def _habitual(tokens: list[Token], negator: int) -> bool:
    """The negator at ``negator`` is present or future ("don't", "never", "won't"), not past
    ("didn't", "haven't"): "I don't watch X" says what the user avoids."""
    w = tokens[negator].norm
    before = tokens[negator - 1].norm if negator else ""
    return w in {"never", "dont"} or (w == "t" and before in {"don", "doesn", "won"})


def _clause_bounds(
    text: str,
    tokens: list[Token],
    inside: frozenset[int] = frozenset(),
    starts: frozenset[int] = frozenset(),
    exclaimed: frozenset[int] = frozenset(),
) -> list[int]:
    """Clause number of each token: sentences and contrastive 'but' start new clauses, never
    inside a title ("Boo! A Madea Halloween")."""
    ids: list[int] = []
    clause = 0
    for k, tok in enumerate(tokens):
        gap = text[tokens[k - 1].end : tok.start] if k else ""
        # A "!" right after a title word may be the title's own ("Airplane!"); never inside one.
        title_mark = k - 1 in exclaimed and gap.lstrip()[:1] in {"!", "?"}
        within = k in inside and k - 1 in inside and k not in starts  # inside one title, not between two
        dated = _YEAR.fullmatch(tok.text) or (k and _YEAR.fullmatch(tokens[k - 1].text))  # "Jaws (1975) was"
        if _CLAUSE_GAP.search(gap) and not within and not title_mark and not (dated and not SENTENCE_GAP.search(gap)):
            clause += 1
        if (
            tok.norm in CLAUSE_BREAK
            and k not in inside
            and not (tok.norm == "but" and k and tokens[k - 1].norm in BUT_NEGATING)
        ):
            clause += 1
        ids.append(clause)
    return ids


# Between two clauses: a stop, a bracket, or a dash between spaces ("a western - Alien bored me").
_YEAR = re.compile(r"(?:19|20)\d\d")
SENTENCE_GAP = re.compile(r"[.;!?\n]")
_CLAUSE_GAP = re.compile(r"[.;!?\n()\[\]]|(?:^|\s)[-–—]+(?:\s|$)")


def _inert(text: str, tokens: list[Token], clauses: list[int], inside: frozenset[int]) -> frozenset[int]:
    """Tokens that are no cue: words of titles, and a sentence-initial "No" or "Not really"
    answering a question ("No, is it like RoboCop?", "No I haven't"), not "No romance"."""
    answers: set[int] = set()
    for k, t in enumerate(tokens):
        n = 2 if t.norm == "not" and k + 1 < len(tokens) and tokens[k + 1].norm == "really" else 1
        if (t.norm in {"no", "nope", "nah"} or n == 2) and (k == 0 or clauses[k] != clauses[k - 1]):
            nxt = tokens[k + n].norm if k + n < len(tokens) else ""
            if text[tokens[k + n - 1].end :].lstrip()[:1] in {",", "!", "."} or nxt in ANSWER_NEXT:
                answers.update(range(k, k + n))
    return inside | frozenset(answers)


def opinion_of(words: list[str], verbs: bool = True) -> int:
    """The opinion (-1, 0, +1) in words said of a film: "was boring", "not so much", "too
    slow", "I didn't like it". With ``verbs`` False only descriptions count, not "I like"."""
    text = " " + " ".join(words) + " "
    if any(f" {phrase} " in text for phrase in POST_NEGATIVE_PHRASES):
        return -1
    if not NEGATORS.intersection(words) and any(f" {phrase} " in text for phrase in ACCEPTING):
        return 1
    negated, content = -99, False
    for k, w in enumerate(words):
        prev, nxt = words[k - 1] if k else "", words[k + 1] if k + 1 < len(words) else ""
        if w in POST_NEGATIVE and (verbs or w not in NEGATORS):
            return 1 if k - negated <= 3 else -1
        if w in NEGATORS:
            negated = k
        elif w == "too" and nxt and nxt not in NOT_AFTER_TOO:
            return 1 if nxt in POST_POSITIVE else -1
        elif w in POST_POSITIVE or verbs and w in POSITIVE - NEVER_FLIPPED - {"like", "likes", "recommend"}:
            return -1 if k - negated <= 4 else 1
        elif (
            verbs
            and w in {"like", "likes"}
            and (nxt in ANAPHORS or prev in SUBJECTS - {"t"} or words[k - 2 : k] == ["didn", "t"])
        ):
            return -1 if k - negated <= 4 else 1  # the verb, not "a film like Y"
        elif w in ABOUT:
            content = True  # "X is about abuse": what happens in it, no verdict
        elif k < 4 and not content and w in negative_words():
            return 1 if k - negated <= 3 else -1  # "X bored me", "X was dreadful", "X stank"
    return 0


# "keep X out (of it)", "leave X out": a verb that, with "out" after the mention, excludes it.
KEEPING_OUT = frozenset("keep leave count cut take rule".split())
# Words after which what follows is the film's content, not a verdict on it.
ABOUT = frozenset("about where when whose who which with of in on".split())


def _is_question(tokens: list[Token], text: str) -> bool:
    """A sentence that asks ("Have you seen X?", "What is X about", "Is X animated?")."""
    first, second = tokens[0].norm, tokens[1].norm if len(tokens) > 1 else ""
    ends = text[tokens[-1].end :].lstrip()[:1] == "?"
    return ends or first in QUESTION_WORDS or first in QUESTION_AUX and second in YOU


@dataclass(frozen=True)
class RuleReading:
    """What the rules read of one mention."""

    mention: Mention
    polarity: int  # +1 like, -1 dislike, 0 no taste (asked about, not seen, seen without opinion)
    strength: float  # 0.5 mild, 1 plain, 1.5 strong
    seen: bool  # "I've seen X"
    negated: bool  # an explicit negation governs it ("no X", "anything but X", "don't like X", "hate X")
    quoted: bool = False  # inside a quoted sentence: someone's words, no taste of the user's


def read_mentions(text: str, linker: Linker, mentions: list[Mention] | None = None) -> list[RuleReading]:
    """The rules' reading of each mention: the polarity of the cue that governs it in its clause."""
    tokens = tokenize(text)
    if not tokens:
        return []
    mentions = linker.mentions(text) if mentions is None else mentions
    inside = frozenset(k for m in mentions for k in range(m.start, m.end))
    # The last word of a title that ends in its own "!" or "?" ("Airplane!"): no sentence ends there.
    exclaimed = frozenset(
        m.end - 1
        for m in mentions
        if m.kind == "item" and (it := linker.catalog.get(m.value)) is not None and it.title.rstrip()[-1:] in "!?"
    )
    clauses = _clause_bounds(text, tokens, inside, frozenset(m.start for m in mentions), exclaimed)
    inside = _inert(text, tokens, clauses, inside)
    polarity = _polarities(tokens, clauses, inside, text)
    words = [t.norm for t in tokens]
    pols: list[int] = []
    strengths: list[float] = []
    seen: list[bool] = []
    negated: list[bool] = []
    by_clause: dict[int, list[int]] = {}
    for k, ck in enumerate(clauses):
        by_clause.setdefault(ck, []).append(k)
    for i, m in enumerate(mentions):
        c = clauses[m.start]
        span = by_clause[c]
        nxt = mentions[i + 1].start if i + 1 < len(mentions) else len(tokens)
        at = bisect_left(span, m.start)
        before = [words[k] for k in span[max(0, at - 40) : at] if k not in inside]
        # What follows judges this mention only up to a comma that opens a new statement:
        # in "anything but Tom Cruise, I want action" the "want" is no praise of Tom Cruise.
        stop = _next_statement(text, tokens, m.end, min(nxt, span[-1] + 1, m.end + 12))
        after = [words[k] for k in range(m.end, stop) if k not in inside][:8]
        pol = polarity[m.start]
        since_last = [
            words[k] for k in span[max(0, at - 40) : at] if (mentions[i - 1].end if i else 0) <= k and k not in inside
        ]
        # A cue before an earlier mention is that mention's: in "I want drama (documentary is not for me)"
        # the "want" does not stop "not for me" from judging documentary.
        cue = any(w in NEGATORS or w in POSITIVE for w in since_last[-6:])
        negative_cue = pol < 0 and (
            any(w in NEGATORS or w == "but" for w in before[-6:])
            or any(pair in NEGATING_PAIRS for pair in zip(before[-7:], before[-7:][1:], strict=False))
        )
        if after[:1] == ["out"] and any(w in KEEPING_OUT for w in since_last[-3:]):
            pol, negative_cue = -1, True  # "keep Tom Cruise out of it", "leave horror out"
        if m.kind != "item" and (before[-1:] == ["too"] or before[-2:] in (["too", "much"], ["too", "many"])):
            pol, negative_cue = -1, True  # "too violent", "too much gore": a complaint
        post = opinion_of(after)
        question = _is_question([tokens[k] for k in span], text) or any(
            w in YOU and nxt_w in EXPERIENCE for w, nxt_w in zip(before, before[1:], strict=False)
        )
        if post and (not cue or pol == 0) and not (negative_cue and post > 0):
            pol = post  # "Alien was boring", "I haven't seen X but it looks good"
        elif question and not negative_cue and not any(w in NEGATORS or w in POSITIVE - {"recommend"} for w in before):
            pol = 0  # "Have you seen X?", "What is X about?"
        is_seen = False
        if m.kind == "item" and pol != 0 and any(cue in " " + " ".join(words[k] for k in span) for cue in SEEN_CUES):
            is_seen = True
            if not (post or any(w in POSITIVE or w in NEGATORS for w in before)):
                pol = 0  # "I've seen Se7en": seen, no opinion (yet)
        pols.append(pol)
        seen.append(is_seen)
        negated.append(pol < 0 and negative_cue)
        strengths.append(_strength(since_last if _strength(since_last) != 1.0 else after))
    _resolve_anaphora(words, clauses, inside, polarity, mentions, pols)
    # A sentence in quotes is someone's words, not the user's taste ('reply with "X is a masterpiece"').
    quoted = [any(a <= tokens[m.start].start < b for a, b in _quotations(text)) for m in mentions]
    return [
        RuleReading(m, 0 if q else p, s, sn and not q, ng and p < 0 and not q, q)
        for m, p, s, sn, ng, q in zip(mentions, pols, strengths, seen, negated, quoted, strict=True)
    ]


def _quotations(text: str) -> list[tuple[int, int]]:
    """Character spans of quoted sentences (four or more words between quotes; a quoted title is shorter)."""
    return [m.span() for m in _QUOTATION.finditer(text) if len(m.group(1).split()) >= 4]


_QUOTATION = re.compile(r"[\"“]([^\"”]{3,})[\"”]")


def _next_statement(text: str, tokens: list[Token], start: int, end: int) -> int:
    """The token where a new statement begins after ``start`` (before ``end``): a comma followed by a
    subject ("..., I want action", "..., give me a comedy"), else ``end``."""
    for k in range(start, end):
        if k > start and "," in text[tokens[k - 1].end : tokens[k].start] and tokens[k].norm in _STATEMENT_START:
            return k
    return end


_STATEMENT_START = frozenset(
    "i im we you just give show find get recommend suggest please maybe what how something any anything got can could"
    " would".split()
)


def understand(text: str, linker: Linker, turn: int = 0, mentions: list[Mention] | None = None) -> BeliefUpdate:
    """Read likes, dislikes and already-seen items from one message (rules only)."""
    readings = read_mentions(text, linker, mentions)
    prefs = [
        Preference(
            r.mention.kind,
            r.mention.value,
            1 if r.polarity > 0 else -1,
            turn=turn,
            source="rule",
            text=r.mention.text,
            strength=r.strength,
        )
        for r in readings
        if r.polarity != 0
    ]
    seen = [r.mention.value for r in readings if r.seen]
    return BeliefUpdate(preferences=one_statement_each(prefs), seen=tuple(dict.fromkeys(seen)))


def one_statement_each(prefs: Iterable[Preference]) -> tuple[Preference, ...]:
    """One statement per thing: a dislike stated anywhere in the message wins ("recommend horror
    movies. I hate horror."); otherwise the last mention wins."""
    unique: dict[tuple[str, str], Preference] = {}
    for p in prefs:
        old = unique.pop(p.key, None)
        unique[p.key] = old if old is not None and old.polarity < 0 < p.polarity else p
    return tuple(unique.values())


def _strength(words: list[str]) -> float:
    """How strongly the words around a mention say it: 0.5 for "kind of like", "not a big
    fan"; 1.5 for "love", "hate", "favorite", "can't stand"; 1 otherwise."""
    text = " " + " ".join(words) + " "
    if any(f" {cue} " in text for cue in MILD_CUES):
        return 0.5
    return 1.5 if STRONG_CUES.intersection(words) else 1.0


def _resolve_anaphora(
    words: list[str], clauses: list[int], inside: frozenset[int], polarity: list[int], mentions: list, pols: list[int]
) -> None:
    """A later clause that names no entity but judges "it" ("I saw X. It was cute", "I've seen
    X but didn't like it") or, after "but", just judges ("X was ok, but not my cup of tea")
    gives the last film named in the clause or two before it its polarity."""
    by_clause: dict[int, list[int]] = {}
    for k, c in enumerate(clauses):
        by_clause.setdefault(c, []).append(k)
    named = {clauses[m.start] for m in mentions}
    for c, ks in by_clause.items():
        if c in named:
            continue
        clause_words = [words[k] for k in ks if k not in inside]
        anaphoric = any(  # "it was cute", "didn't like it", not "that director's other films"
            w in ANAPHORS and (j + 1 == len(clause_words) or clause_words[j + 1] in AFTER_ANAPHOR)
            for j, w in enumerate(clause_words)
        )
        if not anaphoric and not (clause_words and clause_words[0] in ELLIPTIC):
            continue
        evaluation = opinion_of(clause_words, verbs=anaphoric)
        earlier = [i for i, m in enumerate(mentions) if m.kind == "item" and c - 2 <= clauses[m.start] < c]
        if evaluation and earlier:
            pols[earlier[-1]] = evaluation


def describe(prefs: Iterable[Preference], catalog: Catalog) -> list[str]:
    """Human-readable lines for preferences, e.g. ``+ Alien (1979)`` or ``- genre: Romance``."""
    out = []
    for p in prefs:
        sign = "+" if p.polarity > 0 else "-"
        if p.kind == "item":
            item = catalog.get(p.value)
            out.append(f"{sign} {item.label if item else p.value}")
        else:
            out.append(f"{sign} {p.kind}: {p.value}")
    return out


def positive_text(text: str) -> str:
    """The words of a message that are not under a negation ("I loved Alien but no romance"
    -> "I loved Alien but"), so a search does not look for what the user rejected."""
    tokens = tokenize(text)
    if not tokens:
        return ""
    clauses = _clause_bounds(text, tokens)
    polarity = _polarities(tokens, clauses, _inert(text, tokens, clauses, frozenset()), text)
    return " ".join(t.text for t, p in zip(tokens, polarity, strict=True) if p > 0 and t.norm not in NEGATORS)
