from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from crs.config import Config, ConfigError, load_config


def test_defaults_without_file(tmp_path: Path) -> None:
    cfg = load_config(env={})
    assert isinstance(cfg, Config)
    assert cfg.llm.backend == "local"
    assert cfg.serve.port == 7860
    assert cfg.catalog.path.name == "movies.jsonl.gz"


def test_toml_and_env_override(tmp_path: Path) -> None:
    path = tmp_path / "crs.toml"
    path.write_text('[llm]\nbackend = "openai"\nmax_new_tokens = 64\n[serve]\nport = 9000\n')
    cfg = load_config(
        path, env={"CRS_SERVE__PORT": "9100", "CRS_CATALOG__MIN_SUMMARY_CHARS": "0", "CRS_STORE__DEVICE": "cpu"}
    )
    assert cfg.llm.backend == "openai"
    assert cfg.llm.max_new_tokens == 64
    assert cfg.serve.port == 9100  # the environment wins
    assert cfg.catalog.min_summary_chars == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[llm]\nbackendd = 'x'\n", "unknown key(s) in [llm]: backendd"),
        ("[nope]\na = 1\n", "unknown section(s): nope"),
        ("[serve]\nport = 'abc'\n", "expected int"),
        ("[serve\nport = 1", "not valid TOML"),
        ("llm = 3\n", "must be a table"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "crs.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_config(path, env={})


def test_missing_file_and_bad_env(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="unknown section 'bogus'"):
        load_config(env={"CRS_BOGUS__X": "1"})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in \[llm\]"):
        load_config(env={"CRS_LLM__NOPE": "1"})
    with pytest.raises(ConfigError, match="expected int"):
        load_config(env={"CRS_CATALOG__MIN_SUMMARY_CHARS": "lots"})


def test_config_is_frozen() -> None:
    cfg = load_config(env={})
    with pytest.raises(AttributeError):
        cfg.llm.backend = "openai"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CRS_LLM__BACKEND": "llamacpp"}, "[llm] backend = 'llamacpp' is not allowed; choose one of: local, openai"),
        ({"CRS_NLU__LLM_EXTRACT": "maybe"}, "[nlu] llm_extract = 'maybe' is not allowed; choose one of: auto, on, off"),
        ({"CRS_PROFILE__METHOD": "tree"}, "choose one of: hierarchical, recurrent"),
        ({"CRS_CATALOG__FORMAT": "xml"}, "[catalog] format = 'xml' is not allowed"),
        ({"CRS_SERVE__MAX_TURNS": "0"}, "[serve] max_turns = 0: must be at least 1"),
        ({"CRS_SERVE__SESSION_IDLE_MINUTES": "0"}, "[serve] session_idle_minutes = 0.0: must be above 0"),
        ({"CRS_RETRIEVAL__SHOW": "-1"}, "[retrieval] show = -1: must be at least 1"),
        ({"CRS_SCORING__GENRE": "-0.5"}, "[scoring] genre = -0.5: must be at least 0"),
    ],
)
def test_choices_and_bounds_fail_at_load_with_what_is_allowed(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(env=env)


def test_sections_built_in_code_are_checked_too() -> None:
    from crs.config import LLMConfig, ServeConfig

    with pytest.raises(ConfigError, match="choose one of: local, openai"):
        LLMConfig(backend="vllm")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="concurrency = 0"):
        dataclasses.replace(ServeConfig(), concurrency=0)


def test_moved_keys_say_where_they_went(tmp_path: Path) -> None:
    path = tmp_path / "crs.toml"
    path.write_text("[scorer]\nweight = 0.3\n")
    with pytest.raises(ConfigError, match=re.escape("[scorer] weight has moved: set [scoring] sequential instead")):
        load_config(path, env={})
    cfg = load_config(env={"CRS_SCORING__SEQUENTIAL": "0.3", "CRS_PATHS__DATA_ROOT": str(tmp_path)})
    assert cfg.scoring.sequential == 0.3 and cfg.paths.data_root == tmp_path


def test_data_root_defaults_to_shared_data_beside_the_checkout() -> None:
    from crs.config import PROJECT_ROOT

    assert load_config(env={}).paths.data_root == PROJECT_ROOT.parent / "shared" / "data"
