"""Packaging: the top-level ``prompts/`` and ``knowledge/`` folders of the checkout (the design card's
layout, and where the files are edited) go into the wheel as ``crs/_shipped/``, where an installed crs
finds them (``crs.config.KNOWLEDGE_DIR``, ``PROMPTS_DIR``). Everything else is in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("prompts", "knowledge")
LEFT_OUT = ("knowledge/index",)  # built on the user's machine, never shipped


def shipped_files() -> list[str]:
    """The files of the shipped folders that git tracks (or all of them outside a git checkout)."""
    try:
        out = subprocess.run(["git", "ls-files", *SHIPPED], cwd=ROOT, capture_output=True, text=True, check=True)
        files = out.stdout.split()
    except (OSError, subprocess.CalledProcessError):
        files = [str(p.relative_to(ROOT)) for folder in SHIPPED for p in (ROOT / folder).rglob("*") if p.is_file()]
    return [f for f in files if not f.startswith(LEFT_OUT)]


class BuildWithShipped(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "crs" / "_shipped"
        for name in shipped_files():
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest)


setup(cmdclass={"build_py": BuildWithShipped})
