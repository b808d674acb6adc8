"""Run the chat UI on the demo catalog: ``python app.py`` (or ``crs serve``)."""

from __future__ import annotations

import sys

from crs.app.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
