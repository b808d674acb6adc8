"""Configuration: frozen dataclasses loaded from a TOML file, then the environment.

Every section of the TOML file maps to one dataclass below; an unknown section or key is
an error, never silently ignored. Any field can also be set from the environment as
``CRS_<SECTION>__<FIELD>`` (for example ``CRS_LLM__BACKEND=openai``); the environment wins.
The config file is ``$CRS_CONFIG`` if set, else ``crs.toml`` in the working directory if present.

The config is the one validator: a field typed ``Literal[...]`` accepts only those values, and a
field with bounds (``at_least``) only values within them, whether it comes from a file, the
environment or code (``LLMConfig(backend="x")``); the error names the field and what it accepts.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A source checkout (an editable install) reads prompts/ and knowledge/ beside crs/ and keeps its index
# in knowledge/index; an installed wheel carries them as crs/_shipped/ (see setup.py) and keeps the
# index in the user's data directory.
IN_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "knowledge").is_dir()
SHIPPED_ROOT = PROJECT_ROOT if IN_CHECKOUT else Path(__file__).resolve().parent / "_shipped"
KNOWLEDGE_DIR = SHIPPED_ROOT / "knowledge"  # shipped data: demo catalog, trained reader, writer and scorer
PROMPTS_DIR = SHIPPED_ROOT / "prompts"  # one template per LLM task
# The chat's default scorer: P2Rec-enhanced SASRec on ReDial + ml-latest-small (GroupLens license:
# non-commercial); REDIAL_SCORER is the earlier SASRec on ReDial alone (CC BY 4.0), one setting away.
DEFAULT_SCORER = KNOWLEDGE_DIR / "scorer" / "p2rec-sasrec.pt"
REDIAL_SCORER = KNOWLEDGE_DIR / "scorer" / "redial-sasrec.pt"
DEMO_CATALOG = KNOWLEDGE_DIR / "movies.jsonl.gz"


class ConfigError(ValueError):
    """A configuration file or variable that cannot be used as given."""


CatalogFormat = Literal["auto", "demo", "jsonl", "csv", "redial", "redial_info"]
Switch = Literal["auto", "on", "off"]
Backend = Literal["local", "openai"]
Engine = Literal["auto", "llamacpp", "transformers"]
DType = Literal["bfloat16", "float16", "float32"]
SummaryMethod = Literal["hierarchical", "recurrent"]

# Keys that moved, so an old config file gets told where they went.
MOVED = {
    ("retrieval", "popularity_weight"): "[scoring] popularity",
    ("retrieval", "broad_popularity_weight"): "[scoring] broad_popularity",
    ("scorer", "weight"): "[scoring] sequential",
}


def at_least(default: float, low: float, *, above: bool = False) -> Any:
    """A numeric field that must be ``>= low`` (``> low`` with ``above``)."""
    return field(default=default, metadata={"low": low, "above": above})


class _Checked:
    """Checks ``Literal`` choices and bounds when a section is built, from any source."""

    def __post_init__(self) -> None:
        section = type(self).__name__.removesuffix("Config").lower()
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            choices = get_args(hints[f.name]) if get_origin(hints[f.name]) is Literal else ()
            if choices and value not in choices:
                raise ConfigError(
                    f"[{section}] {f.name} = {value!r} is not allowed; choose one of: {', '.join(choices)}"
                )
            if "low" in f.metadata:
                low, above = f.metadata["low"], f.metadata["above"]
                if value < low or (above and value == low):
                    raise ConfigError(
                        f"[{section}] {f.name} = {value!r}: must be {'above' if above else 'at least'} {low:g}"
                    )


def default_index_dir() -> Path:
    """knowledge/index in a source checkout, else <data_dir>/index (never inside site-packages)."""
    return KNOWLEDGE_DIR / "index" if IN_CHECKOUT else default_data_dir() / "index"


def default_data_root() -> Path:
    """Where the real datasets are (ReDial, MovieLens, ...): ``../shared/data`` beside the checkout."""
    return PROJECT_ROOT.parent / "shared" / "data"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crs"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "crs"


@dataclass(frozen=True)
class PathsConfig(_Checked):
    cache_dir: Path = field(default_factory=default_cache_dir)  # converted model weights
    data_dir: Path = field(default_factory=default_data_dir)  # sessions, profiles
    # The benchmark datasets (redial/, movielens-*/, ...), read by `crs eval`, benches and scripts.
    data_root: Path = field(default_factory=default_data_root)


@dataclass(frozen=True)
class CatalogConfig(_Checked):
    path: Path = DEMO_CATALOG
    format: CatalogFormat = "auto"
    # Which items are indexed for recommendation (all are still understood when named).
    # The default keeps a first start under 3 minutes on 2 cores: films from 1970 on whose
    # Wikipedia summary has at least 380 characters, a proxy for how notable a film is
    # (about 6,200 films). 0 and 0 index the whole catalog.
    min_year: int = at_least(1970, 0)
    min_summary_chars: int = at_least(380, 0)
    # Where min_year and min_summary_chars apply: "auto" = the shipped demo catalog only (a
    # custom catalog is indexed whole), "on" = any catalog, "off" = none.
    subset: Switch = "auto"


@dataclass(frozen=True)
class StoreConfig(_Checked):
    path: Path = field(default_factory=default_index_dir)  # PersistentClient directory
    host: str = ""  # set to use a Chroma server (chroma run) instead
    port: int = at_least(8000, 1)
    collection: str = "items"
    embedder: str = ""  # sentence-transformers model dir; "" = the shipped all-MiniLM-L6-v2
    batch_size: int = at_least(32, 1)  # measured fastest on a 2-core CPU (128 is ~25% slower)
    device: str = "cpu"
    # Open a local index once in a child process before using it (about 2 s), so a damaged
    # file that would crash Chroma gives a message instead; check_timeout bounds that open.
    isolated_check: bool = True
    check_timeout: float = at_least(60.0, 0, above=True)
    # HNSW graph of a new collection (Chroma's defaults; bench/scale.py measures them at a million items):
    # ef_search = candidates examined per search (recall vs time), ef_construction and max_neighbors =
    # graph quality vs insert time and memory. Fixed when the collection is created.
    hnsw_ef_search: int = at_least(100, 1)
    hnsw_ef_construction: int = at_least(100, 1)
    hnsw_max_neighbors: int = at_least(16, 2)

    def hnsw(self) -> dict[str, int]:
        return {
            "ef_search": self.hnsw_ef_search,
            "ef_construction": self.hnsw_ef_construction,
            "max_neighbors": self.hnsw_max_neighbors,
        }


@dataclass(frozen=True)
class LLMConfig(_Checked):
    backend: Backend = "local"
    # How the local backend runs the model: "auto" = llama.cpp (llama-cpp-python, ~5x the tokens/s on a
    # CPU) when it is installed and the model is a GGUF file, else transformers; or name one.
    engine: Engine = "auto"
    model_path: str = ""  # local: a GGUF file or a transformers dir; "" = shipped SmolLM2
    dtype: DType = "bfloat16"
    threads: int = at_least(0, 0)  # 0 = torch default
    base_url: str = "http://127.0.0.1:8080/v1"  # openai backend
    model: str = "default"
    api_key: str = ""
    timeout: float = at_least(120.0, 0, above=True)
    retries: int = at_least(2, 0)  # openai backend: retries (with backoff) of 429, 5xx and dropped connections
    max_new_tokens: int = at_least(160, 1)
    temperature: float = at_least(0.0, 0)
    seed: int = 0
    # The reply writer's LoRA adapter (scripts/train_writer.py), merged into the local model's weights
    # at load: "auto" = knowledge/writer/ with the shipped SmolLM2 (skipped with a warning when missing),
    # "off" = the base model, or a folder with adapter_config.json.
    adapter: str = "auto"
    repetition_penalty: float = at_least(1.0, 0, above=True)  # local generation (1.0: none)
    no_repeat_ngram_size: int = at_least(0, 0)  # local generation: no n-gram of this size twice (0: allowed)


@dataclass(frozen=True)
class NLUConfig(_Checked):
    # A second reading of each message by the LLM (JSON, validated, merged under the rules):
    # "auto" uses it with a served LLM (backend openai) and skips it for the small local one,
    # whose JSON is rarely usable and costs ~3 s a turn on a CPU.
    llm_extract: Switch = "auto"
    # The learned reader of dialogue acts and mention polarity (scripts/train_reader.py): "auto" the
    # shipped one in knowledge/reader/ (the rules alone, with a warning, if it cannot load), "off" the
    # rules alone, or a folder holding reader.pt and reader.json.
    reader: str = "auto"


@dataclass(frozen=True)
class RetrievalConfig(_Checked):
    candidates: int = at_least(50, 1)  # fetched from the store per turn
    # A broad request ("a comedy": genres or a mood, no liked film, person or theme) searches wider and
    # leans on popularity (ReDial mentions), so it starts from films people know, not the nearest texts.
    broad_candidates: int = at_least(300, 1)
    show: int = at_least(5, 1)  # recommended per turn
    max_message_chars: int = at_least(4000, 1)  # longer messages are truncated (with a notice)


@dataclass(frozen=True)
class ServeConfig(_Checked):
    host: str = "127.0.0.1"
    port: int = at_least(7860, 0)
    concurrency: int = at_least(2, 1)  # turns processed at once
    max_queue: int = at_least(64, 1)
    # Logins, "user:password,user2:password2" (better set as CRS_SERVE__AUTH than in a file);
    # each user then has their own profile. "" = no login, one local user.
    auth: str = ""
    # Conversations held in memory: one idle longer than this is forgotten (the page then starts
    # a new one and says so), at most max_sessions are kept (the least recently used goes first),
    # and each keeps its last max_turns turns (the belief keeps what older ones said).
    session_idle_minutes: float = at_least(60.0, 0, above=True)
    max_sessions: int = at_least(1000, 1)
    max_turns: int = at_least(50, 1)


@dataclass(frozen=True)
class ProfileConfig(_Checked):
    db_path: str = ""  # SQLite file for users, profiles and conversation logs; "" = <data_dir>/crs.db
    block_size: int = at_least(5, 1)  # history items per summarised block
    method: SummaryMethod = "hierarchical"  # how block summaries are combined
    # Log every turn (message, reply, act, items, belief update, tool calls, stage times) in the
    # database for research (`crs logs --jsonl`); `--no-log` on chat and serve turns it off.
    log_turns: bool = True
    max_chars: int = at_least(4000, 1)  # longest profile text accepted


@dataclass(frozen=True)
class ScorerConfig(_Checked):
    # A crs.seqrec checkpoint (`crs train seqrec --out DIR` writes DIR/model.pt); "" = no sequential
    # model: candidates are ranked by retrieval, matched preferences and popularity. The default is
    # the shipped P2Rec-enhanced SASRec trained on ReDial dialogues and MovieLens users
    # (scripts/train_demo_scorer.py; knowledge/scorer/redial-sasrec.pt is the ReDial-only SASRec); it
    # is skipped with a warning when it is missing or matches none of the catalog's items.
    checkpoint: str = str(DEFAULT_SCORER)
    model_dir: str = ""  # DUIP only: the LLM's transformers dir if not the one it was trained with


@dataclass(frozen=True)
class ScoringConfig(_Checked):
    """How the agent ranks candidates: the retrieval similarity (the scale, weight 1) plus these terms.
    ``crs eval redial`` ranks with the same weights in its "agent's [scoring] weights" row."""

    sequential: float = at_least(0.1, 0)  # times the sequential model's z-scored candidate score
    popularity: float = at_least(0.01, 0)  # times log(1 + popularity)
    # A broad request ("a comedy": genres or a mood, no liked film, person or theme) leans on popularity
    # (ReDial mentions), so it starts from films people know, not the nearest texts.
    broad_popularity: float = at_least(0.04, 0)
    genre: float = at_least(0.08, 0)  # per liked genre a film has, times how strongly it was said
    person: float = at_least(0.2, 0)  # per liked person in its cast or among its directors
    keyword_like: float = at_least(0.15, 0)  # a liked theme found in its text ("time travel")
    keyword_dislike: float = at_least(0.2, 0)  # a disliked one ("less violent"): it sinks, it is not banned


@dataclass(frozen=True)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    nlu: NLUConfig = field(default_factory=NLUConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)


def _coerce(value: object, typ: object, where: str) -> object:
    if typ is Path or typ == "Path":
        return Path(str(value)).expanduser()
    if typ is bool or typ == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{where}: expected a boolean, got {value!r}")
    for scalar in (int, float, str):
        if typ is scalar or typ == scalar.__name__:
            if isinstance(value, bool) and scalar is not bool:
                raise ConfigError(f"{where}: expected {scalar.__name__}, got {value!r}")
            try:
                return scalar(value)  # type: ignore[operator]
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: expected {scalar.__name__}, got {value!r}") from None
    if get_origin(typ) is Literal:
        return value if isinstance(value, str) else str(value)
    if isinstance(typ, types.UnionType):
        raise ConfigError(f"{where}: unsupported type {typ}")
    return value


def _section(cls: type, values: Mapping[str, object], name: str) -> object:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if (name, key) in MOVED:
            raise ConfigError(f"[{name}] {key} has moved: set {MOVED[name, key]} instead")
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{name}]: {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints[k], f"[{name}] {k}") for k, v in values.items()}
    return cls(**kwargs)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the config from ``path`` (or $CRS_CONFIG, or ./crs.toml) and the environment."""
    env = os.environ if env is None else env
    raw: dict[str, dict[str, object]] = {}
    if path is None:
        path = env.get("CRS_CONFIG") or ("crs.toml" if Path("crs.toml").is_file() else None)
    if path is not None:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    hints = typing.get_type_hints(Config)
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(unknown)}; known: {', '.join(sections)}")
    for name, values in raw.items():
        if not isinstance(values, dict):
            raise ConfigError(f"[{name}] must be a table")
    merged: dict[str, dict[str, object]] = {name: dict(raw.get(name, {})) for name in sections}
    for key, value in env.items():
        if not key.startswith("CRS_") or "__" not in key:
            continue
        section, _, fld = key[4:].partition("__")
        section, fld = section.lower(), fld.lower()
        if section not in sections:
            raise ConfigError(f"environment variable {key}: unknown section {section!r}")
        merged[section][fld] = value
    return Config(**{name: _section(hints[name], merged[name], name) for name in sections})  # type: ignore[arg-type]
