"""crs: a conversational recommender agent that runs offline on a CPU."""

from __future__ import annotations

import os

__version__ = "0.1.0"

# Nothing in crs may reach a model hub or phone home; set before any heavy import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
