"""``crs read``: how the agent reads messages, without retrieval or the LLM.

    crs read "the fourth one looks good" --shown "Heat (1995)" ...   one message
    crs read --jsonl dialogues.jsonl --out readings.jsonl             one reading per input line

The input format is described in ``crs.understand.replay``. ``--rules`` reads with the rules alone
(no learned reader), to compare the two on your own labelled data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crs.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("read", help="read messages (acts, mentions, belief update) without retrieval or the LLM")
    sp.add_argument("text", nargs="?", help="one message to read")
    sp.add_argument("--shown", nargs="*", default=[], help="with TEXT: the films shown just before it")
    sp.add_argument("--jsonl", help="a JSONL file of messages ('-' for standard input)")
    sp.add_argument("--out", default="-", help="where to write one JSON reading per line (default: standard output)")
    sp.add_argument("--rules", action="store_true", help="the rules alone, without the learned reader")
    sp.add_argument("--catalog", help="catalog file (default: the demo catalog)")
    sp.add_argument("--format", choices=["auto", "demo", "jsonl", "csv", "redial", "redial_info"])


def cmd_read(cfg: Config, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from crs.catalog import load_catalog
    from crs.resources import load_reader
    from crs.understand.linker import Linker
    from crs.understand.message import Understander
    from crs.understand.replay import ReplayError, parse_line, reading_lines

    if bool(args.text) == bool(args.jsonl):
        print("crs read: give one message, or --jsonl FILE", file=sys.stderr)
        return 2
    if args.rules:
        cfg = replace(cfg, nlu=replace(cfg.nlu, reader="off"))
    understander = Understander(Linker(load_catalog(cfg.catalog.path, cfg.catalog.format)), load_reader(cfg))
    if args.text:
        records = [{"text": args.text, "shown": args.shown}] if args.shown else [{"text": args.text}]
    else:
        try:
            lines = (
                sys.stdin.read() if args.jsonl == "-" else Path(args.jsonl).read_text(encoding="utf-8")
            ).splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            print(f"crs read: cannot read {args.jsonl}: {exc}", file=sys.stderr)
            return 2
        try:
            records = [parse_line(line, f"{args.jsonl}:{n}") for n, line in enumerate(lines, 1) if line.strip()]
        except ReplayError as exc:
            print(f"crs read: {exc}", file=sys.stderr)
            return 2
    lines_out = (json.dumps(rec, ensure_ascii=False) + "\n" for rec in reading_lines(understander, records))
    if args.out == "-":
        sys.stdout.writelines(lines_out)
    else:
        with Path(args.out).open("w", encoding="utf-8") as fh:
            fh.writelines(lines_out)
    return 0
