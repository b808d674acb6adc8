"""The ``crs`` console script: index, chat, serve."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence

from crs.catalog import CatalogError, Item
from crs.config import Config, ConfigError, load_config
from crs.state import FinalEvent, NoticeEvent

log = logging.getLogger("crs")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crs", description="A conversational recommender agent.")
    p.add_argument("--config", help="TOML config file (default: $CRS_CONFIG or ./crs.toml)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = p.add_subparsers(dest="command", required=True)

    def catalog_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--catalog", help="catalog file (JSONL/CSV, optionally gzip); default: the demo catalog")
        sp.add_argument("--format", choices=["auto", "demo", "jsonl", "csv", "redial", "redial_info"])
        sp.add_argument("--full", action="store_true", help="index the whole catalog, not the default subset")
        sp.add_argument("--index-dir", help="Chroma directory for the item index")

    sp = sub.add_parser("index", help="embed and index the catalog (idempotent)")
    catalog_opts(sp)
    sp.add_argument("--prune", action="store_true", help="remove indexed items no longer in the catalog")
    sp.add_argument(
        "--rebuild",
        action="store_true",
        help="drop the index (even a damaged one, without opening it) and build it anew",
    )

    lg = sub.add_parser("logs", help="export logged turns (message, reply, act, items, belief update, tools, times)")
    lg.add_argument("--jsonl", action="store_true", help="one JSON object per turn (default: one line of text each)")
    lg.add_argument("--user", help="only this user's turns")
    lg.add_argument("--session", help="only this session's turns")
    lg.add_argument("--since", help="only turns from this ISO time on, e.g. 2026-12-01 or 2026-12-01T10:00")
    sp = sub.add_parser("chat", help="chat in the terminal")
    catalog_opts(sp)
    sp.add_argument("--once", metavar="TEXT", help="answer one message and exit")
    sp.add_argument("--json", action="store_true", help="with --once: print one JSON object")
    sp.add_argument(
        "--strict",
        action="store_true",
        help="with --once: exit 1 when the turn degraded (LLM or index failed, scorer off)",
    )
    sp.add_argument("--user", help="chat as this user: read and update their profile")
    sp.add_argument("--no-log", action="store_true", help="do not log the turns ([profile] log_turns)")

    sp = sub.add_parser("serve", help="serve the chat UI in the browser")
    catalog_opts(sp)
    sp.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    sp.add_argument("--port", type=int, help="port (default 7860)")
    sp.add_argument("--concurrency", type=int, help="chat turns processed at once (default 2)")
    sp.add_argument("--max-queue", type=int, help="turns that may wait for a free slot before new ones are refused")
    sp.add_argument("--no-log", action="store_true", help="do not log the turns ([profile] log_turns)")

    sub.add_parser("setup", help="prepare the local model cache and the demo index, then exit")

    sp = sub.add_parser("eval", help="evaluate the agent")
    ev = sp.add_subparsers(dest="eval_command", required=True)
    sc = ev.add_parser("scripted", help="run scripted multi-turn dialogues (*.yaml) and check their expectations")
    catalog_opts(sc)
    sc.add_argument("path", nargs="?", help="a dialogue file or folder (default: the shipped dialogues)")
    sc.add_argument("--out", required=True, help="folder for report.md and report.json")
    sc.add_argument("--min-pass-rate", type=float, default=0.0, help="exit 1 when the pass rate is lower")
    sm = ev.add_parser("simulate", help="simulated users look for hidden target items")
    catalog_opts(sm)
    sm.add_argument("--targets", type=int, default=100, help="number of target items (dialogues)")
    sm.add_argument("--out", required=True, help="folder for report.md and report.json")
    sm.add_argument("--simulator", choices=["rules", "llm"], default="rules")
    sm.add_argument("--max-turns", type=int, default=5)
    sm.add_argument("--seed", type=int, default=0)
    rd = ev.add_parser("redial", help="ReDial Recall@1/10/50 of the pipeline (trains on dialogues not in --turns)")
    rd.add_argument("--turns", required=True, help="recommender turns: iEvaLM processed jsonl(.gz) or raw ReDial")
    rd.add_argument("--out", required=True, help="report JSON file")
    rd.add_argument("--movies", help="movies_with_mentions.csv (default: under [paths] data_root)")
    rd.add_argument("--info", help="id2info.json(.gz): genres, cast, plots ('' for none; default: under data_root)")
    rd.add_argument("--model-dir", help="trained components: loaded when present, else trained and written here")
    rd.add_argument("--limit", type=int, help="evaluate only the first N turns")
    rd.add_argument("--turn-format", choices=["auto", "processed", "raw"], default="auto")
    rd.add_argument("--train", nargs="+", help="raw ReDial training dialogue files (default: partial_train/*)")
    rd.add_argument("--movielens", help="ml-latest-small folder for external interactions ('' for none)")
    rd.add_argument("--epochs", type=int, default=60, help="SASRec training epochs")
    rd.add_argument("--ks", type=_ks, help="Recall@k reported, e.g. 1,5,10,20,50 (each 1..50; default 1,10,50)")
    rd.add_argument(
        "--scorer", nargs="+", default=[], metavar="CHECKPOINT",
        help="chat scorer checkpoints (crs.seqrec files with titles) measured in rows of their own: alone, and in "
        "the chat's [scoring] weights in place of the pipeline's SASRec; train them without the --turns dialogues",
    )  # fmt: skip
    rd.add_argument(
        "--scorer-weights", type=lambda v: tuple(float(x) for x in v.split(",")), metavar="W,W,...",
        help="the [scoring] sequential weights tried in the --scorer rows (default: the config's)",
    )  # fmt: skip
    rd.add_argument(
        "--scorer-input", choices=["liked", "mentioned"], nargs="+", default=["liked"],
        help="what the --scorer models read: the seeker's liked movies, as the chat feeds them, and/or every movie named",
    )  # fmt: skip
    rd.add_argument(
        "--cross-fit", type=int, default=1, metavar="K",
        help="rank each of K dialogue-level folds of --turns with components trained on every training dialogue "
        "but that fold's (uses the evaluated file's other dialogues when --train holds them; default 1: none)",
    )  # fmt: skip
    from crs.app.cli_seqrec import add_eval_parser, add_train_parser

    add_eval_parser(ev)  # eval seqrec
    add_train_parser(sub)  # train seqrec
    from crs.app.cli_profile import add_parser as add_profile_parser

    add_profile_parser(sub)  # profile show|edit|import|export|delete
    from crs.app.cli_read import add_parser as add_read_parser

    add_read_parser(sub)  # read: how messages are understood
    return p


def _ks(text: str) -> tuple[int, ...]:
    """``--ks 1,5,10``: positive cutoffs up to 50, in order."""
    try:
        ks = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ks takes numbers separated by commas, not {text!r}") from None
    if not ks or ks[0] < 1 or ks[-1] > 50:
        raise argparse.ArgumentTypeError("--ks takes cutoffs from 1 to 50")
    return ks


def _apply_args(cfg: Config, args: argparse.Namespace) -> Config:
    catalog = cfg.catalog
    if getattr(args, "catalog", None):
        from pathlib import Path

        catalog = dataclasses.replace(catalog, path=Path(args.catalog), format=args.format or "auto")
    elif getattr(args, "format", None):
        catalog = dataclasses.replace(catalog, format=args.format)
    if getattr(args, "full", False):
        catalog = dataclasses.replace(catalog, min_year=0, min_summary_chars=0)
    store = cfg.store
    if getattr(args, "index_dir", None):
        from pathlib import Path

        store = dataclasses.replace(store, path=Path(args.index_dir))
    serve = cfg.serve
    for name in ("host", "port", "concurrency", "max_queue"):
        if getattr(args, name, None) is not None:
            serve = dataclasses.replace(serve, **{name: getattr(args, name)})
    profile = cfg.profile
    if getattr(args, "no_log", False):
        profile = dataclasses.replace(profile, log_turns=False)
    return dataclasses.replace(cfg, catalog=catalog, store=store, serve=serve, profile=profile)


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if verbosity < 2:
        for noisy in ("httpx", "chromadb", "sentence_transformers", "transformers", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_index(cfg: Config, args: argparse.Namespace) -> int:
    from crs.catalog import load_catalog
    from crs.rank.store import ItemStore
    from crs.resources import index_catalog

    catalog = load_catalog(cfg.catalog.path, cfg.catalog.format)
    store = ItemStore.rebuilt(cfg) if args.rebuild else ItemStore.from_config(cfg)
    subset, report = index_catalog(cfg, catalog, store, prune=args.prune)
    print(
        f"indexed {len(subset)} of {len(catalog)} items into {cfg.store.host or cfg.store.path}: "
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.removed} removed in {report.seconds:.1f}s"
    )
    return 0


def _print_turn(final: FinalEvent, notices: list[NoticeEvent], degraded: list[str], as_json: bool) -> None:
    """The turn on stdout (text, or one JSON object); notices also on stderr."""
    for notice in notices:
        print(f"crs: notice: {notice.message}", file=sys.stderr)
    if as_json:
        record = {
            "reply": final.reply,
            "act": final.act,
            "items": [i.listing() for i in final.items],
            "notices": [n.message for n in notices],
            "degraded": degraded,
        }
        print(json.dumps(record, ensure_ascii=False))
        return
    print(final.reply)
    _print_links(final.items)


def _print_links(items: tuple[Item, ...]) -> None:
    """The reply already lists the picks; add where to read about each (Wikipedia, CC BY-SA)."""
    if items:
        print("Links:")
    for item in items:
        print(f"  {item.label}: {item.url or 'no link'}")


def cmd_chat(cfg: Config, args: argparse.Namespace) -> int:
    from crs.agent import Agent
    from crs.profiles.db import check_user
    from crs.state import Session, TokenEvent

    user = check_user(args.user) if args.user is not None else ""  # no user: nothing read or logged
    agent = Agent.from_config(cfg, progress=not args.json)
    session = Session(user=user)
    if args.once is not None:
        events = list(agent.step(session, args.once))
        final = next(e for e in events if isinstance(e, FinalEvent))
        notices = [e for e in events if isinstance(e, NoticeEvent)]
        degraded = [*agent.degraded, *(n.message for n in notices if n.degraded)]
        for reason in agent.degraded:
            print(f"crs: notice: {reason}", file=sys.stderr)
        _print_turn(final, notices, degraded, args.json)
        return 1 if args.strict and degraded else 0
    print("Chat with crs (Ctrl-D or 'quit' to leave).")
    while True:
        try:
            text = input("you> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if text.strip().lower() in {"quit", "exit"}:
            return 0
        print("crs> ", end="", flush=True)
        for event in agent.step(session, text):
            if isinstance(event, TokenEvent):
                print(event.text, end="", flush=True)
            elif isinstance(event, NoticeEvent):
                print(f"[{event.message}]", file=sys.stderr)
            elif isinstance(event, FinalEvent):
                print()
                _print_links(event.items)


def cmd_serve(cfg: Config, args: argparse.Namespace) -> int:
    from crs.agent import Agent
    from crs.app.ui import launch, parse_auth

    logins = parse_auth(cfg.serve.auth)  # checked before the slow start
    agent = Agent.from_config(cfg)
    who = f"{len(logins)} user login(s)" if logins else "one local user, no login"
    print(f"serving on http://{cfg.serve.host}:{cfg.serve.port} ({who}); HTTP API under /v1", flush=True)
    launch(agent, cfg.serve.host, cfg.serve.port)
    return 0


def cmd_setup(cfg: Config, args: argparse.Namespace) -> int:
    from crs.catalog import load_catalog
    from crs.llm.registry import load_chat_model
    from crs.rank.store import ItemStore
    from crs.resources import index_catalog

    if cfg.llm.backend == "local":  # loading prepares what the engine reads: a converted or a merged copy
        model = load_chat_model(cfg)
        print(f"local model ready: {model.name} ({getattr(model, 'path', '')})")
    catalog = load_catalog(cfg.catalog.path, cfg.catalog.format)
    subset, _ = index_catalog(cfg, catalog, ItemStore.from_config(cfg))
    print(f"index ready: {len(subset)} items")
    return 0


def cmd_eval(cfg: Config, args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.eval_command == "redial":
        from crs.eval.redial.run import redial_command

        return redial_command(args, cfg)
    if args.eval_command == "seqrec":
        from crs.app.cli_seqrec import cmd_eval_seqrec

        return cmd_eval_seqrec(cfg, args)
    from crs.agent import Agent

    if args.eval_command == "scripted":
        from crs.eval.scripted import DialogueError, load_dialogues, run_scripted

        path = Path(args.path) if args.path else Path(__file__).resolve().parents[1] / "eval" / "dialogues"
        try:
            load_dialogues(path)  # a bad path or file fails before minutes of loading and indexing
            agent = Agent.from_config(cfg, profiles=False)
            report = run_scripted(agent, path, Path(args.out))
        except DialogueError as exc:
            print(f"crs: error: {exc}", file=sys.stderr)
            return 2
        print(report.to_markdown())
        print(f"report: {Path(args.out) / 'report.json'}")
        return 0 if report.pass_rate >= args.min_pass_rate else 1
    if args.eval_command == "simulate":
        from crs.eval.simulator import pick_targets, run_simulation

        agent = Agent.from_config(cfg, profiles=False)
        from crs.rank.store import index_subset

        subset = index_subset(cfg, agent.catalog)
        targets = pick_targets(subset, args.targets, args.seed)
        sim = run_simulation(
            agent, targets, Path(args.out), max_turns=args.max_turns, seed=args.seed, simulator=args.simulator
        )
        print((Path(args.out) / "report.md").read_text(encoding="utf-8"))
        print(f"success rate {sim.success_rate:.2f}; report: {Path(args.out) / 'report.json'}")
        return 0
    return 2


def cmd_train(cfg: Config, args: argparse.Namespace) -> int:
    from crs.app.cli_seqrec import cmd_train as train_seqrec

    return train_seqrec(cfg, args)


COMMANDS = {
    "train": cmd_train,
    "index": cmd_index,
    "chat": cmd_chat,
    "serve": cmd_serve,
    "setup": cmd_setup,
    "eval": cmd_eval,
}


def cmd_profile(cfg: Config, args: argparse.Namespace) -> int:
    from crs.app.cli_profile import cmd_profile as run

    return run(cfg, args)


COMMANDS["profile"] = cmd_profile


def cmd_read(cfg: Config, args: argparse.Namespace) -> int:
    from crs.app.cli_read import cmd_read as run

    return run(cfg, args)


COMMANDS["read"] = cmd_read


def cmd_logs(cfg: Config, args: argparse.Namespace) -> int:
    """``crs logs``: the logged turns, oldest first, as JSON lines or one line of text each."""
    from crs.profiles.db import ProfileStore

    store = ProfileStore.from_config(cfg)
    try:
        for turn in store.logged_turns(args.user, args.session, args.since):
            if args.jsonl:
                print(json.dumps(turn, ensure_ascii=False))
            else:
                total = (turn.get("seconds") or {}).get("total")
                took = f" {total:.2f}s" if isinstance(total, int | float) else ""
                print(f"{turn['created_at']} {turn['user']}/{turn['session_id']} {turn['act']}{took}: "
                      f"{turn['user_text'][:80]!r} -> {str(turn['reply'])[:80]!r}")  # fmt: skip
    finally:
        store.close()
    return 0


COMMANDS["logs"] = cmd_logs


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    from crs.llm.base import LLMError
    from crs.llm.prompts import PromptError
    from crs.profiles.text import ProfileError
    from crs.rank.metadata import StoreError

    try:
        cfg = _apply_args(load_config(args.config), args)
        return COMMANDS[args.command](cfg, args)
    except (ConfigError, CatalogError, StoreError, LLMError, PromptError, ProfileError) as exc:
        print(f"crs: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
