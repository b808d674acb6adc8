#!/usr/bin/env bash
# Creates bench/llamacpp/.venv with llama.cpp (llama-cpp-python, compiled here for this CPU) as the reference
# that bench/llm_speed.py measures crs's local engines against. Idempotent; quiet unless something fails.
#
#   bash bench/llamacpp/setup.sh
#
# Built with llama.cpp's own defaults (GGML_NATIVE=ON: tuned for this CPU), unlike crs's engine, which is
# built portable (GGML_NATIVE=OFF) so that pip's cached wheel runs on any x86-64 machine. About 8 minutes
# on 2 cores the first time.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
VERSION=0.3.36
PY="$VENV/bin/python"

if [ -x "$PY" ] && "$PY" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$VERSION')" 2>/dev/null; then
    exit 0
fi
[ -x "$PY" ] || python3 -m venv "$VENV"
CMAKE_ARGS="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
    "$PY" -m pip install -q --disable-pip-version-check --no-cache-dir "llama-cpp-python==$VERSION" \
    2> >(grep -v "^WARNING: Location 'file:" >&2)
"$PY" -c "import llama_cpp" >/dev/null
