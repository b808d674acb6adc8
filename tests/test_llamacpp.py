"""The local model's llama.cpp engine: which engine a config gets, the adapter merged into a GGUF copy
(same text as transformers' merge), and refusals that name the problem."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import crs.llm.llamacpp as engine
from crs.config import Config, LLMConfig, PathsConfig
from crs.llm.base import LLMError, Message
from crs.llm.gguf_merge import merge_lora_gguf, merged_gguf_path
from crs.llm.local import WRITER_DIR, LocalChatModel, shipped_gguf

CHAT = [
    Message("system", "You are a movie recommender. Answer in one short sentence."),
    Message("user", "I liked Alien and Aliens. What else should I watch?"),
]


def make_config(cache_dir: Path, data_dir: Path, **llm_fields: Any) -> Config:
    return Config(paths=PathsConfig(cache_dir=cache_dir, data_dir=data_dir), llm=LLMConfig(**llm_fields))


@pytest.fixture(scope="module")
def model_cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    cache = Path(os.environ.get("CRS_TEST_CACHE") or Path.home() / ".cache" / "crs-test").expanduser()
    return make_config(cache, tmp_path_factory.mktemp("data"), max_new_tokens=32)


# --------------------------------------------------------------------------- which engine (no model load)


def test_engine_choice_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_config(tmp_path / "cache", tmp_path / "data")
    if engine.llamacpp_installed():
        assert engine.unusable(cfg) is None
    penalised = replace(cfg, llm=replace(cfg.llm, repetition_penalty=1.2))
    assert "transformers settings" in (engine.unusable(penalised) or "")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    folder = replace(cfg, llm=replace(cfg.llm, model_path=str(tmp_path / "hf")))
    if engine.llamacpp_installed():
        assert "not a GGUF file" in (engine.unusable(folder) or "")

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    assert "make llamacpp" in (engine.unusable(cfg) or "")
    with pytest.raises(LLMError, match="llama-cpp-python is not installed"):
        engine.load_local_model(replace(cfg, llm=replace(cfg.llm, engine="llamacpp")))


# --------------------------------------------------------------------------- merging the adapter


def _adapter_copy(tmp_path: Path, **config: Any) -> Path:
    folder = tmp_path / "adapter"
    shutil.copytree(WRITER_DIR, folder)
    path = folder / "adapter_config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | config))
    return folder


def test_merge_refuses_what_it_cannot_merge(tmp_path: Path) -> None:
    if not (WRITER_DIR / "adapter_config.json").is_file():
        pytest.skip("no shipped writer adapter")
    gguf = shipped_gguf()
    with pytest.raises(LLMError, match="use_dora"):
        merge_lora_gguf(gguf, _adapter_copy(tmp_path / "a", use_dora=True), tmp_path / "x.gguf")
    with pytest.raises(LLMError, match="not LORA"):
        merge_lora_gguf(gguf, _adapter_copy(tmp_path / "b", peft_type="IA3"), tmp_path / "x.gguf")
    with pytest.raises(LLMError, match="cannot read"):
        merged_gguf_path(gguf, tmp_path / "missing", tmp_path)
    assert not list(tmp_path.glob("*.gguf")) and not list(tmp_path.glob(".x.gguf*"))  # nothing half-written


def _llama_logits(path: Path, ids: list[int]) -> Any:
    from llama_cpp import Llama

    model = Llama(model_path=str(path), n_ctx=1024, logits_all=True, n_threads=2, verbose=False)
    model.eval(ids)
    return model.scores[: len(ids)]  # (T, V)


def _hf_logits(model: LocalChatModel, ids: list[int]) -> Any:
    import torch

    with torch.inference_mode():
        return model.model(torch.tensor([ids])).logits[0].float().numpy()  # (T, V)


def _correlation(a: Any, b: Any) -> float:
    import numpy as np

    return float(np.mean([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b, strict=True)]))


@pytest.mark.slow
def test_merged_gguf_predicts_what_transformers_merge_predicts(
    model_cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer adapter merged into the GGUF by numpy gives llama.cpp the next-token logits peft's merge
    gives transformers, as closely as the two engines agree on the base weights (their rounding differs:
    bf16 there, 8-bit blocks and activations here, so greedy texts may part after a few tokens)."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is built by make install")
    fast = engine.LlamaCppChatModel(model_cfg)
    assert fast.adapter is not None and "+writer" in fast.name and fast.path.is_file()
    ids = fast.prompt_ids(CHAT, 32)
    ids += fast.llm.tokenize(fast.generate(CHAT).encode(), add_bos=False)
    off = replace(model_cfg, llm=replace(model_cfg.llm, adapter="off"))
    merged_llama = _llama_logits(fast.path, ids)
    merged_hf = _hf_logits(LocalChatModel(model_cfg), ids)
    base_hf = _hf_logits(LocalChatModel(off), ids)
    same, apart = _correlation(merged_llama, merged_hf), _correlation(merged_llama, base_hf)
    assert same > 0.995 and same > apart + 0.02, (same, apart)  # measured: 0.9989 against 0.950

    def no_merge(*args: Any) -> Path:
        raise AssertionError("the merged file should have been reused")

    monkeypatch.setattr(engine, "merge_lora_gguf", no_merge)
    assert engine.LlamaCppChatModel(model_cfg).path == fast.path


@pytest.mark.slow
def test_auto_engine_is_llamacpp_and_falls_back(model_cfg: Config) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is built by make install")
    assert isinstance(engine.load_local_model(model_cfg), engine.LlamaCppChatModel)
    penalised = replace(model_cfg, llm=replace(model_cfg.llm, repetition_penalty=1.1))
    assert isinstance(engine.load_local_model(penalised), LocalChatModel)
    with pytest.raises(LLMError, match="transformers settings"):
        engine.LlamaCppChatModel(penalised)
