"""llama.cpp's own speed on a GGUF file: run by bench/llm_speed.py in bench/llamacpp/.venv.

    python bench/llamacpp/reference.py MODEL.gguf --messages msgs.json --threads 2 --tokens 128 --runs 3

Loads the model, renders the chat prompt with the model's own template, and generates greedily, whole
and streamed. Prints one JSON object: load seconds, and per run the tokens, seconds and time to the
first token. Only the standard library and llama_cpp: this venv has nothing of crs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--messages", required=True, help="a JSON file: [{role, content}, ...]")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    from llama_cpp import Llama

    with open(args.messages, encoding="utf-8") as f:
        messages = json.load(f)
    started = time.perf_counter()
    llm = Llama(model_path=args.model, n_ctx=4096, n_threads=args.threads, n_threads_batch=args.threads, verbose=False)
    load_s = time.perf_counter() - started
    greedy = {"max_tokens": args.tokens, "temperature": 0.0, "top_k": 1, "top_p": 1.0, "min_p": 0.0}
    llm.create_chat_completion(messages, max_tokens=8, temperature=0.0)  # warm-up
    runs = []
    for _ in range(args.runs):
        llm.reset()  # no prompt cache between runs: each run evaluates the prompt, as a new turn does
        t0 = time.perf_counter()
        out = llm.create_chat_completion(messages, **greedy)
        runs.append(
            {"mode": "generate", "tokens": out["usage"]["completion_tokens"], "seconds": time.perf_counter() - t0}
        )
        llm.reset()
        t0, first, pieces, text = time.perf_counter(), None, 0, ""
        for chunk in llm.create_chat_completion(messages, stream=True, **greedy):
            delta = chunk["choices"][0]["delta"].get("content") or ""
            if delta:
                first = first if first is not None else time.perf_counter() - t0
                pieces += 1
                text += delta
        seconds = time.perf_counter() - t0
        tokens = len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
        runs.append({"mode": "stream", "tokens": tokens, "seconds": seconds, "first_token": first})
    json.dump({"load_s": load_s, "runs": runs, "text": text}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
