"""Decoding speed of crs's local engines against llama.cpp itself, on the same GGUF, prompt and threads.

    bash bench/llamacpp/setup.sh          # once: llama.cpp built for this CPU in its own venv
    python bench/llm_speed.py [--tokens 128] [--runs 3] [--threads N]

The prompt is a real reply prompt (prompts/reply.j2, a recommendation with three films). Every row
generates greedily from the same messages, whole and streamed, with no prompt cache between runs;
tokens are counted by re-tokenising the text. Rows:

- llama.cpp reference: llama-cpp-python in bench/llamacpp/.venv (built with GGML_NATIVE=ON);
- crs llamacpp / crs transformers: crs's local backend on the shipped GGUF, adapter off;
- crs default: the chat's own configuration (engine "auto", the reply-writer adapter merged).

The headline is crs's streamed tokens/s over the reference's, on the same weights.
Writes bench/results/llm_speed.md and .json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crs.config import Config, load_config  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REFERENCE_PY = HERE / "llamacpp" / ".venv" / "bin" / "python"


def reply_messages() -> list[Any]:
    from crs.catalog import load_catalog
    from crs.llm.prompts import Prompts
    from crs.reply.writer_data import fact_line

    cfg = load_config()
    catalog = load_catalog(cfg.catalog.path)
    wanted = {("Alien", 1979), ("The Thing", 1982), ("Predator", 1987)}
    films = [item for item in catalog if (item.title, item.year) in wanted]
    return Prompts().render(
        "reply",
        act="recommend",
        message="i loved alien, something scary in space? no romance please",
        likes=["Alien"],
        dislikes=["romance"],
        films=[fact_line(f) for f in films],
        note="",
        profile="",
    )


def measure(model: Any, messages: list[Any], tokens: int, runs: int, count: Any) -> dict[str, Any]:
    """Whole and streamed generations; ``count`` re-tokenises text."""
    reset = getattr(getattr(model, "llm", None), "reset", None)  # llama.cpp's prompt cache: off, as for the reference
    model.generate(messages, max_new_tokens=8)  # warm-up
    rows = []
    for _ in range(runs):
        if reset:
            reset()
        t0 = time.perf_counter()
        text = model.generate(messages, max_new_tokens=tokens)
        rows.append({"mode": "generate", "tokens": count(text), "seconds": time.perf_counter() - t0})
        if reset:
            reset()
        t0, first, text = time.perf_counter(), None, ""
        for delta in model.stream(messages, max_new_tokens=tokens):
            first = first if first is not None else time.perf_counter() - t0
            text += delta
        rows.append(
            {"mode": "stream", "tokens": count(text), "seconds": time.perf_counter() - t0, "first_token": first}
        )
    return {"runs": rows, "text": text}


def summarise(name: str, load_s: float, got: dict[str, Any]) -> dict[str, Any]:
    def rate(mode: str) -> float:
        return statistics.median(r["tokens"] / r["seconds"] for r in got["runs"] if r["mode"] == mode)

    firsts = [r["first_token"] for r in got["runs"] if r["mode"] == "stream" and r.get("first_token") is not None]
    decode = [  # tokens after the first over the time after it: decoding alone, without the prompt
        (r["tokens"] - 1) / (r["seconds"] - r["first_token"])
        for r in got["runs"]
        if r["mode"] == "stream" and r.get("first_token") is not None and r["tokens"] > 1
    ]
    return {
        "engine": name,
        "load_s": round(load_s, 2),
        "generate_tps": round(rate("generate"), 1),
        "stream_tps": round(rate("stream"), 1),
        "decode_tps": round(statistics.median(decode), 1) if decode else None,
        "first_token_s": round(statistics.median(firsts), 3) if firsts else None,
        "tokens": statistics.median(r["tokens"] for r in got["runs"]),
        "text": got["text"][:160],
    }


def reference(gguf: Path, messages: list[Any], threads: int, tokens: int, runs: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([{"role": m.role, "content": m.content} for m in messages], f)
    cmd = [str(REFERENCE_PY), str(HERE / "llamacpp" / "reference.py"), str(gguf), "--messages", f.name]
    cmd += ["--threads", str(threads), "--tokens", str(tokens), "--runs", str(runs)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=900)
    finally:
        os.unlink(f.name)
    got = json.loads(out.stdout)
    return summarise("llama.cpp reference", got["load_s"], got)


def crs_row(name: str, cfg: Config, messages: list[Any], tokens: int, runs: int) -> dict[str, Any]:
    from crs.llm.registry import load_chat_model

    started = time.perf_counter()
    model = load_chat_model(cfg)
    load_s = time.perf_counter() - started
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None:  # transformers

        def count(text: str) -> int:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])
    else:

        def count(text: str) -> int:
            return len(model.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    row = summarise(name, load_s, measure(model, messages, tokens, runs, count))
    row["model"] = model.name
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="0 = the CPUs this process may use")
    ap.add_argument("--out", type=Path, default=RESULTS / "llm_speed")
    args = ap.parse_args()
    if not REFERENCE_PY.exists():
        print("the reference is not built: run  bash bench/llamacpp/setup.sh  first", file=sys.stderr)
        return 2

    from crs.llm.local import shipped_gguf

    threads = args.threads or len(os.sched_getaffinity(0))
    cfg = load_config()
    cfg = dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, threads=threads))
    gguf = shipped_gguf()
    same = dataclasses.replace(cfg.llm, model_path=str(gguf), adapter="off")
    messages = reply_messages()
    rows = [reference(gguf, messages, threads, args.tokens, args.runs)]
    for name, llm in (
        ("crs llamacpp", dataclasses.replace(same, engine="llamacpp")),
        ("crs transformers", dataclasses.replace(same, engine="transformers")),
        ("crs default (chat)", cfg.llm),
    ):
        rows.append(crs_row(name, dataclasses.replace(cfg, llm=llm), messages, args.tokens, args.runs))
        print(rows[-1], flush=True)
    ref = rows[0]["stream_tps"]
    for r in rows:
        r["stream_ratio"] = round(r["stream_tps"] / ref, 3)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        "# Local LLM decoding speed",
        "",
        f"`python bench/llm_speed.py --tokens {args.tokens} --runs {args.runs}` on {machine}, {threads} threads; "
        f"`{gguf.name}`; a reply prompt, greedy, no prompt cache between runs; medians of {args.runs} runs.",
        "",
        "| engine | load (s) | generate tok/s | stream tok/s | decode tok/s | first token (s) | tokens | "
        "stream vs llama.cpp |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['load_s']:.2f} | {r['generate_tps']:.1f} | {r['stream_tps']:.1f} | "
            f"{r['decode_tps'] or 0:.1f} | "
            f"{r['first_token_s']:.3f} | {r['tokens']:.0f} | {r['stream_ratio']:.2f}x |"
        )
    lines += ["", f"Headline: crs llamacpp streams at {rows[1]['stream_ratio']:.2f}x llama.cpp's tokens/s."]
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    payload = {"machine": machine, "threads": threads, "gguf": gguf.name, "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
