"""Merge a LoRA adapter (peft format) into a llama-architecture GGUF file, for the llama.cpp engine.

The reply writer (``knowledge/writer/``) is a LoRA adapter on the shipped SmolLM2. The transformers
engine merges it into the de-quantised weights at load; llama.cpp reads GGUF only, so this writes a
GGUF copy of the shipped file with each adapted weight replaced by ``W + (alpha / r) · B·A``:

- the base weight is de-quantised from the GGUF file itself, so both engines start from the same numbers;
- q and k get llama.cpp's row permutation (its converter interleaves the rotary halves per head);
- merged weights are stored as Q8_0 (a Q4 re-quantisation would round most of the adapter away);
  every other tensor and all metadata (tokenizer, chat template) are copied byte for byte.

numpy, safetensors and ``gguf`` only: no torch, no transformers. Written atomically, with the sizes
and a digest of its sources in the name, so a changed adapter or GGUF makes a new file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from crs.llm.base import LLMError

logger = logging.getLogger(__name__)

# peft module name -> GGUF tensor name (llama architecture)
_GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_LORA_KEY = re.compile(r"(?:.*\.)?layers\.(\d+)\.([a-z_]+\.[a-z_]+)\.lora_([AB])\.weight$")
_UNSUPPORTED = ("use_dora", "use_rslora", "fan_in_fan_out", "use_qalora", "use_bdlora")


def merged_gguf_path(gguf: Path, adapter: Path, cache: Path) -> Path:
    """Where the merge of ``adapter`` into ``gguf`` is cached: named by its sources' names, sizes and times."""
    parts = [gguf, adapter / "adapter_config.json", adapter / "adapter_model.safetensors"]
    try:
        stamp = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in parts)
    except OSError as exc:
        raise LLMError(f"cannot read the adapter or model to merge: {exc}") from exc
    digest = hashlib.sha1(stamp.encode()).hexdigest()[:10]
    return cache / f"{gguf.stem}+{adapter.name}-{digest}.gguf"


def _lora_deltas(adapter: Path) -> dict[str, Any]:
    """GGUF tensor name -> the adapter's weight delta (out, in), float32, in Hugging Face row order."""
    import numpy as np
    from safetensors.numpy import load_file

    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("peft_type") != "LORA":
        raise LLMError(f"adapter {adapter} is {config.get('peft_type')!r}, not LORA")
    odd = [k for k in _UNSUPPORTED if config.get(k)]
    if odd or config.get("rank_pattern") or config.get("alpha_pattern"):
        raise LLMError(f"adapter {adapter} uses {', '.join(odd) or 'per-module ranks'}; only plain LoRA can be merged")
    scale = float(config["lora_alpha"]) / float(config["r"])
    pairs: dict[tuple[int, str], dict[str, Any]] = {}
    for key, value in load_file(str(adapter / "adapter_model.safetensors")).items():
        m = _LORA_KEY.match(key)
        if not m or m.group(2) not in _GGUF_NAMES:
            raise LLMError(f"adapter {adapter} has a weight this merge does not know: {key}")
        pairs.setdefault((int(m.group(1)), m.group(2)), {})[m.group(3)] = value.astype(np.float32)
    deltas = {}
    for (layer, module), ab in pairs.items():
        if set(ab) != {"A", "B"}:
            raise LLMError(f"adapter {adapter}: layer {layer} {module} lacks lora_A or lora_B")
        deltas[f"blk.{layer}.{_GGUF_NAMES[module]}.weight"] = scale * (ab["B"] @ ab["A"])  # (out, r) @ (r, in)
    return deltas


def _permute(w: Any, heads: int) -> Any:
    """llama.cpp's q/k row order: per head, the two rotary halves interleaved. w: (heads * head_dim, in)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def merge_lora_gguf(gguf_path: Path, adapter: Path, target: Path, qtype: str = "Q8_0") -> Path:
    """Write ``gguf_path`` with ``adapter`` merged into ``target`` (atomically), the merged weights stored
    as ``qtype`` (a GGML block type numpy can quantise: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1); returns ``target``."""
    import gguf
    import numpy as np

    started = time.perf_counter()
    packing = getattr(gguf.GGMLQuantizationType, qtype, None)
    if packing is None:
        raise LLMError(f"unknown GGML block type {qtype!r}")
    deltas = _lora_deltas(adapter)
    reader = gguf.GGUFReader(str(gguf_path))
    arch = reader.fields["general.architecture"].contents()
    if arch != "llama":
        raise LLMError(f"{gguf_path.name} is a {arch!r} model; the adapter merge knows llama only")
    heads = int(reader.fields["llama.attention.head_count"].contents())
    kv_heads = int(reader.fields["llama.attention.head_count_kv"].contents())
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = gguf.GGUFWriter(str(tmp), arch=arch, endianess=reader.endianess)
        for f in reader.fields.values():
            if f.name == "general.architecture" or f.name.startswith("GGUF."):
                continue  # written by GGUFWriter itself
            sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(f.name, f.contents(), f.types[0], sub_type=sub)
        for t in reader.tensors:
            delta = deltas.pop(t.name, None)
            if delta is None:
                writer.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
                continue
            base = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)  # (out, in)
            if ".attn_q." in t.name:
                delta = _permute(delta, heads)
            elif ".attn_k." in t.name:
                delta = _permute(delta, kv_heads)
            if delta.shape != base.shape:
                raise LLMError(f"adapter weight for {t.name} is {delta.shape}, the model's is {base.shape}")
            packed = gguf.quants.quantize(base + delta, packing)
            writer.add_tensor(t.name, packed, raw_shape=packed.shape, raw_dtype=packing)
        if deltas:
            raise LLMError(f"the model has no tensor for adapter weights {sorted(deltas)[:3]}")
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        tmp.chmod(0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("merged %s into %s in %.1f s", adapter, target.name, time.perf_counter() - started)
    return target
