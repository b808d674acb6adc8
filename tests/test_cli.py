"""The console script, run as a real process: index, chat --once --json, and error paths."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crs.catalog import Catalog
from tests.conftest import TEST_CACHE


def run_crs(
    *args: str, tmp_path: Path, timeout: int = 300, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "CRS_PATHS__CACHE_DIR": str(TEST_CACHE),
        "CRS_PATHS__DATA_DIR": str(tmp_path / "data"),
        "CRS_STORE__PATH": str(tmp_path / "index"),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "crs.app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        input=stdin if stdin is not None else "",
    )


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory, small_catalog: Catalog) -> Path:
    path = tmp_path_factory.mktemp("cat") / "small.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for item in small_catalog:
            fh.write(json.dumps(item.to_dict()) + "\n")
    return path


@pytest.mark.slow
def test_index_then_chat_once_json(small_file: Path, tmp_path: Path) -> None:
    first = run_crs("index", "--catalog", str(small_file), tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "added" in first.stdout
    again = run_crs("index", "--catalog", str(small_file), tmp_path=tmp_path)
    assert again.returncode == 0 and " 0 added, 0 updated" in again.stdout, again.stdout

    out = run_crs(
        "chat",
        "--catalog",
        str(small_file),
        "--once",
        "I loved Alien but no romance please",
        "--json",
        tmp_path=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["reply"].strip()
    assert len(data["items"]) >= 3
    for item in data["items"]:
        assert set(item) >= {"id", "title", "year", "genres"}
        assert "Romance" not in item["genres"]


@pytest.mark.slow
def test_chat_once_tells_when_the_turn_degraded(small_file: Path, tmp_path: Path) -> None:
    """An LLM server that is down: the turn still ends with a plain answer, the notice goes to stderr
    and into --json, and --strict makes the exit code say so."""
    assert run_crs("index", "--catalog", str(small_file), tmp_path=tmp_path).returncode == 0
    down = {"CRS_LLM__BACKEND": "openai", "CRS_LLM__BASE_URL": "http://127.0.0.1:9/v1", "CRS_LLM__TIMEOUT": "5"}
    args = ["chat", "--catalog", str(small_file), "--once", "a crime movie, no comedy", "--json"]
    lenient = run_crs(*args, tmp_path=tmp_path, env=down)
    assert lenient.returncode == 0, lenient.stderr
    data = json.loads(lenient.stdout)
    assert data["items"] and data["reply"].strip()
    assert any("language model failed" in n for n in data["notices"])
    assert any("language model failed" in d for d in data["degraded"])
    assert "crs: notice: The language model failed" in lenient.stderr
    strict = run_crs(*args, "--strict", tmp_path=tmp_path, env=down)
    assert strict.returncode == 1 and json.loads(strict.stdout)["items"]


@pytest.mark.slow
def test_interactive_chat(small_file: Path, tmp_path: Path) -> None:
    out = run_crs(
        "chat", "--catalog", str(small_file), tmp_path=tmp_path, stdin="I want a crime movie, no comedy\n\nquit\n"
    )
    assert out.returncode == 0, out.stderr
    assert "you> crs> " in out.stdout and "My picks:" in out.stdout and "Links:" in out.stdout
    assert "https://en.wikipedia.org/wiki/" in out.stdout
    assert "Tell me about a movie you liked" in out.stdout  # the empty line got an answer, not an error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["index", "--catalog", "/nonexistent/items.jsonl"], "catalog file not found"),
        (["--config", "/nonexistent.toml", "index"], "config file not found"),
    ],
)
def test_errors_are_one_line_not_tracebacks(args: list[str], message: str, tmp_path: Path) -> None:
    out = run_crs(*args, tmp_path=tmp_path, timeout=120)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_corrupt_catalog_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00broken")
    out = run_crs("chat", "--catalog", str(bad), "--once", "hi", tmp_path=tmp_path, timeout=120)
    assert out.returncode == 2 and "cannot read catalog" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_eval_scripted_command(small_file: Path, tmp_path: Path) -> None:
    dialogue = tmp_path / "d.yaml"
    dialogue.write_text(
        'name: crime-no-comedy\ncategory: negation\nturns:\n  - user: "A crime film, but no comedy"\n'
        "    expect: {act: recommend, disliked_attributes: [Comedy], never_attributes: [Comedy], min_items: 3}\n"
    )
    out = run_crs(
        "eval", "scripted", str(dialogue), "--catalog", str(small_file), "--out", str(tmp_path / "r"), tmp_path=tmp_path
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["expectations_total"] == 4 and report["pass_rate"] == 1.0
    assert report["violations"] == 0 and report["invented_titles"] == 0
    bad = run_crs("eval", "scripted", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "r2"), tmp_path=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_custom_catalog_is_indexed_whole_and_an_empty_subset_fails(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    rows = [{"id": f"old-{i}", "title": f"Silent {i}", "year": 1920 + i, "summary": "A short film."} for i in range(36)]
    old.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = run_crs("index", "--catalog", str(old), tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("indexed 36 of 36 items") and "36 added" in out.stdout
    forced = run_crs("index", "--catalog", str(old), tmp_path=tmp_path, env={"CRS_CATALOG__SUBSET": "on"})
    assert forced.returncode == 2 and "Traceback" not in forced.stderr
    assert forced.stderr.startswith("crs: error: the subset filter") and "leaves none of the 36 items" in forced.stderr
