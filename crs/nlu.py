"""Understanding one message: catalog entity linking and negation scope.

``Linker`` finds catalog titles, genres and people in free text; ``understand`` turns a
message into a ``BeliefUpdate`` by giving each mention the polarity of the cue that governs
it in its clause ("I loved Alien but no romance" -> +Alien, -Romance).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from crs.catalog import Catalog, Item, normalize_title
from crs.lexicon import (
    ACCEPTING,
    AFTER_ANAPHOR,
    ANAPHORS,
    ANSWER_NEXT,
    BUT_NEGATING,
    CLAUSE_BREAK,
    COMMON_WORDS,
    ELLIPTIC,
    EXPERIENCE,
    GENRE_SYNONYMS,
    MAX_TITLE_TOKENS,
    MILD_CUES,
    NEGATED_POSITIVE,
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
    THEMES,
    TITLE_ALIASES,
    YOU,
)
from crs.state import BeliefUpdate, Kind, Preference

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[^\W_]+|&", re.UNICODE)
_YEAR = re.compile(r"^\s*\(?\s*((?:19|20)\d{2})\s*\)?")


def _fold(token: str) -> str:
    return unicodedata.normalize("NFKD", token).encode("ascii", "ignore").decode().casefold()


@dataclass(frozen=True)
class Token:
    text: str  # as typed
    norm: str  # ascii, case-folded; "&" -> "and"
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    out = []
    for m in _TOKEN.finditer(text):
        norm = "and" if m.group() == "&" else _fold(m.group())
        if norm:
            out.append(Token(m.group(), norm, m.start(), m.end()))
    return out


@dataclass(frozen=True)
class Mention:
    kind: Kind
    value: str  # item id, canonical genre, person name
    text: str  # the words matched
    start: int  # token index of the first word
    end: int  # token index after the last word


class Linker:
    """Finds catalog titles, genres, cast members and themes ("time travel") in text; built
    once per catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._titles: dict[str, list[Item]] = {}
        for item in catalog:
            key = normalize_title(item.title)
            if key:
                self._titles.setdefault(key, []).append(item)
        for items in self._titles.values():
            # The better-known film first: the longer article is a fair proxy without ratings.
            items.sort(key=lambda it: (-it.popularity, -len(it.summary), -(it.year or 0)))
        genre_names = {g.casefold(): g for g in catalog.genres()}
        self._genres: dict[str, tuple[str, ...]] = {g: (name,) for g, name in genre_names.items()}
        for form, targets in GENRE_SYNONYMS.items():
            known = tuple(genre_names[t.casefold()] for t in targets if t.casefold() in genre_names)
            if known:
                self._genres[form] = known
        for g, name in list(genre_names.items()):
            self._genres.setdefault(g + "s", (name,))
        self._themes: dict[str, str] = {}
        for theme, (forms, _) in THEMES.items():
            for form in forms:
                key = " ".join(t.norm for t in tokenize(form))
                if key not in self._genres:
                    self._themes[key] = theme
        self._people: dict[str, str] = {}
        for item in catalog:
            for person in item.cast:
                key = " ".join(t.norm for t in tokenize(person))
                if key.count(" ") >= 1:
                    self._people.setdefault(key, person)

    def title_candidates(self, title: str) -> list[Item]:
        return list(self._titles.get(normalize_title(title), []))

    def resolve(self, title: str, year: int | None = None) -> Item | None:
        """The catalog item for a title, with the year to disambiguate (±1 tolerated)."""
        cands = self.title_candidates(title)
        if year:
            for tolerance in (0, 1):
                close = [it for it in cands if it.year and abs(it.year - year) <= tolerance]
                if close:
                    return close[0]
            return None
        return cands[0] if cands else None

    def _title_at(self, text: str, tokens: list[Token], i: int) -> tuple[Item, int] | None:
        for n in range(min(MAX_TITLE_TOKENS, len(tokens) - i), 0, -1):
            span = tokens[i : i + n]
            key = " ".join(t.norm for t in span)
            if key.startswith(("the ", "a ", "an ")) and key not in self._titles:
                continue  # matched below, one token later, without the article
            items = self._titles.get(TITLE_ALIASES.get(key, key))
            year_match = _YEAR.match(text[span[-1].end :])
            if not items or not (year_match or self._plausible_title(text, span, key)):
                continue
            if year_match:
                dated = self.resolve(items[0].title, int(year_match.group(1)))
                if dated is not None:
                    return dated, n
            return items[0], n
        return None

    def _plausible_title(self, text: str, span: list[Token], key: str) -> bool:
        words = key.split()
        if len(key) < 3 or key in self._genres or key in GENRE_SYNONYMS:
            return False  # "Romance (1920)" is not what "no romance" means
        sentence_start = not text[: span[0].start].strip() or text[: span[0].start].rstrip()[-1] in ".!?"
        if all(w in COMMON_WORDS for w in words):
            # "Up", "Her", "Something New", "Don't": only when typed as a title, mid-sentence.
            return len(key) > 3 and any(
                t.text[:1].isupper() and t.norm != "i" and not (k == 0 and sentence_start) for k, t in enumerate(span)
            )
        if len(words) == 1:  # "Loved every minute of it" is no mention of "Loved" (1997)
            return span[0].text[:1].isupper() and key not in POSITIVE | POST_POSITIVE | POST_NEGATIVE | NEGATORS
        return True

    def mentions(self, text: str) -> list[Mention]:
        tokens = tokenize(text)
        out: list[Mention] = []
        i = 0
        while i < len(tokens):
            # Longest match wins; titles before people before genres ("Star Wars" is no war film),
            # but a longer name beats a shorter title ("Arnold Schwarzenegger", not "Arnold").
            hit = self._title_at(text, tokens, i)
            person = self._phrase_at(tokens, i, self._people, 3)
            if hit is not None and person is not None and person[1] > hit[1]:
                hit = None
            theme = self._phrase_at(tokens, i, self._themes, 5)
            # "a slow burn thriller" asks for a pace; "Slow Burn" typed as a title names the film.
            lower = hit is not None and not any(t.text[:1].isupper() for t in tokens[i : i + hit[1]])
            if hit is not None and theme is not None and theme[1] >= hit[1] and lower:
                hit = None
            if hit is not None:
                item, n = hit
                start = i - 1 if i > 0 and tokens[i - 1].norm in {"the", "a", "an"} else i
                out.append(Mention("item", item.id, text[tokens[start].start : tokens[i + n - 1].end], start, i + n))
                i += n
                continue
            if person is not None:
                name, n = person
                out.append(Mention("person", name, text[tokens[i].start : tokens[i + n - 1].end], i, i + n))
                i += n
                continue
            genre = self._phrase_at(tokens, i, self._genres, 3)
            if genre is not None:
                names, n = genre
                for name in names:
                    out.append(Mention("genre", name, text[tokens[i].start : tokens[i + n - 1].end], i, i + n))
                i += n
                continue
            if theme is not None:
                value, n = theme
                out.append(Mention("keyword", value, text[tokens[i].start : tokens[i + n - 1].end], i, i + n))
                i += n
                continue
            i += 1
        return out

    @staticmethod
    def _phrase_at(tokens: list[Token], i: int, table: dict, longest: int) -> tuple[object, int] | None:
        for n in range(min(longest, len(tokens) - i), 0, -1):
            key = " ".join(t.norm for t in tokens[i : i + n])
            if key in table:
                return table[key], n
        return None


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
        elif w == "more" and prev in {"no", "not", "any", "nothing"}:
            polarity, negated_recently = -1, k  # "no more superhero movies"
        elif w in POSITIVE:
            # "don't like", "not a fan of", "never enjoyed": a negator just before a verb flips it.
            flipped = w not in NEVER_FLIPPED and k - negated_recently <= 3
            polarity, negated_recently = (-1, -99) if flipped else (1, negated_recently)
            negative_at = k if flipped else negative_at
        out.append(polarity)
    return out


def _habitual(tokens: list[Token], negator: int) -> bool:
    """The negator at ``negator`` is present or future ("don't", "never", "won't"), not past
    ("didn't", "haven't"): "I don't watch X" says what the user avoids."""
    w = tokens[negator].norm
    before = tokens[negator - 1].norm if negator else ""
    return w in {"never", "dont"} or (w == "t" and before in {"don", "doesn", "won"})


def _clause_bounds(
    text: str, tokens: list[Token], inside: frozenset[int] = frozenset(), starts: frozenset[int] = frozenset()
) -> list[int]:
    """Clause number of each token: sentences and contrastive 'but' start new clauses, never
    inside a title ("Boo! A Madea Halloween")."""
    ids: list[int] = []
    clause = 0
    for k, tok in enumerate(tokens):
        gap = text[tokens[k - 1].end : tok.start] if k else ""
        # A "!" right after a title word may be the title's own ("Airplane!"); never inside one.
        title_mark = k - 1 in inside and gap.lstrip()[:1] in {"!", "?"}
        within = k in inside and k - 1 in inside and k not in starts  # inside one title, not between two
        if re.search(r"[.;!?\n]", gap) and not within and not title_mark:
            clause += 1
        if (
            tok.norm in CLAUSE_BREAK
            and k not in inside
            and not (tok.norm == "but" and k and tokens[k - 1].norm in BUT_NEGATING)
        ):
            clause += 1
        ids.append(clause)
    return ids


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


def _evaluation(words: list[str], verbs: bool = True) -> int:
    """The opinion (-1, 0, +1) in words said of a film: "was boring", "not so much", "too
    slow", "I didn't like it". With ``verbs`` False only descriptions count, not "I like"."""
    text = " " + " ".join(words) + " "
    if any(f" {phrase} " in text for phrase in POST_NEGATIVE_PHRASES):
        return -1
    if not NEGATORS.intersection(words) and any(f" {phrase} " in text for phrase in ACCEPTING):
        return 1
    negated = -99
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
    return 0


def _is_question(tokens: list[Token], text: str) -> bool:
    """A sentence that asks ("Have you seen X?", "What is X about", "Is X animated?")."""
    first, second = tokens[0].norm, tokens[1].norm if len(tokens) > 1 else ""
    ends = text[tokens[-1].end :].lstrip()[:1] == "?"
    return ends or first in QUESTION_WORDS or first in QUESTION_AUX and second in YOU


def understand(text: str, linker: Linker, turn: int = 0) -> BeliefUpdate:
    """Read likes, dislikes and already-seen items from one message."""
    tokens = tokenize(text)
    if not tokens:
        return BeliefUpdate()
    mentions = linker.mentions(text)
    inside = frozenset(k for m in mentions for k in range(m.start, m.end))
    clauses = _clause_bounds(text, tokens, inside, frozenset(m.start for m in mentions))
    inside = _inert(text, tokens, clauses, inside)
    polarity = _polarities(tokens, clauses, inside, text)
    words = [t.norm for t in tokens]
    pols: list[int] = []
    strengths: list[float] = []
    seen: list[str] = []
    for i, m in enumerate(mentions):
        c = clauses[m.start]
        span = [k for k, ck in enumerate(clauses) if ck == c]
        nxt = mentions[i + 1].start if i + 1 < len(mentions) else len(tokens)
        before = [words[k] for k in span if k < m.start and k not in inside]
        after = [words[k] for k in span if m.end <= k < nxt and k not in inside][:8]
        pol = polarity[m.start]
        cue = any(w in NEGATORS or w in POSITIVE for w in before[-6:])
        post = _evaluation(after)
        question = _is_question([tokens[k] for k in span], text) or any(
            w in YOU and nxt_w in EXPERIENCE for w, nxt_w in zip(before, before[1:], strict=False)
        )
        if post and (not cue or pol == 0):
            pol = post  # "Alien was boring", "I haven't seen X but it looks good"
        elif question and not any(w in NEGATORS or w in POSITIVE - {"recommend"} for w in before):
            pol = 0  # "Have you seen X?", "What is X about?"
        if m.kind == "item" and pol != 0 and any(cue in " " + " ".join(words[k] for k in span) for cue in SEEN_CUES):
            seen.append(m.value)
            if not (post or any(w in POSITIVE or w in NEGATORS for w in before)):
                pol = 0  # "I've seen Se7en": seen, no opinion (yet)
        pols.append(pol)
        since_last = [words[k] for k in span if (mentions[i - 1].end if i else 0) <= k < m.start and k not in inside]
        strengths.append(_strength(since_last if _strength(since_last) != 1.0 else after))
    _resolve_anaphora(words, clauses, inside, polarity, mentions, pols)
    prefs = [
        Preference(m.kind, m.value, 1 if p > 0 else -1, turn=turn, source="rule", text=m.text, strength=s)
        for m, p, s in zip(mentions, pols, strengths, strict=True)
        if p != 0
    ]
    # One statement per thing: the last mention in the message wins.
    unique: dict[tuple[str, str], Preference] = {}
    for p in prefs:
        unique.pop(p.key, None)
        unique[p.key] = p
    return BeliefUpdate(preferences=tuple(unique.values()), seen=tuple(dict.fromkeys(seen)))


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
        evaluation = _evaluation(clause_words, verbs=anaphoric)
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
