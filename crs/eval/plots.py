"""Charts beside the tables, for where people look rather than read: line charts written as PNG.

matplotlib is an optional extra (``pip install 'crs[plots]'``); without it ``line_charts`` writes
nothing, says how to get it once in the log, and returns None, so no report depends on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

Series = Mapping[str, tuple[Sequence[float], Sequence[float]]]  # label -> (xs, ys)


@dataclass(frozen=True)
class Panel:
    title: str
    xlabel: str
    ylabel: str
    series: Series = field(default_factory=dict)


def line_charts(path: Path, panels: Sequence[Panel], title: str = "") -> Path | None:
    """Panels side by side in one PNG at ``path``; None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("no chart at %s: matplotlib is not installed (pip install 'crs[plots]')", path)
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for label, (xs, ys) in panel.series.items():
            ax.plot(list(xs), list(ys), label=label, linewidth=1.6)
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.grid(alpha=0.3)
        if len(panel.series) > 1:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
