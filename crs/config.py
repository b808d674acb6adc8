"""Configuration: frozen dataclasses loaded from a TOML file, then the environment.

Every section of the TOML file maps to one dataclass below; an unknown section or key is
an error, never silently ignored. Any field can also be set from the environment as
``CRS_<SECTION>__<FIELD>`` (for example ``CRS_LLM__BACKEND=openai``); the environment wins.
The config file is ``$CRS_CONFIG`` if set, else ``crs.toml`` in the working directory if present.
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

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = PROJECT_ROOT / "knowledge"  # shipped data: demo catalog, trained reader, writer and scorer
DEFAULT_SCORER = KNOWLEDGE_DIR / "scorer" / "redial-sasrec.pt"
DEMO_CATALOG = KNOWLEDGE_DIR / "movies.jsonl.gz"


class ConfigError(ValueError):
    """A configuration file or variable that cannot be used as given."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crs"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "crs"


@dataclass(frozen=True)
class PathsConfig:
    cache_dir: Path = field(default_factory=default_cache_dir)  # converted model weights
    data_dir: Path = field(default_factory=default_data_dir)  # sessions, profiles


@dataclass(frozen=True)
class CatalogConfig:
    path: Path = DEMO_CATALOG
    format: str = "auto"  # auto | demo | jsonl | csv | redial
    # Which items are indexed for recommendation (all are still understood when named).
    # The default keeps a first start under 3 minutes on 2 cores: films from 1970 on whose
    # Wikipedia summary has at least 380 characters, a proxy for how notable a film is
    # (about 6,200 films). 0 and 0 index the whole catalog.
    min_year: int = 1970
    min_summary_chars: int = 380
    # Where min_year and min_summary_chars apply: "auto" = the shipped demo catalog only (a
    # custom catalog is indexed whole), "on" = any catalog, "off" = none.
    subset: str = "auto"


@dataclass(frozen=True)
class StoreConfig:
    path: Path = KNOWLEDGE_DIR / "index"  # PersistentClient directory
    host: str = ""  # set to use a Chroma server (chroma run) instead
    port: int = 8000
    collection: str = "items"
    embedder: str = ""  # sentence-transformers model dir; "" = the shipped all-MiniLM-L6-v2
    batch_size: int = 32  # measured fastest on a 2-core CPU (128 is ~25% slower)
    device: str = "cpu"
    # Open a local index once in a child process before using it (about 2 s), so a damaged
    # file that would crash Chroma gives a message instead; check_timeout bounds that open.
    isolated_check: bool = True
    check_timeout: float = 60.0


@dataclass(frozen=True)
class LLMConfig:
    backend: str = "local"  # local | openai
    model_path: str = ""  # local: a GGUF file or a transformers dir; "" = shipped SmolLM2
    dtype: str = "bfloat16"
    threads: int = 0  # 0 = torch default
    base_url: str = "http://127.0.0.1:8080/v1"  # openai backend
    model: str = "default"
    api_key: str = ""
    timeout: float = 120.0
    max_new_tokens: int = 160
    temperature: float = 0.0
    seed: int = 0
    # The reply writer's LoRA adapter (scripts/train_writer.py), merged into the local model's weights
    # at load: "auto" = knowledge/writer/ with the shipped SmolLM2 (skipped with a warning when missing),
    # "off" = the base model, or a folder with adapter_config.json.
    adapter: str = "auto"
    repetition_penalty: float = 1.0  # local generation (1.0: none)
    no_repeat_ngram_size: int = 0  # local generation: no n-gram of this size twice (0: allowed)


@dataclass(frozen=True)
class NLUConfig:
    # A second reading of each message by the LLM (JSON, validated, merged under the rules):
    # "auto" uses it with a served LLM (backend openai) and skips it for the small local one,
    # whose JSON is rarely usable and costs ~3 s a turn on a CPU.
    llm_extract: str = "auto"  # auto | on | off
    # The learned reader of dialogue acts and mention polarity (scripts/train_reader.py): "auto" the
    # shipped one in knowledge/reader/ (the rules alone, with a warning, if it cannot load), "off" the
    # rules alone, or a folder holding reader.pt and reader.json.
    reader: str = "auto"


@dataclass(frozen=True)
class RetrievalConfig:
    candidates: int = 50  # fetched from the store per turn
    # A broad request ("a comedy": genres or a mood, no liked film, person or theme) searches wider and
    # leans on popularity (ReDial mentions), so it starts from films people know, not the nearest texts.
    broad_candidates: int = 300
    popularity_weight: float = 0.01  # weight of log(1 + popularity) in the score
    broad_popularity_weight: float = 0.04
    show: int = 5  # recommended per turn
    max_message_chars: int = 4000  # longer messages are truncated (with a notice)


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    concurrency: int = 2  # turns processed at once
    max_queue: int = 64
    # Logins, "user:password,user2:password2" (better set as CRS_SERVE__AUTH than in a file);
    # each user then has their own profile. "" = no login, one local user.
    auth: str = ""
    # Conversations held in memory: one idle longer than this is forgotten (the page then starts
    # a new one and says so), at most max_sessions are kept (the least recently used goes first),
    # and each keeps its last max_turns turns (the belief keeps what older ones said).
    session_idle_minutes: float = 60.0
    max_sessions: int = 1000
    max_turns: int = 50


@dataclass(frozen=True)
class ProfileConfig:
    db_path: str = ""  # SQLite file for users, profiles and conversation logs; "" = <data_dir>/crs.db
    block_size: int = 5  # history items per summarised block
    method: str = "hierarchical"  # hierarchical | recurrent (how block summaries are combined)
    max_chars: int = 4000  # longest profile text accepted


@dataclass(frozen=True)
class ScorerConfig:
    # A crs.seqrec checkpoint (`crs train seqrec --out DIR` writes DIR/model.pt); "" = no sequential
    # model: candidates are ranked by retrieval, matched preferences and popularity. The default is
    # the shipped SASRec trained on ReDial dialogues (scripts/train_demo_scorer.py); it is skipped with
    # a warning when it is missing or matches none of the catalog's items.
    checkpoint: str = str(DEFAULT_SCORER)
    weight: float = 0.1  # weight of the model's z-scored candidate scores added to the retrieval score
    model_dir: str = ""  # DUIP only: the LLM's transformers dir if not the one it was trained with


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
    if isinstance(typ, types.UnionType):
        raise ConfigError(f"{where}: unsupported type {typ}")
    return value


def _section(cls: type, values: Mapping[str, object], name: str) -> object:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
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
