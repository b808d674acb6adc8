"""The operational half of bench/robustness.py: load, memory and faults, against a real served
page (``crs.app.ui.launch`` in a child process: the real agent, index and profile store, with the
stand-in LLM of robustness.py unless ``--real-llm``), driven through the page's own API by
gradio_client, the client that ships with Gradio.

- load: 8 concurrent sessions x 20 turns; errors, time-outs, cross-session leakage (another
  session's films or people in a session's belief or chat), latency percentiles.
- memory: 1,000 sessions opened (one turn each) and abandoned; the server's RSS along the way
  and after the idle time, with the shipped session limits and, for comparison, without them.
- faults: kill -9 of `crs index` and of the server mid-turn and mid-save; the four index
  damages of issue 13; what the user sees each time.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PERSONAS = [("Alien", "Tom Cruise"), ("Jaws", "Tom Hanks"), ("Heat", "Jim Carrey"), ("Titanic", "Adam Sandler"),
            ("Top Gun", "Meryl Streep"), ("Rocky", "Julia Roberts"), ("Grease", "Bruce Willis"),
            ("Shrek", "Nicolas Cage")]  # fmt: skip
TURNS = ["I loved {film}", "no {person} please", "something newer", "a comedy instead", "who directed {film}?",
         "why did you recommend that one?", "more like that", "something from the 90s", "not that one", "funnier",
         "what is {film} about?", "a thriller with time travel", "less violent", "anything but horror",
         "recommend me something", "a slow burn", "something older", "show me more", "a crime film, no gore",
         "thanks, one last pick"]  # fmt: skip


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---- the server -------------------------------------------------------------------------------


class Server:
    """``robustness.py --serve`` in a child process."""

    def __init__(self, work: Path, delay: float = 0.0, env: dict[str, str] | None = None, real_llm: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        full_env = {**os.environ, **(env or {})}
        if real_llm:
            full_env["CRS_BENCH_REAL_LLM"] = "1"
        cmd = [sys.executable, str(BENCH / "robustness.py"), "--serve", "--port", str(self.port), "--work", str(work)]
        cmd += ["--delay", str(delay)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=full_env)
        deadline = time.monotonic() + 600
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == "READY":
                break
            if time.monotonic() > deadline:
                break
        self._wait_http()

    def _wait_http(self) -> None:
        for _ in range(300):
            try:
                with urllib.request.urlopen(self.url, timeout=5):
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("the bench server did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        stop_process(self.proc, 20)


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """Terminate a child process; kill it when it has not exited within ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False)


# ---- (c) load ---------------------------------------------------------------------------------


def run_load(cfg: Any, work: Path, real_llm: bool = False, sessions: int = 8, turns: int = 20) -> dict[str, Any]:
    print(f"load: {sessions} sessions x {turns} turns", flush=True)
    server = Server(work / "load", real_llm=real_llm)
    latencies: list[float] = []
    errors: list[str] = []
    leaks: list[str] = []
    lock = threading.Lock()

    def session(i: int) -> None:
        film, person = PERSONAS[i]
        others = [p for j, p in enumerate(PERSONAS[:sessions]) if j != i]
        c = client(server.url)
        history: list = []
        for t in range(turns):
            text = TURNS[t % len(TURNS)].format(film=film, person=person)
            started = time.perf_counter()
            try:
                out = c.submit(text, history, api_name="/chat").result(timeout=300)
            except Exception as exc:  # a failed or timed-out request
                with lock:
                    errors.append(f"session {i} turn {t + 1}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            took = time.perf_counter() - started
            history = out[0]
            chips = repr(out[9:13])
            said = " ".join(str(m.get("content")) for m in history if m.get("role") == "user")
            found = [f for f, p in others if f"{f} (" in chips or f"I loved {f}" in said]
            found += [p for f, p in others if p in chips or f"no {p}" in said]
            with lock:
                latencies.append(took)
                if found:
                    leaks.append(f"session {i} turn {t + 1}: {', '.join(found)}")

    started = time.perf_counter()
    threads = [threading.Thread(target=session, args=(i,)) for i in range(sessions)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - started
    server.stop()
    return {
        "sessions": sessions,
        "turns_per_session": turns,
        "turns_ok": len(latencies),
        "errors": len(errors),
        "error_list": errors[:20],
        "leaks": len(leaks),
        "leak_list": leaks[:20],
        "llm": "local SmolLM2" if real_llm else "stand-in (no generation time)",
        "concurrency": cfg.serve.concurrency,
        "latency_s": {q: round(percentile(latencies, v), 2) for q, v in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))},
        "wall_s": round(wall, 1),
        "turns_per_s": round(len(latencies) / wall, 2),
    }  # fmt: skip


# ---- memory -----------------------------------------------------------------------------------


def open_sessions(url: str, n: int, pid: int, threads: int = 4, every: int = 100) -> list[tuple[int, float]]:
    """``n`` sessions, one turn each, then abandoned; (sessions opened, RSS MB) along the way."""
    done = [0]
    samples: list[tuple[int, float]] = [(0, rss_mb(pid))]
    lock = threading.Lock()

    def worker(k: int) -> None:
        c = client(url)
        while True:
            with lock:
                if done[0] >= n:
                    return
                done[0] += 1
                mine = done[0]
            c.session_hash = uuid.uuid4().hex  # a new page session, never used again
            film, person = PERSONAS[mine % len(PERSONAS)]
            c.submit(f"I loved {film}, no {person} please", [], api_name="/chat").result(timeout=300)
            if mine % every == 0:
                with lock:
                    samples.append((mine, rss_mb(pid)))

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return sorted(samples)


def run_memory(cfg: Any, work: Path, sessions: int = 1000, baseline: int = 500) -> dict[str, Any]:
    """``sessions`` with the shipped limits; ``baseline`` of them without, for comparison (its
    growth is linear: half the sessions show it)."""
    out: dict[str, Any] = {"sessions": sessions}
    configs = {
        "with limits (idle 0.5 min, max 1000 sessions)": {"CRS_SERVE__SESSION_IDLE_MINUTES": "0.5"},
        "without (no idle limit, Gradio's 10,000 cap)": {
            "CRS_SERVE__SESSION_IDLE_MINUTES": "1000000",
            "CRS_SERVE__MAX_SESSIONS": "10000",
        },
    }
    for name, env in configs.items():
        n = sessions if "with limits" in name else baseline
        print(f"memory: {n} sessions, {name}", flush=True)
        server = Server(work / f"mem-{len(out)}", env=env)
        try:
            warm = open_sessions(server.url, 20, server.pid, every=20)
            started = time.perf_counter()
            samples = open_sessions(server.url, n, server.pid)
            seconds = time.perf_counter() - started
            time.sleep(35 + 2)  # past the idle time; the next request lets the reaper run
            open_sessions(server.url, 1, server.pid)
            after_idle = rss_mb(server.pid)
        finally:
            server.stop()
        base = warm[-1][1]
        out[name] = {
            "sessions": n,
            "rss_mb_after_warmup": round(base, 1),
            "rss_mb": [(n, round(v, 1)) for n, v in samples],
            "rss_mb_at_end": round(samples[-1][1], 1),
            "rss_mb_after_idle": round(after_idle, 1),
            "kb_per_session": round((samples[-1][1] - base) * 1024 / n, 1),
            # the slope once the allocator is warm: the last half of the sessions
            "kb_per_session_last_half": round(
                (samples[-1][1] - samples[len(samples) // 2][1]) * 1024 / (n - samples[len(samples) // 2][0]), 1
            ),
            "seconds": round(seconds, 1),
        }
    return out


# ---- (d) faults -------------------------------------------------------------------------------


def crs(*args: str, work: Path, timeout: int = 600) -> tuple[int, str, str, float]:
    env = {**os.environ, "CRS_PATHS__DATA_DIR": str(work / "data"), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "crs.app.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return 124, "", "timed out", time.perf_counter() - started
    return out.returncode, out.stdout.strip(), out.stderr.strip(), time.perf_counter() - started


def last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip() and "Loading weights" not in ln]
    return lines[-1][:300] if lines else ""


def wait_for_rows(db: Path, rows: int, timeout: float) -> int:
    """Wait until Chroma's ``embeddings`` table holds ``rows`` rows; return how many it holds."""
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        if db.exists():
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                try:
                    count = con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
                finally:
                    con.close()
            except sqlite3.Error:
                count = 0
            if count >= rows:
                return count
        time.sleep(0.5)
    return count


def sqlite_ok(path: Path) -> bool:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()


def run_faults(cfg: Any, work: Path) -> dict[str, Any]:
    import json

    from crs.catalog import load_catalog
    from crs.rank.store_check import check_files
    from tests.test_store_damage import DAMAGES  # the same four damages the regression tests make

    out: dict[str, Any] = {}
    fw = work / "faults"
    fw.mkdir(parents=True, exist_ok=True)
    catalog = load_catalog(cfg.catalog.path)
    # Over 1,000 items, so Chroma has synced its HNSW files (it does every 1,000) and they can be damaged.
    films = [it for it in catalog if it.year and 1975 <= it.year <= 1989 and len(it.summary) >= 300][:1200]
    cat_file = fw / "films.jsonl"
    cat_file.write_text("".join(json.dumps(it.to_dict()) + "\n" for it in films))
    index = fw / "index"
    common = ("--catalog", str(cat_file), "--index-dir", str(index))

    print("faults: kill -9 of crs index", flush=True)
    env = {**os.environ, "CRS_PATHS__DATA_DIR": str(fw / "data"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "crs.app.cli", "index", *common], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    stored = wait_for_rows(index / "chroma.sqlite3", 300, timeout=600)  # killed once some items are written
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    problems = check_files(index)
    rc, stdout, stderr, secs = crs("index", *common, work=fw)
    out["kill -9 crs index mid-run"] = {
        "items stored when killed": stored,
        "files after the kill": problems or "sound",
        "next crs index": f"exit {rc}: {last_line(stdout) or last_line(stderr)}",
        "seconds": round(secs, 1),
    }

    print("faults: the four index damages", flush=True)
    damages: dict[str, Any] = {}
    for name, damage in DAMAGES.items():
        copy = fw / f"damaged-{len(damages)}"
        shutil.copytree(index, copy)
        damage(copy)
        row: dict[str, Any] = {}
        for command in (["chat", "--once", "hi"], ["index"], ["serve", "--port", str(free_port())]):
            # A server on a sound index would serve on: give it 60 s, then say so.
            limit = 60 if command[0] == "serve" else 600
            rc, stdout, stderr, secs = crs(*command, "--catalog", str(cat_file), "--index-dir", str(copy), work=fw,
                                           timeout=limit)  # fmt: skip
            lines = [ln for ln in stderr.splitlines() if ln.strip() and "Loading weights" not in ln]
            says = last_line(stderr) if rc != 124 else f"still running after {limit} s (it started)"
            row[f"crs {command[0]}"] = {"exit": rc, "stderr lines": len(lines), "says": says[:240],
                                        "seconds": round(secs, 1)}  # fmt: skip
        if not damages:  # wiping does not depend on the damage; one rebuild shows it (the tests do all four)
            rc, stdout, stderr, secs = crs("index", "--rebuild", "--catalog", str(cat_file), "--index-dir", str(copy),
                                           work=fw)  # fmt: skip
            row["crs index --rebuild"] = {
                "exit": rc,
                "says": last_line(stdout or stderr)[:200],
                "seconds": round(secs, 1),
            }
        damages[name] = row
    out["index damages"] = damages

    print("faults: kill -9 of the server mid-turn and mid-save", flush=True)
    sw = work / "server-faults"
    out["kill -9 server mid-turn"] = _kill_mid_turn(sw)
    out["kill -9 server mid-save"] = _kill_mid_save(sw)
    return out


def _kill_mid_turn(sw: Path) -> dict[str, Any]:
    server = Server(sw, delay=0.3)  # the stand-in streams a word every 0.3 s: a turn lasts about 3 s
    seen: dict[str, str] = {}

    def turn() -> None:
        try:
            out = client(server.url).submit("I loved Alien", [], api_name="/chat").result(timeout=60)
            seen["result"] = str(out[0][-1])[:200]
        except Exception as exc:
            seen["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"

    th = threading.Thread(target=turn)
    th.start()
    time.sleep(1.5)
    server.kill9()
    th.join(60)
    db = sw / "data" / "crs.db"
    restarted = Server(sw)
    try:
        again = client(restarted.url).predict("I loved Alien", [], api_name="/chat")
        ok = "My picks" in str(again[0][-1])
    finally:
        restarted.stop()
    return {
        "the client saw": seen.get("error") or seen.get("result", "nothing"),
        "profile db integrity": "ok" if not db.exists() or sqlite_ok(db) else "DAMAGED",
        "after restart": "a new turn works" if ok else "a new turn FAILED",
    }


def _kill_mid_save(sw: Path) -> dict[str, Any]:
    from crs.profiles.db import ProfileStore

    server = Server(sw)
    confirmed: list[int] = []
    errors: list[str] = []

    def saves() -> None:
        c = client(server.url)
        for n in range(10_000):
            try:
                note = c.predict(f"Version text {n}: I like westerns.", api_name="/save_profile")[-1]
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
                return
            if note.startswith("Saved as version"):
                confirmed.append(int(note.split()[-1].rstrip(".")))

    th = threading.Thread(target=saves)
    th.start()
    time.sleep(6)
    server.kill9()
    th.join(60)
    db = sw / "data" / "crs.db"
    integrity = sqlite_ok(db)
    versions = [p.version for p in ProfileStore(db).history("local")]
    return {
        "confirmed saves": len(confirmed),
        "versions in the db": len(versions),
        "confirmed missing": len(set(confirmed) - set(versions)),
        "gaps": sorted(set(range(1, max(versions, default=0) + 1)) - set(versions))[:10],
        "profile db integrity": "ok" if integrity else "DAMAGED",
        "the client saw": errors[0] if errors else "nothing",
    }


# ---- report -----------------------------------------------------------------------------------


def ops_rows(result: dict[str, Any]) -> list[str]:
    rows = []
    load = result.get("load")
    if load:
        lat = load["latency_s"]
        rows.append(f"| load | {load['sessions']} sessions x {load['turns_per_session']} turns: errors / leaks | "
                    f"{load['errors']} / {load['leaks']} | 0 / 0 |")  # fmt: skip
        rows.append(f"| load | turn latency p50 / p95 / p99 / max (s), {load['llm']} | "
                    f"{lat['p50']} / {lat['p95']} / {lat['p99']} / {lat['max']} | - |")  # fmt: skip
    mem = result.get("memory")
    if mem:
        for name, m in mem.items():
            if isinstance(m, dict):
                rows.append(f"| memory | RSS MB after warm-up -> {m.get('sessions', mem['sessions'])} sessions -> idle, {name} | "
                            f"{m['rss_mb_after_warmup']} -> {m.get('rss_mb_at_end', m.get('rss_mb_after_1000'))} -> {m['rss_mb_after_idle']} "
                            f"({m['kb_per_session']} KB/session; last half {m.get('kb_per_session_last_half', '?')}) | "
                    f"{'flat' if 'with limits' in name else 'the old behaviour, for comparison'} |")  # fmt: skip
    faults = result.get("faults")
    if faults:
        dmg = faults.get("index damages", {})
        clean = sum(
            1
            for row in dmg.values()
            for k, v in row.items()
            if k != "crs index --rebuild" and v["exit"] == 2 and v["stderr lines"] == 1
        )
        total = sum(1 for row in dmg.values() for k in row if k != "crs index --rebuild")
        rows.append(
            f"| faults | damaged index: one-line error and exit 2 (chat, index, serve x 4 damages) | {clean} of {total} | all |"
        )
        rebuilds = [row["crs index --rebuild"] for row in dmg.values() if "crs index --rebuild" in row]
        rebuilt = sum(1 for r in rebuilds if r["exit"] == 0)
        rows.append(f"| faults | `crs index --rebuild` repairs a damaged index | {rebuilt} of {len(rebuilds)} | all |")
        save = faults.get("kill -9 server mid-save")
        if save:
            rows.append(f"| faults | kill -9 mid-save: confirmed saves missing / gaps / db | {save['confirmed missing']} / "
                        f"{len(save['gaps'])} / {save['profile db integrity']} | 0 / 0 / ok |")  # fmt: skip
    return rows


def ops_markdown(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    load = result.get("load")
    if load:
        lines += ["", "## Load", "",
                  f"{load['sessions']} concurrent sessions x {load['turns_per_session']} turns through the page's API "
                  f"(gradio_client, `/chat`), server concurrency {load['concurrency']}, LLM: {load['llm']}. "
                  f"{load['turns_ok']} turns answered in {load['wall_s']} s ({load['turns_per_s']} turns/s); "
                  f"{load['errors']} errors, {load['leaks']} cross-session leaks.", "",
                  "| p50 | p90 | p95 | p99 | max |", "|---|---|---|---|---|",
                  "| " + " | ".join(str(load["latency_s"][k]) for k in ("p50", "p90", "p95", "p99", "max")) + " |"]  # fmt: skip
        lines += [f"- {e}" for e in load["error_list"] + load["leak_list"]]
    mem = result.get("memory")
    if mem:
        lines += ["", "## Memory", "", f"{mem['sessions']} page sessions opened (one chat turn each) and abandoned; "
                  "the server's RSS (MB) every 100 sessions, then after the idle time.", ""]  # fmt: skip
        for name, m in mem.items():
            if isinstance(m, dict):
                lines.append(
                    f"- {name}: "
                    + ", ".join(f"{n}: {v}" for n, v in m["rss_mb"])
                    + f"; after idle: {m['rss_mb_after_idle']}"
                )
    faults = result.get("faults")
    if faults:
        lines += ["", "## Faults", ""]
        for name, value in faults.items():
            if not isinstance(value, dict):
                continue
            if name == "index damages":
                lines += ["| damage | command | exit | what the user sees | s |", "|---|---|---|---|---|"]
                for damage, row in value.items():
                    for command, v in row.items():
                        lines.append(
                            f"| {damage} | {command} | {v['exit']} | {v['says'].replace('|', '/')} | {v['seconds']} |"
                        )
                lines.append("")
            else:
                lines.append(f"- **{name}**: " + "; ".join(f"{k}: {v}" for k, v in value.items()))
    return lines
