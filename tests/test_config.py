from __future__ import annotations

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
