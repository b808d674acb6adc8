"""Take the README's screenshots from the running app.

Starts `crs serve` (the default config: the demo index in knowledge/index, built on first
use, and the local SmolLM2) on a free port with a throw-away profile database, drives it in
headless Chromium like a first-time user, and writes docs/screenshots/chat.png and
docs/screenshots/profile.png.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--url http://127.0.0.1:7860/]

With --url it uses an app that is already running instead (its profile store gets a new version).
Needs Chromium and ChromeDriver (scripts/install_browser.sh).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_browser import Page, free_port, start_chrome  # noqa: E402

MESSAGE = "I loved Alien and Jaws, but no romance and nothing before 1975"
PROFILE_V1 = "Mostly tense science fiction and crime films."
PROFILE_V2 = "Mostly tense science fiction and crime films, best from the 80s and 90s.\n\nLikes:\n- Alien (1979)\n- Heat (1995)\n\nDislikes:\n- Romance"


def wait_for_server(url: str, proc: subprocess.Popen | None, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"screenshots: crs serve exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"screenshots: {url} did not answer within {timeout:.0f}s")


def take(url: str, out: Path, message: str = MESSAGE) -> None:
    page = Page(start_chrome(1400, 1400), url, shots=out)
    try:
        page.open()
        page.send(message)
        cards = page.wait("recommendation cards", page.cards, 300)
        page.wait("the reply", page.bot_messages, 60)
        if len(cards) > 2:  # show a rating: the third card leaves and becomes a dislike
            page.css("#crs-card-2-down")[0].click()
            page.wait("the dislike", lambda: cards[2][1] in page.text("crs-dislikes"), 30)
        time.sleep(1)
        print("wrote", page.shot("chat"))
        page.tab("Your profile")
        for text in (PROFILE_V1, PROFILE_V2):
            box = page.profile_box()
            box.clear()
            box.send_keys(text)
            page.css("#crs-profile-save")[0].click()
            page.wait("the save", lambda: "Saved as version" in page.text("crs-profile-note"), 30)
            time.sleep(0.5)
        print("wrote", page.shot("profile"))
    finally:
        page.browser.quit()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="folder for chat.png and profile.png")
    ap.add_argument("--url", help="an app that is already running (default: start `crs serve`)")
    ap.add_argument("--message", default=MESSAGE, help="what the user says first")
    ap.add_argument("--index-dir", help="Chroma directory for `crs serve` (default: the config's, knowledge/index)")
    args = ap.parse_args()
    out = Path(args.out)
    if args.url:
        wait_for_server(args.url, None, 30)
        take(args.url, out, args.message)
        return 0
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", ANONYMIZED_TELEMETRY="False")
    with tempfile.TemporaryDirectory(prefix="crs-shots-") as data:
        env["CRS_PATHS__DATA_DIR"] = data
        env.pop("CRS_SERVE__AUTH", None)
        cmd = [sys.executable, "-m", "crs.app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        if args.index_dir:
            cmd += ["--index-dir", args.index_dir]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
        try:
            wait_for_server(url, proc)
            take(url, out, args.message)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
