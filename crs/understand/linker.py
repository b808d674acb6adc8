"""Finding catalog entities in free text: titles (however they are typed), people, genres and themes.

``Linker.mentions`` returns each as a ``Mention`` with its token span; the rules of
``crs.understand.nlu`` and the learned reader then say how the message speaks of it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from crs.catalog import Catalog, Item
from crs.state import Kind
from crs.understand.lexicon import GENRE_SYNONYMS, THEMES
from crs.understand.text import PhraseStats, Token, tokenize
from crs.understand.titles import Link, TitleIndex

log = logging.getLogger(__name__)

# A genre word that also names who watches, and what follows it when it does ("family night").
_WATCHERS = frozenset({"family"})


_GATHERINGS = frozenset(
    "night nights evening evenings weekend weekends outing dinner gathering reunion trip time day".split()
)


def _lower(tokens: list[Token], link: Link) -> bool:
    return not any(t.text[:1].isupper() for t in tokens[link.start : link.end])


def _dated(text: str, tokens: list[Token], link: Link) -> bool:
    """Whether a year in brackets follows a matched title: "Romance (1999)" names the film."""
    end = tokens[link.end - 1].end
    return re.match(r"\s*\((?:18|19|20)\d{2}\)", text[end:]) is not None


def _span(text: str, tokens: list[Token], start: int, end: int) -> str:
    return text[tokens[start].start : tokens[end - 1].end]


@dataclass(frozen=True)
class Mention:
    kind: Kind
    value: str  # item id, canonical genre, person name
    text: str  # the words matched
    start: int  # token index of the first word
    end: int  # token index after the last word
    exact: bool = True  # False: matched despite a typo ("Gladiater", "jim carey")


class Linker:
    """Finds catalog titles, people, genres and themes ("time travel") in text; built once per
    catalog. Titles and people come from the one ``TitleIndex`` (forgiving of case, accents and
    typos, guarded against everyday phrases); genres and themes from the word lists."""

    def __init__(self, catalog: Catalog, index: TitleIndex | None = None) -> None:
        self.catalog = catalog
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
        words = {w for table in (self._genres, self._themes) for key in table for w in key.split()}
        self.index = index or TitleIndex(catalog, PhraseStats.load(), vocabulary=words)
        self._genre_words = frozenset(w for key in self._genres for w in key.split() if len(w) >= 4)

    def title_candidates(self, title: str) -> list[Item]:
        return self.index.title_candidates(title)

    def resolve(self, title: str, year: int | None = None) -> Item | None:
        """The catalog item for a title, with the year to disambiguate (±1 tolerated)."""
        return self.index.resolve(title, year)

    def mentions(self, text: str) -> list[Mention]:
        tokens = tokenize(text)
        out: list[Mention] = []
        i = 0
        while i < len(tokens):
            # Longest match wins; titles before people before genres ("Star Wars" is no war film),
            # but a longer name beats a shorter title ("Arnold Schwarzenegger", not "Arnold").
            hit = self.index.title_at(text, tokens, i)
            person = self.index.person_at(text, tokens, i)
            # At equal length a one-word name wins only when its person is better known than the film
            # ("Keanu": Keanu Reeves, not Keanu (2016)), which ``person_at`` has checked.
            if (
                hit is not None
                and person is not None
                and (person.end > hit.end or (person.end == hit.end and (person.end - i == 1 or not hit.exact)))
            ):
                hit = None
            theme = self._phrase_at(tokens, i, self._themes, 5)
            genre = self._phrase_at(tokens, i, self._genres, 3)
            if hit is not None and _lower(tokens, hit) and self._overlapped(tokens, i, hit.end):
                hit = None  # "about time travel": the theme, not About Time (2013)
            if person is not None and person.end - i == 1 and _lower(tokens, person) and (theme or genre):
                person = None  # "anything with gore": the theme, not Gore Verbinski
            # "a slow burn thriller" asks for a pace; "Slow Burn" typed as a title names the film.
            if hit is not None and _lower(tokens, hit):
                longest = max((x[1] for x in (theme, genre) if x is not None), default=0)
                if longest >= hit.end - hit.start:
                    hit = None
            if (
                hit is not None
                and genre is not None
                and genre[1] >= hit.end - hit.start
                and not _dated(text, tokens, hit)
            ):
                hit = None  # "You enjoy Horror and Romance": the genres, not The Horror (1932) or Romance (1920)
            if hit is not None:
                start = i - 1 if i > 0 and tokens[i - 1].norm in {"the", "a", "an"} else i
                out.append(Mention("item", hit.value, _span(text, tokens, start, hit.end), start, hit.end, hit.exact))
                i = hit.end
                continue
            if person is not None and not (genre is not None and genre[1] >= person.end - i and _lower(tokens, person)):
                out.append(
                    Mention("person", person.value, _span(text, tokens, i, person.end), i, person.end, person.exact)
                )
                i = person.end
                continue
            if genre is None and len(tokens[i].norm) >= 5 and tokens[i].norm not in self._genres:
                genre = self._corrected_genre(tokens, i)
            if genre and tokens[i].norm in _WATCHERS and i + 1 < len(tokens) and tokens[i + 1].norm in _GATHERINGS:
                genre = None  # "a family night": who watches, not a kind of film
            if genre is not None:
                names, n = genre
                for name in names:
                    out.append(Mention("genre", name, _span(text, tokens, i, i + n), i, i + n))
                i += n
                continue
            if theme is not None:
                value, n = theme
                out.append(Mention("keyword", value, _span(text, tokens, i, i + n), i, i + n))
                i += n
                continue
            i += 1
        return out

    def _overlapped(self, tokens: list[Token], i: int, end: int) -> bool:
        """A genre or theme starts inside [i + 1, end) and reaches past ``end``."""
        for j in range(i + 1, end):
            for table, longest in ((self._themes, 5), (self._genres, 3)):
                found = self._phrase_at(tokens, j, table, longest)
                if found is not None and j + found[1] > end:
                    return True
        return False

    def _corrected_genre(self, tokens: list[Token], i: int) -> tuple[tuple[str, ...], int] | None:
        """A misspelt genre word ("horroe", "documentry")."""
        from rapidfuzz.distance import Levenshtein

        word = tokens[i].norm
        for form in self._genre_words:
            close = abs(len(form) - len(word)) <= 1 and Levenshtein.distance(word, form, score_cutoff=1) <= 1
            if close and form in self._genres and not self.index.is_word(word):
                return self._genres[form], 1
        return None

    @staticmethod
    def _phrase_at(tokens: list[Token], i: int, table: dict, longest: int) -> tuple[object, int] | None:
        for n in range(min(longest, len(tokens) - i), 0, -1):
            key = " ".join(t.norm for t in tokens[i : i + n])
            if key in table:
                return table[key], n
        return None
