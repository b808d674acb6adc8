#!/usr/bin/env bash
# Creates bench/recbole/.venv with RecBole for the side-by-side SASRec comparison (bench/recbole/README.md).
# Idempotent: does nothing when the venv already imports the pinned RecBole. Quiet unless something fails.
#
#   bash bench/recbole/setup.sh
#
# torch is installed first and pinned: an unpinned torch would pull a multi-GB CUDA build, and
# torch==2.13.0 (CPU) is on this machine's local wheel store. RecBole is installed with --no-deps:
# its declared `ray` and `plotly` are only used by its hyper-parameter tuning / quick_start, which
# run_sasrec.py does not import; the rest of its requirements are listed below. numpy stays < 2.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
RECBOLE=1.2.1
PY="$VENV/bin/python"

if [ -x "$PY" ] && "$PY" -c "import recbole, sys; sys.exit(recbole.__version__ != '$RECBOLE')" 2>/dev/null; then
    exit 0
fi

[ -x "$PY" ] || python3 -m venv "$VENV"
pipq() {  # pip install, quiet; drops the notes about this machine's extra local indexes
    "$PY" -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2)
}
pipq "torch==2.13.0"
pipq "numpy>=1.24,<2" "scipy>=1.10" "pandas>=2.0,<3" "tqdm>=4.48.2" "colorlog==4.7.2" "colorama==0.4.4" \
    "scikit-learn>=1.2" "pyyaml>=5.1" "tensorboard>=2.5" "thop>=0.1.1.post2207130030" "tabulate>=0.8.10" \
    "texttable>=0.9.0" "psutil>=5.9.0"
pipq --no-deps "recbole==$RECBOLE"
"$PY" -c "import recbole.trainer, recbole.data, recbole.model.sequential_recommender" >/dev/null
