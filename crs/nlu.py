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
from crs.state import BeliefUpdate, Kind, Polarity, Preference

log = logging.getLogger(__name__)

MAX_TITLE_TOKENS = 10

# Words that are also film titles but almost never mean one in a request.
COMMON_WORDS = frozenset(
    """
    a about above after again against all alone also always am an and another any anything are around as at
    away back bad be because been before being best better between big both but by can come could day did do
    does doing done down during each even ever every everything few film films find for from fun funny get
    give go going good great had has have having he her here hers him his home how i if in into is it its
    just kind know last let life like little long look lot love made make many maybe me mine more most movie
    movies much must my myself need never new next nice night no none nor not nothing now of off old on once
    one only or other our out over own please pick recommend right same say see seen show similar so some
    something soon still such suggest sure take than thank thanks that the their them then there these they
    thing think this those though time to today too try two under until up us very want was watch watched
    way we well were what when where which while who whom why will with without would yes yet you your yours
    tonight weekend okay ok hi hello hey nope sorry tired bored free alone together family friends kids don
    t s ve ll re d m didn doesn isn wasn won aren couldn wouldn
    """.split()
)

# Surface forms -> genre names as the demo catalog spells them. Only forms whose genre
# exists in the catalog are used; every catalog genre also matches its own name.
GENRE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "sci fi": ("Science Fiction",),
    "scifi": ("Science Fiction",),
    "sf": ("Science Fiction",),
    "science fiction": ("Science Fiction",),
    "romantic": ("Romance",),
    "romances": ("Romance",),
    "love story": ("Romance",),
    "love stories": ("Romance",),
    "rom com": ("Romance", "Comedy"),
    "romcom": ("Romance", "Comedy"),
    "romantic comedy": ("Romance", "Comedy"),
    "romantic comedies": ("Romance", "Comedy"),
    "scary": ("Horror",),
    "horrors": ("Horror",),
    "funny": ("Comedy",),
    "comedies": ("Comedy",),
    "comedic": ("Comedy",),
    "animation": ("Animated",),
    "animated": ("Animated",),
    "cartoon": ("Animated",),
    "cartoons": ("Animated",),
    "anime": ("Animated",),
    "documentaries": ("Documentary",),
    "docs": ("Documentary",),
    "biopic": ("Biography",),
    "biopics": ("Biography",),
    "biographical": ("Biography",),
    "superheroes": ("Superhero",),
    "super hero": ("Superhero",),
    "kids": ("Family",),
    "children": ("Family",),
    "dramas": ("Drama",),
    "dramatic": ("Drama",),
    "film noir": ("Noir",),
    "mysteries": ("Mystery",),
    "whodunit": ("Mystery",),
    "thrillers": ("Thriller",),
    "westerns": ("Western",),
    "cowboy": ("Western",),
    "musicals": ("Musical",),
    "war movies": ("War",),
    "war films": ("War",),
    "kung fu": ("Martial Arts",),
    "crime": ("Crime",),
    "gangster": ("Crime",),
    "heist": ("Crime",),
    "spies": ("Spy",),
    "espionage": ("Spy",),
    "slashers": ("Slasher",),
    "adventures": ("Adventure",),
    "sports": ("Sports",),
    "sport": ("Sports",),
    "historical": ("Historical",),
    "period": ("Historical",),
    "fantasies": ("Fantasy",),
    "supernatural": ("Supernatural",),
    "teen": ("Teen",),
    "disaster": ("Disaster",),
    "courtroom": ("Legal",),
    "erotic": ("Erotic",),
    "political": ("Political",),
    "satire": ("Satire",),
}

NEGATORS = frozenset(
    """
    no not never nothing none without neither nor dont don t didn doesn isn wasn aren won cant cannot hate
    hated hates dislike disliked dislikes avoid skip except exclude excluding
    """.split()
)
POSITIVE = frozenset(
    """
    like liked likes love loved loves enjoy enjoyed enjoys adore adored want wanted prefer preferred fan
    into favorite favourite favourites favorites recommend more similar dig mood lots plenty
    """.split()
)
_NEVER_FLIPPED = frozenset("more lots plenty similar".split())
# "anything but X", "everything but X": 'but' is a negator here, not a clause break.
_BUT_NEGATING = frozenset(
    """
    anything everything all nothing
    """.split()
)
_CLAUSE_BREAK = frozenset(
    """
    but however although though whereas yet
    """.split()
)
# Evaluations after a mention: "Alien was boring", "horror is not for me".
POST_NEGATIVE = frozenset(
    """
    boring awful terrible bad worst sucked sucks overrated hated disliked meh dull stupid annoying
    """.split()
)
POST_POSITIVE = frozenset(
    """
    great amazing awesome loved fantastic brilliant excellent favorite favourite good best
    """.split()
)
_POST_NEGATIVE_PHRASES = (
    "is not for me",
    "not for me",
    "no thanks",
    "isn t for me",
    "is not my thing",
    "isn t my thing",
)
SEEN_CUES = (
    "already seen",
    "already watched",
    "have seen",
    "ve seen",
    "seen it",
    "seen that",
    "watched it",
    "saw it",
    "already saw",
    "i saw",
    "i watched",
    "seen already",
)

# Spellings people use for titles the catalog writes otherwise.
TITLE_ALIASES = {
    "se7en": "seven",
    "t2": "terminator 2 judgment day",
    "lotr": "lord of the rings fellowship of the ring",
}

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
    """Finds catalog titles, genres and cast members in text; built once per catalog."""

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
        if len(words) == 1:
            return span[0].text[:1].isupper()
        return True

    def mentions(self, text: str) -> list[Mention]:
        tokens = tokenize(text)
        out: list[Mention] = []
        i = 0
        while i < len(tokens):
            # Longest match wins; titles before people before genres ("Star Wars" is no war film).
            hit = self._title_at(text, tokens, i)
            if hit is not None:
                item, n = hit
                start = i - 1 if i > 0 and tokens[i - 1].norm in {"the", "a", "an"} else i
                out.append(Mention("item", item.id, text[tokens[start].start : tokens[i + n - 1].end], start, i + n))
                i += n
                continue
            person = self._phrase_at(tokens, i, self._people, 3)
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
            i += 1
        return out

    @staticmethod
    def _phrase_at(tokens: list[Token], i: int, table: dict, longest: int) -> tuple[object, int] | None:
        for n in range(min(longest, len(tokens) - i), 0, -1):
            key = " ".join(t.norm for t in tokens[i : i + n])
            if key in table:
                return table[key], n
        return None


def _polarities(tokens: list[Token]) -> list[int]:
    """The polarity in force at each token: the last cue in the clause decides."""
    out: list[int] = []
    polarity = 1
    negated_recently = -99
    for k, tok in enumerate(tokens):
        w = tok.norm
        prev = tokens[k - 1].norm if k else ""
        if w == "but" and prev in _BUT_NEGATING or w in {"except", "excluding"}:
            polarity, negated_recently = -1, k
        elif w in _CLAUSE_BREAK:
            polarity = 1
        elif w == "than" and prev == "other" or w in NEGATORS:
            polarity, negated_recently = -1, k
        elif w in POSITIVE:
            # "don't like", "not a fan of", "never enjoyed": a negator just before a verb flips it.
            polarity = -1 if w not in _NEVER_FLIPPED and k - negated_recently <= 3 else 1
        out.append(polarity)
    return out


def _clause_bounds(text: str, tokens: list[Token]) -> list[int]:
    """Clause number of each token: sentences and contrastive 'but' start new clauses."""
    ids: list[int] = []
    clause = 0
    for k, tok in enumerate(tokens):
        gap = text[tokens[k - 1].end : tok.start] if k else ""
        if re.search(r"[.;!?\n]", gap):
            clause += 1
        if tok.norm in _CLAUSE_BREAK and not (tok.norm == "but" and k and tokens[k - 1].norm in _BUT_NEGATING):
            clause += 1
        ids.append(clause)
    return ids


def understand(text: str, linker: Linker, turn: int = 0) -> BeliefUpdate:
    """Read likes, dislikes and already-seen items from one message."""
    tokens = tokenize(text)
    if not tokens:
        return BeliefUpdate()
    mentions = linker.mentions(text)
    polarity = _polarities(tokens)
    clauses = _clause_bounds(text, tokens)
    prefs: list[Preference] = []
    seen: list[str] = []
    for m in mentions:
        pol: Polarity = 1 if polarity[m.start] > 0 else -1
        clause_tokens = [t for t, c in zip(tokens, clauses, strict=True) if c == clauses[m.start]]
        clause_text = " ".join(t.norm for t in clause_tokens)
        after = [t.norm for t, c in zip(tokens[m.end :], clauses[m.end :], strict=False) if c == clauses[m.start]][:6]
        before = [t.norm for t, c in zip(tokens[: m.start], clauses[: m.start], strict=True) if c == clauses[m.start]]
        # No cue before the mention: an evaluation after it may decide ("Alien was boring").
        if (
            pol > 0
            and not any(w in NEGATORS or w in POSITIVE for w in before)
            and (any(w in POST_NEGATIVE for w in after) or " ".join(after).startswith(_POST_NEGATIVE_PHRASES))
        ):
            pol = -1
        if m.kind == "item" and any(cue in " " + clause_text for cue in SEEN_CUES):
            opinion = any(w in POST_NEGATIVE | POST_POSITIVE | POSITIVE for w in after + before)
            seen.append(m.value)
            if not opinion:
                continue
        prefs.append(Preference(m.kind, m.value, pol, turn=turn, source="rule", text=m.text))
    # One statement per thing: the last mention in the message wins.
    unique: dict[tuple[str, str], Preference] = {}
    for p in prefs:
        unique.pop(p.key, None)
        unique[p.key] = p
    return BeliefUpdate(preferences=tuple(unique.values()), seen=tuple(dict.fromkeys(seen)))


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
    polarity = _polarities(tokens)
    return " ".join(t.text for t, p in zip(tokens, polarity, strict=True) if p > 0 and t.norm not in NEGATORS)
