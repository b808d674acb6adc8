"""Health checks of a persistent Chroma index, run before and after Chroma opens it.

Chroma does not survive every damaged file: random bytes in ``chroma.sqlite3`` make its Rust
core panic across the FFI boundary and abort the process, a truncated HNSW ``header.bin`` ends
in a double free, and an emptied ``data_level0.bin`` gives no error at all, only unrelated
results. None of that can be caught in the process that suffered it, so:

1. ``check_files`` reads the files in plain Python before Chroma touches them: the SQLite
   header and ``PRAGMA quick_check``, every text value decodes as UTF-8 (what Chroma's Rust
   code assumes), and each HNSW segment's ``header.bin`` is whole and agrees with the sizes of
   ``data_level0.bin``, ``length.bin`` and ``link_lists.bin``;
2. ``probe_collection`` opens nothing itself: given an open collection, it compares counts and
   checks that stored items find themselves by their own vectors (an index whose vectors or
   links are garbage does not);
3. ``probe_in_subprocess`` runs 2. in a child process with a time limit, so a crash or hang
   Chroma would have had in this process becomes a message instead.

Each returns problems as short strings; ``crs.rank.store`` turns them into one ``StoreError``
naming the fix, ``crs index --rebuild``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

REBUILD_HINT = "rebuild it with `crs index --rebuild` (with the same --catalog and --index-dir, if any)"
SQLITE_FILE = "chroma.sqlite3"
SQLITE_MAGIC = b"SQLite format 3\x00"
# hnswlib's header as Chroma's fork writes it: a persistence version (int32), then
# offsetLevel0, max_elements, cur_element_count, size_data_per_element, label_offset,
# offsetData (size_t), maxlevel (int), enterpoint_node (uint), maxM, maxM0, M (size_t),
# mult (double), ef_construction (size_t). Older files have no version field.
_HNSW_FIELDS = struct.Struct("<QQQQQQiIQQQdQ")
_HNSW_HEADER_SIZES = (_HNSW_FIELDS.size + 4, _HNSW_FIELDS.size)  # 100 (versioned), 96
_HNSW_FILES = ("data_level0.bin", "length.bin", "link_lists.bin")
_UUID_DIR = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PROBES = 3  # stored items that must find themselves
_PROBE_K = 10


def first_line(exc: BaseException | str, limit: int = 200) -> str:
    """An error as one short line (Chroma's messages can run over many lines)."""
    text = str(exc).strip() or type(exc).__name__
    line = text.splitlines()[0].strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def is_chroma_dir(path: Path) -> bool:
    return (path / SQLITE_FILE).is_file()


def segment_dirs(path: Path) -> list[Path]:
    """The HNSW segment folders of a persistent Chroma directory (named by UUID)."""
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.is_dir() and _UUID_DIR.match(p.name))


def check_files(path: Path) -> list[str]:
    """Problems with a persistent Chroma directory's files; [] when sound or not created yet."""
    path = Path(path).expanduser()
    problems: list[str] = []
    db = path / SQLITE_FILE
    if db.exists():
        problems += _check_sqlite(db)
    for seg in segment_dirs(path):
        problems += _check_hnsw(seg)
    return problems


def _check_sqlite(db: Path) -> list[str]:
    name = f"{db.name}"
    size = db.stat().st_size
    if size == 0:
        return [f"{name} is empty"]
    with db.open("rb") as fh:
        head = fh.read(100)
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        return [f"{name} is not an SQLite database (bad header)"]
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or size % page_size:
        return [f"{name} is truncated ({size:,} bytes is not a whole number of {page_size}-byte pages)"]
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        return [f"{name} cannot be opened: {first_line(exc)}"]
    try:
        con.text_factory = bytes  # the check's own messages may quote damaged bytes
        rows = con.execute("PRAGMA quick_check").fetchall()
        verdict = [r[0].decode("utf-8", "replace") if isinstance(r[0], bytes) else str(r[0]) for r in rows]
        if verdict != ["ok"]:
            return [f"{name} is damaged: {first_line(verdict[0] if verdict else 'no answer')}"]
        return _check_text(con, name)
    except (sqlite3.Error, UnicodeError, ValueError) as exc:  # damaged bytes reach Python's decoders too
        return [f"{name} is damaged: {first_line(exc)}"]
    finally:
        con.close()


def _check_text(con: sqlite3.Connection, name: str) -> list[str]:
    """Every text value decodes as UTF-8: Chroma's Rust side panics (and aborts) on one that does not."""
    tables = [
        r[0].decode()
        for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'")
    ]
    for table in tables:
        quoted = '"' + table.replace('"', '""') + '"'
        columns = [r[1].decode() for r in con.execute(f"PRAGMA table_info({quoted})")]
        for column in columns:
            col = '"' + column.replace('"', '""') + '"'
            cursor = con.execute(f"SELECT {col} FROM {quoted} WHERE typeof({col}) = 'text'")
            while rows := cursor.fetchmany(4096):
                for (value,) in rows:
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError:
                        return [f"{name} is damaged: a value in {table}.{column} is not valid text"]
    return []


def _check_hnsw(seg: Path) -> list[str]:
    """An HNSW segment's files: a whole header.bin with possible values, data files as long as it
    says, every neighbour id a stored element, unit vectors (Chroma's cosine space stores them
    normalised). A damaged link makes hnswlib read out of bounds, so this runs before Chroma."""
    header = seg / "header.bin"
    where = f"HNSW segment {seg.name[:8]}"
    if not header.exists():
        others = [p.name for p in seg.iterdir()]
        return [f"{where} has data files but no header.bin"] if others else []
    raw = header.read_bytes()
    if len(raw) not in _HNSW_HEADER_SIZES:
        return [f"{where}: header.bin is {len(raw)} bytes, expected {_HNSW_HEADER_SIZES[0]} (truncated or overwritten)"]
    fields = _HNSW_FIELDS.unpack(raw[len(raw) - _HNSW_FIELDS.size :])
    _, max_elements, count, per_element, label_offset, data_offset, max_level, enter, max_m, max_m0, *_ = fields
    if (
        count > max_elements
        or per_element != label_offset + 8
        or data_offset != 4 + 4 * max_m0
        or data_offset >= label_offset
        or (label_offset - data_offset) % 4
        or not -1 <= max_level < 64  # -1 and no entry point: an empty, preallocated index
        or (count and (enter >= count or max_level < 0))
    ):
        return [f"{where}: header.bin holds impossible values"]
    sizes = {name: (seg / name).stat().st_size if (seg / name).exists() else -1 for name in _HNSW_FILES}
    need = {"data_level0.bin": count * per_element, "length.bin": count * 4, "link_lists.bin": count * 4}
    for name, n in need.items():
        if sizes[name] < n:
            what = "missing" if sizes[name] < 0 else f"{sizes[name]:,} bytes, needs {n:,} for {count:,} items"
            return [f"{where}: {name} is {what}"]
    if not count:
        return []
    data = np.fromfile(seg / "data_level0.bin", dtype=np.uint8, count=count * per_element).reshape(count, per_element)
    links = data[:, 4:data_offset].copy().view("<u4")
    n_links = data[:, :2].copy().view("<u2")[:, 0]
    if (n_links > max_m0).any():
        return [f"{where}: data_level0.bin has impossible neighbour counts"]
    used = np.arange(max_m0)[None, :] < n_links[:, None]
    if (links[used] >= count).any():
        return [f"{where}: data_level0.bin links to elements that do not exist"]
    vectors = data[:, data_offset:label_offset].copy().view("<f4")
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    if not np.isfinite(norms).all() or (np.abs(norms[norms > 0] - 1.0) > 1e-2).any():
        return [f"{where}: data_level0.bin holds vectors that are not unit length"]
    stored_norms = np.fromfile(seg / "length.bin", dtype="<f4", count=count)
    if not (np.isfinite(stored_norms).all() and (stored_norms >= 0).all()):
        return [f"{where}: length.bin holds impossible vector lengths"]
    return _check_link_lists(seg / "link_lists.bin", count, max_m, max_level, where)


def _check_link_lists(path: Path, count: int, max_m: int, max_level: int, where: str) -> list[str]:
    """link_lists.bin: per element a uint32 byte size, then that many bytes of upper-level lists
    (each a uint32 count word and max_m neighbour ids)."""
    raw = path.read_bytes()
    per_level = 4 + 4 * max_m
    pos = 0
    for _ in range(count):
        if pos + 4 > len(raw):
            return [f"{where}: link_lists.bin is truncated"]
        size = int.from_bytes(raw[pos : pos + 4], "little")
        pos += 4
        if size % per_level or size > per_level * max_level or pos + size > len(raw):
            return [f"{where}: link_lists.bin is damaged"]
        if size:
            block = np.frombuffer(raw, dtype="<u4", count=size // 4, offset=pos).reshape(-1, 1 + max_m)
            n = block[:, 0] & 0xFFFF
            used = np.arange(max_m)[None, :] < n[:, None]
            if (n > max_m).any() or (block[:, 1:][used] >= count).any():
                return [f"{where}: link_lists.bin links to elements that do not exist"]
        pos += size
    return []


def probe_collection(collection: Any) -> list[str]:
    """Counts and a probe query on an open collection: stored items must find themselves.

    Chroma calls may raise anything, including a Rust panic (a BaseException); the caller
    guards them."""
    total = int(collection.count())
    if total == 0:
        return []
    offsets = sorted({0, total // 2, total - 1})[:_PROBES]
    ids: list[str] = []
    for offset in offsets:
        ids += collection.get(limit=1, offset=offset, include=[])["ids"]
    if len(ids) != len(offsets):
        return [f"the collection counts {total:,} items but lists {len(ids)} of {len(offsets)} probed positions"]
    got = collection.get(ids=ids, include=["embeddings"])
    vectors = got["embeddings"]
    if vectors is None or len(vectors) != len(ids):
        return ["stored vectors cannot be read back"]
    result = collection.query(
        query_embeddings=[list(map(float, v)) for v in vectors],
        n_results=min(_PROBE_K, total),
        include=["distances"],
    )
    for item_id, found, dists in zip(got["ids"], result["ids"], result["distances"] or [], strict=False):
        # Items with identical text have identical vectors: a tie at distance 0 is as good.
        if item_id not in found and not (dists and float(dists[0]) < 1e-3):
            return [f"a probe search for stored item {item_id!r} does not find it: the vector index is damaged"]
    return []


def probe_in_subprocess(path: Path, collection: str, timeout: float) -> list[str]:
    """``probe_collection`` in a child process that opens the index itself; a crash, an abort or
    a hang there comes back as a problem instead of ending this process."""
    cmd = [sys.executable, "-m", "crs.rank.store_check", str(path), collection]
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "RUST_BACKTRACE": "0"}
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return [f"opening it with Chroma did not finish in {timeout:.0f} s"]
    if out.returncode < 0:
        sig = -out.returncode
        name = signal.Signals(sig).name if sig in {s.value for s in signal.Signals} else str(sig)
        return [f"opening it with Chroma crashed ({name})"]
    try:
        answer = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = out.stderr.strip().splitlines()[-1:] or [f"exit status {out.returncode}"]
        return [f"opening it with Chroma failed: {first_line(tail[0])}"]
    return [str(p) for p in answer.get("problems", [])]


def _child(path: str, name: str) -> list[str]:
    import chromadb
    from chromadb.config import Settings

    try:
        client = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))
        try:
            collection = client.get_collection(name)
        except Exception as exc:  # no such collection yet: nothing to check
            if "does not exist" in str(exc):
                return []
            raise
        return probe_collection(collection)
    except BaseException as exc:  # noqa: BLE001 - a Rust panic is a BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        return [f"Chroma failed: {first_line(exc)}"]


if __name__ == "__main__":  # the child of probe_in_subprocess
    print(json.dumps({"problems": _child(sys.argv[1], sys.argv[2])}), flush=True)
