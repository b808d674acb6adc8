"""The OpenAI-compatible backend against a real LLM server: llama.cpp's own server
(``llama-cpp-python[server]``, built from PyPI once by ``make install``) serving the shipped SmolLM2 GGUF.
Generation, streaming, the LLM extraction pass, and a server killed in the middle of a reply."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crs.config import Config
from crs.llm.base import LLMError, Message
from crs.llm.local import shipped_gguf
from crs.llm.openai_compat import OpenAIChatModel
from tests.conftest import free_port, test_config

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is installed by `make install`")
pytestmark = [pytest.mark.server, pytest.mark.slow]

CHAT = [
    Message("system", "You are a movie recommender. Answer in one short sentence."),
    Message("user", "Recommend a science fiction film."),
]


def start_server(port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(shipped_gguf()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--verbose", "false"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("llama.cpp server did not start within 180 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def backend_config(tmp_path: Path, port: int, **llm: object) -> Config:
    settings = {"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": "smollm2",
                "timeout": 60.0, "retries": 0, "max_new_tokens": 48} | llm  # fmt: skip
    return test_config(tmp_path, llm=settings)


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    port = free_port()
    proc = start_server(port)
    try:
        yield port
    finally:
        stop(proc)


def test_generate_and_stream_from_a_real_server(server: int, tmp_path: Path) -> None:
    model = OpenAIChatModel(backend_config(tmp_path, server))
    text = model.generate(CHAT)
    assert text.strip() and len(text) < 1000
    pieces = list(model.stream(CHAT, max_new_tokens=32))
    assert len(pieces) >= 3 and "".join(pieces).strip()
    assert "\n" not in model.generate(CHAT, stop=["\n"])  # stop strings reach the server
    model.close()


def test_llm_extraction_pass_against_a_real_server(server: int, tmp_path: Path, catalog: object) -> None:
    from crs.llm.prompts import Prompts
    from crs.understand.extract import llm_extract
    from crs.understand.linker import Linker

    model = OpenAIChatModel(backend_config(tmp_path, server, max_new_tokens=96))
    update = llm_extract("I loved Alien but no romance please", model, Prompts(), Linker(catalog), 1)  # type: ignore[arg-type]
    # The small model's JSON is often unusable; what matters is that the pass runs and keeps only catalog entities.
    assert all(p.kind in ("item", "genre", "person", "keyword") for p in update.preferences)
    model.close()


def test_a_server_killed_mid_reply_gives_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    proc = start_server(port)
    try:
        model = OpenAIChatModel(backend_config(tmp_path, port, max_new_tokens=400))
        stream = model.stream([Message("user", "Write a long story about a spaceship crew, in many sentences.")])
        first = next(stream)
        assert first
        proc.kill()  # the server dies while the reply is streaming
        with pytest.raises(LLMError, match="broke|cannot reach|failed"):
            for _ in stream:
                pass
        # After it is gone, a new call says the server cannot be reached.
        with pytest.raises(LLMError, match="cannot reach the model server"):
            model.generate(CHAT)
    finally:
        stop(proc)
