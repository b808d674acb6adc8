"""One index of the catalog's titles and people, forgiving the way people type them.

``TitleIndex`` is the single place that turns typed words into catalog items and people: the
understanding of messages, the grounding guard, profile import, the sequential scorer's mapping and
the ReDial loaders all use it. It is

- case-, accent- and punctuation-insensitive, with aliases (a leading article, "&", Roman numerals
  as digits, a title without its subtitle, "Godfather, The");
- typo-tolerant through ``rapidfuzz``: a word that is no known word is corrected to the closest word
  of a title or name ("Gladiater" -> "gladiator"), and a two- or three-word name is matched against
  names sharing its first or last word ("jim carey" -> Jim Carrey);
- guided by a popularity prior (ReDial mention counts of films, and of the films a person is in) to
  pick between namesakes, surnames ("nolan" -> Christopher Nolan) and first names ("keanu");
- guarded for precision: a title that people write far more often as ordinary words than as the film
  ("anything else", "it", "love", "in the mood", counted in real movie chats by
  ``scripts/build_phrase_counts.py``) links only with evidence: a year after it, quotes, or Title
  Case mid-sentence.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache

from crs.catalog import Catalog, Item, split_title_year
from crs.understand.lexicon import EXPERIENCE, POSITIVE, TITLE_ALIASES
from crs.understand.text import (
    APOSTROPHES,
    CLITICS,
    SUBTITLE,
    TRAILING_ARTICLE,
    PhraseStats,
    Token,
    canon,
    english_words,
    fold,
    title_key,
    tokenize,
)

log = logging.getLogger(__name__)

MAX_TITLE_TOKENS = 10

# Words that never start or end a film or a name on their own, whatever the catalog holds.
# Said of a film just before its title, and the first word of a verdict just after it.
_FILM_VERBS = (POSITIVE | EXPERIENCE | frozenset("hated hate dislike disliked rewatched rewatch".split())) - frozenset(
    "more similar lots plenty into mood know knew sure read hear heard".split()
)
_VERDICT_NEXT = frozenset("was is wasn isn bored sucked sucks stank rocked rocks scared made put".split())
_FUNCTION_WORDS = frozenset(
    "a an the and or but of to in on at for with by from is are was were be been it its this that these those "
    "i me my you your we our they them he she his her not no so as if than then too very just".split()
)


_NAME_AFTER = frozenset("film films movie movies flick flicks s stuff".split())
_NAME_BEFORE = frozenset("starring featuring director actor actress".split())


def _name_context(tokens: list[Token], i: int) -> bool:
    """Words around a lower-case word that make it a name: "nolan films", "with cruise", "sandler's"."""
    before = tokens[i - 1].norm if i > 0 else ""
    after = tokens[i + 1].norm if i + 1 < len(tokens) else ""
    return after in _NAME_AFTER or before in _NAME_BEFORE


@lru_cache(maxsize=512)
def _capitalised_throughout(text: str) -> bool:
    letters = [t for t in tokenize(text) if t.text[:1].isalpha()]
    return len(letters) > 3 and sum(1 for t in letters if t.text[:1].isupper()) > 0.8 * len(letters)


def _article(title: str) -> bool:
    return bool(re.match(r"(the|a|an)\s", fold(title)))


@dataclass(frozen=True)
class Link:
    """A span of tokens that names a catalog item or a person."""

    kind: str  # item | person
    value: str  # item id or the person's canonical name
    start: int  # token index of the first word
    end: int  # token index after the last word
    exact: bool = True
    score: float = 100.0  # rapidfuzz similarity of the typed words to the key


@dataclass
class _Person:
    name: str
    films: int = 0
    weight: float = 0.0  # films weighted by their popularity


class TitleIndex:
    """Catalog titles and people, exact and forgiving; built once per catalog (about 2 s for 36k films)."""

    def __init__(self, catalog: Catalog, phrases: PhraseStats | None = None, vocabulary: Iterable[str] = ()) -> None:
        self.catalog = catalog
        self.phrases = phrases if phrases is not None else PhraseStats()
        self._titles: dict[str, list[Item]] = {}
        self._aliases: dict[str, list[Item]] = {}
        for item in catalog:
            key = title_key(item.title)
            if key:
                self._titles.setdefault(key, []).append(item)
            for alias in self._title_aliases(item.title):
                if alias != key:
                    self._aliases.setdefault(alias, []).append(item)
        for alias, target in TITLE_ALIASES.items():  # "se7en", "lotr", "t2"
            if target in self._titles:
                self._aliases.setdefault(alias, []).extend(self._titles[target])
        rank = self.item_rank
        for table in (self._titles, self._aliases):
            for items in table.values():
                items.sort(key=rank)
        people: dict[str, _Person] = {}
        for item in catalog:
            weight = 0.1 + math.log1p(item.popularity)  # well-known films make a well-known person
            for name in item.people:
                key = " ".join(t.norm for t in tokenize(name))
                if key.count(" ") >= 1:
                    p = people.setdefault(key, _Person(name))
                    p.films += 1
                    p.weight += weight
        self._people = people
        self._extra_words = frozenset(vocabulary)
        self._correction_cache: dict[str, list[tuple[str, int]]] = {}

    # ---- building ----------------------------------------------------------------------------

    @staticmethod
    def item_rank(item: Item) -> tuple[float, int, int]:
        """Namesakes, best known first: ReDial mentions, then the length of the article's lead."""
        return (-item.popularity, -len(item.summary), -(item.year or 0))

    @staticmethod
    def _title_aliases(title: str) -> list[str]:
        """Other keys people use: without a subtitle ("Alien: Resurrection" is not "alien", but
        "Mission: Impossible – Fallout" is "fallout" only with its main title), "Godfather, The"."""
        out = []
        m = TRAILING_ARTICLE.match(title)
        if m:
            out.append(title_key(f"{m['article']} {m['title']}"))
        parts = SUBTITLE.split(title, maxsplit=1)
        if len(parts) == 2:
            main, sub = title_key(parts[0]), title_key(parts[1])
            # "Borat: Cultural Learnings..." is "borat"; a one-word subtitle alone ("Fallout") is too vague.
            if main and len(main) >= 4:
                out.append(main)
            if sub and sub.count(" ") >= 2:
                out.append(sub)
        return out

    @cached_property
    def _known_words(self) -> frozenset[str]:
        return english_words() | self._extra_words

    @cached_property
    def _vocab(self) -> dict[str, float]:
        """Words of titles and names -> how much they are worth as a correction (popularity)."""
        out: dict[str, float] = {}
        for key, items in self._titles.items():
            weight = 1.0 + math.log1p(items[0].popularity)
            for w in key.split():
                if len(w) >= 3:
                    out[w] = out.get(w, 0.0) + weight
        for key, p in self._people.items():
            for w in key.split():
                if len(w) >= 3:
                    out[w] = out.get(w, 0.0) + p.weight
        return out

    @cached_property
    def _vocab_by_len(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for w in self._vocab:
            out.setdefault(len(w), []).append(w)
        return out

    @cached_property
    def _names_by_word(self) -> dict[tuple[int, str], list[str]]:
        """(position 0 or -1, word) -> keys of names and multi-word titles with that first or last word."""
        out: dict[tuple[int, str], list[str]] = {}
        for key in list(self._people) + [k for k in self._titles if " " in k]:
            words = key.split()
            out.setdefault((0, words[0]), []).append(key)
            out.setdefault((-1, words[-1]), []).append(key)
        return out

    @cached_property
    def _single_names(self) -> dict[str, tuple[str, float, float]]:
        """One word of a name -> (the best-known person with it, their weight, the runner-up's)."""
        best: dict[str, list[tuple[float, str]]] = {}
        firsts: dict[str, int] = {}
        for key, p in self._people.items():
            words = key.split()
            firsts[words[0]] = firsts.get(words[0], 0) + 1
            # First name, surname, and a surname with a particle written as one word ("deniro").
            for w in {words[0], words[-1], "".join(words[1:])}:
                if len(w) >= 4 and w not in _FUNCTION_WORDS:
                    best.setdefault(w, []).append((p.weight, key))
        out = {}
        for w, cands in best.items():
            # A common first name ("ellen", "tom") belongs to no one person: only surnames count then.
            kept = [(wt, key) for wt, key in cands if key.split()[0] != w or firsts[w] <= 3]
            if not kept:
                continue
            kept.sort(reverse=True)
            runner = kept[1][0] if len(kept) > 1 else 0.0
            out[w] = (kept[0][1], kept[0][0], runner)
        return out

    # ---- looking up a whole title or name ------------------------------------------------------

    def items_for(self, key: str) -> list[Item]:
        """Items whose title (or, failing that, an alias) has this key, best known first."""
        return list(self._titles.get(key) or self._aliases.get(key) or [])

    def title_candidates(self, title: str) -> list[Item]:
        return self.items_for(title_key(title))

    def resolve(self, title: str, year: int | None = None, fuzzy: bool = True) -> Item | None:
        """The catalog item a typed title means, with the year to disambiguate (±1 tolerated). A
        title in "Title (Year)" form gives its own year. Typos are forgiven with ``fuzzy``."""
        if year is None and title.rstrip().endswith(")"):
            title, year = split_title_year(title)
        keys = [title_key(title)]
        m = TRAILING_ARTICLE.match(title.strip())
        if m:
            keys.append(title_key(f"{m['article']} {m['title']}"))
        bare = re.sub(r"\s*\([^)]*\)\s*$", "", title).strip()
        if bare != title.strip():
            keys.append(title_key(bare))
        for key in dict.fromkeys(k for k in keys if k):
            item = self._pick(self.items_for(key), year)
            if item is not None:
                return item
        if fuzzy and keys[0]:
            found = self._misspelt_key(keys[0].split())
            if found is not None:
                return self._pick(self.items_for(found), year)
        return None

    @staticmethod
    def _pick(items: list[Item], year: int | None) -> Item | None:
        if not items:
            return None
        if year:
            for tolerance in (0, 1):
                close = [it for it in items if it.year and abs(it.year - year) <= tolerance]
                if close:
                    return close[0]
            return None
        return items[0]

    def person(self, name: str) -> str | None:
        """The canonical name of a person as typed ("jim carey" -> "Jim Carrey")."""
        words = [t.norm for t in tokenize(name)]
        key = " ".join(words)
        if key in self._people:
            return self._people[key].name
        found = self._fuzzy_phrase(words, "person")
        return self._people[found[0]].name if found else None

    def is_word(self, word: str) -> bool:
        """A known English word, or a word of a title or a name: no typo."""
        return word in self._known_words or word in self._vocab

    def people(self) -> dict[str, str]:
        """Name key -> canonical name, for every person of the catalog."""
        return {k: p.name for k, p in self._people.items()}

    # ---- spans of a message ----------------------------------------------------------------------

    def title_at(self, text: str, tokens: list[Token], i: int) -> Link | None:
        """The longest title starting at token ``i`` that the words plausibly mean."""
        if not self._may_start(text, tokens, i):
            return None
        for n in range(min(MAX_TITLE_TOKENS, len(tokens) - i), 0, -1):
            span = tokens[i : i + n]
            if not self._may_end(text, tokens, i + n - 1):
                continue
            words = [canon(t.norm) for t in span]
            key = " ".join(words)
            if n > 1 and words[0] in {"the", "a", "an"} and key not in self._titles:
                continue  # matched one token later, without the article
            items = self.items_for(key)
            if items and self._plausible(text, tokens, i, n, key):
                if len(items) > 1:  # "Heat" is Heat (1995), not The Heat (2013): the typed article counts
                    typed = " ".join(t.norm for t in tokens[max(0, i - 1) : i + n])
                    items = sorted(
                        items, key=lambda it: _article(it.title) != (typed.split()[0] in {"the", "a", "an"} and i > 0)
                    )
                return Link("item", self._dated(text, span, items).id, i, i + n)
        return self._fuzzy_title_at(text, tokens, i)

    def person_at(self, text: str, tokens: list[Token], i: int) -> Link | None:
        """A full name (exact or misspelt), or a surname or rare first name of a well-known person."""
        if not self._may_start(text, tokens, i):
            return None
        for n in range(min(4, len(tokens) - i), 1, -1):
            if not self._may_end(text, tokens, i + n - 1):
                continue
            key = " ".join(t.norm for t in tokens[i : i + n])
            if key in self._people:
                return Link("person", self._people[key].name, i, i + n)
        for n in range(min(3, len(tokens) - i), 1, -1):
            words = [t.norm for t in tokens[i : i + n]]
            if not self._may_end(text, tokens, i + n - 1) or sum(len(w) for w in words) < 7:
                continue
            found = self._fuzzy_phrase(words, "person")
            if found is not None:
                return Link("person", self._people[found[0]].name, i, i + n, exact=False, score=found[1])
        return self._single_name_at(text, tokens, i)

    def _single_name_at(self, text: str, tokens: list[Token], i: int) -> Link | None:
        tok = tokens[i]
        word = tok.norm
        if not self._may_end(text, tokens, i) or word in _FUNCTION_WORDS:
            return None
        known = word in self._known_words
        if word not in self._single_names and not known:
            corrected = self._correct_words([word])[0]
            word = corrected if corrected in self._single_names else word
        entry = self._single_names.get(word)
        if entry is None:
            return None
        neighbours = [tokens[j] for j in (i - 1, i + 1) if 0 <= j < len(tokens)]
        if tok.text[:1].isupper() and any(t.text[:1].isupper() and t.norm != "i" for t in neighbours):
            return None  # "Ellen Ripley": part of a full name the catalog does not know, not Ellen Burstyn
        key, weight, runner = entry
        if weight < 4.0 or weight < 2.0 * runner:
            return None  # not well known, or shared with someone nearly as well known
        if known and not self._title_case(text, tokens, i, 1) and not _name_context(tokens, i):
            return None  # "cruise", "hill", "stone" as words, unless typed or used as a name
        if word in self._titles and self._titles[word][0].popularity > weight:
            return None  # the film is better known than the person ("Keanu" yields to Keanu Reeves)
        return Link("person", self._people[key].name, i, i + 1, exact=word == tok.norm, score=100.0)

    def _fuzzy_title_at(self, text: str, tokens: list[Token], i: int) -> Link | None:
        """A title with misspelt words ("Gladiater", "blcak hawk down", "Paicfic Rim")."""
        words = [canon(t.norm) for t in tokens[i : i + min(6, len(tokens) - i)]]
        if not words or not any(self._corrections(w) for w in words):
            return None
        for n in range(len(words), 0, -1):
            if not self._may_end(text, tokens, i + n - 1) or not any(self._corrections(w) for w in words[:n]):
                continue
            article = n > 1 and words[0] in {"the", "a", "an"}
            found = self._misspelt_key(words[1:n] if article else words[:n])
            if found is None or found in _FUNCTION_WORDS or found.isdigit():
                continue
            if self.phrases.everyday(found) and not self._evidence(text, tokens, i, n):
                continue
            item = self.items_for(found)[0]
            if n - article == 1 and not self._evidence(text, tokens, i, n):
                # One misspelt lower-case word: a well-known film one slip away ("udnerworld"), not a
                # word mistyped ("lyou" is no Lou, "amovement" no Atonement).
                distance = min(d for w, d in self._corrections(words[n - 1]) if w == found.split()[-1])
                if distance > 1 or item.popularity < 5:
                    continue
            return Link("item", item.id, i, i + n, exact=False, score=90.0)
        return None

    def _misspelt_key(self, words: list[str]) -> str | None:
        """The title key the words misspell (each unknown word replaced by one of its corrections),
        the closest first, then the best-known film; None when none is a title."""
        from itertools import product

        options = [self._corrections(w) or [(w, 0)] for w in words]
        best: tuple[int, float, str] | None = None
        for combo in product(*(o[:4] for o in options)):
            key = " ".join(w for w, _ in combo)
            items = self._titles.get(key)
            if items:
                rank = (sum(d for _, d in combo), -items[0].popularity, key)
                best = rank if best is None or rank < best else best
        return best[2] if best else None

    def _corrections(self, word: str) -> list[tuple[str, int]]:
        """Words of titles and names a word that is no known word may misspell, with their distance
        (one edit for short words, two from eight letters; a swap of two letters is one edit), the
        closest and best known first. Empty for a known word."""
        if len(word) < 4 or not word.isalpha() or word in self._vocab or word in self._known_words:
            return []
        cached = self._correction_cache.get(word)
        if cached is not None:
            return cached
        from rapidfuzz.distance import OSA

        limit = 1 if len(word) < 8 else 2
        found = []
        for length in range(len(word) - limit, len(word) + limit + 1):
            for cand in self._vocab_by_len.get(length, ()):
                d = OSA.distance(word, cand, score_cutoff=limit)
                if d <= limit:
                    found.append((d, -self._vocab[cand], cand))
        out = [(cand, d) for d, _, cand in sorted(found)[:4]]
        if len(self._correction_cache) < 50_000:
            self._correction_cache[word] = out
        return out

    def _correct_words(self, words: list[str]) -> list[str]:
        """Each word that is no known word replaced by its closest correction (if any)."""
        return [c[0][0] if (c := self._corrections(w)) else w for w in words]

    def _fuzzy_phrase(self, words: list[str], kind: str) -> tuple[str, float] | None:
        """The name (``person``) or title (``item``) key that a multi-word phrase misspells: the same
        number of words, sharing its first or last word, each other word within one edit (two from
        eight letters), at least one word exact and no short word changed; the better known on a tie."""
        from rapidfuzz.distance import Levenshtein

        if len(words) < 2:
            return None
        table = self._people if kind == "person" else self._titles
        cands = {k for pos in (0, -1) for k in self._names_by_word.get((pos, words[pos]), ()) if k in table}
        scored = []
        for key in cands:
            other = key.split()
            if len(other) != len(words) or other == words:
                continue
            total = 0
            for a, b in zip(words, other, strict=True):
                if a == b:
                    continue
                limit = 0 if min(len(a), len(b)) < 4 else 1 if len(b) < 8 else 2
                d = Levenshtein.distance(a, b, score_cutoff=limit)
                if d > limit:
                    break
                total += d
            else:
                weight = table[key].weight if kind == "person" else 1 + math.log1p(table[key][0].popularity)  # type: ignore[union-attr,index]
                scored.append((-total, weight, key))
        if not scored:
            return None
        scored.sort(reverse=True)
        if len(scored) > 1 and scored[1][0] == scored[0][0] and scored[1][1] >= scored[0][1] / 2:
            return None  # two names equally close and about as well known: no guess
        return scored[0][2], 100.0 + 10.0 * scored[0][0]

    # ---- precision guards --------------------------------------------------------------------------

    @staticmethod
    def _may_start(text: str, tokens: list[Token], i: int) -> bool:
        """No span starts inside a contraction: the "t" of "haven't", the "ll" of "I'll"."""
        tok = tokens[i]
        return not (i > 0 and tok.start == tokens[i - 1].end + 1 and text[tok.start - 1] in APOSTROPHES)

    @staticmethod
    def _may_end(text: str, tokens: list[Token], j: int) -> bool:
        """No span ends right before a clitic: the "I" of "I'll", the "haven" of "haven't"."""
        if j + 1 >= len(tokens):
            return True
        nxt = tokens[j + 1]
        glued = nxt.start == tokens[j].end + 1 and text[tokens[j].end] in APOSTROPHES
        return not (glued and nxt.norm in CLITICS)

    def _dated(self, text: str, span: list[Token], items: list[Item]) -> Item:
        m = re.match(r"^\s*\(?\s*((?:19|20)\d{2})\s*\)?", text[span[-1].end :])
        if m:
            dated = self._pick(items, int(m.group(1)))
            if dated is not None:
                return dated
        return items[0]

    def _plausible(self, text: str, tokens: list[Token], i: int, n: int, key: str) -> bool:
        """Whether words that spell a title mean the film here."""
        span = tokens[i : i + n]
        if len(key) < 2:
            return False
        if n == 1 and key.isdigit():
            # "2012", "1984": a year in the text, unless written as the film with its own year after it.
            return bool(re.match(r"^\s*\(?\s*(?:19|20)\d{2}\b", text[span[-1].end :]))
        if n == 1 and key in _FUNCTION_WORDS:
            # "It", "Her", "Up": a sentence may start with them; only a year, quotes or capitals ("IT") say film.
            return self._evidence(text, tokens, i, n, title_case=False) or (span[0].text.isupper() and len(key) > 1)
        if self._evidence(text, tokens, i, n):
            return True
        words = key.split()
        if all(w in _FUNCTION_WORDS for w in words):
            return False
        if self.phrases.everyday(key):
            return False  # "anything else", "in the mood", "love": ordinary words unless typed as a title
        # Past this point capitals say nothing (none, or only the sentence's first word: "Drop Heat",
        # "SYSTEM: ..."): ordinary words are a film only when movie chats name it often, more readily
        # right after a verb said of films ("i hated top gun", "Alien bored me").
        judged = self._judged(tokens, i, n)
        if n > 1 and all(w in self._known_words or w in _FUNCTION_WORDS for w in words):
            marked, plain = self._film_talk(key), self.phrases.plain.get(key, 0)
            return marked >= 1 and marked >= plain if judged else marked >= 3 and marked >= 2 * plain
        if n == 1 and (len(key) < 3 or key in self._known_words):
            # A common word is a film when typed with the film's own article ("the matrix").
            article = i > 0 and tokens[i - 1].norm in {"the", "a", "an"}
            own = self.items_for(key)[:1]
            if article and own and _article(own[0].title):
                return True
            marked, plain = self._film_talk(key), self.phrases.plain.get(key, 0)
            return marked >= 2 and 2 * marked >= plain if judged else marked >= 5 and marked >= 4 * plain
        return True

    @staticmethod
    def _judged(tokens: list[Token], i: int, n: int) -> bool:
        """A verb said of films right before the words ("loved", "hated", "watched") or a verdict
        right after them ("was", "bored", "sucked")."""
        before = tokens[i - 1].norm if i > 0 else ""
        after = tokens[i + n].norm if i + n < len(tokens) else ""
        return before in _FILM_VERBS or after in _VERDICT_NEXT

    def _film_talk(self, key: str) -> float:
        """How often movie chats name the film with this title: marked mentions in the counted
        dialogues, or the catalog's popularity (ReDial mentions over all of ReDial, about 13 times
        as many dialogues) scaled to them."""
        items = self.items_for(key)
        return max(float(self.phrases.marked.get(key, 0)), items[0].popularity / 13 if items else 0.0)

    def _evidence(self, text: str, tokens: list[Token], i: int, n: int, title_case: bool = True) -> bool:
        """A year after the words, quotes around them, or Title Case that is not just the sentence start."""
        after = text[tokens[i + n - 1].end :]
        before = text[: tokens[i].start]
        if re.match(r"^\s*\(?\s*(?:19|20)\d{2}\b", after):
            return True
        if before.rstrip()[-1:] in {'"', "“", "'", "*", "_"} and after.lstrip()[:1] in {'"', "”", "'", "*", "_"}:
            return True
        return title_case and self._title_case(text, tokens, i, n)

    @staticmethod
    def _title_case(text: str, tokens: list[Token], i: int, n: int) -> bool:
        span = tokens[i : i + n]
        sentence_start = not text[: span[0].start].strip() or text[: span[0].start].rstrip()[-1] in ".!?\n"
        caps = [
            t for k, t in enumerate(span) if t.text[:1].isupper() and not (k == 0 and sentence_start) and t.norm != "i"
        ]
        if not caps:
            return False
        # A message typed all in capitals, or every word capitalised, says nothing about one span.
        return not _capitalised_throughout(text)
